/**
 * Guard events worth an admin's attention, from the kernel's FDB notifications: a MAC pinned on a
 * guarded port (a static sticky entry appears on a port whose alias carries a guard), and a MAC
 * refused (a locked entry stays on a sticky port whose cap is reached: its frames are dropped).
 * What `qbh monitor` prints beside the link and address events.
 * @module
 */
import { native, isErrno } from '../native.js';
import { NETLINK_ADD_MEMBERSHIP, RTM_DELNEIGH, RTM_NEWNEIGH, RTNLGRP_NEIGH, SOL_NETLINK } from '../netlink/constants.js';
import { NetlinkError } from '../netlink/errors.js';
import { Rtnl } from '../netlink/rtnl.js';
import { openRouteSocket, splitMessages } from '../netlink/wire.js';
import { readGuardAlias } from './apply.js';
import { decodeNeigh, fdbDumpSync, type FdbEntry } from './fdb.js';
import { formatGuard, type PortGuard } from './policy.js';

/**
 * How long a locked entry is given before it counts as refused: the pinner (in qbhd) pins a MAC
 * within milliseconds of the kernel reporting it, so an entry still locked after this is one it
 * left locked, the port's cap being reached.
 */
export const REFUSED_AFTER_MS = 300;

/** A guard event. MACs in lower case; `guard` is the port's guard words. */
export type GuardEvent =
  /** The subscription is in place: pins and refusals from now on are reported. */
  | { type: 'ready' }
  /** A MAC was pinned to a guarded port (a static sticky FDB entry appeared on it). */
  | { type: 'guard-pin'; ifname: string; master: string; mac: string; guard: string }
  /** A MAC was refused on a sticky port whose cap is reached: its entry stays locked, its frames dropped. */
  | { type: 'guard-refused'; ifname: string; master: string; mac: string; guard: string; limit: number; pinned: string[] };

/** Options of {@link guardEvents}. */
export interface GuardEventsOptions {
  /** Stops the iterator (it then ends normally). */
  signal?: AbortSignal;
}

/** A guarded port as an event names it. */
interface GuardedPort {
  ifname: string;
  master: string;
  guard: PortGuard;
}

/**
 * Watches the bridges' FDBs for pins and refusals on guarded ports until the signal aborts. The
 * first event is `{ type: 'ready' }`. Equivalent to `bridge monitor fdb`, read against the ports'
 * guards.
 * @category Guard
 */
export async function* guardEvents(options: GuardEventsOptions = {}): AsyncGenerator<GuardEvent, void, undefined> {
  const { signal } = options;
  if (signal?.aborted) return;
  const { fd } = openRouteSocket({ extAck: false, strict: false });
  const rtnl = Rtnl.openSync();
  let stopWatch: (() => void) | undefined;
  let wake: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  const onAbort = () => wake?.();
  /** Pins already reported, and refusals already reported, by `ifindex mac` (until the entry goes). */
  const pinned = new Set<string>();
  const refused = new Set<string>();
  /** Locked entries to look at again once the pinner had its chance. */
  const checks: { due: number; entry: FdbEntry }[] = [];
  const queue: GuardEvent[] = [];

  /** The port `ifindex` if it is guarded, read from the kernel (its alias); null otherwise. */
  const guardedPort = async (ifindex: number): Promise<GuardedPort | null> => {
    try {
      const m = await rtnl.getLinkMessage(ifindex);
      const guard = readGuardAlias(m.attrs.ifalias);
      if (guard === null || m.attrs.master === undefined) return null;
      const master = await rtnl.getLinkMessage(m.attrs.master);
      return { ifname: m.attrs.ifname ?? `if${ifindex}`, master: master.attrs.ifname ?? `if${m.attrs.master}`, guard };
    } catch (e) {
      if (e instanceof NetlinkError) return null; // gone already
      throw e;
    }
  };

  const onEntry = async (type: number, e: FdbEntry) => {
    const key = `${e.ifindex} ${e.mac}`;
    if (type === RTM_DELNEIGH) {
      pinned.delete(key);
      refused.delete(key);
      return;
    }
    if (e.static && e.sticky) {
      if (pinned.has(key)) return;
      const port = await guardedPort(e.ifindex);
      if (port === null) return;
      pinned.add(key);
      queue.push({ type: 'guard-pin', ifname: port.ifname, master: port.master, mac: e.mac, guard: formatGuard(port.guard) });
    } else if (e.locked && !refused.has(key)) {
      checks.push({ due: Date.now() + REFUSED_AFTER_MS, entry: e });
    }
  };

  /** A locked entry whose time is up: refused if it is still locked and its port's cap is reached. */
  const check = async (e: FdbEntry) => {
    const key = `${e.ifindex} ${e.mac}`;
    if (refused.has(key)) return;
    const port = await guardedPort(e.ifindex);
    if (port === null || port.guard.mac !== 'sticky') return;
    const entries = fdbDumpSync(rtnl.socket.fd, { port: e.ifindex });
    const stillLocked = entries.some((f) => f.mac === e.mac && f.locked);
    const held = entries.filter((f) => f.static && f.sticky).map((f) => f.mac);
    const limit = port.guard.macLimit ?? 1;
    if (!stillLocked || held.length < limit) return;
    refused.add(key);
    queue.push({ type: 'guard-refused', ifname: port.ifname, master: port.master, mac: e.mac, guard: formatGuard(port.guard), limit, pinned: held });
  };

  try {
    native.setsockoptInt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, RTNLGRP_NEIGH);
    signal?.addEventListener('abort', onAbort);
    yield { type: 'ready' };
    while (!signal?.aborted) {
      for (;;) {
        let got;
        try {
          got = native.nlRecv(fd, 0);
        } catch (e) {
          // Lost notifications: the pins of the moment are in the kernel's FDB (`qbh bridge list -d`).
          if (isErrno(e, 'ENOBUFS')) continue;
          throw e;
        }
        if (got === null) break;
        if (got.portId !== 0) continue;
        for (const m of splitMessages(got.data)) {
          if (m.type !== RTM_NEWNEIGH && m.type !== RTM_DELNEIGH) continue;
          // Null for anything but a bridge's FDB entry (ARP and ND neighbours share the group).
          const entry = decodeNeigh(m.payload);
          if (entry !== null) await onEntry(m.type, entry);
        }
      }
      const now = Date.now();
      while (checks.length > 0 && checks[0]!.due <= now) await check(checks.shift()!.entry);
      if (queue.length > 0) {
        yield queue.shift()!;
        continue;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        stopWatch = native.watch(fd, () => resolve());
        if (checks.length > 0) timer = setTimeout(resolve, Math.max(0, checks[0]!.due - Date.now()));
      });
      clearTimeout(timer);
      stopWatch?.();
      stopWatch = undefined;
      wake = undefined;
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    clearTimeout(timer);
    stopWatch?.();
    native.close(fd);
    rtnl.close();
  }
}

/** A guard event as a line for a person, in the style of `qbh monitor`'s others. */
export function guardEventLine(ev: Exclude<GuardEvent, { type: 'ready' }>): string {
  if (ev.type === 'guard-pin') return `pin ${ev.ifname} master ${ev.master} mac ${ev.mac}`;
  return `refused ${ev.ifname} master ${ev.master} mac ${ev.mac} (port holds ${ev.pinned.length} of ${ev.limit}: ${ev.pinned.join(',')})`;
}
