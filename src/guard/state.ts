/**
 * Reading the guard on bridge ports back from the kernel: what `qbh bridge list -d` / `show` print.
 * A port's guard lives on the port itself (its alias, its flags, its FDB entries, its ingress
 * filter), so this only reads: the words from the alias (`qbh-guard: …`), the port flags the guard
 * sets, the MACs pinned (static sticky FDB entries), the MACs waiting (locked entries), whether the
 * guard's bpf filter sits on the tap's ingress and what the clsact qdisc dropped.
 *
 * A listing costs one link dump, one FDB dump and one qdisc dump whatever the number of ports, plus
 * one filter dump per shared tc block the guarded taps are bound to (one per guard policy; a tap
 * with a filter of its own, outside a block, costs one more of its own).
 * @module
 */
import { AF_UNSPEC, IFINFOMSG_LEN, IFLA_IFALIAS, IFLA_IFNAME, NLA_TYPE_MASK, NLM_F_DUMP, RTEXT_FILTER_SKIP_STATS, RTM_GETLINK, RTM_NEWLINK } from '../netlink/constants.js';
import { lookupLinkSync } from '../netlink/link-requests.js';
import { native } from '../native.js';
import { decodeLink, encodeLink } from '../netlink/message.js';
import { pickTable } from '../netlink/attr.js';
import { bridgePortData, IFLA } from '../netlink/tables.js';
import { dumpSync, eachAttr, openRouteSocketSync, requestMessage, text } from '../netlink/wire.js';
import { GUARD_ALIAS_PREFIX, readGuardAlias } from './apply.js';
import { fdbDumpSync } from './fdb.js';
import { blockFiltersSync, GUARD_FILTER_HANDLE, hasGuardFilterSync, isGuardFilter, qdiscsSync, type QdiscInfo } from './tc.js';
import { needsFilter, readGuardWords } from './policy.js';

/** The port flags a guard sets, under the keys `bridge -j -d link show` prints them with (`guard` as `bpdu_guard`). */
export interface PortGuardFlags {
  isolated: boolean;
  locked: boolean;
  mab: boolean;
  learning: boolean;
  bpdu_guard: boolean;
  root_block: boolean;
}

/**
 * The guard on one bridge port as the kernel holds it: `qbh_guard` in `qbh bridge list --json`.
 * @category Guard
 */
export interface PortGuardState {
  /** The guard's words as the port's alias records them (`isolated mac=sticky:1 …`; a list too long for the alias as `ip=…`). */
  words: string;
  /** The port flags, as set now. */
  flags: PortGuardFlags;
  /** MACs pinned to the port: its static sticky FDB entries. */
  pinned: string[];
  /** MACs the kernel saw and holds locked (their frames dropped): not pinned, or past the cap. */
  pending: string[];
  /** qbh's guard filter (bpf, handle 0xb4d) sits on the tap's ingress. */
  filter: boolean;
  /** Frames the ingress filter dropped (the clsact qdisc's `drops`); 0 without one. */
  drops: number;
}

/** The alias prefix as bytes, compared in place: most links have no alias, or another. */
const PREFIX_BYTES = Buffer.from(GUARD_ALIAS_PREFIX, 'utf8');

/** A link's alias if it is a guard's (`qbh-guard: …`), read from its RTM_NEWLINK body without decoding the rest. */
function aliasOfLink(body: Buffer): string | undefined {
  let alias: string | undefined;
  eachAttr(body, IFINFOMSG_LEN, body.length, (type, start, end) => {
    if ((type & NLA_TYPE_MASK) !== IFLA_IFALIAS || alias !== undefined) return;
    if (end - start >= PREFIX_BYTES.length && body.compare(PREFIX_BYTES, 0, PREFIX_BYTES.length, start, start + PREFIX_BYTES.length) === 0) alias = text(body, start, end);
  });
  return alias;
}

/** What is read of a guarded port: its port flags (IFLA_LINKINFO's slave data). */
const IFLA_PORT_FLAGS = pickTable('IFLA_GUARD_PORT', IFLA, ['linkinfo']);

/** Options of {@link portGuardsSync}. */
export interface PortGuardsOptions {
  /** Only the ports of this bridge (ifindex). Default: every bridge's. */
  master?: number;
  /** Filled with each guarded port's name, by ifindex. */
  names?: Map<number, string>;
}

/**
 * The guard state of every guarded bridge port (those whose alias carries a guard), by ifindex;
 * ports without one are absent. `fd` is an rtnetlink socket (strict checking on). Blocking.
 * Equivalent to `ip -d link show` (alias, port flags) + `bridge fdb show` + `tc -s qdisc show` +
 * `tc filter show dev TAP ingress`.
 * @category Guard
 */
export function portGuardsSync(fd: number, opts: PortGuardsOptions = {}): Map<number, PortGuardState> {
  const op = 'portGuards';
  const attrs = { extMask: RTEXT_FILTER_SKIP_STATS, ...(opts.master !== undefined ? { master: opts.master } : {}) };
  const guarded = new Map<number, { words: string; flags: PortGuardFlags }>();
  for (const m of dumpSync(fd, requestMessage(RTM_GETLINK, NLM_F_DUMP, encodeLink({ family: AF_UNSPEC, attrs })), { op })) {
    if (m.type !== RTM_NEWLINK) continue;
    const alias = aliasOfLink(m.payload);
    if (alias === undefined) continue;
    if (readGuardAlias(alias) === null) continue;
    // Only a guarded port is decoded further, and only its port flags.
    const link = decodeLink(m.payload, IFLA_PORT_FLAGS);
    const p = bridgePortData(link.attrs.linkinfo);
    if (p === undefined) continue;
    if (opts.names !== undefined) {
      eachAttr(m.payload, IFINFOMSG_LEN, m.payload.length, (type, start, end) => {
        if ((type & NLA_TYPE_MASK) === IFLA_IFNAME && !opts.names!.has(link.index)) opts.names!.set(link.index, text(m.payload, start, end));
      });
    }
    guarded.set(link.index, {
      words: alias.slice(GUARD_ALIAS_PREFIX.length),
      flags: {
        isolated: p.isolated === 1,
        locked: p.locked === 1,
        mab: p.mab === 1,
        learning: p.learning === 1,
        bpdu_guard: p.guard === 1,
        root_block: p.rootBlock === 1,
      },
    });
  }
  const out = new Map<number, PortGuardState>();
  if (guarded.size === 0) return out;
  const macs = new Map<number, { pinned: string[]; pending: string[] }>();
  for (const e of fdbDumpSync(fd, opts.master !== undefined ? { bridge: opts.master } : {})) {
    if (!guarded.has(e.ifindex)) continue;
    let m = macs.get(e.ifindex);
    if (m === undefined) macs.set(e.ifindex, (m = { pinned: [], pending: [] }));
    if (e.locked) m.pending.push(e.mac);
    else if (e.static && e.sticky) m.pinned.push(e.mac);
  }
  const clsact = new Map<number, QdiscInfo>();
  for (const q of qdiscsSync(fd)) if (q.kind === 'clsact') clsact.set(q.ifindex, q);
  /** Whether each shared block holds the guard filter: taps of one policy share one block. */
  const blocks = new Map<number, boolean>();
  const hasFilter = (q: QdiscInfo | undefined): boolean => {
    // Only a guard with a filter has a clsact qdisc to ask (without one the kernel refuses the dump).
    if (q === undefined) return false;
    if (q.ingressBlock === null) return hasGuardFilterSync(fd, q.ifindex);
    let has = blocks.get(q.ingressBlock);
    if (has === undefined) blocks.set(q.ingressBlock, (has = blockFiltersSync(fd, q.ingressBlock).some(isGuardFilter)));
    return has;
  };
  for (const [ifindex, { words, flags }] of guarded) {
    const m = macs.get(ifindex);
    out.set(ifindex, {
      words,
      flags,
      pinned: m?.pinned ?? [],
      pending: m?.pending ?? [],
      filter: hasFilter(clsact.get(ifindex)),
      drops: clsact.get(ifindex)?.drops ?? 0,
    });
  }
  return out;
}

/**
 * A port's guard as one line for a person: its words, then what the kernel holds
 * (`guard: isolated mac=sticky:1 …  flags isolated,locked,mab,learning  pinned 52:54:00:12:34:56
 * filter bpf 0xb4d  drops 12`). A filter the words need that is not on the tap shows as
 * `filter MISSING`.
 */
export function guardText(s: PortGuardState): string {
  const parts = [`guard: ${s.words}`];
  const on = Object.entries(s.flags).flatMap(([k, v]) => (v ? [k] : []));
  parts.push(`flags ${on.join(',') || '-'}`);
  parts.push(`pinned ${s.pinned.join(',') || '-'}`);
  if (s.pending.length > 0) parts.push(`pending ${s.pending.join(',')}`);
  const guard = readGuardWords(s.words.split(' ').filter((w) => !w.endsWith('=…')));
  if (s.filter) parts.push(`filter bpf 0x${GUARD_FILTER_HANDLE.toString(16)}`);
  else if (!('error' in guard) && needsFilter(guard)) parts.push('filter MISSING');
  parts.push(`drops ${s.drops}`);
  return parts.join('  ');
}

/**
 * The guard of every guarded bridge port (of `bridge`, or of every bridge), by port name, read from
 * the kernel on a socket of its own, blocking: what `qbh bridge list -d` shows. A port without a
 * qbh guard is absent.
 * Equivalent to `ip -d link show` (alias, port flags) + `bridge fdb show` + `tc -s qdisc show`.
 * @category Guard
 */
export function readPortGuards(bridge?: string): Map<string, PortGuardState> {
  const fd = openRouteSocketSync();
  try {
    let master: number | undefined;
    if (bridge !== undefined) master = lookupLinkSync(fd, bridge, { op: 'readPortGuards', target: bridge }).index;
    const names = new Map<number, string>();
    const byIndex = portGuardsSync(fd, master === undefined ? { names } : { master, names });
    const out = new Map<string, PortGuardState>();
    for (const [idx, state] of byIndex) out.set(names.get(idx) ?? String(idx), state);
    return out;
  } finally {
    native.close(fd);
  }
}
