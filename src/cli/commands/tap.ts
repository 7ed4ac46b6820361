/**
 * `qbh tap …`: tap devices (list, show, create, delete) through src/tun. `list` and `show` see every
 * tap, QEMU's too; `create` makes persistent ones for set-ups that name taps up front (QEMU normally
 * gets its taps from the helper or from `openTap`).
 * @module
 */
import { getLink, listLinks, NoSuchDeviceError, type Link } from '../../index.js';
import { closeTap, deleteTap, openTap, MAX_TAP_QUEUES, type OpenTapOptions } from '../../tun/index.js';
import { readUserDb } from '../../acl/index.js';
import { DAEMON_SOCKET } from '../../attach/protocol.js';
import { parseGuard, type PortGuard } from '../../guard/policy.js';
import { askDaemon, daemonListening, DaemonUnreachableError } from '../../helper/daemon-client.js';
import { native } from '../../native.js';
import { InvalidArgumentError } from '../../errors.js';
import { ifname, integer, JSON_OPTION, parse } from '../args.js';
import { output, type Command } from '../command.js';
import { cannot, CliError, UsageError } from '../errors.js';
import { formatTable } from '../io.js';

const yesNo = (v: unknown) => (v === true ? 'yes' : v === false ? 'no' : '-');

/** The tap table: name, state, owner, group, vnet_hdr, multi_queue (queues), persist, master. */
export function tapTable(taps: Link[]): string {
  if (taps.length === 0) return '';
  return formatTable(
    ['NAME', 'STATE', 'OWNER', 'GROUP', 'VNET_HDR', 'MULTI_QUEUE', 'PERSIST', 'MASTER'],
    taps.map((l) => {
      const d = (l.linkinfo?.info_kind === 'tun' ? l.linkinfo.info_data : undefined) ?? { type: 'tap' };
      return [
        l.ifname,
        l.operstate,
        String(d.user ?? '-'),
        String(d.group ?? '-'),
        yesNo(d.vnet_hdr),
        d.multi_queue ? 'yes' : 'no',
        yesNo(d.persist),
        l.master ?? '-',
      ];
    }),
  );
}

/** Every tap (not tun) device, persistent or held open by a program such as QEMU. */
async function listTaps(action: string): Promise<Link[]> {
  let links: Link[];
  try {
    links = await listLinks({ kind: 'tun' });
  } catch (e) {
    throw cannot(action, e);
  }
  return links.filter((l) => !(l.linkinfo?.info_kind === 'tun' && l.linkinfo.info_data?.type === 'tun'));
}

const listCommand: Command = {
  name: 'tap list',
  summary: 'List tap devices (persistent ones and those QEMU holds open) with owner, group, vnet_hdr, multi_queue, persist and master.',
  usage: 'qbh tap list [-j|--json] [-p|--pretty]',
  options: `  -j, --json     print the taps as JSON: the objects of \`ip -j -d link show type tun\` (tap devices only)
  -p, --pretty   with --json: indented, over several lines (default: one line, as \`ip -j\`)

Also \`qbh tap ls\`, \`qbh tap show\` without NAME, or \`qbh tap\` alone.`,
  async run(argv) {
    const { values } = parse(argv, JSON_OPTION, { required: [] });
    return output(await listTaps('list taps'), values, tapTable);
  },
};

const showCommand: Command = {
  name: 'tap show',
  summary: 'Show one tap device: owner, group, vnet_hdr, multi_queue, persist and master.',
  usage: 'qbh tap show [NAME] [-j|--json] [-p|--pretty]',
  options: `  -j, --json     print the tap as JSON (one object, as in \`qbh tap list --json\`)
  -p, --pretty   with --json: indented, over several lines (default: one line, as \`ip -j\`)

Without NAME, every tap, as \`qbh tap list\`.`,
  async run(argv) {
    const { values, args } = parse(argv, JSON_OPTION, { required: [], optional: ['NAME'] });
    if (args[0] === undefined) return output(await listTaps('list taps'), values, tapTable);
    const name = ifname(args[0], 'tap name');
    let link: Link;
    try {
      link = await getLink(name);
    } catch (e) {
      throw cannot(`show tap ${name}`, e instanceof NoSuchDeviceError ? new NoSuchDeviceError({ op: 'showTap', target: name }, 'tap', name) : e);
    }
    const kind = link.linkinfo?.info_kind;
    if (kind !== 'tun') throw new CliError(`cannot show tap ${name}: ${name} is a ${kind ?? 'device'}, not a tap`);
    if (link.linkinfo?.info_data?.type === 'tun') throw new CliError(`cannot show tap ${name}: ${name} is a tun device, not a tap`);
    return output(link, values, (v) => tapTable([v]));
  },
};

/** A user or group given by name or number. */
function principal(text: string, kind: 'user' | 'group'): number {
  if (/^\d+$/.test(text)) return integer(text, kind === 'user' ? 'owner' : 'group', 0, 0xfffffffe);
  const db = readUserDb();
  const id = kind === 'user' ? db.user(text)?.uid : db.group(text)?.gid;
  if (id === undefined) throw new UsageError(`no ${kind} "${text}" in /etc/${kind === 'user' ? 'passwd' : 'group'}`);
  return id;
}

/**
 * Whether qbhd answers at `path`: it runs the pinner that makes a sticky guard's MACs static
 * (a socket file alone may be left from a daemon that died).
 */
function qbhdAnswers(path: string): boolean {
  if (!daemonListening(path)) return false;
  try {
    const { reply, fds } = askDaemon({ op: 'check', bridge: null }, { path, timeoutMs: QBHD_CHECK_TIMEOUT_MS });
    for (const fd of fds) native.close(fd);
    return reply.ok;
  } catch (e) {
    if (e instanceof DaemonUnreachableError) return false;
    throw e;
  }
}

/** How long `tap create --guard mac=sticky` waits for qbhd's answer: it answers a check in milliseconds. */
const QBHD_CHECK_TIMEOUT_MS = 5000;

/** The guard of `--guard WORDS` (repeatable, words joined), or a usage error naming the word. */
function guardOption(texts: string[]): PortGuard {
  try {
    return parseGuard(texts.join(' '), 'tap create');
  } catch (e) {
    if (e instanceof InvalidArgumentError) throw new UsageError(e.problem);
    throw e;
  }
}

const createCommand: Command = {
  name: 'tap create',
  summary: 'Create a persistent tap, optionally attached to a bridge (for scripts; remove with `qbh tap delete`).',
  usage: 'qbh tap create NAME [--bridge B [--guard WORDS]... [--daemon-socket PATH]] [--owner U] [--group G] [--queues N] [--vnet-hdr] [-j|--json] [-p|--pretty]',
  options: `  --bridge B    attach it to bridge B (it takes B's MTU and an fe:… MAC, and comes up;
                without --bridge it stays down, as with \`ip tuntap add\`)
  --guard WORDS a port guard, in the words of a bridge.conf guard line (repeatable; the
                words add up): isolated, mac=MAC[,MAC…] or mac=sticky[:N], ip=PREFIX[,…],
                server-guard, bpdu-guard, ethertypes=…, strict. Applied while the tap is
                down, before its first frame; if any part cannot be, no tap is left.
                mac=sticky needs qbhd running (it pins the guest's MACs)
  --daemon-socket PATH
                with --guard mac=sticky: where qbhd answers (default ${DAEMON_SOCKET})
  --owner U     user (name or uid) allowed to open it without CAP_NET_ADMIN
  --group G     group (name or gid) allowed to open it
  --queues N    a multiqueue tap with N queues (1-${MAX_TAP_QUEUES})
  --vnet-hdr    frames carry a virtio-net header (IFF_VNET_HDR), as QEMU's virtio-net wants
  -j, --json    print the tap as JSON (as \`qbh tap list --json\`)
  -p, --pretty  with --json: indented, over several lines

NAME may hold a %d (\`vm%d\`): the kernel picks the lowest free number, and the name it made is
printed.`,
  async run(argv) {
    const { values, args } = parse(
      argv,
      {
        ...JSON_OPTION,
        bridge: { type: 'string' },
        owner: { type: 'string' },
        group: { type: 'string' },
        queues: { type: 'string' },
        'vnet-hdr': { type: 'boolean' },
        guard: { type: 'string', multiple: true },
        'daemon-socket': { type: 'string' },
      },
      { required: ['NAME'] },
    );
    const name = ifname(args[0]!, 'tap name');
    const opts: OpenTapOptions = { name, persist: true, vnetHdr: values['vnet-hdr'] === true, up: values.bridge !== undefined };
    if (values.bridge !== undefined) opts.bridge = ifname(values.bridge, 'bridge name');
    if (values.guard !== undefined) {
      if (values.bridge === undefined) throw new UsageError('--guard needs --bridge: a guard is set on a bridge port');
      const guard = guardOption(values.guard);
      const socket = values['daemon-socket'] ?? DAEMON_SOCKET;
      if (guard.mac === 'sticky' && !qbhdAnswers(socket)) {
        throw new CliError(`cannot create tap ${name}: guard mac=sticky needs qbhd running (it pins the guest's MACs), and none answers at ${socket}; start it (sudo systemctl enable --now qbhd.socket) or list the MACs (mac=52:54:00:12:34:56)`);
      }
      opts.guard = guard;
    }
    if (values.owner !== undefined) opts.owner = principal(values.owner, 'user');
    if (values.group !== undefined) opts.group = principal(values.group, 'group');
    if (values.queues !== undefined) opts.queues = integer(values.queues, 'number of queues', 1, MAX_TAP_QUEUES);
    let made: string;
    try {
      const tap = await openTap(opts);
      made = tap.name;
      closeTap(tap);
    } catch (e) {
      throw cannot(`create tap ${name}`, e);
    }
    const [tap] = (await listLinks({ kind: 'tun' })).filter((l) => l.ifname === made);
    // A template's name is news to the caller; a name given in full is not (mutations are quiet, like ip's).
    return output(tap, values, () => (made !== name ? made : ''));
  },
};

const deleteCommand: Command = {
  name: 'tap delete',
  summary: 'Delete a tap (refuses anything that is not a tap).',
  usage: 'qbh tap delete NAME',
  async run(argv) {
    const { args } = parse(argv, {}, { required: ['NAME'] });
    const name = ifname(args[0]!, 'tap name');
    try {
      await deleteTap(name);
    } catch (e) {
      throw cannot(`delete tap ${name}`, e);
    }
    return output(undefined, false, () => '');
  },
};

export const tapCommands: Command[] = [listCommand, showCommand, createCommand, deleteCommand];
