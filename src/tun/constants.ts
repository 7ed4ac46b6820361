/**
 * /dev/net/tun ioctl requests and flags (include/uapi/linux/if_tun.h, linux/sockios.h).
 * @module
 */

/** Where the tun/tap character device lives. */
export const TUN_PATH = '/dev/net/tun';

// _IOW('T', 202, int) and friends, spelled out for x86-64/arm64 (the asm-generic ioctl layout).
export const TUNSETIFF = 0x400454ca;
export const TUNSETPERSIST = 0x400454cb;
export const TUNSETOWNER = 0x400454cc;
export const TUNSETGROUP = 0x400454ce;
export const TUNGETFEATURES = 0x800454cf;
export const TUNGETIFF = 0x800454d2;


// ifr_flags of TUNSETIFF / TUNGETIFF / TUNGETFEATURES.
export const IFF_TUN = 0x0001;
export const IFF_TAP = 0x0002;
export const IFF_NAPI = 0x0010;
export const IFF_NAPI_FRAGS = 0x0020;
export const IFF_MULTI_QUEUE = 0x0100;
export const IFF_ATTACH_QUEUE = 0x0200;
export const IFF_DETACH_QUEUE = 0x0400;
export const IFF_PERSIST = 0x0800;
export const IFF_NO_PI = 0x1000;
export const IFF_ONE_QUEUE = 0x2000;
export const IFF_VNET_HDR = 0x4000;
/** Fail with EBUSY instead of attaching to an existing device of that name. */
export const IFF_TUN_EXCL = 0x8000;

/** struct ifreq: 16-byte name, then a 24-byte union. */
export const IFREQ_SIZE = 40;
export const IFNAMSIZ = 16;
/**
 * The kernel's limit on queues of one multiqueue tap (drivers/net/tun.c MAX_TAP_QUEUES).
 * @category Taps for QEMU
 */
export const MAX_TAP_QUEUES = 256;
/**
 * A tap's largest MTU: 65535 minus the Ethernet header (tun.c: MAX_MTU - dev->hard_header_len).
 * @category Taps for QEMU
 */
export const TAP_MAX_MTU = 65521;
/** The smallest MTU the kernel accepts on an Ethernet device (ETH_MIN_MTU). */
export const TAP_MIN_MTU = 68;
/**
 * The most fds one SCM_RIGHTS message may carry (include/net/scm.h SCM_MAX_FD).
 * @category Taps for QEMU
 */
export const SCM_MAX_FD = 253;
/**
 * The largest payload {@link recvFds} accepts (the addon's cap too): the library's messages are one
 * byte (QEMU: docs/qemu-bridge-helper.md, §2.2) or a small daemon request, and the cap bounds what one call allocates.
 * @category Taps for QEMU
 */
export const RECV_MAX_BYTES = 65536;

/**
 * Generic interface ioctls (linux/sockios.h), on any socket (the rtnetlink one): each a single
 * syscall on a fixed-size struct ifreq, with no message to build or decode.
 */
export const SIOCGIFINDEX = 0x8933;
export const SIOCGIFHWADDR = 0x8927;
