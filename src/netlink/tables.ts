/**
 * Declarative attribute tables for the rtnetlink families qbh speaks: one row per kernel attribute
 * (include/uapi/linux/if_link.h, if_addr.h). Adding an attribute is adding a row.
 * @module
 */
import { defineTable, type Decoded } from './attr.js';

/** struct ifla_bridge_id. */
const bridgeId = [
  ['priority', 'be16'],
  ['address', 'mac'],
] as const;

/** IFLA_TUN_*: tun/tap details in IFLA_INFO_DATA (read-only: taps are made with TUNSETIFF). */
export const IFLA_TUN = defineTable('IFLA_TUN', [
  [1, 'IFLA_TUN_OWNER', 'owner', 'u32'],
  [2, 'IFLA_TUN_GROUP', 'group', 'u32'],
  [3, 'IFLA_TUN_TYPE', 'type', 'u8'],
  [4, 'IFLA_TUN_PI', 'pi', 'u8'],
  [5, 'IFLA_TUN_VNET_HDR', 'vnetHdr', 'u8'],
  [6, 'IFLA_TUN_PERSIST', 'persist', 'u8'],
  [7, 'IFLA_TUN_MULTI_QUEUE', 'multiQueue', 'u8'],
  [8, 'IFLA_TUN_NUM_QUEUES', 'numQueues', 'u32'],
  [9, 'IFLA_TUN_NUM_DISABLED_QUEUES', 'numDisabledQueues', 'u32'],
]);

/** IFLA_BR_*: bridge settings in IFLA_INFO_DATA. */
export const IFLA_BR = defineTable('IFLA_BR', [
  [1, 'IFLA_BR_FORWARD_DELAY', 'forwardDelay', 'u32'],
  [2, 'IFLA_BR_HELLO_TIME', 'helloTime', 'u32'],
  [3, 'IFLA_BR_MAX_AGE', 'maxAge', 'u32'],
  [4, 'IFLA_BR_AGEING_TIME', 'ageingTime', 'u32'],
  [5, 'IFLA_BR_STP_STATE', 'stpState', 'u32'],
  [6, 'IFLA_BR_PRIORITY', 'priority', 'u16'],
  [7, 'IFLA_BR_VLAN_FILTERING', 'vlanFiltering', 'u8'],
  [8, 'IFLA_BR_VLAN_PROTOCOL', 'vlanProtocol', 'be16'],
  [9, 'IFLA_BR_GROUP_FWD_MASK', 'groupFwdMask', 'u16'],
  [10, 'IFLA_BR_ROOT_ID', 'rootId', { struct: bridgeId }],
  [11, 'IFLA_BR_BRIDGE_ID', 'bridgeId', { struct: bridgeId }],
  [12, 'IFLA_BR_ROOT_PORT', 'rootPort', 'u16'],
  [13, 'IFLA_BR_ROOT_PATH_COST', 'rootPathCost', 'u32'],
  [14, 'IFLA_BR_TOPOLOGY_CHANGE', 'topologyChange', 'u8'],
  [15, 'IFLA_BR_TOPOLOGY_CHANGE_DETECTED', 'topologyChangeDetected', 'u8'],
  [16, 'IFLA_BR_HELLO_TIMER', 'helloTimer', 'u64'],
  [17, 'IFLA_BR_TCN_TIMER', 'tcnTimer', 'u64'],
  [18, 'IFLA_BR_TOPOLOGY_CHANGE_TIMER', 'topologyChangeTimer', 'u64'],
  [19, 'IFLA_BR_GC_TIMER', 'gcTimer', 'u64'],
  [20, 'IFLA_BR_GROUP_ADDR', 'groupAddr', 'mac'],
  [21, 'IFLA_BR_FDB_FLUSH', 'fdbFlush', 'flag'],
  [22, 'IFLA_BR_MCAST_ROUTER', 'mcastRouter', 'u8'],
  [23, 'IFLA_BR_MCAST_SNOOPING', 'mcastSnooping', 'u8'],
  [24, 'IFLA_BR_MCAST_QUERY_USE_IFADDR', 'mcastQueryUseIfaddr', 'u8'],
  [25, 'IFLA_BR_MCAST_QUERIER', 'mcastQuerier', 'u8'],
  [26, 'IFLA_BR_MCAST_HASH_ELASTICITY', 'mcastHashElasticity', 'u32'],
  [27, 'IFLA_BR_MCAST_HASH_MAX', 'mcastHashMax', 'u32'],
  [28, 'IFLA_BR_MCAST_LAST_MEMBER_CNT', 'mcastLastMemberCnt', 'u32'],
  [29, 'IFLA_BR_MCAST_STARTUP_QUERY_CNT', 'mcastStartupQueryCnt', 'u32'],
  [30, 'IFLA_BR_MCAST_LAST_MEMBER_INTVL', 'mcastLastMemberIntvl', 'u64'],
  [31, 'IFLA_BR_MCAST_MEMBERSHIP_INTVL', 'mcastMembershipIntvl', 'u64'],
  [32, 'IFLA_BR_MCAST_QUERIER_INTVL', 'mcastQuerierIntvl', 'u64'],
  [33, 'IFLA_BR_MCAST_QUERY_INTVL', 'mcastQueryIntvl', 'u64'],
  [34, 'IFLA_BR_MCAST_QUERY_RESPONSE_INTVL', 'mcastQueryResponseIntvl', 'u64'],
  [35, 'IFLA_BR_MCAST_STARTUP_QUERY_INTVL', 'mcastStartupQueryIntvl', 'u64'],
  [36, 'IFLA_BR_NF_CALL_IPTABLES', 'nfCallIptables', 'u8'],
  [37, 'IFLA_BR_NF_CALL_IP6TABLES', 'nfCallIp6tables', 'u8'],
  [38, 'IFLA_BR_NF_CALL_ARPTABLES', 'nfCallArptables', 'u8'],
  [39, 'IFLA_BR_VLAN_DEFAULT_PVID', 'vlanDefaultPvid', 'u16'],
  [41, 'IFLA_BR_VLAN_STATS_ENABLED', 'vlanStatsEnabled', 'u8'],
  [42, 'IFLA_BR_MCAST_STATS_ENABLED', 'mcastStatsEnabled', 'u8'],
  [43, 'IFLA_BR_MCAST_IGMP_VERSION', 'mcastIgmpVersion', 'u8'],
  [44, 'IFLA_BR_MCAST_MLD_VERSION', 'mcastMldVersion', 'u8'],
  [45, 'IFLA_BR_VLAN_STATS_PER_PORT', 'vlanStatsPerPort', 'u8'],
  [46, 'IFLA_BR_MULTI_BOOLOPT', 'multiBoolopt', { struct: [['optval', 'u32'], ['optmask', 'u32']] }],
  [47, 'IFLA_BR_MCAST_QUERIER_STATE', 'mcastQuerierState', 'binary'],
  [48, 'IFLA_BR_FDB_N_LEARNED', 'fdbNLearned', 'u32'],
  [49, 'IFLA_BR_FDB_MAX_LEARNED', 'fdbMaxLearned', 'u32'],
]);

/** IFLA_BRPORT_*: a bridge port's settings (IFLA_INFO_SLAVE_DATA, or IFLA_PROTINFO in AF_BRIDGE). */
export const IFLA_BRPORT = defineTable('IFLA_BRPORT', [
  [1, 'IFLA_BRPORT_STATE', 'state', 'u8'],
  [2, 'IFLA_BRPORT_PRIORITY', 'priority', 'u16'],
  [3, 'IFLA_BRPORT_COST', 'cost', 'u32'],
  [4, 'IFLA_BRPORT_MODE', 'hairpin', 'u8'],
  [5, 'IFLA_BRPORT_GUARD', 'guard', 'u8'],
  [6, 'IFLA_BRPORT_PROTECT', 'rootBlock', 'u8'],
  [7, 'IFLA_BRPORT_FAST_LEAVE', 'fastLeave', 'u8'],
  [8, 'IFLA_BRPORT_LEARNING', 'learning', 'u8'],
  [9, 'IFLA_BRPORT_UNICAST_FLOOD', 'flood', 'u8'],
  [10, 'IFLA_BRPORT_PROXYARP', 'proxyArp', 'u8'],
  [11, 'IFLA_BRPORT_LEARNING_SYNC', 'learningSync', 'u8'],
  [12, 'IFLA_BRPORT_PROXYARP_WIFI', 'proxyArpWifi', 'u8'],
  [13, 'IFLA_BRPORT_ROOT_ID', 'rootId', { struct: bridgeId }],
  [14, 'IFLA_BRPORT_BRIDGE_ID', 'bridgeId', { struct: bridgeId }],
  [15, 'IFLA_BRPORT_DESIGNATED_PORT', 'designatedPort', 'u16'],
  [16, 'IFLA_BRPORT_DESIGNATED_COST', 'designatedCost', 'u16'],
  [17, 'IFLA_BRPORT_ID', 'id', 'u16'],
  [18, 'IFLA_BRPORT_NO', 'no', 'u16'],
  [19, 'IFLA_BRPORT_TOPOLOGY_CHANGE_ACK', 'topologyChangeAck', 'u8'],
  [20, 'IFLA_BRPORT_CONFIG_PENDING', 'configPending', 'u8'],
  [21, 'IFLA_BRPORT_MESSAGE_AGE_TIMER', 'messageAgeTimer', 'u64'],
  [22, 'IFLA_BRPORT_FORWARD_DELAY_TIMER', 'forwardDelayTimer', 'u64'],
  [23, 'IFLA_BRPORT_HOLD_TIMER', 'holdTimer', 'u64'],
  [24, 'IFLA_BRPORT_FLUSH', 'flush', 'flag'],
  [25, 'IFLA_BRPORT_MULTICAST_ROUTER', 'multicastRouter', 'u8'],
  [27, 'IFLA_BRPORT_MCAST_FLOOD', 'mcastFlood', 'u8'],
  [28, 'IFLA_BRPORT_MCAST_TO_UCAST', 'mcastToUnicast', 'u8'],
  [29, 'IFLA_BRPORT_VLAN_TUNNEL', 'vlanTunnel', 'u8'],
  [30, 'IFLA_BRPORT_BCAST_FLOOD', 'bcastFlood', 'u8'],
  [31, 'IFLA_BRPORT_GROUP_FWD_MASK', 'groupFwdMask', 'u16'],
  [32, 'IFLA_BRPORT_NEIGH_SUPPRESS', 'neighSuppress', 'u8'],
  [33, 'IFLA_BRPORT_ISOLATED', 'isolated', 'u8'],
  [34, 'IFLA_BRPORT_BACKUP_PORT', 'backupPort', 'u32'],
  [35, 'IFLA_BRPORT_MRP_RING_OPEN', 'mrpRingOpen', 'u8'],
  [36, 'IFLA_BRPORT_MRP_IN_OPEN', 'mrpInOpen', 'u8'],
  [37, 'IFLA_BRPORT_MCAST_EHT_HOSTS_LIMIT', 'mcastEhtHostsLimit', 'u32'],
  [38, 'IFLA_BRPORT_MCAST_EHT_HOSTS_CNT', 'mcastEhtHostsCnt', 'u32'],
  [39, 'IFLA_BRPORT_LOCKED', 'locked', 'u8'],
  [40, 'IFLA_BRPORT_MAB', 'mab', 'u8'],
  [41, 'IFLA_BRPORT_MCAST_N_GROUPS', 'mcastNGroups', 'u32'],
  [42, 'IFLA_BRPORT_MCAST_MAX_GROUPS', 'mcastMaxGroups', 'u32'],
  [43, 'IFLA_BRPORT_NEIGH_VLAN_SUPPRESS', 'neighVlanSuppress', 'u8'],
  [44, 'IFLA_BRPORT_BACKUP_NHID', 'backupNhid', 'u32'],
]);

/** The IFLA_INFO_DATA tables by IFLA_INFO_KIND (other kinds' data is kept as bytes). */
const INFO_DATA = { bridge: IFLA_BR, tun: IFLA_TUN } as const;

/** IFLA_INFO_*: IFLA_LINKINFO, whose data tables depend on the kind. */
export const IFLA_INFO = defineTable('IFLA_INFO', [
  [1, 'IFLA_INFO_KIND', 'kind', 'string'],
  [2, 'IFLA_INFO_DATA', 'data', { nestedBy: 'kind', tables: INFO_DATA }],
  [3, 'IFLA_INFO_XSTATS', 'xstats', 'binary'],
  [4, 'IFLA_INFO_SLAVE_KIND', 'slaveKind', 'string'],
  [5, 'IFLA_INFO_SLAVE_DATA', 'slaveData', { nestedBy: 'slaveKind', tables: { bridge: IFLA_BRPORT } }],
]);

export const IFLA_INET6 = defineTable('IFLA_INET6', [
  [1, 'IFLA_INET6_FLAGS', 'flags', 'u32'],
  [2, 'IFLA_INET6_CONF', 'conf', 'binary'],
  [3, 'IFLA_INET6_STATS', 'stats', 'binary'],
  [4, 'IFLA_INET6_MCAST', 'mcast', 'binary'],
  [5, 'IFLA_INET6_CACHEINFO', 'cacheinfo', 'binary'],
  [6, 'IFLA_INET6_ICMP6STATS', 'icmp6stats', 'binary'],
  [7, 'IFLA_INET6_TOKEN', 'token', 'binary'],
  [8, 'IFLA_INET6_ADDR_GEN_MODE', 'addrGenMode', 'u8'],
  [9, 'IFLA_INET6_RA_MTU', 'raMtu', 'u32'],
]);

const IFLA_INET = defineTable('IFLA_INET', [[1, 'IFLA_INET_CONF', 'conf', 'binary']]);

const IFLA_PROP = defineTable('IFLA_PROP', [[53, 'IFLA_ALT_IFNAME', 'altIfname', 'string', { multi: true }]]);

const stats64 = (
  [
    'rxPackets', 'txPackets', 'rxBytes', 'txBytes', 'rxErrors', 'txErrors', 'rxDropped', 'txDropped',
    'multicast', 'collisions', 'rxLengthErrors', 'rxOverErrors', 'rxCrcErrors', 'rxFrameErrors',
    'rxFifoErrors', 'rxMissedErrors', 'txAbortedErrors', 'txCarrierErrors', 'txFifoErrors',
    'txHeartbeatErrors', 'txWindowErrors', 'rxCompressed', 'txCompressed',
  ] as const
).map((n) => [n, 'u64'] as const);

/** IFLA_*: the attributes of an RTM_NEWLINK message. */
export const IFLA = defineTable('IFLA', [
  [1, 'IFLA_ADDRESS', 'address', 'mac'],
  [2, 'IFLA_BROADCAST', 'broadcast', 'mac'],
  [3, 'IFLA_IFNAME', 'ifname', 'string'],
  [4, 'IFLA_MTU', 'mtu', 'u32'],
  [5, 'IFLA_LINK', 'link', 'u32'],
  [6, 'IFLA_QDISC', 'qdisc', 'string'],
  [7, 'IFLA_STATS', 'stats', 'binary'],
  [10, 'IFLA_MASTER', 'master', 'u32'],
  [12, 'IFLA_PROTINFO', 'protinfo', { nested: IFLA_BRPORT }],
  [13, 'IFLA_TXQLEN', 'txqlen', 'u32'],
  [14, 'IFLA_MAP', 'map', 'binary'],
  [16, 'IFLA_OPERSTATE', 'operstate', 'u8'],
  [17, 'IFLA_LINKMODE', 'linkmode', 'u8'],
  [18, 'IFLA_LINKINFO', 'linkinfo', { nested: IFLA_INFO }],
  [20, 'IFLA_IFALIAS', 'ifalias', 'string'],
  [21, 'IFLA_NUM_VF', 'numVf', 'u32'],
  [23, 'IFLA_STATS64', 'stats64', { struct: stats64 }],
  [26, 'IFLA_AF_SPEC', 'afSpec', { byType: { 2: IFLA_INET, 10: IFLA_INET6 } }],
  [27, 'IFLA_GROUP', 'group', 'u32'],
  [29, 'IFLA_EXT_MASK', 'extMask', 'u32'],
  [30, 'IFLA_PROMISCUITY', 'promiscuity', 'u32'],
  [31, 'IFLA_NUM_TX_QUEUES', 'numTxQueues', 'u32'],
  [32, 'IFLA_NUM_RX_QUEUES', 'numRxQueues', 'u32'],
  [33, 'IFLA_CARRIER', 'carrier', 'u8'],
  [35, 'IFLA_CARRIER_CHANGES', 'carrierChanges', 'u32'],
  [37, 'IFLA_LINK_NETNSID', 'linkNetnsid', 's32'],
  [39, 'IFLA_PROTO_DOWN', 'protoDown', 'u8'],
  [40, 'IFLA_GSO_MAX_SEGS', 'gsoMaxSegs', 'u32'],
  [41, 'IFLA_GSO_MAX_SIZE', 'gsoMaxSize', 'u32'],
  [43, 'IFLA_XDP', 'xdp', 'binary'],
  [47, 'IFLA_CARRIER_UP_COUNT', 'carrierUpCount', 'u32'],
  [48, 'IFLA_CARRIER_DOWN_COUNT', 'carrierDownCount', 'u32'],
  [50, 'IFLA_MIN_MTU', 'minMtu', 'u32'],
  [51, 'IFLA_MAX_MTU', 'maxMtu', 'u32'],
  [52, 'IFLA_PROP_LIST', 'propList', { nested: IFLA_PROP }],
  [54, 'IFLA_PERM_ADDRESS', 'permAddress', 'mac'],
  [56, 'IFLA_PARENT_DEV_NAME', 'parentDevName', 'string'],
  [57, 'IFLA_PARENT_DEV_BUS_NAME', 'parentDevBusName', 'string'],
  [58, 'IFLA_GRO_MAX_SIZE', 'groMaxSize', 'u32'],
  [59, 'IFLA_TSO_MAX_SIZE', 'tsoMaxSize', 'u32'],
  [60, 'IFLA_TSO_MAX_SEGS', 'tsoMaxSegs', 'u32'],
  [61, 'IFLA_ALLMULTI', 'allmulti', 'u32'],
  [63, 'IFLA_GSO_IPV4_MAX_SIZE', 'gsoIpv4MaxSize', 'u32'],
  [64, 'IFLA_GRO_IPV4_MAX_SIZE', 'groIpv4MaxSize', 'u32'],
]);

/** IFA_*: the attributes of an RTM_NEWADDR message. */
export const IFA = defineTable('IFA', [
  [1, 'IFA_ADDRESS', 'address', 'binary'],
  [2, 'IFA_LOCAL', 'local', 'binary'],
  [3, 'IFA_LABEL', 'label', 'string'],
  [4, 'IFA_BROADCAST', 'broadcast', 'binary'],
  [5, 'IFA_ANYCAST', 'anycast', 'binary'],
  [6, 'IFA_CACHEINFO', 'cacheinfo', { struct: [['preferred', 'u32'], ['valid', 'u32'], ['cstamp', 'u32'], ['tstamp', 'u32']] }],
  [7, 'IFA_MULTICAST', 'multicast', 'binary'],
  [8, 'IFA_FLAGS', 'flags', 'u32'],
  [9, 'IFA_RT_PRIORITY', 'rtPriority', 'u32'],
  [11, 'IFA_PROTO', 'proto', 'u8'],
]);

/** A decoded RTM_NEWLINK attribute set. */
export type LinkAttrs = Decoded<typeof IFLA>;

/** A decoded IFLA_LINKINFO. */
export type LinkInfoAttrs = Decoded<typeof IFLA_INFO>;

/** The IFLA_INFO_DATA tables by IFLA_INFO_KIND. */
type InfoDataTables = typeof INFO_DATA;

/**
 * IFLA_INFO_DATA of a link of kind `kind` (decoded with that kind's table), or undefined when the
 * link is of another kind or has none.
 */
export function infoData<K extends keyof InfoDataTables>(info: { kind?: string; data?: unknown } | undefined, kind: K): Decoded<InfoDataTables[K]> | undefined {
  const data = info?.kind === kind ? info.data : undefined;
  // The decoder chose the table by this same kind (IFLA_INFO's nestedBy row).
  return data === undefined || Buffer.isBuffer(data) ? undefined : (data as Decoded<InfoDataTables[K]>);
}

/** IFLA_INFO_SLAVE_DATA of a bridge port (its IFLA_BRPORT_* settings), or undefined for other links. */
export function bridgePortData(info: { slaveKind?: string; slaveData?: unknown } | undefined): Decoded<typeof IFLA_BRPORT> | undefined {
  const data = info?.slaveKind === 'bridge' ? info.slaveData : undefined;
  // The decoder chose IFLA_BRPORT by this same slave kind.
  return data === undefined || Buffer.isBuffer(data) ? undefined : (data as Decoded<typeof IFLA_BRPORT>);
}

/** A decoded RTM_NEWADDR attribute set. */
export type AddrAttrs = Decoded<typeof IFA>;
