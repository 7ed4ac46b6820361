/**
 * `qbh monitor`: link, address and bridge-port events as they happen, until Ctrl-C. With --json,
 * one event object per line (JSON Lines), each exactly as the API's `monitor()` yields it.
 * @module
 */
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
  summary: 'Print link, address and bridge-port events as they happen, until Ctrl-C.',
  usage: 'qbh monitor [-j|--json]',
  options: `  -j, --json   one JSON object per line: first {"type":"ready"}, then
               {"type":"link"|"dellink","link":{…}}, {"type":"port"|"delport","port":{…}},
               {"type":"addr"|"deladdr","address":{…}},
               {"type":"resync","reason":"overrun","links":[…],"addresses":[…]}

Ready signal: once the subscription is in place, it prints "${READY_LINE}" on stderr (with
--json: {"type":"ready"} as the first line on stdout). Every change made after that is printed.
If the kernel drops events (the reader fell behind), a resync event carries the full state.`,
  async run(argv, io) {
    const { values } = parse(argv, { json: JSON_OPTION.json }, { required: [] }); // JSON Lines: never indented
    try {
      for await (const ev of monitor(io.signal ? { signal: io.signal } : {})) {
        if (values.json) io.stdout.write(`${JSON.stringify(ev)}\n`);
        else if (ev.type === 'ready') io.stderr.write(`${READY_LINE}\n`);
        else io.stdout.write(`${eventLine(ev)}\n`);
      }
    } catch (e) {
      throw cannot('monitor', e);
    }
    return 0;
  },
};

export const monitorCommands: Command[] = [monitorCommand];
