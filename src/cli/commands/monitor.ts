/**
 * `qbh monitor`: link, address and bridge-port events as they happen, and the port guards' pins
 * and refusals, until Ctrl-C. With --json, one event object per line (JSON Lines), each exactly as
 * the API's `monitor()` (or the guard's `guardEvents()`) yields it.
 * @module
 */
import { guardEventLine, guardEvents } from '../../guard/events.js';
import { monitor, type MonitorEvent } from '../../netlink/monitor.js';
import { JSON_OPTION, parse } from '../args.js';
import type { Command } from '../command.js';
import { cannot } from '../errors.js';

/** One event as a line for a person, in the spirit of `ip monitor`. */
export function eventLine(ev: Exclude<MonitorEvent, { type: 'ready' }>): string {
  switch (ev.type) {
    case 'link':
    case 'dellink': {
      const l = ev.link;
      const kind = l.linkinfo?.info_kind ? ` ${l.linkinfo.info_kind}` : '';
      const master = l.master ? ` master ${l.master}` : '';
      return ev.type === 'dellink'
        ? `dellink ${l.ifname}${kind}`
        : `link ${l.ifname}${kind} ${l.operstate} mtu ${l.mtu}${master} <${l.flags.join(',')}>`;
    }
    case 'port':
    case 'delport':
      return `${ev.type} ${ev.port.ifname} master ${ev.port.master} state ${ev.port.state}`;
    case 'addr':
    case 'deladdr':
      return `${ev.type} ${ev.address.ifname} ${ev.address.family} ${ev.address.local}/${ev.address.prefixlen} scope ${ev.address.scope}`;
    case 'resync':
      return `resync: events were lost (receive buffer overrun); now ${ev.links.length} links, ${ev.addresses.length} addresses`;
  }
}

/** What `qbh monitor` prints on stderr once it is listening (without --json). */
export const READY_LINE = 'qbh: monitor: ready, listening (Ctrl-C stops)';

const monitorCommand: Command = {
  name: 'monitor',
  summary: 'Print link, address, bridge-port and port-guard events as they happen, until Ctrl-C.',
  usage: 'qbh monitor [-j|--json]',
  options: `  -j, --json   one JSON object per line: first {"type":"ready"}, then
               {"type":"link"|"dellink","link":{…}}, {"type":"port"|"delport","port":{…}},
               {"type":"addr"|"deladdr","address":{…}},
               {"type":"resync","reason":"overrun","links":[…],"addresses":[…]},
               {"type":"guard-pin","ifname","master","mac","guard"} (a MAC pinned on a
               guarded port), {"type":"guard-refused","ifname","master","mac","guard",
               "limit","pinned":[…]} (a MAC refused: the port's sticky cap is reached)

Without --json, a pin prints as "pin TAP master BR mac MAC", a refusal as
"refused TAP master BR mac MAC (port holds N of LIMIT: MACS)".

Ready signal: once the subscription is in place, it prints "${READY_LINE}" on stderr (with
--json: {"type":"ready"} as the first line on stdout). Every change made after that is printed.
If the kernel drops events (the reader fell behind), a resync event carries the full state.`,
  async run(argv, io) {
    const { values } = parse(argv, { json: JSON_OPTION.json }, { required: [] }); // JSON Lines: never indented
    // Two subscriptions, one output; either failing stops both. The guard's is in place before
    // the ready signal is printed.
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    if (io.signal?.aborted) stop.abort();
    io.signal?.addEventListener('abort', onAbort);
    const opts = { signal: stop.signal };
    const write = (ev: object, line: string) => io.stdout.write(values.json ? `${JSON.stringify(ev)}\n` : `${line}\n`);
    let failed: unknown;
    try {
      const guard = guardEvents(opts);
      await guard.next();
      const guards = (async () => {
        for await (const ev of guard) if (ev.type !== 'ready') write(ev, guardEventLine(ev));
      })().catch((e: unknown) => {
        failed ??= e;
        stop.abort();
      });
      try {
        for await (const ev of monitor(opts)) {
          if (ev.type !== 'ready') write(ev, eventLine(ev));
          else if (values.json) io.stdout.write(`${JSON.stringify(ev)}\n`);
          else io.stderr.write(`${READY_LINE}\n`);
        }
      } catch (e) {
        failed ??= e;
      }
      stop.abort();
      await guards;
    } catch (e) {
      failed ??= e;
    } finally {
      io.signal?.removeEventListener('abort', onAbort);
    }
    if (failed !== undefined) throw cannot('monitor', failed);
    return 0;
  },
};

export const monitorCommands: Command[] = [monitorCommand];
