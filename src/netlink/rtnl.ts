/**
 * Link, bridge and address operations over rtnetlink: the typed API that orchestration scripts,
 * the tap layer, the helper and the CLI call. Every result uses iproute2's JSON keys.
 * @module
 */
import {
  AF_BRIDGE,
  AF_INET,
  AF_INET6,
  AF_UNSPEC,
  IFF_UP,
  NLM_F_CREATE,
  NLM_F_EXCL,
  RTM_DELADDR,
  RTM_DELLINK,
  RTM_GETADDR,
  RTM_GETLINK,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTEXT_FILTER_SKIP_STATS,
  RT_SCOPE_HOST,
  RT_SCOPE_LINK,
  RT_SCOPE_UNIVERSE,
} from './constants.js';
import { closeSync, constants as fsConstants, openSync } from 'node:fs';
import { BridgeNotEmptyError, EEXIST, EIO, ENODEV, InvalidArgumentError, QbhError, type ErrnoCode } from '../errors.js';
import { AddressError, errnoConstants, errnoName, missingDevice, NameTakenError, NetlinkError, NoSuchDeviceError, NotABridgeError, strerror, type DeviceKind, type NetlinkErrorContext } from './errors.js';
import { IFLA_PORT_SHOWN, IFLA_REFS, IFLA_SHOWN, remember, toAddrInfo, toAddress, toBridgePort, toLink, type AddrInfo, type Address, type BridgeLinkInfo, type BridgePort, type Link, type LinkLookup, type RefAttrs } from './present.js';
import { decodeAddr, decodeLink, encodeAddr, encodeLink, type AddrMessage, type LinkMessage, type Message, type RawMessage } from './message.js';
import { NetlinkSocket } from './socket.js';
import { BRIDGE_MAX_MTU, BRIDGE_MIN_MTU, checkIfname, checkInteger, checkLinkRef, checkMac } from './validate.js';
import type { Cidr } from './cidr.js';
import type { LinkAttrs } from './tables.js';

/** A link named by its interface name or by its ifindex. */
export type LinkRef = string | number;

/** Filters for {@link Rtnl.listLinks}: applied by the kernel (strict dumps), as iproute2 does. */
export interface LinkFilter {
  /** Only links of this kind (`bridge`, `veth`, `tun`…): IFLA_LINKINFO{IFLA_INFO_KIND}. */
  kind?: string;
  /** Only the ports of this master: IFLA_MASTER. */
  master?: LinkRef;
}

/** Options of {@link Rtnl.createBridge}. */
export interface CreateBridgeOptions {
  mtu?: number;
  /** MAC address, `aa:bb:cc:dd:ee:ff`. Wins over `persistentMac`. */
  address?: string;
  /**
   * Give the bridge a MAC derived from the machine id and its name (the exported `persistentMac()`), as
   * systemd-networkd's `MACAddressPolicy=persistent` does. Default true. A bridge with a MAC of its
   * own keeps it; without one (`false`) the kernel gives it the lowest MAC of its ports, which
   * changes as ports come and go (random, then a tap's `fe:…`, then 00:00:00:00:00:00 with none).
   */
  persistentMac?: boolean;
  /** Turn on the kernel's STP (IFLA_BR_STP_STATE). */
  stp?: boolean;
  /** Bring the bridge up. Default true. */
  up?: boolean;
  /**
   * If a bridge of this name exists, return it instead of failing with EEXIST, provided it has the
   * `mtu`, `address` and `stp` given here (those not given are not compared; nor is up or down):
   * one that differs fails with EEXIST naming the differences, and nothing is changed. Default false.
   */
  existOk?: boolean;
  /**
   * Addresses to add, as {@link Rtnl.addAddress} takes them (`10.0.0.1/24`), all checked before
   * anything is made. If one cannot be added, nothing is left half-made: a bridge this call created
   * is deleted again, and on an existing bridge (`existOk`) the addresses this call added are
   * removed; the error is addAddress's, its message saying what was undone (and `cleanupError`
   * holding the undo's own error, if it failed too). With `existOk`, an address the bridge already
   * has is not an error.
   */
  addresses?: readonly string[];
}

/** Options of {@link Rtnl.deleteBridge}: what to do with the ports a bridge still has. */
export interface DeleteBridgeOptions {
  /** Delete the bridge even if it has ports; they are released (nomaster) and stay. Default false. */
  force?: boolean;
  /** Delete its ports (taps, veths…) too, in the same kernel request. Default false. */
  withPorts?: boolean;
}

/** Changes for {@link Rtnl.setLink}; all applied by one RTM_NEWLINK request. */
export interface SetLinkOptions {
  up?: boolean;
  mtu?: number;
  /** MAC address, `aa:bb:cc:dd:ee:ff`. */
  address?: string;
  /** The bridge to enslave the link to; `null` releases it (nomaster). */
  master?: LinkRef | null;
  /** Interface group number. */
  group?: number;
}

/**
 * A bridge: its link (`linkinfo.info_data` typed as a bridge's), its ports as
 * `bridge -j -d link show` prints them, and `addr_info` exactly as `ip -j addr show dev NAME` does.
 */
export interface Bridge extends Link {
  linkinfo?: BridgeLinkInfo;
  ports: BridgePort[];
  addr_info: AddrInfo[];
}

/**
 * How an existing bridge differs from the settings asked for (only those given): `mtu 1500 not
 * 1400`, `stp off not on`, `address … not …`.
 */
function bridgeDifferences(b: Bridge, opts: CreateBridgeOptions): string[] {
  const out: string[] = [];
  if (opts.mtu !== undefined && b.mtu !== opts.mtu) out.push(`mtu ${b.mtu} not ${opts.mtu}`);
  if (opts.address !== undefined && b.address?.toLowerCase() !== opts.address.toLowerCase()) out.push(`address ${b.address ?? '-'} not ${opts.address.toLowerCase()}`);
  const stp = (b.linkinfo?.info_data?.stp_state ?? 0) !== 0;
  if (opts.stp !== undefined && stp !== opts.stp) out.push(`stp ${stp ? 'on' : 'off'} not ${opts.stp ? 'on' : 'off'}`);
  return out;
}

/**
 * The body of the one RTM_NEWLINK that applies {@link SetLinkOptions} to the link `index` (or, at
 * index 0, the link called `name`), its master already resolved to `masterIndex` (0: none).
 * @internal
 */
export function setLinkBody(index: number, name: string | undefined, opts: Omit<SetLinkOptions, 'master'>, masterIndex: number | undefined): Buffer {
  const attrs: LinkAttrs = {};
  if (name !== undefined) attrs.ifname = name;
  if (opts.mtu !== undefined) attrs.mtu = opts.mtu;
  if (opts.address !== undefined) attrs.address = opts.address;
  if (opts.group !== undefined) attrs.group = opts.group;
  if (masterIndex !== undefined) attrs.master = masterIndex;
  const up = opts.up === undefined ? 0 : IFF_UP;
  return encodeLink({ family: AF_UNSPEC, index, flags: opts.up ? IFF_UP : 0, change: up, attrs });
}

/** The body of the RTM_GETLINK of one link, by name or ifindex, counters left out. @internal */
export function getLinkBody(ref: LinkRef): Buffer {
  const sel = linkSelector(ref);
  return encodeLink({ ...sel, attrs: { ...sel.attrs, extMask: RTEXT_FILTER_SKIP_STATS } });
}

function linkSelector(ref: LinkRef): Partial<LinkMessage> {
  return typeof ref === 'number' ? { index: ref, attrs: {} } : { index: 0, attrs: { ifname: ref } };
}

const links = (replies: Message[]): LinkMessage[] =>
  replies.flatMap((m) => (m.kind === 'link' ? [m.link] : []));

/**
 * A link of a dump, not yet decoded: its head (header, name, master, lower link: IFLA_REFS) and
 * its body, decoded with IFLA_SHOWN or IFLA_PORT_SHOWN when it is turned into its result.
 */
interface DumpedLink {
  head: LinkMessage<RefAttrs>;
  payload: Buffer;
}

/** Options of {@link Rtnl.open}. */
export interface RtnlOptions {
  /**
   * The network namespace the handle acts in: a name under /run/netns (`ip netns add NAME`), a
   * path (`/run/netns/NAME`, `/proc/PID/ns/net`), or an open fd of one (kept open by the caller;
   * the handle does not need it after opening). Default: the process's own. Joining another
   * namespace needs CAP_SYS_ADMIN. Links, bridges and addresses: yes; taps no — the kernel makes a
   * tap in the namespace that opened /dev/net/tun, the process's own, so pass such a handle to
   * no tap function.
   */
  netns?: string | number;
}

/**
 * A NetlinkSocket in the network namespace `nsFd` refers to (`what` names it in errors): the addon
 * makes it on a thread of its own that joins the namespace, so no thread of the process moves.
 */
function openIn(nsFd: number, what: string): NetlinkSocket {
  try {
    return NetlinkSocket.open({ netnsFd: nsFd });
  } catch (e) {
    const x = e as { errno?: unknown; syscall?: unknown };
    if (x.syscall !== 'setns' || typeof x.errno !== 'number') throw e;
    const code = errnoName(x.errno);
    const why = code === 'EINVAL' ? 'not a network namespace' : strerror(x.errno);
    const hint = code === 'EPERM' ? 'this needs CAP_SYS_ADMIN' : undefined;
    throw new QbhError(`Rtnl.open: cannot enter network namespace ${what}: ${why}${hint ? `; ${hint}` : ''}`, { code, op: 'Rtnl.open', target: what, hint, cause: e });
  }
}

let shared: Rtnl | undefined;

/**
 * The process's shared handle, opened on first use: the module-level API functions and the tap
 * layer use it when no handle is passed. @internal
 */
export function sharedRtnl(): Rtnl {
  return (shared ??= Rtnl.openSync());
}

/** Closes the shared handle (it reopens on next use). @internal */
export function closeSharedRtnl(): void {
  shared?.close();
  shared = undefined;
}

/**
 * An rtnetlink handle: one socket for requests. Open with {@link Rtnl.open}, close with
 * {@link Rtnl.close}. The module-level functions (`listLinks()`, …) use a shared default handle.
 * @category Handles
 */
export class Rtnl {
  /** @internal */
  readonly socket: NetlinkSocket;

  private constructor(socket: NetlinkSocket) {
    this.socket = socket;
  }

  /**
   * Opens a handle (NETLINK_EXT_ACK and NETLINK_GET_STRICT_CHK on). With `netns`, every request
   * of the handle acts in that network namespace, as `ip -n NAME` or `ip -netns` do; the shared
   * handle and the rest of the process stay where they are.
   *
   * ```ts
   * const rtnl = await Rtnl.open({ netns: 'blue' }); // /run/netns/blue, as `ip netns add blue` made it
   * await rtnl.createBridge('br0');
   * rtnl.close();
   * ```
   */
  static async open(opts: RtnlOptions = {}): Promise<Rtnl> {
    return Rtnl.openSync(opts);
  }

  /** {@link Rtnl.open}, synchronously, for short-lived processes. */
  static openSync(opts: RtnlOptions = {}): Rtnl {
    if (opts.netns === undefined) return new Rtnl(NetlinkSocket.open());
    const { netns } = opts;
    const op = 'Rtnl.open';
    if (typeof netns === 'number') {
      checkInteger(netns, 'netns fd', 0, 0x7fffffff, { op });
      return new Rtnl(openIn(netns, `fd ${netns}`));
    }
    if (typeof netns !== 'string' || netns === '' || netns.includes('\0') || (!netns.includes('/') && (netns === '.' || netns === '..'))) {
      throw new InvalidArgumentError(`invalid netns ${JSON.stringify(netns)}: expected a name under /run/netns, a path such as /proc/PID/ns/net, or an open fd`, { op });
    }
    const path = netns.includes('/') ? netns : `/run/netns/${netns}`;
    let fd: number;
    try {
      fd = openSync(path, fsConstants.O_RDONLY); // libuv opens every fd close-on-exec
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
      throw new QbhError(`${op}: cannot open network namespace ${path}: ${strerror(errnoConstants()[code] ?? EIO)}`, { code: code as ErrnoCode, op, target: path, cause: e });
    }
    try {
      return new Rtnl(openIn(fd, path));
    } finally {
      closeSync(fd);
    }
  }

  /** A handle on `socket` (one over a test's transport). @internal */
  static over(socket: NetlinkSocket): Rtnl {
    return new Rtnl(socket);
  }

  /** Closes the handle's socket. */
  close(): void {
    this.socket.close();
  }

  /**
   * One link's raw RTM_NEWLINK (no iproute2 object, no name resolution): the cheap lookup the tap
   * layer and the helper use. None: a {@link NoSuchDeviceError} naming it as `kind`. @internal
   */
  async getLinkMessage(ref: LinkRef, ctx: NetlinkErrorContext = { op: 'getLink', target: String(ref) }, kind: DeviceKind = 'device'): Promise<LinkMessage> {
    try {
      return Rtnl.oneLink(await this.socket.request(RTM_GETLINK, 0, getLinkBody(ref), ctx), ctx);
    } catch (e) {
      throw missingDevice(e, ctx, kind, String(ref));
    }
  }

  /**
   * Every link of one kind as its raw RTM_NEWLINK, fully decoded (one dump, filtered by the kernel),
   * blocking: the daemon's view of the taps it made (IFLA_INFO_DATA holds IFLA_TUN_PERSIST). @internal
   */
  linkMessagesOfKindSync(kind: string, op = 'listLinks'): LinkMessage[] {
    return links(this.socket.dumpSync(RTM_GETLINK, encodeLink({ family: AF_UNSPEC, attrs: { extMask: RTEXT_FILTER_SKIP_STATS, linkinfo: { kind } } }), { op }));
  }

  private static oneLink(replies: Message[], ctx: NetlinkErrorContext): LinkMessage {
    const m = links(replies)[0];
    if (!m) throw new NetlinkError(ENODEV, ctx);
    return m;
  }

  /** Builds a lookup for names and flags of the links a result refers to, fetching only what is missing. */
  private async resolver(known: LinkMessage<RefAttrs>[], refs: Iterable<number>): Promise<LinkLookup> {
    const map = new Map<number, { ifname: string; flags: number }>();
    const entry = (m: LinkMessage<RefAttrs>) => ({ ifname: m.attrs.ifname ?? `if${m.index}`, flags: m.flags });
    for (const m of known) map.set(m.index, entry(m));
    const missing = [...new Set(refs)].filter((i) => !map.has(i));
    // Many unknown links (the veth peers of a thousand ports): one dump beats a request each.
    if (missing.length > 16) {
      for (const { head: m } of await this.linkDumpRaw({}, AF_UNSPEC, 'getLink')) map.set(m.index, entry(m));
    }
    for (const idx of missing) {
      if (map.has(idx)) continue;
      try {
        const m = await this.getLinkMessage(idx, { op: 'getLink', target: String(idx) });
        map.set(idx, entry(m));
      } catch {
        // gone, or in another namespace: printed as ifN, as ip does
      }
    }
    return (i) => map.get(i);
  }

  private static referenced(ms: LinkMessage<RefAttrs>[]): number[] {
    const out: number[] = [];
    for (const m of ms) {
      if (m.attrs.master !== undefined) out.push(m.attrs.master);
      if (m.attrs.link !== undefined && m.attrs.linkNetnsid === undefined) out.push(m.attrs.link);
    }
    return out;
  }

  /**
   * A link dump. AF_UNSPEC dumps are filtered by the kernel (IFLA_MASTER, IFLA_LINKINFO kind);
   * AF_BRIDGE dumps accept no filter attribute under strict checking, so their master filter
   * is applied here.
   */
  private async linkDump(filter: LinkFilter, family = AF_UNSPEC, op = 'listLinks'): Promise<LinkMessage[]> {
    return (await this.linkDumpRaw(filter, family, op)).map((d) => decodeLink(d.payload));
  }

  /**
   * {@link linkDump}, each link decoded only as far as name lookups need: the caller decodes one
   * link at a time into what it returns, so that the decoded attributes die young.
   */
  private async linkDumpRaw(filter: LinkFilter, family = AF_UNSPEC, op = 'listLinks'): Promise<DumpedLink[]> {
    let master: number | undefined;
    if (filter.master !== undefined) {
      master =
        typeof filter.master === 'number'
          ? filter.master
          : (await this.getLinkMessage(filter.master, { op, target: filter.master }, 'master')).index;
    }
    const attrs: LinkAttrs = {};
    if (family !== AF_BRIDGE) {
      attrs.extMask = RTEXT_FILTER_SKIP_STATS;
      if (filter.kind !== undefined) attrs.linkinfo = { kind: filter.kind };
      if (master !== undefined) attrs.master = master;
    }
    const replies = await this.socket.dumpRaw(RTM_GETLINK, encodeLink({ family, attrs }), { op });
    const out: DumpedLink[] = [];
    for (const m of replies) {
      if (m.type !== RTM_NEWLINK) continue;
      const head = decodeLink(m.payload, IFLA_REFS);
      if (family === AF_BRIDGE && master !== undefined && head.attrs.master !== master) continue;
      out.push({ head, payload: m.payload });
    }
    return out;
  }

  /**
   * Lists links, optionally only those of a kind or those enslaved to a master; the kernel filters.
   * Equivalent to `ip -j -d link show [type KIND] [master NAME]`.
   */
  async listLinks(filter: LinkFilter = {}): Promise<Link[]> {
    if (filter.master !== undefined) checkLinkRef(filter.master, { op: 'listLinks' }, 'master name');
    const dumped = await this.linkDumpRaw(filter);
    const heads = dumped.map((d) => d.head);
    const lookup = await this.resolver(heads, Rtnl.referenced(heads));
    return dumped.map((d) => toLink(decodeLink(d.payload, IFLA_SHOWN), lookup));
  }

  /** One link by name or ifindex; ENODEV if there is none. Equivalent to `ip -j -d link show NAME`. */
  async getLink(ref: LinkRef): Promise<Link> {
    checkLinkRef(ref, { op: 'getLink' });
    const m = await this.getLinkMessage(ref, { op: 'getLink', target: String(ref) });
    return toLink(m, await this.resolver([m], Rtnl.referenced([m])));
  }

  /**
   * Creates a bridge, up by default, with a MAC that never changes: `address`, or else one derived
   * from the machine id and the name ({@link CreateBridgeOptions.persistentMac}), the same each
   * time a bridge of this name is created on this machine. With `existOk`, an existing bridge with
   * the settings asked for is returned as it is (its MAC included); `addresses` are then added.
   * Equivalent to `ip link add NAME [mtu N] address MAC type bridge [stp_state 1] && ip link set NAME up`
   * (+ `ip addr add CIDR dev NAME` for each address).
   */
  async createBridge(name: string, opts: CreateBridgeOptions = {}): Promise<Bridge> {
    const ctx = { op: 'createBridge', target: name };
    checkIfname(name, ctx, 'bridge name');
    if (opts.mtu !== undefined) checkInteger(opts.mtu, 'MTU', BRIDGE_MIN_MTU, BRIDGE_MAX_MTU, ctx);
    if (opts.address !== undefined) checkMac(opts.address, ctx);
    const addresses = opts.addresses ?? [];
    if (addresses.length > 0) {
      const { parseCidr } = await import('./cidr.js');
      for (const a of addresses) parseCidr(a, ctx);
    }
    const up = opts.up ?? true;
    const attrs: LinkAttrs = {
      ifname: name,
      linkinfo: { kind: 'bridge', ...(opts.stp !== undefined ? { data: { stpState: opts.stp ? 1 : 0 } } : {}) },
    };
    if (opts.mtu !== undefined) attrs.mtu = opts.mtu;
    if (opts.address !== undefined) attrs.address = opts.address;
    // Loaded on first use, like cidr.js: the helper, which creates no bridges, starts without node:crypto.
    else if (opts.persistentMac ?? true) attrs.address = (await import('./mac.js')).persistentMac(name).address;
    const body = encodeLink({ family: AF_UNSPEC, flags: up ? IFF_UP : 0, change: up ? IFF_UP : 0, attrs });
    let created = true;
    try {
      await this.socket.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body, ctx);
    } catch (e) {
      if (!(e instanceof NetlinkError && e.code === 'EEXIST')) throw e;
      // Failure path only: what holds the name decides the error.
      let existing: Link;
      try {
        existing = await this.getLink(name);
      } catch {
        throw e; // gone in between: the kernel's answer stands
      }
      const kind = existing.linkinfo?.info_kind;
      if (kind !== 'bridge') throw new NameTakenError(ctx, name, kind);
      if (!opts.existOk) throw e;
      const differs = bridgeDifferences(existing as Bridge, opts);
      if (differs.length > 0) throw NetlinkError.fromQbh(EEXIST, ctx, `${name} exists with other settings: ${differs.join(', ')}`);
      created = false;
    }
    const added: string[] = [];
    for (const a of addresses) {
      try {
        await this.addAddress(name, a);
        added.push(a);
      } catch (e) {
        if (!created && e instanceof NetlinkError && e.code === 'EEXIST') continue;
        throw await this.undoCreate(e, name, created, added);
      }
    }
    return this.getBridge(name);
  }

  /**
   * Undoes a createBridge whose address `e` failed: deletes the bridge it created, or removes the
   * addresses it added to an existing one. Returns `e`, its message ending with what was undone
   * (and an {@link AddressError}'s `undone` saying the same).
   */
  private async undoCreate(e: unknown, name: string, created: boolean, added: readonly string[]): Promise<unknown> {
    if (!(e instanceof QbhError)) return e;
    let undone: string | undefined;
    try {
      if (created) await this.deleteLink(name);
      else for (const a of added) await this.deleteAddress(name, a);
      if (created) undone = `bridge ${name} was removed again`;
      else if (added.length > 0) undone = `the address${added.length > 1 ? 'es' : ''} added (${added.join(', ')}) ${added.length > 1 ? 'were' : 'was'} removed again`;
    } catch (cleanup) {
      e.cleanupError = cleanup;
      undone = `${created ? `removing bridge ${name}` : 'removing the addresses added'} again failed too: ${cleanup instanceof Error ? cleanup.message : String(cleanup)}`;
    }
    if (undone !== undefined) {
      e.message += `; ${undone}`;
      if (e instanceof AddressError) e.undone = undone;
    }
    return e;
  }

  /** Deletes a link. Equivalent to `ip link delete NAME`. */
  async deleteLink(ref: LinkRef): Promise<void> {
    checkLinkRef(ref, { op: 'deleteLink' });
    const sel = linkSelector(ref);
    const ctx = { op: 'deleteLink', target: String(ref) };
    try {
      await this.socket.request(RTM_DELLINK, 0, encodeLink(sel), ctx);
    } catch (e) {
      throw missingDevice(e, ctx, 'device', String(ref));
    }
  }

  /**
   * Deletes links that share an interface group, in one request: the kernel then waits for one
   * grace period in all, not one per link (1000 links: ~0.4 s rather than ~17 s).
   * Equivalent to `ip link delete group N`.
   */
  async deleteGroup(group: number): Promise<void> {
    await this.socket.request(RTM_DELLINK, 0, encodeLink({ attrs: { group } }), { op: 'deleteGroup', target: `group ${group}` });
  }

  /**
   * Deletes links in one kernel request by moving them into a fresh interface group first. If the
   * delete fails (a port that cannot be deleted, such as a physical NIC), the links get their
   * groups back and nothing is deleted.
   */
  async deleteLinks(refs: LinkRef[]): Promise<void> {
    for (const r of refs) checkLinkRef(r, { op: 'deleteLinks' });
    if (refs.length === 0) return;
    const all = await this.linkDump({}, AF_UNSPEC, 'deleteLinks');
    const byIndex = new Map(all.map((l) => [l.index, l]));
    const byName = new Map(all.map((l) => [l.attrs.ifname, l]));
    const targets = refs.map((r) => {
      const m = typeof r === 'number' ? byIndex.get(r) : byName.get(r);
      if (!m) throw new NoSuchDeviceError({ op: 'deleteLinks', target: String(r) }, 'device', String(r));
      return m;
    });
    await this.deleteInGroup(all, targets);
  }

  /** Moves `targets` into a group no link of `all` uses, deletes the group, restores groups on failure. */
  private async deleteInGroup(all: LinkMessage[], targets: LinkMessage[]): Promise<void> {
    const used = new Set(all.map((m) => m.attrs.group ?? 0));
    let group = 0;
    while (group === 0 || used.has(group)) group = 0x51b00000 + Math.floor(Math.random() * 0xfffff);
    // The moves are pipelined (one round trip per window of requests, not one per link).
    const outcomes = await this.setLinks(targets.map((m) => ({ index: m.index, opts: { group } })));
    const moved = targets.filter((_, i) => outcomes[i] === undefined);
    try {
      const failed = outcomes.find((e) => e !== undefined);
      if (failed) throw failed;
      await this.deleteGroup(group);
    } catch (e) {
      await this.setLinks(moved.map((m) => ({ index: m.index, opts: { group: m.attrs.group ?? 0 } }))).catch(() => undefined);
      throw e;
    }
  }

  /**
   * Deletes a bridge. A bridge that still has ports is refused with a {@link BridgeNotEmptyError}
   * (`code` 'ENOTEMPTY', `ports` their names) and nothing changes, unless `force` (the ports are
   * released and stay) or `withPorts` (the ports are deleted with it, in the same kernel request).
   * The check and the delete are two requests: a port that joins in between is released.
   * Equivalent to `ip link delete NAME` (with ports: `ip link set PORT group N` each, then
   * `ip link delete group N`).
   */
  async deleteBridge(name: string, opts: DeleteBridgeOptions = {}): Promise<void> {
    const ctx = { op: 'deleteBridge', target: name };
    checkIfname(name, ctx, 'bridge name');
    const br = await this.getLinkMessage(name, ctx, 'bridge');
    const kind = br.attrs.linkinfo?.kind;
    if (kind !== 'bridge') throw new NotABridgeError(ctx, name, kind);
    if (opts.withPorts) {
      // One dump gives both the ports and the groups in use.
      const all = await this.linkDump({}, AF_UNSPEC, 'deleteBridge');
      return this.deleteInGroup(all, [br, ...all.filter((m) => m.attrs.master === br.index)]);
    }
    if (!opts.force) {
      const ports = await this.linkDump({ master: br.index }, AF_UNSPEC, 'deleteBridge');
      if (ports.length > 0) {
        throw new BridgeNotEmptyError(name, ports.map((m) => m.attrs.ifname ?? `if${m.index}`), { force: '{ force: true }', withPorts: '{ withPorts: true }' });
      }
    }
    return this.deleteLink(br.index);
  }

  /**
   * Changes a link's state, MTU, MAC, master and group in one request (the kernel applies MAC, MTU,
   * group, up/down, then master). Equivalent to
   * `ip link set NAME [up|down] [mtu N] [address MAC] [master BR | nomaster] [group N]`.
   */
  async setLink(ref: LinkRef, opts: SetLinkOptions): Promise<void> {
    const ctx = { op: 'setLink', target: String(ref) };
    checkLinkRef(ref, ctx);
    if (opts.mtu !== undefined) checkInteger(opts.mtu, 'MTU', 0, 0xffffffff, ctx);
    if (opts.address !== undefined) checkMac(opts.address, ctx);
    if (opts.group !== undefined) checkInteger(opts.group, 'group', 0, 0xffffffff, ctx);
    if (opts.master !== undefined && opts.master !== null) checkLinkRef(opts.master, ctx, 'master name');
    let masterIndex: number | undefined;
    if (opts.master === null) masterIndex = 0;
    else if (typeof opts.master === 'number') masterIndex = opts.master;
    else if (typeof opts.master === 'string') {
      const master = opts.master;
      // The error names the link being changed; the missing master is the cause.
      masterIndex = (await this.getLinkMessage(master, ctx, 'master')).index;
    }
    const body =
      typeof ref === 'number'
        ? setLinkBody(ref, undefined, opts, masterIndex)
        : setLinkBody(0, ref, opts, masterIndex);
    try {
      await this.socket.request(RTM_NEWLINK, 0, body, ctx);
    } catch (e) {
      throw missingDevice(e, ctx, 'device', String(ref));
    }
  }

  /**
   * Many {@link setLink}-style changes (link and master by ifindex), pipelined on the socket:
   * one outcome per change, in order (`undefined`: applied; else its NetlinkError). @internal
   */
  setLinks(changes: readonly { index: number; opts: Omit<SetLinkOptions, 'master'> & { master?: number | null }; target?: string }[]): Promise<(NetlinkError | undefined)[]> {
    return this.socket.requestPipelined(
      changes.map(({ index, opts, target }) => ({
        type: RTM_NEWLINK,
        flags: 0,
        body: setLinkBody(index, undefined, opts, opts.master === null ? 0 : opts.master),
        ctx: { op: 'setLink', target: target ?? String(index) },
      })),
    );
  }

  /** The blocking form of {@link deleteLink}, by ifindex. */
  deleteLinkSync(index: number, target = String(index)): void {
    this.socket.requestSync(RTM_DELLINK, 0, encodeLink({ index }), { op: 'deleteLink', target });
  }

  /** Bridge ports from the AF_BRIDGE dump, optionally of one bridge. Equivalent to `bridge -j -d link show [master BR]`. */
  async listBridgePorts(bridge?: LinkRef): Promise<BridgePort[]> {
    if (bridge !== undefined) checkLinkRef(bridge, { op: 'listBridgePorts' }, 'bridge name');
    const filter: LinkFilter = bridge === undefined ? {} : { master: bridge };
    const dumped = await this.linkDumpRaw(filter, AF_BRIDGE, 'listBridgePorts');
    const heads = dumped.map((d) => d.head);
    const lookup = await this.resolver(heads, Rtnl.referenced(heads));
    return dumped.map((d) => toBridgePort(decodeLink(d.payload, IFLA_PORT_SHOWN), lookup));
  }

  /**
   * Every bridge with its ports and addresses.
   * Equivalent to `ip -j -d link show type bridge` + `bridge -j -d link show` + `ip -j addr show`.
   */
  async listBridges(): Promise<Bridge[]> {
    const [bridges, ports, addrs] = await Promise.all([
      this.linkDump({ kind: 'bridge' }, AF_UNSPEC, 'listBridges'),
      this.linkDumpRaw({}, AF_BRIDGE, 'listBridges'),
      this.addressDumpRaw(0, 'listBridges'),
    ]);
    const addrsOf = Rtnl.addressesOf(addrs, new Set(bridges.map((b) => b.index)));
    const portHeads = ports.map((d) => d.head);
    const lookup = await this.resolver([...bridges, ...portHeads], [...Rtnl.referenced(bridges), ...Rtnl.referenced(portHeads)]);
    const portsOf = new Map<number, BridgePort[]>(bridges.map((b) => [b.index, []]));
    for (const d of ports) portsOf.get(d.head.attrs.master ?? 0)?.push(toBridgePort(decodeLink(d.payload, IFLA_PORT_SHOWN), lookup));
    return bridges.map((b) =>
      remember(
        {
          ...(toLink(b, lookup) as Link & { linkinfo?: BridgeLinkInfo }),
          ports: portsOf.get(b.index)!,
          addr_info: (addrsOf.get(b.index) ?? []).map(toAddrInfo),
        },
        b.attrs,
      ),
    );
  }

  /** One bridge with its ports and addresses; ENODEV if missing, EINVAL if not a bridge. */
  async getBridge(name: LinkRef): Promise<Bridge> {
    const ctx = { op: 'getBridge', target: String(name) };
    checkLinkRef(name, ctx, 'bridge name');
    const m = await this.getLinkMessage(name, ctx, 'bridge');
    const kind = m.attrs.linkinfo?.kind;
    if (kind !== 'bridge') throw new NotABridgeError(ctx, m.attrs.ifname ?? String(name), kind);
    const [ports, addrs] = await Promise.all([
      this.linkDumpRaw({ master: m.index }, AF_BRIDGE, 'getBridge'),
      this.addressDump(m.index, 'getBridge'),
    ]);
    const portHeads = ports.map((d) => d.head);
    const lookup = await this.resolver([m, ...portHeads], [...Rtnl.referenced([m]), ...Rtnl.referenced(portHeads)]);
    return remember(
      {
        ...(toLink(m, lookup) as Link & { linkinfo?: BridgeLinkInfo }),
        ports: ports.map((d) => toBridgePort(decodeLink(d.payload, IFLA_PORT_SHOWN), lookup)),
        addr_info: addrs.map(toAddrInfo),
      },
      m.attrs,
    );
  }

  private async addressDump(index: number, op: string): Promise<AddrMessage[]> {
    const replies = await this.socket.dump(RTM_GETADDR, encodeAddr({ family: AF_UNSPEC, index }), { op });
    return replies.flatMap((m) => (m.kind === 'addr' && (index === 0 || m.addr.index === index) ? [m.addr] : []));
  }

  /** The RTM_NEWADDR messages of an address dump, undecoded (see {@link addressesOf}). */
  private async addressDumpRaw(index: number, op: string): Promise<RawMessage[]> {
    return (await this.socket.dumpRaw(RTM_GETADDR, encodeAddr({ family: AF_UNSPEC, index }), { op })).filter((m) => m.type === RTM_NEWADDR);
  }

  /**
   * The addresses of the links in `indexes`, by link, decoded from `replies`: the others are
   * skipped by their ifaddrmsg's ifa_index alone. A listing of bridges otherwise decoded every
   * address of the namespace — one IPv6 link-local per running VM's tap — to keep a handful.
   */
  private static addressesOf(replies: readonly RawMessage[], indexes: ReadonlySet<number>): Map<number, AddrMessage[]> {
    const out = new Map<number, AddrMessage[]>();
    for (const m of replies) {
      // ifa_index: a u32 at offset 4 of struct ifaddrmsg; a shorter body is left to decodeAddr to refuse.
      if (m.payload.length >= 8 && !indexes.has(m.payload.readUInt32LE(4))) continue;
      const a = decodeAddr(m.payload);
      const list = out.get(a.index);
      if (list === undefined) out.set(a.index, [a]);
      else list.push(a);
    }
    return out;
  }

  private async addressRequest(type: number, flags: number, link: LinkRef, cidr: string, op: string): Promise<void> {
    // Loaded on first use: the helper, which never touches addresses, starts without ip-address.
    const { parseCidr } = await import('./cidr.js');
    const ctx = { op, target: `${cidr} on ${link}` };
    checkLinkRef(link, ctx);
    const c: Cidr = parseCidr(cidr, ctx);
    const index = typeof link === 'number' ? link : (await this.getLinkMessage(link, ctx)).index;
    const scope =
      c.family === AF_INET && c.bytes[0] === 127 ? RT_SCOPE_HOST : c.family === AF_INET6 && c.bytes[0] === 0xfe && (c.bytes[1]! & 0xc0) === 0x80 ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
    const body = encodeAddr({ family: c.family, prefixlen: c.prefixlen, scope, index, attrs: { local: c.bytes, address: c.bytes } });
    try {
      await this.socket.request(type, flags, body, ctx);
    } catch (e) {
      throw e instanceof NetlinkError ? new AddressError(e, ctx, cidr, String(link)) : e;
    }
  }

  /**
   * Adds an address (IPv4 or IPv6, CIDR). Without a prefix length it is a host address (/32, /128),
   * as with `ip addr add`. Equivalent to `ip addr add CIDR dev LINK`.
   */
  async addAddress(link: LinkRef, cidr: string): Promise<void> {
    await this.addressRequest(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, link, cidr, 'addAddress');
  }

  /** Removes an address. Equivalent to `ip addr del CIDR dev LINK`. */
  async deleteAddress(link: LinkRef, cidr: string): Promise<void> {
    await this.addressRequest(RTM_DELADDR, 0, link, cidr, 'deleteAddress');
  }

  /** Addresses of one link, or of all. Equivalent to `ip -j addr show [dev LINK]`. */
  async listAddresses(link?: LinkRef): Promise<Address[]> {
    if (link !== undefined) checkLinkRef(link, { op: 'listAddresses' });
    const index = link === undefined ? 0 : typeof link === 'number' ? link : (await this.getLinkMessage(link, { op: 'listAddresses', target: link })).index;
    const addrs = await this.addressDump(index, 'listAddresses');
    const lookup = await this.resolver([], addrs.map((a) => a.index));
    return addrs.map((a) => toAddress(a, lookup));
  }
}
