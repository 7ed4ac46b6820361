/**
 * The presenter: turns decoded rtnetlink messages into the objects iproute2 prints with `ip -j -d`
 * and `bridge -j -d` (same snake_case keys, same value formats, so qbh's output compares 1:1), and
 * owns the projections (tables of some of IFLA's rows) a listing decodes with.
 * @module
 */
import { readUserDb, type UserDb } from '../users.js';
import { pickTable, type AttrSet, type Decoded } from './attr.js';
import { AF_INET, AF_INET6, IFF_RUNNING, IFF_UP } from './constants.js';
import { compactor, type Compactable } from './fast-objects.js';
import { decodeLink, type AddrMessage, type LinkMessage } from './message.js';
import { bridgePortData, IFLA, IFLA_BR, IFLA_BRPORT, IFLA_INET6, IFLA_TUN, infoData, type LinkAttrs } from './tables.js';

/**
 * The IFLA_* attributes name lookups need (a link's name, its master, its lower link): read from
 * every message of a link dump before the messages are converted one at a time (see pickAttrs).
 */
export const IFLA_REFS = pickTable('IFLA_REFS', IFLA, ['ifname', 'link', 'master', 'linkNetnsid']);

/** The IFLA_BRPORT_* port flags `bridge -j -d link show` prints, from IFLA_PROTINFO. */
const IFLA_BRPORT_SHOWN = pickTable('IFLA_BRPORT_SHOWN', IFLA_BRPORT, [
  'state', 'priority', 'cost', 'hairpin', 'guard', 'rootBlock', 'fastLeave', 'learning', 'flood', 'mcastFlood',
  'bcastFlood', 'multicastRouter', 'mcastToUnicast', 'neighSuppress', 'neighVlanSuppress', 'vlanTunnel', 'isolated',
  'locked', 'mab',
]);

/**
 * The IFLA_* attributes a listing prints (toLink, toBridgePort), read with pickAttrs; of
 * IFLA_AF_SPEC only inet6's address generation mode (the inet and inet6 configuration arrays,
 * most of a link's bytes, are skipped), of IFLA_PROTINFO the port flags toBridgePort prints.
 * kernelAttributes() still decodes everything, from the bytes.
 */
export const IFLA_SHOWN = pickTable(
  'IFLA_SHOWN',
  IFLA,
  [
    'address', 'broadcast', 'ifname', 'mtu', 'link', 'qdisc', 'master', 'protinfo', 'txqlen', 'operstate', 'linkmode',
    'linkinfo', 'ifalias', 'afSpec', 'group', 'promiscuity', 'numTxQueues', 'numRxQueues', 'linkNetnsid', 'gsoMaxSegs',
    'gsoMaxSize', 'minMtu', 'maxMtu', 'propList', 'parentDevName', 'parentDevBusName', 'groMaxSize', 'tsoMaxSize',
    'tsoMaxSegs', 'allmulti', 'gsoIpv4MaxSize', 'groIpv4MaxSize',
  ],
  {
    afSpec: { byType: { [AF_INET6]: pickTable('IFLA_INET6_SHOWN', IFLA_INET6, ['addrGenMode']) } },
    // IFLA_PROTINFO comes with AF_BRIDGE port dumps: `bridge -j -d link show` prints these.
    protinfo: { nested: IFLA_BRPORT_SHOWN },
  },
);

/**
 * What a bridge port from an AF_BRIDGE dump prints (toBridgePort): its name, MTU, master, lower
 * link and IFLA_PROTINFO. The MAC and operstate the kernel sends with each port are not read
 * (formatting MACs nobody prints is a measurable part of a 10 000-port listing).
 */
export const IFLA_PORT_SHOWN = pickTable('IFLA_PORT_SHOWN', IFLA, ['ifname', 'mtu', 'link', 'master', 'protinfo', 'linkNetnsid'], {
  protinfo: { nested: IFLA_BRPORT_SHOWN },
});

/** What name lookups read of each link of a dump (IFLA_REFS): a full decode has them too. */
export type RefAttrs = Decoded<typeof IFLA_REFS>;
/** What toLink reads: a full decode, or the attributes of IFLA_SHOWN. */
export type ShownLinkAttrs = Decoded<typeof IFLA_SHOWN>;
/** What toBridgePort reads: a full decode, or the attributes of IFLA_PORT_SHOWN. */
export type ShownPortAttrs = Decoded<typeof IFLA_PORT_SHOWN>;

/** A bridge port's STP state, as iproute2 prints it. */
export type PortState = 'disabled' | 'listening' | 'learning' | 'forwarding' | 'blocking';

/** RFC 2863 operational state (IFLA_OPERSTATE), as iproute2 prints it. */
export type OperState = 'UNKNOWN' | 'NOTPRESENT' | 'DOWN' | 'LOWERLAYERDOWN' | 'TESTING' | 'DORMANT' | 'UP';

/** IFLA_LINKMODE, as iproute2 prints it. */
export type LinkMode = 'DEFAULT' | 'DORMANT' | 'TESTING' | 'UNKNOWN';

/**
 * A word of the `flags` array: an IFF_* flag by iproute2's name, `NO-CARRIER` (up without carrier)
 * or `M-DOWN` (the lower device is down).
 */
export type LinkFlag =
  | 'NO-CARRIER'
  | 'LOOPBACK'
  | 'BROADCAST'
  | 'POINTOPOINT'
  | 'MULTICAST'
  | 'NOARP'
  | 'ALLMULTI'
  | 'PROMISC'
  | 'MASTER'
  | 'SLAVE'
  | 'DEBUG'
  | 'DYNAMIC'
  | 'AUTOMEDIA'
  | 'PORTSEL'
  | 'NOTRAILERS'
  | 'UP'
  | 'LOWER_UP'
  | 'DORMANT'
  | 'ECHO'
  | 'M-DOWN';

/**
 * A bridge port's on/off flags (IFLA_BRPORT_*), under the keys iproute2 prints them with in both
 * `bridge -j -d link show` and `ip -j -d link show`'s `info_slave_data`.
 */
export interface BridgePortFlags {
  hairpin?: boolean;
  guard?: boolean;
  root_block?: boolean;
  fastleave?: boolean;
  learning?: boolean;
  flood?: boolean;
  mcast_flood?: boolean;
  bcast_flood?: boolean;
  mcast_to_unicast?: boolean;
  neigh_suppress?: boolean;
  neigh_vlan_suppress?: boolean;
  vlan_tunnel?: boolean;
  isolated?: boolean;
  locked?: boolean;
  mab?: boolean;
}

/** `bridge -j -d link show` objects: one bridge port. */
export interface BridgePort extends BridgePortFlags {
  ifindex: number;
  link?: string;
  ifname: string;
  flags: LinkFlag[];
  mtu: number;
  master: string;
  /** STP state. */
  state: PortState;
  priority: number;
  cost: number;
  mcast_router?: number;
}

/** `linkinfo.info_data` of a bridge (IFLA_BR_*), as `ip -j -d link show type bridge` prints it. */
export interface BridgeInfoData {
  forward_delay?: number;
  hello_time?: number;
  max_age?: number;
  ageing_time?: number;
  stp_state?: number;
  priority?: number;
  vlan_filtering?: number;
  vlan_protocol?: '802.1Q' | '802.1ad';
  /** `8000.aa:48:bb:61:62:62` (octets printed with `%x`, as iproute2 does). */
  bridge_id?: string;
  root_id?: string;
  root_port?: number;
  root_path_cost?: number;
  topology_change?: number;
  topology_change_detected?: number;
  hello_timer?: number;
  tcn_timer?: number;
  topology_change_timer?: number;
  gc_timer?: number;
  fdb_n_learned?: number;
  fdb_max_learned?: number;
  vlan_default_pvid?: number;
  vlan_stats_enabled?: number;
  vlan_stats_per_port?: number;
  /** `0` or `0x…`. */
  group_fwd_mask?: string;
  group_addr?: string;
  mcast_snooping?: number;
  no_linklocal_learn?: number;
  mcast_vlan_snooping?: number;
  mst_enabled?: number;
  mcast_router?: number;
  mcast_query_use_ifaddr?: number;
  mcast_querier?: number;
  mcast_hash_elasticity?: number;
  mcast_hash_max?: number;
  mcast_last_member_cnt?: number;
  mcast_startup_query_cnt?: number;
  mcast_last_member_intvl?: number;
  mcast_membership_intvl?: number;
  mcast_querier_intvl?: number;
  mcast_query_intvl?: number;
  mcast_query_response_intvl?: number;
  mcast_startup_query_intvl?: number;
  mcast_stats_enabled?: number;
  mcast_igmp_version?: number;
  mcast_mld_version?: number;
  nf_call_iptables?: number;
  nf_call_ip6tables?: number;
  nf_call_arptables?: number;
}

/** `linkinfo.info_data` of a tun/tap device (IFLA_TUN_*), as `ip -j -d link show` prints it. */
export interface TunInfoData {
  type: 'tun' | 'tap' | 'unknown';
  pi?: boolean;
  vnet_hdr?: boolean;
  multi_queue?: boolean;
  /** Multiqueue taps only. */
  numqueues?: number;
  numdisabled?: number;
  persist?: boolean;
  /** The owner (TUNSETOWNER) by name, when set. */
  user?: string;
  group?: string;
}

/** `linkinfo.info_slave_data` of a bridge port (IFLA_BRPORT_*), as `ip -j -d link show` prints it. */
export interface BridgePortInfoData extends BridgePortFlags {
  state?: PortState;
  priority?: number;
  cost?: number;
  id?: string;
  no?: string;
  designated_port?: number;
  designated_cost?: number;
  bridge_id?: string;
  root_id?: string;
  hold_timer?: number;
  message_age_timer?: number;
  forward_delay_timer?: number;
  topology_change_ack?: number;
  config_pending?: number;
  proxy_arp?: boolean;
  proxy_arp_wifi?: boolean;
  multicast_router?: number;
  group_fwd_mask?: string;
  group_fwd_mask_str?: string;
  backup_port?: string;
  mcast_n_groups?: number;
  mcast_max_groups?: number;
  mcast_eht_hosts_limit?: number;
  mcast_eht_hosts_cnt?: number;
}

/** The port side of `linkinfo`: present when the link is enslaved (only bridge ports are decoded). */
interface SlaveInfo {
  /** The master's kind, e.g. `bridge` or `bond`. */
  info_slave_kind?: string;
  /** Decoded for bridge ports (`info_slave_kind: 'bridge'`). */
  info_slave_data?: BridgePortInfoData;
}

/** `linkinfo` of a bridge. */
export interface BridgeLinkInfo extends SlaveInfo {
  info_kind: 'bridge';
  info_data?: BridgeInfoData;
}

/** `linkinfo` of a tun/tap device. */
export interface TunLinkInfo extends SlaveInfo {
  info_kind: 'tun';
  info_data?: TunInfoData;
}

/** `linkinfo` of a veth (qbh decodes no veth `info_data`; the peer is the link's `link`). */
export interface VethLinkInfo extends SlaveInfo {
  info_kind: 'veth';
  info_data?: undefined;
}

/** `linkinfo` of any other kind (`vxlan`, `bond`…) or of none: no `info_data` decoded. */
export interface OtherLinkInfo extends SlaveInfo {
  info_kind?: string;
  info_data?: undefined;
}

/**
 * `linkinfo`, typed by `info_kind`: test it (`li.info_kind === 'bridge'`) and `info_data` is the
 * bridge's. Attributes qbh does not name are reachable through {@link kernelAttributes}.
 */
export type LinkInfo = BridgeLinkInfo | TunLinkInfo | VethLinkInfo | OtherLinkInfo;

/**
 * `ip -j -d link show` objects. Only the keys iproute2 prints (and qbh decodes) exist, so a typo
 * such as `link.opperstate` does not compile; attributes without a key here are reachable through
 * {@link kernelAttributes}.
 */
export interface Link {
  ifindex: number;
  link?: string;
  link_index?: number;
  link_netnsid?: number;
  ifname: string;
  flags: LinkFlag[];
  mtu: number;
  qdisc?: string;
  master?: string;
  operstate: OperState;
  linkmode?: LinkMode;
  /** `default` or the group number as a string. */
  group: string;
  txqlen?: number;
  /** ARPHRD type: `ether`, `loopback`, `none`…, or `[N]` for one iproute2 has no name for. */
  link_type: string;
  address?: string;
  broadcast?: string;
  promiscuity?: number;
  allmulti?: number;
  min_mtu?: number;
  max_mtu?: number;
  linkinfo?: LinkInfo;
  inet6_addr_gen_mode?: 'eui64' | 'none' | 'stable_secret' | 'random' | (string & {});
  num_tx_queues?: number;
  num_rx_queues?: number;
  gso_max_size?: number;
  gso_max_segs?: number;
  tso_max_size?: number;
  tso_max_segs?: number;
  gro_max_size?: number;
  gso_ipv4_max_size?: number;
  gro_ipv4_max_size?: number;
  ifalias?: string;
  parentbus?: string;
  parentdev?: string;
  altnames?: string[];
}

/** IFA_F_* flags `ip -j addr` prints as `"name": true`, and `dynamic` (a finite lifetime). */
export type AddrFlag =
  | 'secondary'
  | 'nodad'
  | 'optimistic'
  | 'dadfailed'
  | 'home'
  | 'deprecated'
  | 'tentative'
  | 'mngtmpaddr'
  | 'noprefixroute'
  | 'autojoin'
  | 'stable-privacy'
  | 'dynamic';

/** One `addr_info` entry exactly as `ip -j addr show` prints it. */
export type AddrInfo = {
  family: 'inet' | 'inet6';
  local: string;
  /** The peer address, for point-to-point addresses only. */
  address?: string;
  prefixlen: number;
  broadcast?: string;
  scope: 'global' | 'site' | 'link' | 'host' | 'nowhere' | (string & {});
  label?: string;
  valid_life_time: number;
  preferred_life_time: number;
} & { [F in AddrFlag]?: true };

/**
 * An address with the link it sits on: an `addr_info` entry plus `ifindex` and `ifname` (the keys
 * of the `ip -j addr show` object around it), for flat lists such as {@link Rtnl.listAddresses}.
 */
export type Address = { ifindex: number; ifname: string } & AddrInfo;

/** What the converters need to know about other links (names, flags), by ifindex. */
export type LinkLookup = (ifindex: number) => { ifname: string; flags: number } | undefined;

const OPERSTATES: readonly OperState[] = ['UNKNOWN', 'NOTPRESENT', 'DOWN', 'LOWERLAYERDOWN', 'TESTING', 'DORMANT', 'UP'];
const LINKMODES: readonly LinkMode[] = ['DEFAULT', 'DORMANT', 'TESTING'];
// BR_STATE_DISABLED..BR_STATE_BLOCKING (include/uapi/linux/if_bridge.h): the kernel has no other.
const PORT_STATES: readonly PortState[] = ['disabled', 'listening', 'learning', 'forwarding', 'blocking'];
const portState = (v: number): PortState => PORT_STATES[v] ?? (String(v) as PortState);
const ADDR_GEN_MODES = ['eui64', 'none', 'stable_secret', 'random'];
const LINK_TYPES: Record<number, string> = {
  0: 'netrom', 1: 'ether', 24: 'ieee1394', 32: 'infiniband', 512: 'ppp', 768: 'ipip', 769: 'tunnel6',
  772: 'loopback', 776: 'sit', 778: 'gre', 823: 'ip6gre', 0xfffe: 'none', 0xffff: 'void',
};
/** print_link_flags order (iproute2 ip/ipaddress.c). */
const IFF_NAMES: [number, LinkFlag][] = [
  [0x8, 'LOOPBACK'], [0x2, 'BROADCAST'], [0x10, 'POINTOPOINT'], [0x1000, 'MULTICAST'], [0x80, 'NOARP'],
  [0x200, 'ALLMULTI'], [0x100, 'PROMISC'], [0x400, 'MASTER'], [0x800, 'SLAVE'], [0x4, 'DEBUG'],
  [0x8000, 'DYNAMIC'], [0x4000, 'AUTOMEDIA'], [0x2000, 'PORTSEL'], [0x20, 'NOTRAILERS'], [0x1, 'UP'],
  [0x10000, 'LOWER_UP'], [0x20000, 'DORMANT'], [0x40000, 'ECHO'],
];

/**
 * The names of each `flags` value seen (a listing's links share a handful): a copy of the cached
 * array per link, not the loop over IFF_NAMES (docs/performance.md). Bounded, as the
 * bridge id cache is.
 */
const FLAG_NAMES = new Map<number, readonly LinkFlag[]>();
const FLAG_NAMES_MAX = 64;

/** The `flags` array as iproute2 prints it; `mdown` when the link's lower device is down. */
export function linkFlags(flags: number, mdown = false): LinkFlag[] {
  let names = FLAG_NAMES.get(flags);
  if (names === undefined) {
    names = flagNames(flags);
    if (FLAG_NAMES.size < FLAG_NAMES_MAX) FLAG_NAMES.set(flags, names);
  }
  const out = names.slice();
  if (mdown) out.push('M-DOWN');
  return out;
}

function flagNames(flags: number): LinkFlag[] {
  const out: LinkFlag[] = [];
  if (flags & IFF_UP && !(flags & IFF_RUNNING)) out.push('NO-CARRIER');
  let rest = flags & ~IFF_RUNNING;
  for (const [bit, name] of IFF_NAMES) {
    if (rest & bit) {
      out.push(name);
      rest &= ~bit;
    }
  }
  // Bits iproute2 has no name for print as hex (none of today's kernel flags).
  if (rest) out.push(rest.toString(16) as LinkFlag);
  return out;
}

/** C's `%#llx`: "0" for zero, "0x…" otherwise (how iproute2 prints masks). */
function hex0x(n: number): string {
  return n === 0 ? '0' : `0x${n.toString(16)}`;
}

/** Bridge ids already formatted, by priority and MAC: a bridge's ports all carry the same two. */
const bridgeIds = new Map<string, string>();
/** Bridge ids remembered at most (a machine has a few; a long-lived process sees bridges come and go). */
const BRIDGE_IDS_KEPT = 256;

/**
 * A bridge id as iproute2 prints it: `8000.aa:48:bb:61:62:62`. iproute2 prints the MAC octets
 * with `%x`, so `02` shows as `2`; qbh keeps that form so the two compare 1:1.
 */
function bridgeIdString(id: { priority: number; address: string } | undefined): string | undefined {
  if (!id) return undefined;
  const { priority, address } = id;
  const key = `${priority}.${address}`;
  let s = bridgeIds.get(key);
  if (s === undefined) {
    const mac = address.split(':').map((o) => parseInt(o, 16).toString(16)).join(':');
    s = `${priority.toString(16).padStart(4, '0')}.${mac}`;
    if (bridgeIds.size >= BRIDGE_IDS_KEPT) bridgeIds.clear();
    bridgeIds.set(key, s);
  }
  return s;
}

/** Jiffies in USER_HZ (100) to seconds, as iproute2's `%.2f` timers. */
const timer = (v: number | undefined): number | undefined => (v === undefined ? undefined : Math.round(v) / 100);
const bool = (v: number | undefined): boolean | undefined => (v === undefined ? undefined : v !== 0);

// One copier per object literal below: each drops the undefined fields and keeps the object fast.
// Their keys are checked here: every key of the type, and no other.
const compactBridgeInfo = compactor<BridgeInfoData>();
const compactTunInfo = compactor<TunInfoData>();
const compactPortSlaveInfo = compactor<BridgePortInfoData>();
const compactLinkinfo = compactor<LinkInfo, Compactable<Omit<OtherLinkInfo, 'info_data'>> & { info_data: BridgeInfoData | TunInfoData | undefined }>();
const compactLink = compactor<Link>();
const compactBridgePort = compactor<BridgePort>();

/** IFLA_TUN_OWNER / IFLA_TUN_GROUP of a tap anyone may open: (uid_t)-1, not printed. */
const NO_ID = 0xffffffff;

/** Users and groups, read once (a process prints tap owners from one reading of the files). */
let users: UserDb | undefined;
/** A uid or gid as a name from /etc/passwd or /etc/group, as iproute2 prints tap owners; the number when there is none. */
function idName(kind: 'user' | 'group', id: number): string {
  users ??= readUserDb();
  return (kind === 'user' ? users.userById(id) : users.groupById(id))?.name ?? String(id);
}

function bridgeInfo(d: Decoded<typeof IFLA_BR>): BridgeInfoData {
  const bo = d.multiBoolopt;
  return compactBridgeInfo({
    forward_delay: d.forwardDelay,
    hello_time: d.helloTime,
    max_age: d.maxAge,
    ageing_time: d.ageingTime,
    stp_state: d.stpState,
    priority: d.priority,
    vlan_filtering: d.vlanFiltering,
    vlan_protocol: d.vlanProtocol === undefined ? undefined : d.vlanProtocol === 0x88a8 ? '802.1ad' : '802.1Q',
    bridge_id: bridgeIdString(d.bridgeId),
    root_id: bridgeIdString(d.rootId),
    root_port: d.rootPort,
    root_path_cost: d.rootPathCost,
    topology_change: d.topologyChange,
    topology_change_detected: d.topologyChangeDetected,
    hello_timer: timer(d.helloTimer),
    tcn_timer: timer(d.tcnTimer),
    topology_change_timer: timer(d.topologyChangeTimer),
    gc_timer: timer(d.gcTimer),
    fdb_n_learned: d.fdbNLearned,
    fdb_max_learned: d.fdbMaxLearned,
    vlan_default_pvid: d.vlanDefaultPvid,
    vlan_stats_enabled: d.vlanStatsEnabled,
    vlan_stats_per_port: d.vlanStatsPerPort,
    group_fwd_mask: typeof d.groupFwdMask === 'number' ? hex0x(d.groupFwdMask) : undefined,
    group_addr: d.groupAddr,
    mcast_snooping: d.mcastSnooping,
    no_linklocal_learn: bo ? bo.optval & 1 : undefined,
    mcast_vlan_snooping: bo ? (bo.optval >> 1) & 1 : undefined,
    mst_enabled: bo && bo.optmask & 4 ? (bo.optval >> 2) & 1 : undefined,
    mcast_router: d.mcastRouter,
    mcast_query_use_ifaddr: d.mcastQueryUseIfaddr,
    mcast_querier: d.mcastQuerier,
    mcast_hash_elasticity: d.mcastHashElasticity,
    mcast_hash_max: d.mcastHashMax,
    mcast_last_member_cnt: d.mcastLastMemberCnt,
    mcast_startup_query_cnt: d.mcastStartupQueryCnt,
    mcast_last_member_intvl: d.mcastLastMemberIntvl,
    mcast_membership_intvl: d.mcastMembershipIntvl,
    mcast_querier_intvl: d.mcastQuerierIntvl,
    mcast_query_intvl: d.mcastQueryIntvl,
    mcast_query_response_intvl: d.mcastQueryResponseIntvl,
    mcast_startup_query_intvl: d.mcastStartupQueryIntvl,
    mcast_stats_enabled: d.mcastStatsEnabled,
    mcast_igmp_version: d.mcastIgmpVersion,
    mcast_mld_version: d.mcastMldVersion,
    nf_call_iptables: d.nfCallIptables,
    nf_call_ip6tables: d.nfCallIp6tables,
    nf_call_arptables: d.nfCallArptables,
  });
}

function tunInfo(d: Decoded<typeof IFLA_TUN>): TunInfoData {
  const multi = bool(d.multiQueue);
  return compactTunInfo({
    type: d.type === 1 ? 'tun' : d.type === 2 ? 'tap' : 'unknown',
    pi: bool(d.pi),
    vnet_hdr: bool(d.vnetHdr),
    multi_queue: multi,
    numqueues: multi ? d.numQueues : undefined,
    numdisabled: multi ? d.numDisabledQueues : undefined,
    persist: bool(d.persist),
    user: d.owner !== undefined && d.owner !== NO_ID ? idName('user', d.owner) : undefined,
    group: d.group !== undefined && d.group !== NO_ID ? idName('group', d.group) : undefined,
  });
}

/** IFLA_BRPORT_* as `ip -d link` prints them in info_slave_data. */
function portSlaveInfo(d: Decoded<typeof IFLA_BRPORT>, lookup: LinkLookup): BridgePortInfoData {
  return compactPortSlaveInfo({
    state: typeof d.state === 'number' ? portState(d.state) : undefined,
    priority: d.priority,
    cost: d.cost,
    hairpin: bool(d.hairpin),
    guard: bool(d.guard),
    root_block: bool(d.rootBlock),
    fastleave: bool(d.fastLeave),
    learning: bool(d.learning),
    flood: bool(d.flood),
    id: typeof d.id === 'number' ? hex0x(d.id) : undefined,
    no: typeof d.no === 'number' ? hex0x(d.no) : undefined,
    designated_port: d.designatedPort,
    designated_cost: d.designatedCost,
    bridge_id: bridgeIdString(d.bridgeId),
    root_id: bridgeIdString(d.rootId),
    hold_timer: timer(d.holdTimer),
    message_age_timer: timer(d.messageAgeTimer),
    forward_delay_timer: timer(d.forwardDelayTimer),
    topology_change_ack: d.topologyChangeAck,
    config_pending: d.configPending,
    proxy_arp: bool(d.proxyArp),
    proxy_arp_wifi: bool(d.proxyArpWifi),
    multicast_router: d.multicastRouter,
    mcast_flood: bool(d.mcastFlood),
    bcast_flood: bool(d.bcastFlood),
    mcast_to_unicast: bool(d.mcastToUnicast),
    neigh_suppress: bool(d.neighSuppress),
    neigh_vlan_suppress: bool(d.neighVlanSuppress),
    group_fwd_mask: typeof d.groupFwdMask === 'number' ? hex0x(d.groupFwdMask) : undefined,
    group_fwd_mask_str: typeof d.groupFwdMask === 'number' ? `0x${d.groupFwdMask.toString(16)}` : undefined,
    vlan_tunnel: bool(d.vlanTunnel),
    isolated: bool(d.isolated),
    locked: bool(d.locked),
    mab: bool(d.mab),
    backup_port: typeof d.backupPort === 'number' ? lookup(d.backupPort)?.ifname ?? `if${d.backupPort}` : undefined,
    mcast_n_groups: d.mcastNGroups,
    mcast_max_groups: d.mcastMaxGroups,
    mcast_eht_hosts_limit: d.mcastEhtHostsLimit,
    mcast_eht_hosts_cnt: d.mcastEhtHostsCnt,
  });
}

function nameOf(lookup: LinkLookup, ifindex: number): string {
  return lookup(ifindex)?.ifname ?? `if${ifindex}`;
}

/** The `link` / `link_index` / M-DOWN part that ip derives from IFLA_LINK. */
function lowerLink(m: LinkMessage<{ link?: number; linkNetnsid?: number }>, lookup: LinkLookup): { fields: Partial<Link>; mdown: boolean } {
  const a = m.attrs;
  const lower = a.link;
  if (!lower || lower === m.index) return { fields: {}, mdown: false };
  if (a.linkNetnsid !== undefined) return { fields: { link_index: lower }, mdown: false };
  const peer = lookup(lower);
  return { fields: { link: peer?.ifname ?? `if${lower}` }, mdown: peer ? !(peer.flags & IFF_UP) : false };
}

/**
 * What each object was made from: the ifinfomsg body of its RTM_NEWLINK (a listing's link, whose
 * attributes were only picked: decoded in full on the first {@link kernelAttributes} call), or
 * the decoded attribute set itself.
 */
const KERNEL_ATTRIBUTES = new WeakMap<object, AttrSet | Buffer>();

/**
 * Records what `obj` was made from, for {@link kernelAttributes}: an RTM_NEWLINK's IFLA_* set,
 * or the ifinfomsg body they are in. @internal
 */
export function remember<T extends object>(obj: T, from: AttrSet | Buffer): T {
  KERNEL_ATTRIBUTES.set(obj, from);
  return obj;
}

/**
 * The escape hatch for attributes a {@link Link} or {@link BridgePort} has no key for: the decoded
 * RTM_NEWLINK attributes it was made from, by qbh's table names (`mtu`, `linkinfo.data`…, camelCase),
 * with attributes the tables do not know under `unknown` as raw `{ type, data }`. Undefined for
 * objects qbh did not make (copies included: the link is remembered by identity, not by value).
 * No iproute2 equivalent (`ip -d` prints what it knows; this is everything the kernel sent).
 * @category Links and bridges
 */
export function kernelAttributes(obj: Link | BridgePort): Readonly<LinkAttrs> | undefined {
  const kept = KERNEL_ATTRIBUTES.get(obj);
  // A set is remembered only when it is a full IFLA decode (a projection's link brings its body).
  if (!Buffer.isBuffer(kept)) return kept as LinkAttrs | undefined;
  const attrs = decodeLink(kept).attrs;
  KERNEL_ATTRIBUTES.set(obj, attrs);
  return attrs;
}

/** An RTM_NEWLINK message as `ip -j -d link show` prints it. */
export function toLink(m: LinkMessage<ShownLinkAttrs>, lookup: LinkLookup): Link {
  const a = m.attrs;
  const { fields, mdown } = lowerLink(m, lookup);
  const li = a.linkinfo;
  let linkinfo: Link['linkinfo'];
  if (li) {
    const bridge = infoData(li, 'bridge');
    const tun = infoData(li, 'tun');
    const slave = bridgePortData(li);
    linkinfo = compactLinkinfo({
      info_kind: li.kind,
      info_data: bridge ? bridgeInfo(bridge) : tun ? tunInfo(tun) : undefined,
      info_slave_kind: li.slaveKind,
      info_slave_data: slave ? portSlaveInfo(slave, lookup) : undefined,
    });
  }
  const genMode = a.afSpec?.[AF_INET6]?.addrGenMode;
  return remember(compactLink({
    ifindex: m.index,
    link: fields.link,
    link_index: fields.link_index,
    ifname: a.ifname,
    flags: linkFlags(m.flags, mdown),
    mtu: a.mtu,
    qdisc: a.qdisc,
    master: a.master !== undefined ? nameOf(lookup, a.master) : undefined,
    operstate: OPERSTATES[a.operstate ?? 0] ?? 'UNKNOWN',
    linkmode: a.linkmode !== undefined ? LINKMODES[a.linkmode] ?? 'UNKNOWN' : undefined,
    group: !a.group ? 'default' : String(a.group),
    txqlen: a.txqlen,
    link_type: LINK_TYPES[m.type] ?? `[${m.type}]`,
    address: a.address,
    broadcast: a.broadcast,
    link_netnsid: a.linkNetnsid,
    promiscuity: a.promiscuity,
    allmulti: a.allmulti,
    min_mtu: a.minMtu,
    max_mtu: a.maxMtu,
    linkinfo,
    inet6_addr_gen_mode: genMode === undefined ? undefined : ADDR_GEN_MODES[genMode] ?? String(genMode),
    num_tx_queues: a.numTxQueues,
    num_rx_queues: a.numRxQueues,
    gso_max_size: a.gsoMaxSize,
    gso_max_segs: a.gsoMaxSegs,
    tso_max_size: a.tsoMaxSize,
    tso_max_segs: a.tsoMaxSegs,
    gro_max_size: a.groMaxSize,
    gso_ipv4_max_size: a.gsoIpv4MaxSize,
    gro_ipv4_max_size: a.groIpv4MaxSize,
    ifalias: a.ifalias,
    parentbus: a.parentDevBusName,
    parentdev: a.parentDevName,
    altnames: a.propList?.altIfname?.slice(),
  }), m.body ?? a);
}

/** An AF_BRIDGE RTM_NEWLINK (a port) as `bridge -j -d link show` prints it. */
export function toBridgePort(m: LinkMessage<ShownPortAttrs>, lookup: LinkLookup): BridgePort {
  const a = m.attrs;
  const p = a.protinfo ?? {};
  const { fields, mdown } = lowerLink(m, lookup);
  return remember(compactBridgePort({
    ifindex: m.index,
    link: fields.link,
    ifname: a.ifname,
    flags: linkFlags(m.flags, mdown),
    mtu: a.mtu,
    master: a.master !== undefined ? nameOf(lookup, a.master) : '',
    state: p.state !== undefined ? portState(p.state) : 'disabled',
    priority: p.priority,
    cost: p.cost,
    hairpin: bool(p.hairpin),
    guard: bool(p.guard),
    root_block: bool(p.rootBlock),
    fastleave: bool(p.fastLeave),
    learning: bool(p.learning),
    flood: bool(p.flood),
    mcast_flood: bool(p.mcastFlood),
    bcast_flood: bool(p.bcastFlood),
    mcast_router: p.multicastRouter,
    mcast_to_unicast: bool(p.mcastToUnicast),
    neigh_suppress: bool(p.neighSuppress),
    neigh_vlan_suppress: bool(p.neighVlanSuppress),
    vlan_tunnel: bool(p.vlanTunnel),
    isolated: bool(p.isolated),
    locked: bool(p.locked),
    mab: bool(p.mab),
  }), m.body ?? a);
}

/** An address lifetime that never ends (INFINITY_LIFE_TIME in the kernel). */
const INFINITY_LIFE_TIME = 0xffffffff;

const SCOPES: Record<number, string> = { 0: 'global', 200: 'site', 253: 'link', 254: 'host', 255: 'nowhere' };
/** IFA_F_* flags that `ip -j addr` prints as `"name": true`, in its order. */
const IFA_FLAGS: [number, AddrFlag | 'permanent'][] = [
  [0x01, 'secondary'], [0x02, 'nodad'], [0x04, 'optimistic'], [0x08, 'dadfailed'], [0x10, 'home'],
  [0x20, 'deprecated'], [0x40, 'tentative'], [0x80, 'permanent'], [0x100, 'mngtmpaddr'],
  [0x200, 'noprefixroute'], [0x400, 'autojoin'], [0x800, 'stable-privacy'],
];

/** Formats a 4- or 16-byte address. */
export function ipString(b: Buffer): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const groups: number[] = [];
  for (let i = 0; i + 1 < b.length; i += 2) groups.push(b.readUInt16BE(i));
  // RFC 5952: collapse the longest run (≥2) of zero groups.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hexes = groups.map((g) => g.toString(16));
  if (best < 0) return hexes.join(':');
  return `${hexes.slice(0, best).join(':')}::${hexes.slice(best + bestLen).join(':')}`;
}

/** An RTM_NEWADDR message as an `addr_info` entry, exactly as `ip -j addr show` prints it. */
export function toAddrInfo(m: AddrMessage): AddrInfo {
  const a = m.attrs;
  const local = a.local ?? a.address;
  const peer = a.local && a.address && !a.address.equals(a.local) ? a.address : undefined;
  const flags = a.flags ?? m.flags;
  const out: AddrInfo = {
    family: m.family === AF_INET ? 'inet' : 'inet6',
    local: local ? ipString(local) : '',
    prefixlen: m.prefixlen,
    scope: SCOPES[m.scope] ?? String(m.scope),
    valid_life_time: 0,
    preferred_life_time: 0,
  };
  if (peer) out.address = ipString(peer);
  if (a.broadcast) out.broadcast = ipString(a.broadcast);
  // ip prints "dynamic" when the address has a finite lifetime, not from a flag.
  const ci = a.cacheinfo;
  if (ci && ci.valid !== INFINITY_LIFE_TIME) out.dynamic = true;
  for (const [bit, name] of IFA_FLAGS) if (flags & bit && name !== 'permanent') out[name] = true;
  if (a.label) out.label = a.label;
  out.valid_life_time = ci?.valid ?? INFINITY_LIFE_TIME;
  out.preferred_life_time = ci?.preferred ?? INFINITY_LIFE_TIME;
  return out;
}

/** An RTM_NEWADDR message as an `addr_info` entry with its link (`ifindex`, `ifname`) in front. */
export function toAddress(m: AddrMessage, lookup: LinkLookup): Address {
  return { ifindex: m.index, ifname: nameOf(lookup, m.index), ...toAddrInfo(m) };
}

export { AF_INET, AF_INET6 };
