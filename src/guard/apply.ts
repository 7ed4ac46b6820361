/**
 * Applying a port guard to a tap that has joined its bridge and is still down (the attach layer's
 * `beforeUp` seam): a down port forwards nothing, so the guard is whole before the first frame.
 * Everything it makes lives on the tap (its alias, its port flags, its FDB entries, its clsact
 * qdisc and filter) and goes when the tap goes, whatever ends it: nothing to sweep.
 *
 * Cost per tap: one RTM_NEWLINK (alias), one AF_BRIDGE RTM_SETLINK (port flags), one RTM_NEWNEIGH
 * per listed MAC, sent together; with a filter, one RTM_NEWQDISC binding the tap to the shared block
 * that holds the guard's program and two small filter dumps of that block (the program itself is
 * made once per block, not per tap). None of them scans the other ports, so the cost does not grow
 * with the ports present (docs/guard.md has the measurements).
 * @module
 */
import { NetlinkError, strerror } from '../netlink/errors.js';
import {
  AF_BRIDGE,
  IFINFOMSG_LEN,
  IFLA_BRPORT_GUARD,
  IFLA_BRPORT_ISOLATED,
  IFLA_BRPORT_LEARNING,
  IFLA_BRPORT_LOCKED,
  IFLA_BRPORT_MAB,
  IFLA_BRPORT_PROTECT,
  IFLA_IFALIAS,
  IFLA_PROTINFO,
  IFADDRMSG_LEN,
  IFA_ADDRESS,
  IFA_LOCAL,
  NLA_TYPE_MASK,
  NLM_F_DUMP,
  RTM_GETADDR,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_SETLINK,
} from '../netlink/constants.js';
import { addonTransport, concatBytes, dumpSync, eachAttr, exchangeBatchSync, exchangeSync, le, nlNested, nlString, nlU8, requestMessage, type Transport } from '../netlink/wire.js';
import { EEXIST, EIO, QbhError, type ErrnoCode } from '../errors.js';
import { compileGuard } from './bpf.js';
import { addFdbRequest, addFdbSync, fdbDumpSync } from './fdb.js';
import { formatGuard, isGuarded, needsFilter, readGuardWords, type PortGuard } from './policy.js';
import { GUARD_BLOCK_BASE, GUARD_BLOCK_PROBES, blockHolds, bpfFilterRequest, clsactRequest, deleteClsactSync, guardBlockIndex } from './tc.js';

/** How a guarded tap's alias starts; the guard's words follow. */
export const GUARD_ALIAS_PREFIX = 'qbh-guard: ';

/** IFALIASZ: the kernel keeps at most 255 bytes of an alias. */
export const ALIAS_MAX = 255;
/** What stands for a list too long for the alias: `ip=…`. */
const ELIDED = '…';

/**
 * The alias that records `g` on its port: the prefix and the guard's words; if that is longer than
 * the kernel keeps, the longest lists (`ip=`, `mac=`) are written `ip=…` (the port still has all of
 * them; the alias is for reading, and `mac=sticky:N`, which qbhd's pinner reads, is always whole).
 */
export function guardAlias(g: PortGuard): string {
  const words = formatGuard(g).split(' ');
  const size = () => Buffer.byteLength(GUARD_ALIAS_PREFIX + words.join(' '));
  while (size() > ALIAS_MAX) {
    let longest = -1;
    words.forEach((w, i) => {
      if (!w.endsWith(ELIDED) && (longest < 0 || w.length > words[longest]!.length)) longest = i;
    });
    words[longest] = `${words[longest]!.split('=')[0]}=${ELIDED}`;
  }
  return GUARD_ALIAS_PREFIX + words.join(' ');
}

/**
 * The guard a port's alias records, or null when the alias is not a qbh guard's (or unreadable).
 * Lists the alias elided (`ip=…`) are left out of what it returns.
 */
export function readGuardAlias(alias: string | null | undefined): PortGuard | null {
  if (typeof alias !== 'string' || !alias.startsWith(GUARD_ALIAS_PREFIX)) return null;
  const words = alias.slice(GUARD_ALIAS_PREFIX.length).split(' ').filter((w) => w !== '' && !w.endsWith(`=${ELIDED}`));
  if (words.length === 0) return null;
  const g = readGuardWords(words);
  return 'error' in g ? null : g;
}

/** An ifinfomsg of `family` for the link `index`, then `attrs`. */
function linkBody(family: number, index: number, attrs: Uint8Array[]): Uint8Array {
  const head = new Uint8Array(IFINFOMSG_LEN);
  head[0] = family;
  le(head).setInt32(4, index, true);
  return concatBytes(head, attrs);
}

/** The bridge port flags a guard sets (IFLA_BRPORT_* → value), in the order they are sent. */
export function guardPortFlags(g: PortGuard): [number, number][] {
  const flags: [number, number][] = [];
  if (g.isolated) flags.push([IFLA_BRPORT_ISOLATED, 1]);
  if (g.mac === 'sticky') {
    // MAC authentication bypass needs learning: the bridge then records an unknown source as a
    // locked entry (frames dropped) that qbhd's pinner may make static.
    flags.push([IFLA_BRPORT_LEARNING, 1], [IFLA_BRPORT_LOCKED, 1], [IFLA_BRPORT_MAB, 1]);
  } else if (g.mac !== undefined) {
    flags.push([IFLA_BRPORT_LEARNING, 0], [IFLA_BRPORT_LOCKED, 1]);
  }
  if (g.bpduGuard) flags.push([IFLA_BRPORT_GUARD, 1], [IFLA_BRPORT_PROTECT, 1]);
  return flags;
}

/**
 * Sets bridge port flags on the port `ifindex`, blocking: one AF_BRIDGE RTM_SETLINK.
 * Equivalent to `bridge link set dev PORT isolated on locked on learning off …` (`mab` has no
 * keyword in iproute2 6.1).
 */
export function setPortFlagsSync(fd: number, ifindex: number, flags: readonly [number, number][], target = String(ifindex), t: Transport = addonTransport): void {
  exchangeSync(fd, portFlagsRequest(ifindex, flags), { op: 'setPortFlags', target }, t);
}

/** The AF_BRIDGE RTM_SETLINK of {@link setPortFlagsSync}. */
export function portFlagsRequest(ifindex: number, flags: readonly [number, number][]): Uint8Array {
  return requestMessage(RTM_SETLINK, 0, linkBody(AF_BRIDGE, ifindex, [nlNested(IFLA_PROTINFO, flags.map(([type, v]) => nlU8(type, v)))]));
}

/**
 * Sets (or with '' clears) a link's alias, blocking.
 * Equivalent to `ip link set dev NAME alias TEXT`.
 */
export function setAliasSync(fd: number, ifindex: number, alias: string, target = String(ifindex), t: Transport = addonTransport): void {
  exchangeSync(fd, aliasRequest(ifindex, alias), { op: 'setLink', target }, t);
}

/** The RTM_NEWLINK of {@link setAliasSync}. */
export const aliasRequest = (ifindex: number, alias: string): Uint8Array => requestMessage(RTM_NEWLINK, 0, linkBody(0, ifindex, [nlString(IFLA_IFALIAS, alias)]));

/** The port a guard is applied to: a tap that joined its bridge and is still down. */
export interface GuardedPort {
  name: string;
  ifindex: number;
  bridge: { name: string; ifindex: number };
}

/**
 * A part of a guard the kernel refused: `part` names it (`port flags`, `filter`, `pinning MAC`),
 * `errno` and `reason` say why. The tap layer reports it as a TapError of step `guard`.
 * @category Errors
 */
export class GuardError extends QbhError {
  override name = 'GuardError';
  readonly part: string;
  readonly errno: number;
  /** The kernel's refusal in words: `Operation not supported (…ext-ack…)`. */
  readonly reason: string;

  constructor(part: string, cause: unknown, port: GuardedPort) {
    const nl = cause instanceof NetlinkError ? cause : null;
    const reason = nl ? `${strerror(nl.errno)}${nl.kernelMessage ? ` (${nl.kernelMessage})` : ''}` : cause instanceof Error ? cause.message : String(cause);
    const errno = nl?.errno ?? EIO;
    super(`cannot apply guard to ${port.name} on bridge ${port.bridge.name}: ${part}: ${reason}`, { code: (nl?.code ?? 'EIO') as ErrnoCode, op: 'applyGuard', target: port.name, cause });
    this.part = part;
    this.errno = errno;
    this.reason = reason;
  }
}

/**
 * The IPv4 and IPv6 addresses of the link `ifindex` (local and peer), blocking: one dump.
 * Equivalent to `ip -j addr show dev DEV`.
 */
export function addressesSync(fd: number, ifindex: number, t: Transport = addonTransport): Uint8Array[] {
  const out: Uint8Array[] = [];
  const seen = new Set<string>();
  // With strict checking (qbh's sockets), the kernel dumps only this link's addresses: the request
  // costs the same on a machine with thousands. The check below keeps a lax socket correct.
  const head = new Uint8Array(IFADDRMSG_LEN);
  le(head).setUint32(4, ifindex, true);
  for (const m of dumpSync(fd, requestMessage(RTM_GETADDR, NLM_F_DUMP, head), { op: 'getAddresses', target: String(ifindex) }, t)) {
    if (m.type !== RTM_NEWADDR || m.payload.length < IFADDRMSG_LEN) continue;
    const p = m.payload;
    if (le(p).getUint32(4, true) !== ifindex) continue;
    eachAttr(p, IFADDRMSG_LEN, p.length, (raw, s, e) => {
      const type = raw & NLA_TYPE_MASK;
      if ((type === IFA_ADDRESS || type === IFA_LOCAL) && (e - s === 4 || e - s === 16)) {
        const key = p.toString('hex', s, e);
        if (!seen.has(key)) {
          seen.add(key);
          out.push(Uint8Array.from(p.subarray(s, e)));
        }
      }
    });
  }
  return out;
}

/** One request of a guard, and the part it makes (for the error). */
interface GuardRequest {
  part: string;
  request: Uint8Array;
  /** For a pin: the MAC. */
  mac?: string;
}

/** The requests that set `g`'s alias, port flags and pinned MACs on `port`, in order. */
function guardRequests(port: GuardedPort, g: PortGuard): GuardRequest[] {
  const out: GuardRequest[] = [{ part: 'alias', request: aliasRequest(port.ifindex, guardAlias(g)) }];
  const flags = guardPortFlags(g);
  if (flags.length > 0) out.push({ part: 'port flags', request: portFlagsRequest(port.ifindex, flags) });
  if (Array.isArray(g.mac)) {
    for (const mac of g.mac as readonly string[]) out.push({ part: `pinning ${mac}`, request: addFdbRequest({ ifindex: port.ifindex, mac, sticky: true }), mac });
  }
  return out;
}

/**
 * Applies the guard `g` to `port` (a tap joined to its bridge, still down) on the rtnetlink socket
 * `fd`, blocking: alias, port flags, pinned MACs, frame filter, sent together in one sendmsg. Throws
 * a {@link GuardError} (`part` naming what was refused) for the first refusal; the caller then
 * closes the tap, which takes every part with it. An empty guard does nothing.
 *
 * Equivalent to `ip link set dev TAP alias 'qbh-guard: …'`, `bridge link set dev TAP isolated on
 * locked on …`, `bridge fdb add MAC dev TAP master static sticky`, `tc qdisc add dev TAP clsact`,
 * `tc filter add dev TAP ingress pref 1 handle 0xb4d bpf da bytecode …`.
 */
export function applyGuardSync(fd: number, port: GuardedPort, g: PortGuard, t: Transport = addonTransport): void {
  applyGuardsSync(fd, [port], g, t);
}

/**
 * {@link applyGuardSync} for many ports with one guard: the program compiled once, the requests
 * of all ports pipelined ({@link exchangeBatchSync}). Throws for the first port and part refused.
 */
export function applyGuardsSync(fd: number, ports: readonly GuardedPort[], g: PortGuard, t: Transport = addonTransport): void {
  if (!isGuarded(g) || ports.length === 0) return;
  let program: Uint8Array | null = null;
  if (needsFilter(g)) {
    // The bridge's own addresses are never the guest's to claim, even inside its prefixes.
    let own: Uint8Array[] = [];
    if ((g.ips?.length ?? 0) > 0) {
      try {
        own = addressesSync(fd, ports[0]!.bridge.ifindex, t);
      } catch (e) {
        throw new GuardError('reading the bridge\'s addresses', e, ports[0]!);
      }
    }
    program = compileGuard(g, { exclude: own });
  }
  const owners: { port: GuardedPort; part: string }[] = [];
  const requests: Uint8Array[] = [];
  /** Which requests pin a MAC (by index), and the MAC. */
  const pins = new Map<number, string>();
  for (const port of ports) {
    for (const r of guardRequests(port, g)) {
      if (r.mac !== undefined) pins.set(requests.length, r.mac);
      owners.push({ port, part: r.part });
      requests.push(r.request);
    }
  }
  const errors = exchangeBatchSync(fd, requests, owners.map((o) => ({ op: 'applyGuard', target: o.port.name })), t);
  errors.forEach((e, i) => {
    if (e === undefined) return;
    const { port, part } = owners[i]!;
    const mac = pins.get(i);
    if (mac === undefined || e.errno !== EEXIST || !takeLearnedMac(fd, port, mac, t)) throw new GuardError(part, e, port);
  });
  if (program !== null) bindFilter(fd, ports, program, t);
}

/**
 * A MAC root pinned to `port` that the bridge already knows: if every entry for it is one the bridge
 * learned (dynamic, or locked by MAB) — a frame from an unguarded port, perhaps spoofed to deny the
 * guest its tap — the pin replaces it; if any is static (another port's pin, a local address), the
 * MAC is someone else's and nothing is taken. Returns whether the MAC is now pinned to `port`.
 */
function takeLearnedMac(fd: number, port: GuardedPort, mac: string, t: Transport): boolean {
  const held = fdbDumpSync(fd, { bridge: port.bridge.ifindex }, t).filter((e) => e.mac === mac);
  if (held.some((e) => e.static || e.permanent)) return false;
  try {
    addFdbSync(fd, { ifindex: port.ifindex, mac, sticky: true, replace: true }, t);
  } catch (e) {
    throw new GuardError(`pinning ${mac}`, e, port);
  }
  return true;
}

/**
 * Binds every port's ingress to the shared block that holds `program` (made with it if need be):
 * the hashed index first, the next ones when an index holds another program, until the block is
 * found holding exactly this program with the ports bound to it. A port bound to a block that turns
 * out to hold something else is unbound before the next index is tried. Throws a GuardError.
 */
function bindFilter(fd: number, ports: readonly GuardedPort[], program: Uint8Array, t: Transport): void {
  const first = guardBlockIndex(program);
  const ctx = (p: GuardedPort) => ({ op: 'applyGuard', target: p.name });
  for (let probe = 0; probe < GUARD_BLOCK_PROBES; probe++) {
    const block = (GUARD_BLOCK_BASE | ((first + probe) & 0xffff)) >>> 0;
    const step = <T>(part: string, port: GuardedPort, fn: () => T): T => {
      try {
        return fn();
      } catch (e) {
        throw new GuardError(part, e, port);
      }
    };
    if (step('filter', ports[0]!, () => blockHolds(fd, block, program, t)) === 'taken') continue;
    const errors = exchangeBatchSync(fd, ports.map((p) => clsactRequest(p.ifindex, block)), ports.map(ctx), t);
    const i = errors.findIndex((e) => e !== undefined);
    if (i >= 0) throw new GuardError('clsact qdisc', errors[i], ports[i]!);
    // Bound: the block exists now. Put the program in it unless another attach did (EEXIST).
    let holds = step('filter', ports[0]!, () => blockHolds(fd, block, program, t));
    if (holds === 'free') {
      try {
        exchangeSync(fd, bpfFilterRequest(0, program, block), ctx(ports[0]!), t);
      } catch (e) {
        if (!(e instanceof NetlinkError && e.errno === EEXIST)) throw new GuardError('filter', e, ports[0]!);
      }
      holds = step('filter', ports[0]!, () => blockHolds(fd, block, program, t));
    }
    if (holds === 'ours') return;
    // Another program came first: unbind and try the next index.
    for (const p of ports) step('clsact qdisc', p, () => deleteClsactSync(fd, p.ifindex, t));
  }
  throw new GuardError('filter', new Error(`no free filter block among ${GUARD_BLOCK_PROBES} tried`), ports[0]!);
}
