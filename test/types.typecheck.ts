// Compile-time tests of the public types: `npm run lint` typechecks this file, and every
// `@ts-expect-error` line must be an error (a typo that compiles makes the expectation unused,
// which is itself an error). Never run; tap only runs *.test.ts.
import {
  QbhError,
  NetlinkError,
  TapError,
  AclError,
  NotABridgeError,
  NameTakenError,
  kernelAttributes,
  openTaps,
  MAX_TAPS_PER_CALL,
  type Tap,
  type Address,
  type AddrInfo,
  type Bridge,
  type BridgePort,
  type CreateBridgeOptions,
  type DeleteBridgeOptions,
  type Link,
  type MonitorEvent,
  type MonitorOptions,
  type OpenTapOptions,
  type QemuNetdevOptions,
  type SetLinkOptions,
} from '../src/index.js';

declare const br: Bridge;
declare const link: Link;
declare const port: BridgePort;
declare const addr: AddrInfo;
declare const address: Address;
declare const err: unknown;
declare const ev: MonitorEvent;

// Known keys, literal unions.
export const known = [link.operstate === 'UP', port.state === 'forwarding', link.flags.includes('LOWER_UP'), br.addr_info[0]?.family === 'inet6'];
// @ts-expect-error: a typo in a key
void br.opperstate;
// @ts-expect-error: a typo in a value
void (port.state === 'forwardng');
// @ts-expect-error: not an operstate
void (link.operstate === 'up');
// @ts-expect-error: not a flag iproute2 prints
void link.flags.includes('UPP');
// @ts-expect-error: no such key on a port
void port.stp_state;

// info_data is typed by info_kind.
if (link.linkinfo?.info_kind === 'tun') {
  const tap: boolean | undefined = link.linkinfo.info_data?.multi_queue;
  void tap;
  // @ts-expect-error: a tun has no stp_state
  void link.linkinfo.info_data?.stp_state;
}
if (link.linkinfo?.info_kind === 'bridge') {
  const stp: number | undefined = link.linkinfo.info_data?.stp_state;
  void stp;
}
// A bridge's info_data is a bridge's, without narrowing; its port data is a bridge port's.
export const stp: number | undefined = br.linkinfo?.info_data?.stp_state;
export const portState = link.linkinfo?.info_slave_data?.state;
// @ts-expect-error: without narrowing, a link's info_data could be a tap's or a bridge's
void link.linkinfo?.info_data?.stp_state;
// @ts-expect-error: a typo inside bridge info_data
void br.linkinfo?.info_data?.stp_stat;

// addr_info is exactly iproute2's: no ifindex/ifname; flat Address lists carry them.
// @ts-expect-error: ip -j addr has no ifindex inside addr_info
void addr.ifindex;
export const onLink: string = address.ifname;
export const tentative: true | undefined = addr.tentative;
// @ts-expect-error: not an IFA flag
void addr.tentativ;

// Error codes are errno names (or ACL kinds): a typo does not compile.
if (err instanceof QbhError) {
  void (err.code === 'ENODEV');
  void (err.code === 'parse');
  // @ts-expect-error: no such errno
  void (err.code === 'ENODEVV');
}
if (err instanceof NetlinkError) {
  // @ts-expect-error: no such errno
  void (err.code === 'EEXISTS');
}
export const family: QbhError[] = [new NetlinkError(17, { op: 'x' }), new TapError({ step: 'open', errno: 13 }), new AclError('parse', 'x')];
// The kinds of a device of the wrong kind are NetlinkErrors, with their fields typed.
export const kinds: NetlinkError[] = [new NotABridgeError({ op: 'getBridge' }, 'v0', 'veth'), new NameTakenError({ op: 'createBridge' }, 'v0', undefined)];
declare const wrong: unknown;
if (wrong instanceof NotABridgeError) {
  const kind: string | undefined = wrong.kind;
  void kind;
  // @ts-expect-error: a problem is words, not a number
  const n: number = wrong.problem;
  void n;
}
if (wrong instanceof TapError) {
  const reason: string = wrong.reason;
  void reason;
}

// Monitor events: ready first, then typed payloads.
if (ev.type === 'ready') {
  // @ts-expect-error: ready carries nothing
  void ev.link;
}

// The escape hatch for attributes without a key.
export const raw = kernelAttributes(link)?.unknown;

// Every options type is exported, and checks its keys.
export const opts: [CreateBridgeOptions, DeleteBridgeOptions, SetLinkOptions, OpenTapOptions, MonitorOptions, QemuNetdevOptions] = [
  { persistentMac: false },
  { withPorts: true },
  { master: null },
  { queues: 2 },
  { groups: ['link'] },
  { id: 'n0' },
];
// @ts-expect-error: a typo in an option
export const badOpts: DeleteBridgeOptions = { withPort: true };

// openTaps takes a count or names and the options of openTap, and resolves with taps.
export const batch: Promise<Tap[]>[] = [openTaps(3), openTaps(MAX_TAPS_PER_CALL, { bridge: 'br0', name: 'vm%d' }), openTaps(['a', 'b'], { bridge: 'br0', queues: 2 })];
// @ts-expect-error: one name is not a list of names
openTaps('vm0');
