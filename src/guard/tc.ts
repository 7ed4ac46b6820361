/**
 * The traffic-control objects a port guard puts on a tap: a `clsact` qdisc and one classic-BPF
 * filter on its ingress (what the guest sends), in direct-action mode. Both live on the tap itself,
 * so they vanish with it whatever ends it; the qdisc counts the frames the filter drops. Built on
 * the wire core alone, like fdb.ts.
 * @module
 */
import {
  ETH_P_ALL,
  NLA_TYPE_MASK,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_EXCL,
  RTM_GETQDISC,
  RTM_GETTFILTER,
  RTM_NEWQDISC,
  RTM_NEWTFILTER,
  TCA_BPF_FLAGS,
  TCA_BPF_FLAG_ACT_DIRECT,
  TCA_BPF_OPS,
  TCA_BPF_OPS_LEN,
  TCA_KIND,
  TCA_OPTIONS,
  TCA_STATS2,
  TCA_STATS_QUEUE,
  TCMSG_LEN,
  TC_H_CLSACT,
  TC_H_CLSACT_HANDLE,
  TC_H_CLSACT_INGRESS,
} from '../netlink/constants.js';
import { addonTransport, concatBytes, dumpSync, eachAttr, exchangeSync, le, nlAttr, nlNested, nlString, nlU16, nlU32, requestMessage, text, type Transport } from '../netlink/wire.js';

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
export function addClsactSync(fd: number, ifindex: number, t: Transport = addonTransport): void {
  exchangeSync(fd, clsactRequest(ifindex), { op: 'addQdisc', target: String(ifindex) }, t);
}

/** The RTM_NEWQDISC of {@link addClsactSync}. */
export function clsactRequest(ifindex: number): Uint8Array {
  return requestMessage(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, tcBody(ifindex, TC_H_CLSACT_HANDLE, TC_H_CLSACT, 0, [nlString(TCA_KIND, 'clsact')]));
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

/** The RTM_NEWTFILTER of {@link addBpfFilterSync}. */
export function bpfFilterRequest(ifindex: number, ops: Uint8Array): Uint8Array {
  const info = (GUARD_FILTER_PRIO << 16) | ((ETH_P_ALL >> 8) | ((ETH_P_ALL & 0xff) << 8)); // protocol in network order
  const options = nlNested(TCA_OPTIONS, [nlU16(TCA_BPF_OPS_LEN, ops.length / 8), nlAttr(TCA_BPF_OPS, ops), nlU32(TCA_BPF_FLAGS, TCA_BPF_FLAG_ACT_DIRECT)]);
  return requestMessage(RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL, tcBody(ifindex, GUARD_FILTER_HANDLE, TC_H_CLSACT_INGRESS, info, [nlString(TCA_KIND, 'bpf'), options]));
}

/** A qdisc as {@link qdiscsSync} reads it. */
export interface QdiscInfo {
  ifindex: number;
  kind: string;
  handle: number;
  parent: number;
  /** Frames dropped (TCA_STATS_QUEUE): for a guard's clsact, the frames its filter dropped. */
  drops: number;
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
    const q: QdiscInfo = { ifindex: v.getInt32(4, true), kind: '', handle: v.getUint32(8, true), parent: v.getUint32(12, true), drops: 0 };
    if (ifindex !== undefined && q.ifindex !== ifindex) continue;
    eachAttr(p, TCMSG_LEN, p.length, (raw, s, e) => {
      const type = raw & NLA_TYPE_MASK;
      if (type === TCA_KIND) q.kind = text(p, s, e);
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

/** A filter as {@link ingressFiltersSync} reads it. */
export interface FilterInfo {
  kind: string;
  handle: number;
  prio: number;
}

/**
 * The filters on the ingress hook of the device `ifindex` (which must have a clsact qdisc: else
 * the kernel answers EINVAL), blocking.
 * Equivalent to `tc -j filter show dev DEV ingress`.
 */
export function ingressFiltersSync(fd: number, ifindex: number, t: Transport = addonTransport): FilterInfo[] {
  const out: FilterInfo[] = [];
  const req = requestMessage(RTM_GETTFILTER, NLM_F_DUMP, tcBody(ifindex, 0, TC_H_CLSACT_INGRESS, 0, []));
  for (const m of dumpSync(fd, req, { op: 'filterDump', target: String(ifindex) }, t)) {
    if (m.type !== RTM_NEWTFILTER || m.payload.length < TCMSG_LEN) continue;
    const p = m.payload;
    const v = le(p);
    const f: FilterInfo = { kind: '', handle: v.getUint32(8, true), prio: v.getUint32(16, true) >>> 16 };
    eachAttr(p, TCMSG_LEN, p.length, (raw, s, e) => {
      if ((raw & NLA_TYPE_MASK) === TCA_KIND) f.kind = text(p, s, e);
    });
    // The kernel lists each priority's chain once without a handle: only real filters count.
    if (f.handle !== 0) out.push(f);
  }
  return out;
}

/** Whether the device `ifindex` carries qbh's guard filter. */
export function hasGuardFilterSync(fd: number, ifindex: number, t: Transport = addonTransport): boolean {
  try {
    return ingressFiltersSync(fd, ifindex, t).some((f) => f.kind === 'bpf' && f.handle === GUARD_FILTER_HANDLE && f.prio === GUARD_FILTER_PRIO);
  } catch {
    return false; // no clsact qdisc: no filter either
  }
}
