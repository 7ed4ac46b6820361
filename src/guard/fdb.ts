/**
 * The bridge's forwarding database as a port guard uses it: static sticky entries that pin a MAC to
 * a port, the locked entries the bridge makes for unknown sources on a locked port with MAC
 * authentication bypass, and the dump that reads them back. Built on the wire core alone (no
 * generic tables), so the helper can pin MACs without loading the codec.
 * @module
 */
import {
  AF_BRIDGE,
  NDA_FLAGS_EXT,
  NDA_LLADDR,
  NDA_MASTER,
  NDA_VLAN,
  NDMSG_LEN,
  NLA_TYPE_MASK,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_EXCL,
  NLM_F_REPLACE,
  NTF_EXT_LOCKED,
  NTF_MASTER,
  NTF_STICKY,
  NUD_NOARP,
  NUD_PERMANENT,
  RTM_DELNEIGH,
  RTM_GETNEIGH,
  RTM_NEWNEIGH,
} from '../netlink/constants.js';
import { formatMac, parseMac } from '../netlink/mac.js';
import { addonTransport, concatBytes, dumpSync, eachAttr, exchangeSync, le, nlAttr, requestMessage, type RawMessage, type Transport } from '../netlink/wire.js';

/**
 * One bridge FDB entry (an RTM_NEWNEIGH of family AF_BRIDGE).
 * @category Guard
 */
export interface FdbEntry {
  /** The port (or the bridge itself, for its own entries). */
  ifindex: number;
  mac: string;
  /** The bridge (NDA_MASTER), when the kernel says. */
  master: number | null;
  vlan: number | null;
  /** ndm_state (NUD_*) and ndm_flags (NTF_*), raw. */
  state: number;
  flags: number;
  /** NDA_FLAGS_EXT (NTF_EXT_*), 0 when absent. */
  extFlags: number;
  /** Added by hand and never aged (`bridge fdb … static`). */
  static: boolean;
  /** Never moved to another port (`sticky`). */
  sticky: boolean;
  /** The bridge's own address on that port (`permanent`). */
  permanent: boolean;
  /** Made by the bridge for an unknown source on a locked port with MAB: frames from it are dropped. */
  locked: boolean;
}

/** An ndmsg of family AF_BRIDGE, then `attrs`. */
function neighBody(ifindex: number, state: number, flags: number, attrs: Uint8Array[]): Uint8Array {
  const head = new Uint8Array(NDMSG_LEN);
  const v = le(head);
  head[0] = AF_BRIDGE;
  v.setInt32(4, ifindex, true);
  v.setUint16(8, state, true);
  head[10] = flags;
  return concatBytes(head, attrs);
}

/**
 * Decodes an RTM_NEWNEIGH/RTM_DELNEIGH body of family AF_BRIDGE; null for any other family or a
 * body too short to be one.
 */
export function decodeNeigh(payload: Uint8Array): FdbEntry | null {
  if (payload.length < NDMSG_LEN || payload[0] !== AF_BRIDGE) return null;
  const v = le(payload);
  const state = v.getUint16(8, true);
  const flags = payload[10]!;
  let mac: string | null = null;
  let master: number | null = null;
  let vlan: number | null = null;
  let extFlags = 0;
  eachAttr(payload, NDMSG_LEN, payload.length, (raw, s, e) => {
    const type = raw & NLA_TYPE_MASK;
    if (type === NDA_LLADDR && e - s === 6 && mac === null) mac = formatMac(payload.subarray(s, e));
    else if (type === NDA_MASTER && e - s >= 4) master = v.getUint32(s, true);
    else if (type === NDA_VLAN && e - s >= 2) vlan = v.getUint16(s, true);
    else if (type === NDA_FLAGS_EXT && e - s >= 4) extFlags = v.getUint32(s, true);
  });
  if (mac === null) return null;
  return {
    ifindex: v.getInt32(4, true),
    mac,
    master,
    vlan,
    state,
    flags,
    extFlags,
    static: (state & NUD_NOARP) !== 0,
    sticky: (flags & NTF_STICKY) !== 0,
    permanent: (state & NUD_PERMANENT) !== 0,
    locked: (extFlags & NTF_EXT_LOCKED) !== 0,
  };
}

/** What {@link addFdbSync} adds. */
export interface FdbPin {
  /** The bridge port the MAC is pinned to. */
  ifindex: number;
  mac: string;
  /** Never moved to another port (default true). */
  sticky?: boolean;
  /** Replace an existing entry (a locked one the bridge made, or one on another port): NLM_F_REPLACE; default: it must be new (EEXIST). */
  replace?: boolean;
}

/** The RTM_NEWNEIGH of a static (sticky) entry for `pin.mac` on the port `pin.ifindex`, in its bridge's FDB. */
export function addFdbRequest(pin: FdbPin): Uint8Array {
  const flags = NTF_MASTER | (pin.sticky === false ? 0 : NTF_STICKY);
  const body = neighBody(pin.ifindex, NUD_NOARP, flags, [nlAttr(NDA_LLADDR, parseMac(pin.mac))]);
  return requestMessage(RTM_NEWNEIGH, NLM_F_CREATE | (pin.replace ? NLM_F_REPLACE : NLM_F_EXCL), body);
}

/**
 * Pins `pin.mac` to the bridge port `pin.ifindex`: a static entry (never aged), sticky unless said
 * (never moved by a frame from another port), blocking, on the rtnetlink socket `fd`. With
 * `replace`, a locked entry the bridge made becomes this one (frames from the MAC then pass).
 *
 * Equivalent to `bridge fdb add MAC dev PORT master static sticky` (`replace` for `add`).
 */
export function addFdbSync(fd: number, pin: FdbPin, t: Transport = addonTransport): void {
  exchangeSync(fd, addFdbRequest(pin), { op: 'addFdb', target: pin.mac }, t);
}

/**
 * Removes the entry for `mac` on the bridge port `ifindex`, blocking.
 * Equivalent to `bridge fdb del MAC dev PORT master`.
 */
export function deleteFdbSync(fd: number, ifindex: number, mac: string, t: Transport = addonTransport): void {
  const body = neighBody(ifindex, 0, NTF_MASTER, [nlAttr(NDA_LLADDR, parseMac(mac))]);
  exchangeSync(fd, requestMessage(RTM_DELNEIGH, 0, body), { op: 'deleteFdb', target: mac }, t);
}

/** Options of {@link fdbDumpSync}. */
export interface FdbDumpOptions {
  /** Only the entries of this bridge (its ports' and its own). */
  bridge?: number;
  /** Only the entries on this port. */
  port?: number;
}

/** The FdbEntries among a dump's messages, filtered. */
export function fdbEntries(messages: readonly RawMessage[], opts: FdbDumpOptions = {}): FdbEntry[] {
  const out: FdbEntry[] = [];
  for (const m of messages) {
    if (m.type !== RTM_NEWNEIGH) continue;
    const e = decodeNeigh(m.payload);
    if (e === null) continue;
    if (opts.port !== undefined && e.ifindex !== opts.port) continue;
    if (opts.bridge !== undefined && e.master !== opts.bridge && e.ifindex !== opts.bridge) continue;
    out.push(e);
  }
  return out;
}

/**
 * Every bridge FDB entry (of every bridge, or of `opts.bridge`/`opts.port`), blocking: one dump.
 * Equivalent to `bridge -j fdb show [br BR] [brport PORT]`.
 */
export function fdbDumpSync(fd: number, opts: FdbDumpOptions = {}, t: Transport = addonTransport): FdbEntry[] {
  // With strict checking (qbh's sockets) the kernel dumps only that port's entries (ndm_ifindex);
  // fdbEntries filters again for a socket without it.
  const req = requestMessage(RTM_GETNEIGH, NLM_F_DUMP, neighBody(opts.port ?? 0, 0, 0, []));
  return fdbEntries(dumpSync(fd, req, { op: 'fdbDump' }, t), opts);
}
