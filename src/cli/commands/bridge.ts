/**
 * `qbh bridge …`: list, show, create, delete, attach, detach. Each parses argv, calls the public
 * API and returns the object it printed (`ip -j -d link show type bridge` objects with `ports` as
 * `bridge -j -d link show` prints them and `addr_info` as `ip -j addr show` does).
 * @module
 */
import {
  AddressError,
  BridgeNotEmptyError,
  createBridge,
  deleteBridge,
  getBridge,
  getLink,
  listBridges,
  NetlinkError,
  setLink,
  type AddrInfo,
  type Bridge,
  type BridgePort,
} from '../../index.js';
import { cidr, ifname, integer, JSON_OPTION, mac, parse } from '../args.js';
import { output, type Command } from '../command.js';
import { cannot, CliError, describeCause, UsageError } from '../errors.js';
import { formatTable, progress } from '../io.js';
import { BRIDGE_MAX_MTU, BRIDGE_MIN_MTU } from '../../netlink/validate.js';
import { native } from '../../native.js';
import { openRouteSocket } from '../../netlink/wire.js';
import { guardText, portGuardsSync, type PortGuardState } from '../../guard/state.js';

/** A port as `qbh bridge list --json` prints it: iproute2's object, and `qbh_guard` on a guarded port. */
export type BridgePortJson = BridgePort & { qbh_guard?: PortGuardState };

/** A bridge as `qbh bridge list --json` prints it: the API's object, its guarded ports with their guard. */
export type BridgeJson = Bridge & { ports: BridgePortJson[] };

/**
 * The JSON form of a bridge: the API object, whose keys are iproute2's already, each guarded port
 * with its `qbh_guard` (from `guards`, by ifindex).
 */
export function bridgeJson(b: Bridge, guards?: ReadonlyMap<number, PortGuardState>): BridgeJson {
  if (guards === undefined || guards.size === 0) return b;
  return { ...b, ports: b.ports.map((p) => withGuard(p, guards.get(p.ifindex))) };
}

function withGuard(p: BridgePort, g: PortGuardState | undefined): BridgePortJson {
  return g === undefined ? p : { ...p, qbh_guard: g };
}

/** The guard of each guarded port (of the bridge `master`, or of every bridge), read in one pass. */
function readGuards(action: string, master?: number): Map<number, PortGuardState> {
  let fd: number | undefined;
  try {
    fd = openRouteSocket().fd;
    return portGuardsSync(fd, master !== undefined ? { master } : {});
  } catch (e) {
    throw cannot(action, e);
  } finally {
    if (fd !== undefined) native.close(fd);
  }
}

const cidrText = (a: AddrInfo) => `${a.local}/${a.prefixlen}`;
const stpText = (b: BridgeJson) => (b.linkinfo?.info_data?.stp_state ? 'on' : 'off');

function portLines(ports: BridgePortJson[], indent: string): string[] {
  return ports.flatMap((p) => [
    `${indent}${p.ifname}  ${p.state}  ${p.flags.includes('UP') ? 'up' : 'down'}  mtu ${p.mtu}  priority ${p.priority}  cost ${p.cost}`,
    ...(p.qbh_guard !== undefined ? [`${indent}  ${guardText(p.qbh_guard)}`] : []),
  ]);
}

/** The bridge table: name, state, MTU, MAC, STP, addresses, ports; with details, a line per port. */
export function bridgeTable(bridges: BridgeJson[], details = false): string {
  if (bridges.length === 0) return '';
  if (!details) {
    return formatTable(
      ['NAME', 'STATE', 'MTU', 'MAC', 'STP', 'ADDRESSES', 'PORTS'],
      bridges.map((b) => [
        b.ifname,
        b.operstate,
        String(b.mtu),
        b.address ?? '-',
        stpText(b),
        b.addr_info.map(cidrText).join(',') || '-',
        b.ports.map((p) => p.ifname).join(',') || '-',
      ]),
    );
  }
  return bridges.map((b) => bridgeDetails(b)).join('\n');
}

function bridgeDetails(b: BridgeJson): string {
  const d = b.linkinfo?.info_data ?? {};
  const lines = [
    `${b.ifname}: ${b.operstate}  mtu ${b.mtu}  mac ${b.address ?? '-'}  stp ${stpText(b)}`,
    `  flags ${b.flags.join(',') || '-'}  bridge_id ${String(d.bridge_id ?? '-')}  forward_delay ${String(d.forward_delay ?? '-')}  ageing_time ${String(d.ageing_time ?? '-')}  vlan_filtering ${String(d.vlan_filtering ?? '-')}`,
    `  addresses ${b.addr_info.map(cidrText).join(' ') || '-'}`,
    `  ports ${b.ports.length}`,
    ...portLines(b.ports, '    '),
  ];
  return lines.join('\n') + '\n';
}

const listCommand: Command = {
  name: 'bridge list',
  summary: 'List every bridge with its state, addresses and ports.',
  usage: 'qbh bridge list [-j|--json] [-p|--pretty] [-d|--details]',
  options: `  -j, --json      print the bridges as JSON (the objects of \`ip -j -d link show type bridge\`,
                  each with "ports" as \`bridge -j -d link show\` and "addr_info" as \`ip -j addr show\`;
                  a guarded port has "qbh_guard": {words, flags, pinned, pending, filter, drops})
  -p, --pretty    with --json: indented, over several lines (default: one line, as \`ip -j\`)
  -d, --details   one block per bridge with a line per port; under a guarded port, its guard:
                  words, port flags, pinned MACs, MACs pending (locked), filter, drops

With no bridge, it prints "no bridges" on a terminal and nothing on a pipe (as ip does); --json
prints []. Also \`qbh bridge ls\`, \`qbh bridge show\` without NAME, or \`qbh bridge\` alone.`,
  async run(argv, io) {
    const { values } = parse(argv, { ...JSON_OPTION, details: { type: 'boolean', short: 'd' } }, { required: [] });
    return listOutput(values, io);
  },
};

async function listOutput(values: { json?: boolean | undefined; pretty?: boolean | undefined; details?: boolean | undefined }, io: { stdoutIsTTY: boolean }) {
  let bridges: Bridge[];
  try {
    bridges = await listBridges();
  } catch (e) {
    throw cannot('list bridges', e);
  }
  const details = values.details === true;
  // The guards are read only where they are printed: the JSON and the details.
  const guards = details || values.json ? readGuards('list bridges') : undefined;
  // None: a person at a terminal is told so; a pipe gets nothing, as from `ip link show type bridge`.
  const none = io.stdoutIsTTY ? 'no bridges\n' : '';
  return output(bridges.map((b) => bridgeJson(b, guards)), values, (v) => (v.length === 0 ? none : bridgeTable(v, details)));
}

/**
 * Fetches a bridge for `action`. A missing bridge and a device that is not one read as the API
 * words them (`bridge br9 does not exist`, `v0 is a veth, not a bridge`): see {@link cannot}.
 */
async function fetchBridge(name: string, action: string): Promise<Bridge> {
  try {
    return await getBridge(name);
  } catch (e) {
    throw cannot(action, e);
  }
}

const showCommand: Command = {
  name: 'bridge show',
  summary: 'Show one bridge: its settings, addresses and ports.',
  usage: 'qbh bridge show [NAME] [-j|--json] [-p|--pretty] [-d|--details]',
  options: `  -j, --json     print the bridge as JSON (one object, as in \`qbh bridge list --json\`)
  -p, --pretty   with --json: indented, over several lines (default: one line, as \`ip -j\`)
  -d, --details  without NAME: as \`qbh bridge list --details\`

Each guarded port shows its guard (as \`qbh bridge list --details\` and \`--json\` do).

Without NAME, every bridge, as \`qbh bridge list\` (\`ip link show\` lists them all too).`,
  async run(argv, io) {
    const { values, args } = parse(argv, { ...JSON_OPTION, details: { type: 'boolean', short: 'd' } }, { required: [], optional: ['NAME'] });
    if (args[0] === undefined) return listOutput(values, io);
    const name = ifname(args[0], 'bridge name');
    const action = `show bridge ${name}`;
    const bridge = await fetchBridge(name, action);
    const b = bridgeJson(bridge, readGuards(action, bridge.ifindex));
    return output(b, values, (v) => bridgeDetails(v));
  },
};

const createCommand: Command = {
  name: 'bridge create',
  summary: 'Create a bridge, up unless --down; with --address, add addresses (all or nothing).',
  usage: 'qbh bridge create NAME [--mtu N] [--address CIDR]... [--mac MAC | --no-persistent-mac] [--stp] [--down] [--exist-ok] [-j|--json] [-p|--pretty]',
  options: `  --mtu N           MTU of the bridge, ${BRIDGE_MIN_MTU}-${BRIDGE_MAX_MTU}
  --address CIDR    add an IPv4 or IPv6 address (repeatable), e.g. 10.0.0.1/24; without a
                    prefix length it is a host address (/32 or /128), as with \`ip addr add\`
  --mac MAC         MAC address, aa:bb:cc:dd:ee:ff (default: derived from /etc/machine-id and
                    NAME, the same every time this bridge is created on this machine)
  --no-persistent-mac
                    let the kernel pick the MAC: the lowest of the bridge's ports, so it changes
                    as ports come and go
  --stp             turn on the kernel's spanning tree protocol
  --down            leave the bridge down
  --exist-ok        succeed if a bridge of that name exists with the --mtu, --mac and --stp given
                    (one with other settings is refused, naming them, and left as it is; up or
                    down is not compared); missing addresses are added
  -j, --json        print the bridge as JSON
  -p, --pretty      with --json: indented, over several lines

If an address cannot be added, nothing is left half-made: a bridge this command created is deleted
again, addresses it added to an existing one (--exist-ok) are removed again.`,
  async run(argv) {
    const { values, args } = parse(
      argv,
      {
        ...JSON_OPTION,
        mtu: { type: 'string' },
        address: { type: 'string', multiple: true },
        mac: { type: 'string' },
        'no-persistent-mac': { type: 'boolean' },
        stp: { type: 'boolean' },
        down: { type: 'boolean' },
        'exist-ok': { type: 'boolean' },
      },
      { required: ['NAME'] },
    );
    const name = ifname(args[0]!, 'bridge name');
    if (values.mac !== undefined && values['no-persistent-mac']) throw new UsageError('--mac and --no-persistent-mac exclude each other');
    const opts = {
      up: values.down !== true,
      ...(values.mtu !== undefined ? { mtu: integer(values.mtu, 'MTU', BRIDGE_MIN_MTU, BRIDGE_MAX_MTU) } : {}),
      ...(values.mac !== undefined ? { address: mac(values.mac) } : {}),
      ...(values['no-persistent-mac'] ? { persistentMac: false } : {}),
      ...(values.stp ? { stp: true } : {}),
    };
    const addresses = (values.address ?? []).map(cidr);
    let b: Bridge;
    try {
      b = await createBridge(name, { ...opts, addresses, existOk: values['exist-ok'] === true });
    } catch (e) {
      // An address that failed: the kernel's refusal, then what was undone.
      if (e instanceof AddressError) {
        throw new CliError(`cannot add address ${e.address} to bridge ${name}: ${describeCause(e)}${e.undone !== undefined ? `; ${e.undone}` : ''}`);
      }
      // The name is held by a device of another kind, or (--exist-ok) by a bridge with other
      // settings: qbh's own words, without the errno's.
      if (e instanceof NetlinkError && e.code === 'EEXIST' && e.detail !== undefined) {
        throw new CliError(`cannot create bridge ${name}: ${e.detail}`);
      }
      throw cannot(`create bridge ${name}`, e);
    }
    return output(b, values, () => '');
  },
};

const deleteCommand: Command = {
  name: 'bridge delete',
  summary: 'Delete a bridge. A bridge that still has ports is refused unless --force or --with-ports.',
  usage: 'qbh bridge delete NAME [--force] [--with-ports]',
  options: `  --force        delete it even with ports; they are released, not deleted
  --with-ports   delete its ports (taps, veths…) too, in one kernel request`,
  async run(argv, io) {
    const { values, args } = parse(argv, { force: { type: 'boolean' }, 'with-ports': { type: 'boolean' } }, { required: ['NAME'] });
    const name = ifname(args[0]!, 'bridge name');
    const action = `delete bridge ${name}`;
    const b = await fetchBridge(name, action);
    const withPorts = values['with-ports'] === true;
    const p = withPorts && b.ports.length > 0 ? progress(io, `deleting bridge ${name} and its ${b.ports.length} ports`) : undefined;
    try {
      await deleteBridge(name, { withPorts, force: values.force === true });
    } catch (e) {
      p?.done('failed');
      // The API's refusal, in the words of this command's options.
      if (e instanceof BridgeNotEmptyError) throw new CliError(new BridgeNotEmptyError(name, e.ports, { force: '--force', withPorts: '--with-ports' }).message);
      throw cannot(action, e);
    }
    p?.done();
    return output(undefined, false, () => '');
  },
};

const attachCommand: Command = {
  name: 'bridge attach',
  summary: 'Make an interface a port of a bridge.',
  usage: 'qbh bridge attach BRIDGE IFACE',
  async run(argv) {
    const { args } = parse(argv, {}, { required: ['BRIDGE', 'IFACE'] });
    const bridge = ifname(args[0]!, 'bridge name');
    const iface = ifname(args[1]!);
    const action = `attach ${iface} to bridge ${bridge}`;
    await fetchBridge(bridge, action);
    await mustExist(iface, action);
    try {
      await setLink(iface, { master: bridge });
    } catch (e) {
      throw cannot(action, e);
    }
    return output(undefined, false, () => '');
  },
};

async function mustExist(iface: string, action: string) {
  try {
    return await getLink(iface);
  } catch (e) {
    throw cannot(action, e);
  }
}

const detachCommand: Command = {
  name: 'bridge detach',
  summary: 'Release an interface from its bridge.',
  usage: 'qbh bridge detach IFACE',
  async run(argv) {
    const { args } = parse(argv, {}, { required: ['IFACE'] });
    const iface = ifname(args[0]!);
    const action = `detach ${iface}`;
    const link = await mustExist(iface, action);
    if (link.master === undefined) throw new CliError(`cannot ${action}: it is not attached to a bridge`);
    try {
      await setLink(iface, { master: null });
    } catch (e) {
      throw cannot(`${action} from bridge ${link.master}`, e);
    }
    return output(undefined, false, () => '');
  },
};

export const bridgeCommands: Command[] = [listCommand, showCommand, createCommand, deleteCommand, attachCommand, detachCommand];
