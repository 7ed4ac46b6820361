/**
 * Sticky MAC pinning, the part of a `mac=sticky[:N]` guard that needs a process: qbhd runs one
 * {@link StickyPinner}. A sticky port is locked with MAC authentication bypass (src/guard/apply.ts):
 * a frame from a source MAC the bridge does not know is dropped, and the kernel reports the MAC as
 * a *locked* FDB entry on that port (RTM_NEWNEIGH, NTF_EXT_LOCKED in NDA_FLAGS_EXT). The pinner
 * turns the first N such MACs of a port into static sticky entries: from then on the port
 * forwards frames from them, and no other port can claim them (a sticky entry never roams, and a
 * locked port's frame from a MAC the bridge knows elsewhere is dropped). Past N the entry stays
 * locked (its frames stay dropped) and the refusal is logged, at most once per port every
 * {@link REFUSAL_REPORT_MS}.
 *
 * The count is read from the kernel every time (static entries on the port), never from memory:
 * the pins live in the bridge's FDB and die with the port, so a pinner restarted, or a qbhd
 * restarted, finds them there. At start, and whenever its event socket overflowed (ENOBUFS), it
 * dumps the FDB and pins what is pending.
 * @module
 */
import { isErrno, native } from '../native.js';
import { NETLINK_ADD_MEMBERSHIP, RTM_GETLINK, RTM_NEWNEIGH, RTNLGRP_NEIGH, SOL_NETLINK } from '../netlink/constants.js';
import { decodeLink } from '../netlink/message.js';
import { getLinkBody } from '../netlink/rtnl.js';
import { exchangeSync, openRouteSocket, requestMessage, splitMessages } from '../netlink/wire.js';
import { readGuardAlias } from './apply.js';
import { addFdbSync, decodeNeigh, fdbDumpSync, type FdbEntry } from './fdb.js';

/**
 * How often a refusal (a MAC past a port's cap) is logged per port: the first at once, then at
 * most one line every 10 s, naming how many MACs the port holds locked. A guest sending from random
 * MACs makes one kernel event per MAC; the journal hears of it, not of each.
 */
export const REFUSAL_REPORT_MS = 10_000;

/**
 * Datagrams read from the event socket per turn of the event loop: a guest flooding new MACs makes
 * one event each, and the daemon must go on serving requests meanwhile (the watch calls again
 * while more are queued).
 */
const MAX_READS_PER_TURN = 256;

/** Ports whose refusals are tracked one by one (bounded memory: a sweep makes room). */
const MAX_REPORTED_PORTS = 4096;

/** Whether a bridge FDB entry is static and not one of the port's own (local) addresses. */
const isStatic = (e: FdbEntry): boolean => e.static && !e.permanent;

/** What the pinner knows of a port: its name, its bridge's, and its sticky cap (null: not a sticky port). */
interface PortInfo {
  name: string;
  bridge: string;
  limit: number | null;
}

/**
 * What the pinner tells its owner (qbhd writes each as an audit line): a MAC pinned; MACs refused
 * past a port's cap (`macs`: every locked entry the port has now, as the kernel lists them); a
 * step that failed (a request refused).
 */
export type PinEvent =
  | { kind: 'pinned'; bridge: string; port: string; mac: string; held: number; limit: number }
  | { kind: 'refused'; bridge: string; port: string; macs: string[]; limit: number }
  | { kind: 'error'; message: string };

/** Options of {@link StickyPinner.start}. */
export interface PinnerOptions {
  /** Called for each pin, each refusal report and each failure. */
  report(event: PinEvent): void;
  /** The event socket's receive buffer in bytes (default 1 MiB; small values make overruns likely: tests). */
  receiveBuffer?: number;
}

/** What a pinner has done since it started: MACs pinned, times a port was found past its cap, FDB scans. */
export interface PinnerCounts {
  pinned: number;
  refused: number;
  scans: number;
}

/**
 * The sticky pinner: one rtnetlink socket subscribed to FDB changes and one for requests, watched
 * on the event loop. Synchronous work per event (a link lookup, one port's FDB dump, one request).
 */
export class StickyPinner {
  private readonly events: number;
  private readonly requests: number;
  private stopWatch: (() => void) | null = null;
  private stopped = false;
  private readonly ports = new Map<number, PortInfo>();
  /** When each port's last refusal was reported. */
  private readonly reports = new Map<number, number>();
  private readonly options: PinnerOptions;
  readonly counts: PinnerCounts = { pinned: 0, refused: 0, scans: 0 };

  private constructor(options: PinnerOptions, events: number, requests: number) {
    this.options = options;
    this.events = events;
    this.requests = requests;
  }

  /**
   * Subscribes to FDB changes, pins what is already pending (a restart loses nothing), and keeps
   * pinning until {@link stop}. Equivalent to `bridge monitor fdb` + `bridge fdb replace … static sticky`.
   */
  static start(options: PinnerOptions): StickyPinner {
    const events = openRouteSocket({ extAck: false, strict: false, receiveBuffer: options.receiveBuffer }).fd;
    let requests = -1;
    try {
      native.setsockoptInt(events, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, RTNLGRP_NEIGH);
      requests = openRouteSocket().fd;
    } catch (e) {
      native.close(events);
      throw e;
    }
    const p = new StickyPinner(options, events, requests);
    // Subscribed first, then the dump: an entry made in between is in one or the other. A scan
    // that fails is reported; the next event of each port settles it.
    p.guarded(() => p.scan());
    p.stopWatch = native.watch(events, () => p.guarded(() => p.drain()));
    return p;
  }

  /** Stops watching and closes both sockets. The pins stay: they are the kernel's. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.stopWatch?.();
    this.stopWatch = null;
    native.close(this.events);
    native.close(this.requests);
  }

  /** Dumps the whole bridge FDB and pins every pending (locked) entry of a sticky port. */
  scan(): void {
    this.counts.scans++;
    this.ports.clear();
    const pending = new Set<number>();
    for (const e of fdbDumpSync(this.requests)) if (e.locked) pending.add(e.ifindex);
    for (const port of pending) this.settle(port);
  }

  /** Reads what is queued on the event socket; an overrun means events were lost: scan again. */
  private drain(): void {
    const ports = new Set<number>();
    for (let reads = 0; reads < MAX_READS_PER_TURN; reads++) {
      let got;
      try {
        got = native.nlRecv(this.events, 0);
      } catch (e) {
        if (isErrno(e, 'ENOBUFS')) return this.scan();
        throw e;
      }
      if (got === null) break;
      if (got.portId !== 0) continue; // only the kernel sends notifications
      for (const m of splitMessages(got.data)) {
        if (m.type !== RTM_NEWNEIGH) continue;
        const e = decodeNeigh(m.payload);
        if (e !== null && e.locked) ports.add(e.ifindex);
      }
    }
    for (const port of ports) this.guarded(() => this.settle(port));
  }

  /** Runs `fn`; a failure (a port gone meanwhile, a refused request) is logged, never thrown into the event loop. */
  private guarded(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.options.report({ kind: 'error', message: e instanceof Error ? e.message : String(e) });
    }
  }

  /** The port's name, bridge and sticky cap, read once (a port's guard is set before it comes up and never changes). */
  private portInfo(port: number): PortInfo | null {
    const known = this.ports.get(port);
    if (known !== undefined) return known;
    let name = String(port);
    let alias: string | undefined;
    let master = 0;
    try {
      const link = decodeLink(exchangeSync(this.requests, requestMessage(RTM_GETLINK, 0, getLinkBody(port)), { op: 'getLink', target: name }).replies[0]!.payload);
      name = link.attrs.ifname ?? name;
      alias = link.attrs.ifalias;
      master = link.attrs.master ?? 0;
    } catch (e) {
      if (isErrno(e, 'ENODEV')) return null; // gone: its entries went with it
      throw e;
    }
    const g = readGuardAlias(alias);
    let bridge = String(master);
    if (master !== 0) {
      try {
        bridge = decodeLink(exchangeSync(this.requests, requestMessage(RTM_GETLINK, 0, getLinkBody(master)), { op: 'getLink', target: bridge }).replies[0]!.payload).attrs.ifname ?? bridge;
      } catch {
        // named by its ifindex then
      }
    }
    const info: PortInfo = { name, bridge, limit: g?.mac === 'sticky' ? (g.macLimit ?? 1) : null };
    if (this.ports.size >= MAX_REPORTED_PORTS) this.ports.clear();
    this.ports.set(port, info);
    return info;
  }

  /**
   * Pins the port's pending MACs up to its cap, counting the static entries it holds now (the
   * kernel's count, whoever made them), in the order the dump gives them; refuses the rest.
   */
  private settle(port: number): void {
    const info = this.portInfo(port);
    if (info === null || info.limit === null) return;
    const entries = fdbDumpSync(this.requests, { port });
    let held = entries.filter(isStatic).length;
    const refused: string[] = [];
    for (const e of entries) {
      if (!e.locked) continue;
      if (held >= info.limit) {
        refused.push(e.mac);
        continue;
      }
      // Still this port's and still locked, as the dump just showed: a MAC another port holds
      // never appears here (the kernel reports an unknown MAC only), and pinning never moves one.
      addFdbSync(this.requests, { ifindex: port, mac: e.mac, sticky: true, replace: true });
      held++;
      this.counts.pinned++;
      this.options.report({ kind: 'pinned', bridge: info.bridge, port: info.name, mac: e.mac, held, limit: info.limit });
    }
    if (refused.length > 0) this.report(port, info, refused);
  }

  /** Reports the MACs a port holds locked past its cap: at once the first time, then at most every {@link REFUSAL_REPORT_MS}. */
  private report(port: number, info: PortInfo, macs: string[]): void {
    this.counts.refused++;
    const now = Date.now();
    const last = this.reports.get(port);
    if (last !== undefined && now - last < REFUSAL_REPORT_MS) return;
    if (this.reports.size >= MAX_REPORTED_PORTS) this.reports.clear();
    this.reports.set(port, now);
    this.options.report({ kind: 'refused', bridge: info.bridge, port: info.name, macs, limit: info.limit! });
  }
}
