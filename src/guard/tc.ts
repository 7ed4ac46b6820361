/**
 * The traffic-control objects a port guard puts on a tap: a `clsact` qdisc whose ingress (what the
 * guest sends) is a shared filter block holding one classic-BPF filter in direct-action mode. Taps
 * with the same filter program share one block, so the kernel builds (converts and JITs) a program
 * once, not once per tap: the block's index is derived from the program's bytes. The block lives as
 * long as one qdisc is bound to it and goes, with its filter, when the last such tap goes, whatever
 * ends it; each tap's qdisc counts the frames the filter dropped for that tap. Built on the wire
 * core alone, like fdb.ts.
 * @module
 */
import {
  ETH_P_ALL,
  NLA_TYPE_MASK,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_EXCL,
  RTM_DELQDISC,
  RTM_GETQDISC,
  RTM_GETTFILTER,
  RTM_NEWQDISC,
  RTM_NEWTFILTER,
  TCA_BPF_FLAGS,
  TCA_BPF_FLAG_ACT_DIRECT,
  TCA_BPF_OPS,
  TCA_BPF_OPS_LEN,
  TCA_INGRESS_BLOCK,
  TCA_KIND,
  TCA_OPTIONS,
  TCA_STATS2,
  TCA_STATS_QUEUE,
  TCMSG_LEN,
  TC_H_CLSACT,
  TC_H_CLSACT_HANDLE,
  TC_H_CLSACT_INGRESS,
  TCM_IFINDEX_MAGIC_BLOCK,
} from '../netlink/constants.js';
import { NetlinkError } from '../netlink/errors.js';
import { addonTransport, concatBytes, dumpSync, eachAttr, exchangeSync, le, nlAttr, nlNested, nlString, nlU16, nlU32, requestMessage, text, type RawMessage, type Transport } from '../netlink/wire.js';

/** The guard filter's priority (`pref`) on the tap's ingress: first, so nothing runs before it. */
export const GUARD_FILTER_PRIO = 1;
/** The guard filter's handle: how qbh recognises its own filter (`tc filter show` prints 0xb4d). */
export const GUARD_FILTER_HANDLE = 0xb4d;

/** A tcmsg (AF_UNSPEC) for the device `ifindex`, then `attrs`. */
function tcBody(ifindex: number, handle: number, parent: number, info: number, attrs: Uint8Array[]): Uint8Array {
  const head = new Uint8Array(TCMSG_LEN);
  const v = le(head);
  v.setInt32(4, ifindex, true);
  v.setUint32(8, handle >>> 0, true);
  v.setUint32(12, parent >>> 0, true);
  v.setUint32(16, info >>> 0, true);
  return concatBytes(head, attrs);
}

/**
 * Adds a `clsact` qdisc to the device `ifindex` (it must have none), blocking.
 * Equivalent to `tc qdisc add dev DEV clsact`.
 */
export function addClsactSync(fd: number, ifindex: number, block?: number, t: Transport = addonTransport): void {
  exchangeSync(fd, clsactRequest(ifindex, block), { op: 'addQdisc', target: String(ifindex) }, t);
}

/** The RTM_NEWQDISC of {@link addClsactSync}: with `block`, its ingress is that shared block (made if new). */
export function clsactRequest(ifindex: number, block?: number): Uint8Array {
  const attrs = [nlString(TCA_KIND, 'clsact')];
  if (block !== undefined) attrs.push(nlU32(TCA_INGRESS_BLOCK, block));
  return requestMessage(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, tcBody(ifindex, TC_H_CLSACT_HANDLE, TC_H_CLSACT, 0, attrs));
}

/**
 * Removes the device's clsact qdisc (and unbinds it from its block), blocking.
 * Equivalent to `tc qdisc del dev DEV clsact`.
 */
export function deleteClsactSync(fd: number, ifindex: number, t: Transport = addonTransport): void {
  exchangeSync(fd, requestMessage(RTM_DELQDISC, 0, tcBody(ifindex, TC_H_CLSACT_HANDLE, TC_H_CLSACT, 0, [])), { op: 'deleteQdisc', target: String(ifindex) }, t);
}

/**
 * Adds the classic BPF program `ops` (8-byte `struct sock_filter`s) as a direct-action filter for
 * every protocol on the ingress of the device `ifindex` (which has a clsact qdisc), with qbh's
 * priority and handle, blocking. The program's return value is the verdict (TC_ACT_*).
 *
 * Equivalent to `tc filter add dev DEV ingress pref 1 handle 0xb4d protocol all bpf da bytecode '…'`.
 */
export function addBpfFilterSync(fd: number, ifindex: number, ops: Uint8Array, t: Transport = addonTransport): void {
  exchangeSync(fd, bpfFilterRequest(ifindex, ops), { op: 'addFilter', target: String(ifindex) }, t);
}

/**
 * The RTM_NEWTFILTER of {@link addBpfFilterSync}: on the device's ingress, or with `block` on that
 * shared block (`tc filter add block N …`).
 */
export function bpfFilterRequest(ifindex: number, ops: Uint8Array, block?: number): Uint8Array {
  const info = (GUARD_FILTER_PRIO << 16) | ((ETH_P_ALL >> 8) | ((ETH_P_ALL & 0xff) << 8)); // protocol in network order
  const options = nlNested(TCA_OPTIONS, [nlU16(TCA_BPF_OPS_LEN, ops.length / 8), nlAttr(TCA_BPF_OPS, ops), nlU32(TCA_BPF_FLAGS, TCA_BPF_FLAG_ACT_DIRECT)]);
  const body = block === undefined ? tcBody(ifindex, GUARD_FILTER_HANDLE, TC_H_CLSACT_INGRESS, info, [nlString(TCA_KIND, 'bpf'), options]) : tcBody(TCM_IFINDEX_MAGIC_BLOCK, GUARD_FILTER_HANDLE, block, info, [nlString(TCA_KIND, 'bpf'), options]);
  return requestMessage(RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL, body);
}

/** A qdisc as {@link qdiscsSync} reads it. */
export interface QdiscInfo {
  ifindex: number;
  kind: string;
  handle: number;
  parent: number;
  /** Frames dropped (TCA_STATS_QUEUE): for a guard's clsact, the frames its filter dropped. */
  drops: number;
  /** The shared block its ingress is bound to (TCA_INGRESS_BLOCK), or null. */
  ingressBlock: number | null;
}

/**
 * Every qdisc of every device (or of `ifindex`), blocking: one dump.
 * Equivalent to `tc -s -j qdisc show [dev DEV]`.
 */
export function qdiscsSync(fd: number, ifindex?: number, t: Transport = addonTransport): QdiscInfo[] {
  const out: QdiscInfo[] = [];
  for (const m of dumpSync(fd, requestMessage(RTM_GETQDISC, NLM_F_DUMP, tcBody(0, 0, 0, 0, [])), { op: 'qdiscDump' }, t)) {
    if (m.type !== RTM_NEWQDISC || m.payload.length < TCMSG_LEN) continue;
    const p = m.payload;
    const v = le(p);
    const q: QdiscInfo = { ifindex: v.getInt32(4, true), kind: '', handle: v.getUint32(8, true), parent: v.getUint32(12, true), drops: 0, ingressBlock: null };
    if (ifindex !== undefined && q.ifindex !== ifindex) continue;
    eachAttr(p, TCMSG_LEN, p.length, (raw, s, e) => {
      const type = raw & NLA_TYPE_MASK;
      if (type === TCA_KIND) q.kind = text(p, s, e);
      else if (type === TCA_INGRESS_BLOCK && e - s >= 4) q.ingressBlock = v.getUint32(s, true);
      else if (type === TCA_STATS2) {
        eachAttr(p, s, e, (raw2, s2, e2) => {
          // struct gnet_stats_queue: qlen, backlog, drops, requeues, overlimits (u32 each).
          if ((raw2 & NLA_TYPE_MASK) === TCA_STATS_QUEUE && e2 - s2 >= 12) q.drops = v.getUint32(s2 + 8, true);
        });
      }
    });
    out.push(q);
  }
  return out;
}

/** The frames a guard's filter dropped on the device `ifindex`, or null when it has no clsact qdisc. */
export function guardDropsSync(fd: number, ifindex: number, t: Transport = addonTransport): number | null {
  return qdiscsSync(fd, ifindex, t).find((q) => q.kind === 'clsact')?.drops ?? null;
}

/** A filter as {@link ingressFiltersSync} and {@link blockFiltersSync} read it. */
export interface FilterInfo {
  kind: string;
  handle: number;
  prio: number;
  /** A classic BPF filter's program (TCA_BPF_OPS), else null. */
  ops: Buffer | null;
}

/** The filters among a filter dump's messages (each priority's chain head, without a handle, left out). */
function filterInfos(messages: readonly RawMessage[]): FilterInfo[] {
  const out: FilterInfo[] = [];
  for (const m of messages) {
    if (m.type !== RTM_NEWTFILTER || m.payload.length < TCMSG_LEN) continue;
    const p = m.payload;
    const v = le(p);
    const f: FilterInfo = { kind: '', handle: v.getUint32(8, true), prio: v.getUint32(16, true) >>> 16, ops: null };
    eachAttr(p, TCMSG_LEN, p.length, (raw, s, e) => {
      const type = raw & NLA_TYPE_MASK;
      if (type === TCA_KIND) f.kind = text(p, s, e);
      else if (type === TCA_OPTIONS) {
        eachAttr(p, s, e, (raw2, s2, e2) => {
          if ((raw2 & NLA_TYPE_MASK) === TCA_BPF_OPS) f.ops = Buffer.from(p.subarray(s2, e2));
        });
      }
    });
    if (f.handle !== 0) out.push(f);
  }
  return out;
}

/**
 * The filters on the ingress of the device `ifindex` (its shared block's, when it is bound to one),
 * blocking. The device must have a clsact qdisc: else the kernel answers EINVAL.
 * Equivalent to `tc -j filter show dev DEV ingress`.
 */
export function ingressFiltersSync(fd: number, ifindex: number, t: Transport = addonTransport): FilterInfo[] {
  const req = requestMessage(RTM_GETTFILTER, NLM_F_DUMP, tcBody(ifindex, 0, TC_H_CLSACT_INGRESS, 0, []));
  return filterInfos(dumpSync(fd, req, { op: 'filterDump', target: String(ifindex) }, t));
}

/**
 * The filters of the shared block `block` (none when there is no such block), blocking.
 * Equivalent to `tc -j filter show block N`.
 */
export function blockFiltersSync(fd: number, block: number, t: Transport = addonTransport): FilterInfo[] {
  const req = requestMessage(RTM_GETTFILTER, NLM_F_DUMP, tcBody(TCM_IFINDEX_MAGIC_BLOCK, 0, block, 0, []));
  return filterInfos(dumpSync(fd, req, { op: 'filterDump', target: `block ${block}` }, t));
}

/** Whether `f` is qbh's guard filter. */
export const isGuardFilter = (f: FilterInfo): boolean => f.kind === 'bpf' && f.handle === GUARD_FILTER_HANDLE && f.prio === GUARD_FILTER_PRIO;

/** Whether the device `ifindex` carries qbh's guard filter. */
export function hasGuardFilterSync(fd: number, ifindex: number, t: Transport = addonTransport): boolean {
  try {
    return ingressFiltersSync(fd, ifindex, t).some(isGuardFilter);
  } catch (e) {
    if (e instanceof NetlinkError) return false; // no clsact qdisc: no filter either
    throw e;
  }
}

/**
 * The range of shared block indices qbh's guard filters use: 0x7162xxxx ("qb"), the low 16 bits
 * from a hash of the program. An index already holding another program is skipped (the next one
 * is tried), so a collision costs a probe, never a wrong filter.
 */
export const GUARD_BLOCK_BASE = 0x71620000;
/** How many indices after the hashed one are tried. */
export const GUARD_BLOCK_PROBES = 16;

/** The first block index tried for a program: FNV-1a of its bytes, folded to 16 bits. */
export function guardBlockIndex(ops: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const b of ops) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return (GUARD_BLOCK_BASE | ((h ^ (h >>> 16)) & 0xffff)) >>> 0;
}

/** What a block holds for a program: `free` (nothing), `ours` (exactly this program), `taken` (anything else). */
export function blockHolds(fd: number, block: number, ops: Uint8Array, t: Transport = addonTransport): 'free' | 'ours' | 'taken' {
  const filters = blockFiltersSync(fd, block, t);
  if (filters.length === 0) return 'free';
  return filters.length === 1 && isGuardFilter(filters[0]!) && filters[0]!.ops !== null && Buffer.compare(filters[0]!.ops, ops) === 0 ? 'ours' : 'taken';
}
