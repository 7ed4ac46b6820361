/**
 * Kernel constants for netlink and rtnetlink, under their kernel names
 * (include/uapi/linux/netlink.h, rtnetlink.h, if_link.h, if_addr.h, if_tun.h).
 * @module
 */

export const NETLINK_ROUTE = 0;
export const SOL_NETLINK = 270;
export const SOL_SOCKET = 1;
export const SO_RCVBUF = 8;
export const SO_SNDBUF = 7;
export const SO_RCVBUFFORCE = 33;
export const NETLINK_ADD_MEMBERSHIP = 1;
export const NETLINK_DROP_MEMBERSHIP = 2;
export const NETLINK_CAP_ACK = 10;
export const NETLINK_EXT_ACK = 11;
export const NETLINK_GET_STRICT_CHK = 12;

export const NLMSG_HDRLEN = 16;
export const NLA_HDRLEN = 4;
export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = 0x3fff;

export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;

export const NLM_F_REQUEST = 0x01;
export const NLM_F_MULTI = 0x02;
export const NLM_F_ACK = 0x04;
export const NLM_F_ECHO = 0x08;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_DUMP_FILTERED = 0x20;
export const NLM_F_ROOT = 0x100;
export const NLM_F_MATCH = 0x200;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_CAPPED = 0x100;
export const NLM_F_ACK_TLVS = 0x200;

export const NLMSGERR_ATTR_MSG = 1;
export const NLMSGERR_ATTR_OFFS = 2;

export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_SETLINK = 19;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;

export const RTM_NEWNEIGH = 28;
export const RTM_DELNEIGH = 29;
export const RTM_GETNEIGH = 30;
export const RTM_NEWQDISC = 36;
export const RTM_DELQDISC = 37;
export const RTM_GETQDISC = 38;
export const RTM_NEWTFILTER = 44;
export const RTM_DELTFILTER = 45;
export const RTM_GETTFILTER = 46;

export const RTNLGRP_LINK = 1;
export const RTNLGRP_NEIGH = 3;
export const RTNLGRP_IPV4_IFADDR = 5;
export const RTNLGRP_IPV6_IFADDR = 9;

export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_BRIDGE = 7;
export const AF_INET6 = 10;

export const IFF_UP = 0x1;
export const IFF_BROADCAST = 0x2;
export const IFF_LOOPBACK = 0x8;
export const IFF_RUNNING = 0x40;
export const IFF_MULTICAST = 0x1000;

export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_SITE = 200;
export const RT_SCOPE_LINK = 253;
export const RT_SCOPE_HOST = 254;
export const RT_SCOPE_NOWHERE = 255;

/** The largest interface name the kernel accepts, with its NUL: names are at most 15 bytes. */
export const IFNAMSIZ = 16;

/** IFLA_PROTINFO (a bridge port's settings, in an AF_BRIDGE RTM_SETLINK) and IFLA_IFALIAS. */
export const IFLA_PROTINFO = 12;
export const IFLA_IFALIAS = 20;
/** IFLA_BRPORT_* a port guard sets (u8 each). */
export const IFLA_BRPORT_GUARD = 5;
export const IFLA_BRPORT_PROTECT = 6;
export const IFLA_BRPORT_LEARNING = 8;
export const IFLA_BRPORT_ISOLATED = 33;
export const IFLA_BRPORT_LOCKED = 39;
export const IFLA_BRPORT_MAB = 40;

/** struct ifaddrmsg's length and the two address attributes. */
export const IFADDRMSG_LEN = 8;
export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;

/** struct ndmsg's length (include/uapi/linux/neighbour.h): the head of every RTM_*NEIGH body. */
export const NDMSG_LEN = 12;
export const NDA_LLADDR = 2;
export const NDA_VLAN = 5;
export const NDA_MASTER = 9;
export const NDA_FLAGS_EXT = 15;
/** ndm_flags. */
export const NTF_SELF = 0x02;
export const NTF_MASTER = 0x04;
export const NTF_EXT_LEARNED = 0x10;
export const NTF_STICKY = 0x40;
/** NDA_FLAGS_EXT: an FDB entry the bridge made for an unknown source on a locked port with MAB (frames still dropped). */
export const NTF_EXT_LOCKED = 0x02;
/** ndm_state. */
export const NUD_REACHABLE = 0x02;
export const NUD_STALE = 0x04;
export const NUD_NOARP = 0x40;
export const NUD_PERMANENT = 0x80;

/** struct tcmsg's length (include/uapi/linux/rtnetlink.h): the head of every RTM_*QDISC/TFILTER body. */
export const TCMSG_LEN = 20;
export const TCA_KIND = 1;
export const TCA_OPTIONS = 2;
export const TCA_STATS2 = 7;
/** A clsact qdisc's shared ingress filter block (u32 index). */
export const TCA_INGRESS_BLOCK = 13;
/** tcm_ifindex that addresses a shared block (its index then in tcm_parent) rather than a device. */
export const TCM_IFINDEX_MAGIC_BLOCK = 0xffffffff;
export const TCA_STATS_QUEUE = 3;
/** The clsact qdisc: parent TC_H_CLSACT, handle ffff:; its ingress hook is ffff:fff2. */
export const TC_H_CLSACT = 0xfffffff1;
export const TC_H_CLSACT_HANDLE = 0xffff0000;
export const TC_H_CLSACT_INGRESS = 0xfffffff2;
export const TCA_BPF_OPS_LEN = 4;
export const TCA_BPF_OPS = 5;
export const TCA_BPF_FLAGS = 8;
export const TCA_BPF_FLAG_ACT_DIRECT = 1;
/** ETH_P_ALL: a filter for every protocol. */
export const ETH_P_ALL = 0x0003;

/** struct ifinfomsg's length: the fixed head of every RTM_*LINK body. */
export const IFINFOMSG_LEN = 16;
export const IFLA_ADDRESS = 1;
export const IFLA_IFNAME = 3;
export const IFLA_MTU = 4;
export const IFLA_MASTER = 10;
export const IFLA_LINKINFO = 18;
export const IFLA_EXT_MASK = 29;
export const IFLA_PROP_LIST = 52;
export const IFLA_ALT_IFNAME = 53;
export const IFLA_INFO_KIND = 1;
/** IFLA_EXT_MASK: leave the counters out (iproute2's mask for listings that do not print them). */
export const RTEXT_FILTER_SKIP_STATS = 1 << 3;
