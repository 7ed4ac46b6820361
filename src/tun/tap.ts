/**
 * Tap devices the way QEMU needs them: /dev/net/tun + TUNSETIFF (rtnetlink cannot create taps:
 * docs/netlink-pitfalls.md, §7), then one RTM_NEWLINK that copies the bridge's MTU, gives the tap a
 * high MAC, enslaves it and brings it up.
 * @module
 */
import { closeSync } from 'node:fs';
import { native } from '../native.js';
import { openRouteSocketSync } from '../netlink/wire.js';
import { EBUSY, EINVAL, ENODEV, EOPNOTSUPP, InvalidArgumentError } from '../errors.js';
import { checkInteger } from '../netlink/validate.js';
import type { LinkMessage } from '../netlink/message.js';
import { RTM_GETLINK } from '../netlink/constants.js';
import { Rtnl, getLinkBody, sharedRtnl } from '../netlink/rtnl.js';
import { parseMac } from '../netlink/mac.js';
import { infoData } from '../netlink/tables.js';
import {
  IFF_ATTACH_QUEUE,
  IFF_DETACH_QUEUE,
  IFF_MULTI_QUEUE,
  IFF_NAPI,
  IFF_NAPI_FRAGS,
  IFF_NO_PI,
  IFF_ONE_QUEUE,
  IFF_PERSIST,
  IFF_TAP,
  IFF_TUN,
  IFF_TUN_EXCL,
  IFF_VNET_HDR,
  IFNAMSIZ,
  IFREQ_SIZE,
  MAX_TAP_QUEUES,
  SIOCGIFHWADDR,
  TAP_MAX_MTU,
  TAP_MIN_MTU,
  TUNGETFEATURES,
  TUNGETIFF,
  TUNSETGROUP,
  TUNSETOWNER,
  TUNSETPERSIST,
} from './constants.js';
import {
  linkKind,
  HELPER_PREFIX,
  checkName,
  checkTapMtu,
  closeAfter,
  closeAll,
  formatMac,
  guessStep,
  ifindexOf,
  ifreq,
  ifreqName,
  openTun,
  notABridge,
  probeFeatures,
  randomMac,
  replaySteps,
  setIff,
  stepError,
  type LinkChanges,
} from './device.js';
import { tapSync, type HelperTap, type HelperTapOptions } from './tap-sync.js';
import { TapError, errnoOf, guardTapError } from './errors.js';
import { GuardError, applyGuardsSync } from '../guard/apply.js';
import { checkGuard, isGuarded, type PortGuard } from '../guard/policy.js';

export type { HelperTap, HelperTapOptions };
export { linkKind } from './device.js';

/** The kernel's TUNGETFEATURES answer, decoded: what this kernel's tun driver supports. */
export interface TunFeatures {
  tun: boolean;
  tap: boolean;
  noPi: boolean;
  oneQueue: boolean;
  vnetHdr: boolean;
  multiQueue: boolean;
  attachQueue: boolean;
  detachQueue: boolean;
  persist: boolean;
  napi: boolean;
  napiFrags: boolean;
  /** The flags as the kernel returned them. */
  raw: number;
}

/**
 * Decodes TUNGETFEATURES (or TUNGETIFF) flags.
 * @category Taps for QEMU
 */
export function decodeTunFlags(raw: number): TunFeatures {
  const has = (bit: number) => (raw & bit) !== 0;
  return {
    tun: has(IFF_TUN),
    tap: has(IFF_TAP),
    noPi: has(IFF_NO_PI),
    oneQueue: has(IFF_ONE_QUEUE),
    vnetHdr: has(IFF_VNET_HDR),
    multiQueue: has(IFF_MULTI_QUEUE),
    attachQueue: has(IFF_ATTACH_QUEUE),
    detachQueue: has(IFF_DETACH_QUEUE),
    persist: has(IFF_PERSIST),
    napi: has(IFF_NAPI),
    napiFrags: has(IFF_NAPI_FRAGS),
    raw,
  };
}

/**
 * The kernel's tun/tap features (TUNGETFEATURES on a fresh /dev/net/tun fd).
 * Equivalent to `ip -d tuntap show` listing what a new tap may use.
 * @category Taps for QEMU
 */
export function tunFeatures(): TunFeatures {
  let fd: number;
  try {
    fd = openTun();
  } catch (e) {
    throw new TapError({ op: 'tunFeatures', step: 'open', errno: errnoOf(e), cause: e });
  }
  try {
    const out = Buffer.alloc(4);
    native.ioctl(fd, TUNGETFEATURES, out);
    return decodeTunFlags(out.readUInt32LE(0));
  } catch (e) {
    throw new TapError({ op: 'tunFeatures', step: 'query', errno: errnoOf(e), cause: e });
  } finally {
    closeSync(fd);
  }
}

/** Parses a MAC prefix: an octet (0xfe) or 1–5 `xx:` octets ('fe', 'fe:54'). Unicast only. */
function parseMacPrefix(p: number | string, where: Where): Buffer {
  let bytes: number[];
  if (typeof p === 'number') {
    if (!Number.isInteger(p) || p < 0 || p > 255) throw badInput(`invalid macPrefix ${p}: not an octet`, where);
    bytes = [p];
  } else {
    if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){0,4}$/.test(p)) throw badInput(`invalid macPrefix "${p}": expected 1-5 hex octets (fe or fe:54)`, where);
    bytes = [...parseMac(p)];
  }
  if (bytes[0]! & 1) throw badInput(`invalid macPrefix ${formatMac(Buffer.from(bytes))}: a multicast prefix`, where);
  return Buffer.from(bytes);
}

/** A tap's MAC by name: SIOCGIFHWADDR (ifr_hwaddr: a sockaddr, family then the address). */
function hwaddrOf(rtnl: Rtnl, name: string): string {
  const b = ifreq(name);
  native.ioctl(rtnl.socket.fd, SIOCGIFHWADDR, b);
  return formatMac(b.subarray(IFNAMSIZ + 2, IFNAMSIZ + 8));
}

/** The operation and the tap an input error names. */
type Where = { op: string; target?: string | undefined };

/** Input openTap refuses: the library's {@link InvalidArgumentError}, as from every other function. */
function badInput(problem: string, where: Where): InvalidArgumentError {
  return new InvalidArgumentError(problem, where);
}

async function attribute(rtnl: Rtnl, ifindex: number, c: LinkChanges, first: unknown, tap: string, bridge?: string): Promise<TapError> {
  for (const [step, opts] of replaySteps(c)) {
    try {
      await rtnl.setLink(ifindex, opts);
    } catch (e) {
      return stepError(step, e, tap, bridge, c.mtu);
    }
  }
  return stepError(guessStep(first, c), first, tap, bridge, c.mtu);
}

/**
 * The qemu-bridge-helper core, blocking, for the short-lived helper process: creates `tap%d`
 * (IFF_TAP|IFF_NO_PI, plus IFF_VNET_HDR when asked for and supported), copies the bridge's MTU,
 * sets the MAC's first octet to 0xFE, enslaves it and brings it up, in the C helper's order of
 * checks: open /dev/net/tun, TUNSETIFF, bridge lookup (missing: ENODEV), then one
 * RTM_NEWLINK for MTU + MAC + master + up. A device that is not a bridge is refused before the tap
 * is made (the C helper makes the tap and fails at SIOCBRADDIF), with the C helper's `enslave`
 * error and EOPNOTSUPP; nothing is created and no IFLA_MASTER is sent.
 *
 * Throws a {@link TapError} whose `step` is `open`, `create`, `bridge-mtu`, `set-mtu`, `mac`,
 * `enslave` or `up`; {@link helperMessage} gives the C helper's text for it. On failure the fd is
 * closed and the kernel removes the tap.
 *
 * Equivalent to `ip tuntap add tap%d mode tap [vnet_hdr]` + `ip link set TAP mtu N address fe:… master BR up`.
 * @category Taps for QEMU
 */
export function openTapSync(opts: HelperTapOptions, rtnl: Rtnl): HelperTap {
  // The helper's own path (src/tun/tap-sync.ts): the same steps without the generic codec.
  return tapSync({ bridge: opts.bridge, vnetHdr: opts.vnetHdr, bridgeLink: opts.bridgeLink }, rtnl.socket.fd);
}

/** Options of {@link openTap}. */
export interface OpenTapOptions {
  /** Bridge to enslave the tap to: the tap gets its MTU and a 0xFE MAC first, then joins it, UP. */
  bridge?: string;
  /** Name or `%d` template; default `tap%d` (the kernel picks the lowest free number). An existing device is an error (EBUSY). */
  name?: string;
  /** IFF_VNET_HDR (frames carry a virtio_net_hdr). Default: on when the kernel supports it. */
  vnetHdr?: boolean;
  /** Queues (fds) of one multiqueue tap, 1–256. Default 1; above 1 sets IFF_MULTI_QUEUE. */
  queues?: number;
  /** Keep the tap after its fds are closed (TUNSETPERSIST); remove it with {@link deleteTap}. Default false. */
  persist?: boolean;
  /** User allowed to attach to the tap (TUNSETOWNER): a uid, or a name from /etc/passwd. */
  owner?: number | string;
  /** Group allowed to attach to the tap (TUNSETGROUP): a gid, or a name from /etc/group. */
  group?: number | string;
  /** MTU; default the bridge's (or the kernel's 1500 without a bridge). */
  mtu?: number;
  /** Octet(s) laid over the start of the kernel's random MAC. Default 0xfe with a bridge, none without. */
  macPrefix?: number | string;
  /** Bring the tap up. Default true. */
  up?: boolean;
  /** Open the fds O_NONBLOCK (QEMU sets this itself; useful for reading frames from Node). Default false. */
  nonBlocking?: boolean;
  /**
   * A port guard (needs `bridge`): isolation, MAC pinning, IP/ARP/ND source guard, rogue-server and
   * BPDU guard, EtherType allow-list (see {@link PortGuard}; {@link parseGuard} reads the words of
   * a bridge.conf `guard` line). Applied after the tap joined the bridge and before it comes up, so
   * it holds from the first frame; it lives on the tap and goes with it. `mac: 'sticky'` needs
   * qbhd running: its pinner makes the guest's first MACs static.
   */
  guard?: PortGuard;
}

/** An open tap: its queue fds (one per queue), which keep it alive unless it is persistent. */
export interface Tap {
  name: string;
  ifindex: number;
  /** One fd per queue. {@link closeTap} closes them and empties the array. */
  fds: number[];
  vnetHdr: boolean;
  persist: boolean;
  multiQueue: boolean;
  /** The MAC address the tap was given (or has). */
  address: string;
  /** The bridge it was enslaved to. */
  bridge?: string;
}

const defaultRtnl = sharedRtnl;

/** The largest uid or gid TUNSETOWNER and TUNSETGROUP take ((uid_t)-1 means none). */
const MAX_ID = 0xfffffffe;

/** Validated openTap options; bad input is an {@link InvalidArgumentError} naming `op`. */
function checkOptions(opts: OpenTapOptions, op = 'openTap') {
  const name = checkName('tap', opts.name ?? 'tap%d', true, op);
  const where = { op, target: name };
  const bridge = opts.bridge === undefined ? undefined : checkName('bridge', opts.bridge, false, op);
  const queues = checkInteger(opts.queues ?? 1, 'number of queues', 1, MAX_TAP_QUEUES, where);
  const mtu = opts.mtu === undefined ? undefined : checkInteger(opts.mtu, 'MTU', TAP_MIN_MTU, TAP_MAX_MTU, where);
  const owner = opts.owner === undefined ? undefined : checkInteger(opts.owner, 'owner', 0, MAX_ID, where);
  const group = opts.group === undefined ? undefined : checkInteger(opts.group, 'group', 0, MAX_ID, where);
  const prefix = opts.macPrefix !== undefined ? parseMacPrefix(opts.macPrefix, where) : bridge !== undefined ? HELPER_PREFIX : undefined;
  const guard = opts.guard === undefined ? undefined : checkGuard(opts.guard, op, name);
  if (isGuarded(guard) && bridge === undefined) throw new InvalidArgumentError('a guard needs a bridge: it is applied to the tap as a bridge port', where);
  return { name, bridge, queues, mtu, prefix, owner, group, guard: isGuarded(guard) ? guard : undefined };
}

/** What every tap of one openTap/openTaps call shares: the checked options and the bridge. */
interface TapPlan {
  opts: OpenTapOptions;
  bridge: string | undefined;
  /** The bridge's RTM_NEWLINK, looked up once. */
  br: LinkMessage | undefined;
  queues: number;
  mtu: number | undefined;
  prefix: Uint8Array | undefined;
  /** uid and gid (TUNSETOWNER, TUNSETGROUP), names resolved. */
  owner: number | undefined;
  group: number | undefined;
  /** The port guard, checked; undefined when none. */
  guard: PortGuard | undefined;
  /** openTaps: where {@link pickName} resumes its search for each `%d` template. */
  numbers?: Map<string, number>;
}

/** The kernel's limit on `%d` numbers (__dev_alloc_name: one page of bits). */
const MAX_TEMPLATE_NUMBER = 32768;

/**
 * Resolves a `%d` template as the kernel would — the lowest number whose name no device has as its
 * name or altname — and makes the tap under that name (TUNSETIFF). The kernel's own resolution
 * formats and parses every device's name for each new tap (dev_prep_valid_name: O(links) per tap,
 * quadratic for a batch); this looks candidate names up one by one (SIOCGIFINDEX, a hash lookup
 * that sees altnames too) from where the batch's previous tap stopped. A name taken in between
 * (EBUSY under IFF_TUN_EXCL) moves on to the next. Returns the name, or undefined when the kernel's
 * own resolution should decide (no `%d`, a name too long, another error: its error is then the
 * kernel's, as without this).
 */
function pickName(numbers: Map<string, number>, fd: number, template: string, flags: number, rtnl: Rtnl): string | undefined {
  if (!template.includes('%d')) return undefined;
  for (let n = numbers.get(template) ?? 0; n < MAX_TEMPLATE_NUMBER; n++) {
    const name = template.replace('%d', String(n));
    if (Buffer.byteLength(name) >= IFNAMSIZ) return undefined;
    try {
      ifindexOf(rtnl.socket.fd, name);
      continue; // in use
    } catch (e) {
      if (errnoOf(e) !== ENODEV) return undefined;
    }
    try {
      setIff(fd, name, flags);
    } catch (e) {
      if (errnoOf(e) === EBUSY) continue; // made in between
      return undefined;
    }
    numbers.set(template, n + 1);
    return name;
  }
  return undefined;
}

/**
 * Checks the options and looks the bridge up (one RTM_GETLINK), before any tap exists: a missing
 * bridge (a TapError, step `bridge-mtu`), a device that is not one (a {@link NotABridgeError}), or
 * an MTU no tap can take (step `set-mtu`) is refused with nothing made. `name` is the tap the
 * errors name (the template, or a batch's first name).
 */
async function planTaps(given: OpenTapOptions, rtnl: Rtnl, op: string, name?: string): Promise<TapPlan & { name: string }> {
  const opts = await resolvePrincipals(given, op);
  const checked = checkOptions(opts, op);
  const { bridge, queues, prefix, owner, group, guard } = checked;
  const tap = name ?? checked.name;
  let br: LinkMessage | undefined;
  let mtu = checked.mtu;
  if (bridge !== undefined) {
    try {
      br = await rtnl.getLinkMessage(bridge, { op, target: tap }, 'bridge');
    } catch (e) {
      throw stepError('bridge-mtu', e, tap, bridge);
    }
    const wrong = notABridge(br, bridge, op);
    if (wrong !== undefined) throw wrong;
    mtu = checkTapMtu(br, tap, bridge, mtu);
  }
  return { opts, bridge, br, queues, mtu, prefix, owner, group, guard, name: checked.name };
}

/**
 * What holds the name a new tap could not take (EBUSY under IFF_TUN_EXCL), in words:
 * `name t0 is taken by a veth device`. Undefined when nothing does any more (it went in between).
 */
function takenBy(name: string, rtnl: Rtnl): string | undefined {
  let m: LinkMessage | undefined;
  try {
    const replies = rtnl.socket.requestSync(RTM_GETLINK, 0, getLinkBody(name), { op: 'getLink', target: name });
    for (const r of replies) if (r.kind === 'link') m ??= r.link;
  } catch {
    return undefined;
  }
  if (m === undefined) return undefined;
  const kind = linkKind(m);
  const tunType = infoData(m.attrs.linkinfo, 'tun')?.type;
  const what = kind === 'tun' ? (tunType === 1 ? 'tun' : 'tap') : kind;
  return `name ${name} is taken by ${what === undefined ? 'an existing device' : `a ${what} device`}`;
}

/**
 * `owner` and `group` given by name, as uid and gid: read from /etc/passwd and /etc/group directly
 * (no NSS), with the reader the ACL uses for names in its rules — loaded only when a name is given.
 * A name that is all digits is the number.
 */
async function resolvePrincipals(opts: OpenTapOptions, op: string): Promise<OpenTapOptions> {
  const named = (v: unknown): v is string => typeof v === 'string' && !/^[0-9]+$/.test(v);
  const number = (v: number | string | undefined) => (typeof v === 'string' && /^[0-9]+$/.test(v) ? Number(v) : v);
  const out = { ...opts, owner: number(opts.owner), group: number(opts.group) };
  if (!named(out.owner) && !named(out.group)) return out;
  const { readUserDb } = await import('../users.js');
  const db = readUserDb();
  if (named(out.owner)) {
    const uid = db.user(out.owner)?.uid;
    if (uid === undefined) throw badInput(`invalid owner "${out.owner}": no such user in /etc/passwd`, { op, target: opts.name });
    out.owner = uid;
  }
  if (named(out.group)) {
    const gid = db.group(out.group)?.gid;
    if (gid === undefined) throw badInput(`invalid group "${out.group}": no such group in /etc/group`, { op, target: opts.name });
    out.group = gid;
  }
  return out;
}

/** A tap made by {@link makeTap}, before its one RTM_NEWLINK and its persistence. */
interface MadeTap {
  tap: Tap;
  /** The changes of its RTM_NEWLINK; empty when it needs none. */
  changes: LinkChanges;
}

/**
 * Makes one tap of a plan, all of it local syscalls: /dev/net/tun, TUNGETFEATURES, TUNSETIFF (once
 * per queue), owner and group, its ifindex (SIOCGIFINDEX) and its MAC (chosen here, or read with
 * SIOCGIFHWADDR without a prefix). On failure its fds are closed (the kernel removes the tap) and
 * a TapError naming the step is thrown.
 */
function makeTap(plan: TapPlan, template: string, rtnl: Rtnl): MadeTap {
  const { opts, bridge, br, queues, mtu, prefix, owner, group } = plan;
  let name = template;
  const fds: number[] = [];
  try {
    try {
      fds.push(openTun(opts.nonBlocking));
    } catch (e) {
      throw stepError('open', e, name, bridge);
    }
    const features = probeFeatures(fds[0]!);
    const vnetHdr = opts.vnetHdr ?? (features & IFF_VNET_HDR) !== 0;
    let flags = IFF_TAP | IFF_NO_PI;
    if (vnetHdr) flags |= IFF_VNET_HDR;
    if (queues > 1) flags |= IFF_MULTI_QUEUE;
    const missing = flags & ~features & (IFF_VNET_HDR | IFF_MULTI_QUEUE);
    if (missing) {
      const what = missing & IFF_VNET_HDR ? 'IFF_VNET_HDR' : 'IFF_MULTI_QUEUE';
      throw new TapError({ step: 'create', errno: EOPNOTSUPP, tap: name, bridge, detail: `this kernel's tun driver lacks ${what}` });
    }
    try {
      // IFF_TUN_EXCL: never attach to (and then, on rollback, destroy) someone else's device.
      name = (plan.numbers && pickName(plan.numbers, fds[0]!, name, flags | IFF_TUN_EXCL, rtnl)) || setIff(fds[0]!, name, flags | IFF_TUN_EXCL);
    } catch (e) {
      if (errnoOf(e) === EBUSY) {
        const taken = takenBy(name, rtnl);
        if (taken !== undefined) throw new TapError({ step: 'create', errno: EBUSY, tap: name, bridge, detail: taken, cause: e });
      }
      throw stepError('create', e, name, bridge);
    }
    for (let i = 1; i < queues; i++) {
      try {
        fds.push(openTun(opts.nonBlocking));
      } catch (e) {
        throw stepError('open', e, name, bridge);
      }
      try {
        setIff(fds[i]!, name, flags); // every queue repeats the same flags (docs/netlink-pitfalls.md, §8)
      } catch (e) {
        throw stepError('queue', e, name, bridge);
      }
    }
    if (owner !== undefined) {
      try {
        native.ioctlInt(fds[0]!, TUNSETOWNER, owner);
      } catch (e) {
        throw stepError('owner', e, name, bridge);
      }
    }
    if (group !== undefined) {
      try {
        native.ioctlInt(fds[0]!, TUNSETGROUP, group);
      } catch (e) {
        throw stepError('group', e, name, bridge);
      }
    }
    let ifindex: number;
    let mac: string;
    try {
      ifindex = ifindexOf(rtnl.socket.fd, name);
      mac = prefix !== undefined ? randomMac(prefix) : hwaddrOf(rtnl, name);
    } catch (e) {
      throw stepError('create', e, name, bridge);
    }
    const changes: LinkChanges = {};
    if (mtu !== undefined) changes.mtu = mtu;
    if (prefix !== undefined) changes.address = mac;
    if (br !== undefined) changes.master = br.index;
    if (opts.up ?? true) changes.up = true;
    const tap: Tap = { name, ifindex, fds, vnetHdr, persist: opts.persist ?? false, multiQueue: queues > 1, address: mac };
    if (bridge !== undefined) tap.bridge = bridge;
    return { tap, changes };
  } catch (e) {
    throw closeAfter(e, fds);
  }
}

const hasChanges = (c: LinkChanges): boolean => Object.keys(c).length > 0;

/**
 * Applies the plan's guard to taps that joined the bridge down, on a blocking socket of its own
 * (the shared Rtnl may have other requests in flight), then brings them up (when `up`).
 */
async function guardAndUp(made: readonly MadeTap[], plan: TapPlan, rtnl: Rtnl, up: boolean): Promise<void> {
  const bridge = { name: plan.br!.attrs.ifname as string, ifindex: plan.br!.index };
  const ports = made.map((m) => ({ name: m.tap.name, ifindex: m.tap.ifindex, bridge }));
  const fd = openRouteSocketSync();
  try {
    applyGuardsSync(fd, ports, plan.guard!);
  } catch (e) {
    const port = e instanceof GuardError ? ports.find((p) => p.name === e.target) ?? ports[0]! : ports[0]!;
    throw guardTapError(e, port);
  } finally {
    native.close(fd);
  }
  if (!up) return;
  const outcomes = await rtnl.setLinks(made.map((m) => ({ index: m.tap.ifindex, opts: { up: true }, target: m.tap.name })));
  const i = outcomes.findIndex((e) => e !== undefined);
  if (i >= 0) throw stepError('up', outcomes[i], made[i]!.tap.name, plan.bridge);
}

/** TUNSETPERSIST, last of a tap's steps: before it, closing the fds is the whole rollback. */
function persist(made: MadeTap): void {
  try {
    native.ioctlInt(made.tap.fds[0]!, TUNSETPERSIST, 1);
  } catch (e) {
    throw stepError('persist', e, made.tap.name, made.tap.bridge);
  }
}

/**
 * Opens a tap: TUNSETIFF on /dev/net/tun (once per queue, identical flags), optionally owner,
 * group and persistence; with `bridge`, the tap takes the bridge's MTU and a MAC starting with
 * 0xFE, so the bridge's own MTU and MAC do not change, and is enslaved and brought up — all in one
 * RTM_NEWLINK. Round trips: one RTM_GETLINK for the bridge (checked before the tap exists), one
 * RTM_NEWLINK. Bad options are an {@link InvalidArgumentError} and a bridge that is not one a
 * {@link NotABridgeError}, both before anything is made; any later failure undoes everything and
 * throws a {@link TapError} naming the step, the tap and the bridge (`cannot add tap3 to bridge
 * br0: Operation not supported`). For many taps at once,
 * {@link openTaps} shares the bridge lookup and pipelines the RTM_NEWLINKs.
 *
 * Equivalent to `ip tuntap add NAME mode tap [vnet_hdr] [multi_queue] [user U] [group G]` +
 * `ip link set NAME mtu N address fe:… master BR up` (with the fds held open, and without
 * `persist` unless asked).
 * @category Taps for QEMU
 */
export async function openTap(opts: OpenTapOptions = {}, rtnl: Rtnl = defaultRtnl()): Promise<Tap> {
  const plan = await planTaps(opts, rtnl, 'openTap');
  const made = makeTap(plan, plan.name, rtnl);
  const { tap, changes } = made;
  try {
    const up = plan.guard !== undefined && changes.up === true;
    if (up) delete changes.up;
    if (hasChanges(changes)) {
      try {
        await rtnl.setLink(tap.ifindex, changes);
      } catch (e) {
        throw await attribute(rtnl, tap.ifindex, changes, e, tap.name, plan.bridge);
      }
    }
    if (plan.guard !== undefined) await guardAndUp([made], plan, rtnl, up);
    if (opts.persist) persist(made);
    return tap;
  } catch (e) {
    throw closeAfter(e, tap.fds);
  }
}

/**
 * The most taps one {@link openTaps} call makes.
 * @category Taps for QEMU
 */
export const MAX_TAPS_PER_CALL = 65536;

/**
 * Undoes a batch: deletes its taps in one group RTM_DELLINK (closing fds one by one would cost
 * the kernel a grace period per tap), then closes every fd. Returns the first cleanup error.
 */
async function undoBatch(made: MadeTap[], rtnl: Rtnl): Promise<unknown> {
  let cleanup: unknown;
  if (made.length > 1 || made.some((m) => m.tap.persist)) {
    try {
      await rtnl.deleteLinks(made.map((m) => m.tap.ifindex));
    } catch (e) {
      // Closing the fds still removes every non-persistent tap; a persistent one is unmade first.
      cleanup = e;
      for (const m of made) {
        if (!m.tap.persist) continue;
        try {
          native.ioctlInt(m.tap.fds[0]!, TUNSETPERSIST, 0);
        } catch {
          // not made persistent yet (its TUNSETPERSIST was not reached, or failed)
        }
      }
    }
  }
  const closed = closeAll(made.flatMap((m) => m.tap.fds.splice(0)));
  return cleanup ?? closed;
}

/**
 * Opens many taps in one call, all with the same options: `taps` is how many (named from
 * `opts.name`, default `tap%d`, which must then hold a `%d`) or their names (each a name or a `%d`
 * template; `opts.name` must then be unset). Does what {@link openTap} does for each, with one
 * bridge lookup for all and the RTM_NEWLINKs (MTU, MAC, master, up) pipelined on the socket —
 * many requests per sendmsg, their ACKs matched by sequence number — instead of one round trip
 * each. Returns the taps in the order asked for.
 *
 * All or nothing: if any tap fails, every tap the call made is deleted and every fd closed, and
 * the {@link TapError} names the first tap that failed and its step (a name already taken:
 * `cannot create vm7: Device or resource busy`).
 *
 * Equivalent to `ip -batch` of `tuntap add NAME mode tap …` + `link set NAME mtu N address fe:… master BR up`
 * lines (with the fds held open).
 * @category Taps for QEMU
 */
export async function openTaps(taps: number | readonly string[], opts: OpenTapOptions = {}, rtnl: Rtnl = defaultRtnl()): Promise<Tap[]> {
  const op = 'openTaps';
  let names: string[];
  if (typeof taps === 'number') {
    checkInteger(taps, 'tap count', 0, MAX_TAPS_PER_CALL, { op });
    const template = checkName('tap', opts.name ?? 'tap%d', true, op);
    if (taps > 1 && !template.includes('%d')) {
      throw new InvalidArgumentError(`invalid tap name "${template}": ${taps} taps need a %d template (such as ${template}%d)`, { op, target: template });
    }
    names = new Array<string>(taps).fill(template);
  } else {
    if (!Array.isArray(taps)) throw new InvalidArgumentError(`openTaps takes a count or an array of names, not ${typeof taps}`, { op });
    if (opts.name !== undefined) throw new InvalidArgumentError('openTaps takes the names or opts.name (a template for a count), not both', { op });
    if (taps.length > MAX_TAPS_PER_CALL) throw new InvalidArgumentError(`openTaps makes at most ${MAX_TAPS_PER_CALL} taps per call, not ${taps.length}`, { op });
    const seen = new Set<string>();
    for (const n of taps) {
      checkName('tap', n, true, op);
      if (!n.includes('%d') && seen.has(n)) throw new InvalidArgumentError(`tap name "${n}" is given twice`, { op, target: n });
      seen.add(n);
    }
    names = [...taps];
  }
  if (names.length === 0) return [];
  const plan = await planTaps({ ...opts, name: undefined }, rtnl, op, names[0]);
  plan.numbers = new Map();
  const made: MadeTap[] = [];
  try {
    for (const n of names) made.push(makeTap(plan, n, rtnl));
    const up = plan.guard !== undefined && (opts.up ?? true);
    if (plan.guard !== undefined) for (const m of made) delete m.changes.up;
    const todo = made.filter((m) => hasChanges(m.changes));
    const outcomes = await rtnl.setLinks(todo.map((m) => ({ index: m.tap.ifindex, opts: m.changes, target: m.tap.name })));
    const i = outcomes.findIndex((e) => e !== undefined);
    if (i >= 0) {
      const { tap, changes } = todo[i]!;
      throw await attribute(rtnl, tap.ifindex, changes, outcomes[i], tap.name, plan.bridge);
    }
    if (plan.guard !== undefined) await guardAndUp(made, plan, rtnl, up);
    if (opts.persist) for (const m of made) persist(m);
    return made.map((m) => m.tap);
  } catch (e) {
    const cleanup = await undoBatch(made, rtnl);
    if (e instanceof TapError && cleanup !== undefined) e.cleanupError = cleanup;
    throw e;
  }
}
/**
 * Closes a tap's fds. A non-persistent tap then disappears (and leaves its bridge); a persistent
 * one stays until {@link deleteTap}. Idempotent: the fds array is emptied.
 * Equivalent to QEMU closing its tap fds.
 * @category Taps for QEMU
 */
export function closeTap(tap: Pick<Tap, 'fds'>): void {
  // Every fd is closed, even after one fails (EBADF: the caller closed it already): one left open keeps the tap.
  const first = closeAll(tap.fds.splice(0));
  if (first !== undefined) throw first;
}

/**
 * Closes many taps at once and deletes the devices, persistent or not, in one RTM_DELLINK (moved
 * into a fresh interface group first), then closes their fds. Closing fds one by one costs the
 * kernel one RCU grace period per tap (docs/performance.md); this costs one in all.
 * Deletes the devices even if another process (QEMU) still holds fds of them: use {@link closeTap}
 * for taps handed over to someone else.
 * Equivalent to `ip link set TAP group N` for each, then `ip link delete group N`.
 * @category Taps for QEMU
 */
export async function destroyTaps(taps: Pick<Tap, 'name' | 'fds' | 'persist'>[], rtnl: Rtnl = defaultRtnl()): Promise<void> {
  // A non-persistent tap whose fds are already closed is gone: nothing to delete.
  const live = taps.filter((x) => x.fds.length > 0 || x.persist);
  let first: unknown;
  try {
    if (live.length > 0) await rtnl.deleteLinks(live.map((x) => x.name));
  } catch (e) {
    first = e;
  }
  for (const x of taps) {
    try {
      closeTap(x);
    } catch (e) {
      first ??= e;
    }
  }
  if (first !== undefined) throw first;
}

/** Looks a tap up and checks that it is one (so deleteTap never removes, say, a bridge). */
async function tapIndex(rtnl: Rtnl, name: string): Promise<number> {
  const link = await rtnl.getLinkMessage(name, { op: 'deleteTap', target: name }, 'tap');
  const info = link.attrs.linkinfo;
  const kind = info?.kind;
  const type = infoData(info, 'tun')?.type; // IFLA_TUN_TYPE: 1 tun, 2 tap
  if (kind !== 'tun') throw new TapError({ op: 'deleteTap', step: 'validate', errno: EINVAL, tap: name, detail: `${name} is a ${kind ?? 'device'}, not a tap` });
  if (type !== undefined && type !== 2) throw new TapError({ op: 'deleteTap', step: 'validate', errno: EINVAL, tap: name, detail: `${name} is a tun device, not a tap` });
  return link.index;
}

/**
 * Deletes a (persistent) tap with RTM_DELLINK; refuses links that are not taps. Any fds still open
 * on it are detached by the kernel. Equivalent to `ip tuntap del NAME mode tap`.
 * @category Taps for QEMU
 */
export async function deleteTap(name: string, rtnl: Rtnl = defaultRtnl()): Promise<void> {
  checkName('tap', name, false, 'deleteTap');
  await rtnl.deleteLink(await tapIndex(rtnl, name));
}

/**
 * Deletes several taps in one RTM_DELLINK (they are moved into a fresh interface group first): the
 * kernel waits for one RCU grace period in all instead of one per tap (1000 taps: under a second
 * rather than ~17 s). Refuses names that are not taps, before deleting anything.
 * Equivalent to `ip link set TAP group N` for each, then `ip link delete group N`.
 * @category Taps for QEMU
 */
export async function deleteTaps(names: string[], rtnl: Rtnl = defaultRtnl()): Promise<void> {
  if (names.length === 0) return;
  for (const n of names) checkName('tap', n, false, 'deleteTaps');
  const taps = await rtnl.listLinks({ kind: 'tun' });
  const byName = new Map(taps.map((l) => [l.ifname, l]));
  const indexes = names.map((n) => {
    const l = byName.get(n);
    if (!l) throw new TapError({ op: 'deleteTaps', step: 'validate', errno: ENODEV, tap: n, detail: `${n} is not a tap (or does not exist)` });
    return l.ifindex;
  });
  await rtnl.deleteLinks(indexes);
}

/**
 * The tap an fd is attached to (TUNGETIFF): its name and flags. Works on any tun fd, including one
 * received over a socket. Equivalent to QEMU's `tap_probe_vnet_hdr` / reading `/proc/PID/fdinfo/FD`'s `iff:`.
 * @category Taps for QEMU
 */
export function tapInfo(fd: number): { name: string; flags: TunFeatures } {
  const b = Buffer.alloc(IFREQ_SIZE);
  try {
    native.ioctl(fd, TUNGETIFF, b);
  } catch (e) {
    // EBADFD: a tun fd not attached to a device; EBADF/ENOTTY: not a tun fd at all.
    throw new TapError({ op: 'tapInfo', step: 'query', errno: errnoOf(e), tap: `fd ${fd}`, cause: e });
  }
  return { name: ifreqName(b), flags: decodeTunFlags(b.readUInt16LE(IFNAMSIZ)) };
}
