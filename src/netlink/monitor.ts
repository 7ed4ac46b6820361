/**
 * Link, address and bridge-port events from the kernel's rtnetlink multicast groups, as an async
 * iterator. Events arrive on a socket of their own (docs/netlink-pitfalls.md, §6); dumps (names at start, resyncs) go through a separate request handle.
 *
 * Reading is pulled by the consumer: while nobody asks for the next event, nothing is read and the
 * kernel queues. If its queue overflows, the next read fails with ENOBUFS; the monitor then
 * re-dumps links and addresses and yields one `resync` event with the full state (§1),
 * instead of silently losing events.
 * @module
 */
import { native, isErrno } from '../native.js';
import {
  AF_BRIDGE,
  NETLINK_ADD_MEMBERSHIP,
  RTM_DELADDR,
  RTM_DELLINK,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTNLGRP_IPV4_IFADDR,
  RTNLGRP_IPV6_IFADDR,
  RTNLGRP_LINK,
  SOL_NETLINK,
} from './constants.js';
import { toAddress, toBridgePort, toLink, type Address, type BridgePort, type Link, type LinkLookup } from './present.js';
import { DumpInterruptedError } from './errors.js';
import { decodeMessages, type Message } from './message.js';
import { Rtnl } from './rtnl.js';
import { openRouteSocket } from './wire.js';

/** A monitor event. Objects use iproute2's JSON keys, as everywhere in qbh. */
export type MonitorEvent =
  /**
   * Always the first event: the subscription is in place, so every change made from now on will be
   * seen. Make the change you want to watch after this, not before the first `next()`.
   */
  | { type: 'ready' }
  /** A link appeared or changed (RTM_NEWLINK). */
  | { type: 'link'; link: Link }
  /** A link went away (RTM_DELLINK). */
  | { type: 'dellink'; link: Link }
  /** A link became, or changed as, a bridge port (AF_BRIDGE RTM_NEWLINK). */
  | { type: 'port'; port: BridgePort }
  /** A link stopped being a bridge port (AF_BRIDGE RTM_DELLINK). */
  | { type: 'delport'; port: BridgePort }
  /** An address was added or changed (RTM_NEWADDR). */
  | { type: 'addr'; address: Address }
  /** An address was removed (RTM_DELADDR). */
  | { type: 'deladdr'; address: Address }
  /** Events were lost (receive buffer overrun): the full current state, re-read from the kernel. */
  | { type: 'resync'; reason: 'overrun'; links: Link[]; addresses: Address[] };

/** Options of {@link monitor}. */
export interface MonitorOptions {
  /** Stops the iterator (it then ends normally). */
  signal?: AbortSignal;
  /** Which groups: default all of `link` (links and bridge ports), `ipv4`, `ipv6` (addresses). */
  groups?: ('link' | 'ipv4' | 'ipv6')[];
  /** Receive buffer in bytes (default 1 MiB, as iproute2). Small values make overruns likely (tests). */
  receiveBuffer?: number;
}

const GROUPS = { link: RTNLGRP_LINK, ipv4: RTNLGRP_IPV4_IFADDR, ipv6: RTNLGRP_IPV6_IFADDR } as const;

/**
 * Watches link, address and bridge-port changes until `break` (which takes effect when an event
 * arrives) or the signal aborts (at once). The first event is always `{ type: 'ready' }`, yielded
 * once the kernel subscription is in place: changes made after it are seen, changes made before it
 * may not be (the generator starts on the first `next()`). Equivalent to
 * `ip monitor link address` + `bridge monitor link`.
 *
 * ```ts
 * for await (const ev of monitor({ signal })) {
 *   if (ev.type === 'ready') await createBridge('br0'); // will be seen
 *   if (ev.type === 'link') console.log(ev.link.ifname);
 * }
 * ```
 *
 * A monitor in the background, and a script that goes on once it listens: the first `next()` is
 * the awaitable "ready" (it resolves with the `ready` event once subscribed).
 *
 * ```ts
 * const events = monitor({ signal });
 * await events.next(); // { value: { type: 'ready' } }: listening from here on
 * const seen = (async () => { for await (const ev of events) console.log(ev.type); })();
 * await createBridge('br0'); // seen by the loop above
 * ```
 * @category Events
 */
export async function* monitor(options: MonitorOptions = {}): AsyncGenerator<MonitorEvent, void, undefined> {
  const { signal } = options;
  if (signal?.aborted) return;
  // No requests go out on it: neither extended acks nor strict checking apply.
  const { fd } = openRouteSocket({ extAck: false, strict: false, receiveBuffer: options.receiveBuffer });
  const rtnl = Rtnl.openSync();
  let stopWatch: (() => void) | undefined;
  let wake: (() => void) | undefined;
  const onAbort = () => wake?.();
  try {
    for (const g of options.groups ?? ['link', 'ipv4', 'ipv6']) native.setsockoptInt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, GROUPS[g]);
    signal?.addEventListener('abort', onAbort);

    // Names of links by ifindex (for `master`, `link`), seeded after joining the groups so no change is missed.
    const names = new Map<number, { ifname: string; flags: number }>();
    const lookup: LinkLookup = (i) => names.get(i);
    const seed = async () => {
      const links = await rtnl.listLinks();
      names.clear();
      for (const l of links) names.set(l.ifindex, { ifname: l.ifname, flags: 0 });
      return links;
    };
    await seed();
    // Joined and seeded: a change made from here on is queued on the socket, so it will be seen.
    yield { type: 'ready' };

    const convert = (m: Message): MonitorEvent | undefined => {
      if (m.kind === 'link') {
        const l = m.link;
        if (l.family === AF_BRIDGE) {
          const port = toBridgePort(l, lookup);
          return m.type === RTM_DELLINK ? { type: 'delport', port } : { type: 'port', port };
        }
        const link = toLink(l, lookup);
        if (m.type === RTM_NEWLINK) names.set(l.index, { ifname: link.ifname, flags: l.flags });
        if (m.type === RTM_DELLINK) {
          names.delete(l.index);
          return { type: 'dellink', link };
        }
        return { type: 'link', link };
      }
      if (m.kind === 'addr') {
        const address = toAddress(m.addr, lookup);
        if (m.type === RTM_NEWADDR) return { type: 'addr', address };
        if (m.type === RTM_DELADDR) return { type: 'deladdr', address };
      }
      return undefined;
    };

    const queue: MonitorEvent[] = [];
    /** Reads what is queued in the socket now; true if an overrun was reported. */
    const drain = (): boolean => {
      for (;;) {
        let got;
        try {
          got = native.nlRecv(fd, 0);
        } catch (e) {
          if (isErrno(e, 'ENOBUFS')) return true;
          throw e;
        }
        if (got === null) return false;
        if (got.portId !== 0) continue; // only the kernel sends notifications
        for (const m of decodeMessages(got.data)) {
          const ev = convert(m);
          if (ev) queue.push(ev);
        }
      }
    };

    while (!signal?.aborted) {
      if (drain()) {
        // Whatever was queued before the overrun is stale next to the fresh dump.
        queue.length = 0;
        let state: [Link[], Address[]] | undefined;
        // A burst that overran the socket may still be going on, and interrupt the re-dump past its
        // retries: that is no reason to end the monitor; wait for the burst to pass and dump again.
        for (let attempt = 1; state === undefined; attempt++) {
          try {
            state = [await seed(), await rtnl.listAddresses()];
          } catch (e) {
            if (!(e instanceof DumpInterruptedError)) throw e;
            await new Promise((r) => setTimeout(r, Math.min(1000, 20 * attempt)));
            if (signal?.aborted) return;
            drain();
            queue.length = 0;
          }
        }
        yield { type: 'resync', reason: 'overrun', links: state[0], addresses: state[1] };
        continue;
      }
      if (queue.length > 0) {
        const ev = queue.shift()!;
        yield ev;
        continue;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        stopWatch = native.watch(fd, () => resolve());
      });
      stopWatch?.();
      stopWatch = undefined;
      wake = undefined;
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    stopWatch?.();
    native.close(fd);
    rtnl.close();
  }
}
