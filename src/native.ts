/**
 * The native addon (native/qbh.cc): syscalls Node.js lacks. Internal; the public API wraps it.
 * @internal
 * @module
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from './root.js';

/** An error thrown by the addon: `errno`, `code` ('EPERM'…) and the failed `syscall`. */
export interface SyscallError extends Error {
  errno: number;
  code: string;
  syscall: string;
}

/**
 * The addon's functions. Every argument is checked before any syscall (native/qbh.cc's header
 * states the contract): a value of the wrong type is a TypeError with code `ERR_INVALID_ARG_TYPE`,
 * a number out of range (an fd outside 0..2^31-1, NaN, a fraction) a RangeError with code
 * `ERR_OUT_OF_RANGE`; nothing is coerced. A failed syscall throws a {@link SyscallError}.
 * Timeouts are ms, 0..2^31-1, or Infinity for "wait for ever"; 0 means "do not wait".
 */
export interface NativeAddon {
  /** A non-blocking, close-on-exec netlink socket bound to a kernel-chosen port id. */
  nlOpen(protocol: number): { fd: number; portId: number };
  /** nlOpen's socket, made in the network namespace `nsFd` refers to (by a thread that joins it). */
  nlOpenIn(protocol: number, nsFd: number): { fd: number; portId: number };
  setsockoptInt(fd: number, level: number, name: number, value: number): void;
  getsockoptInt(fd: number, level: number, name: number): number;
  /** Sends to the kernel (port 0); returns the bytes sent. */
  nlSend(fd: number, msg: Uint8Array): number;
  /** One whole datagram, or null when none arrives within `timeoutMs` (never blocks past it). */
  nlRecv(fd: number, timeoutMs: number): { data: Buffer; portId: number; truncated: boolean } | null;
  /**
   * Calls `onReadable(status)` on the event loop whenever fd is readable, until the returned stop()
   * (idempotent) is called, `close(fd)` closes the fd, or the environment (a Worker) exits. libuv
   * leaves fd non-blocking. An exception thrown by `onReadable` is an 'uncaughtException'.
   */
  watch(fd: number, onReadable: (status: number) => void): () => void;
  /**
   * ioctl with a buffer read and written in place. Only the requests the addon knows the argument
   * of (tun's TUNSETIFF/TUNGETIFF/TUNGETFEATURES…, SIOC* ifreq requests and SIOCOUTQ on a socket); `arg` must be
   * at least that long (40 bytes for a struct ifreq). Another request is a TypeError with code
   * `ERR_INVALID_ARG_VALUE`; an fd of the wrong kind fails with ENOTTY.
   */
  ioctl(fd: number, request: number, arg: Uint8Array): number;
  /** ioctl for the tun requests that take their argument by value (TUNSETOWNER, TUNSETPERSIST…). */
  ioctlInt(fd: number, request: number, value: number): number;
  /** One sendmsg with one SCM_RIGHTS cmsg of at most 253 fds; returns the bytes sent. */
  sendFds(sock: number, data: Uint8Array, fds: readonly number[]): number;
  /**
   * One recvmsg of at most `maxBytes` (1..65536) bytes and `maxFds` (0..253) fds, close-on-exec;
   * null when nothing arrives within `timeoutMs` (default: wait for ever). Every fd that arrived is
   * returned; `truncated` is true when there were more bytes (datagrams) or more fds than asked for,
   * and the caller must close them.
   */
  recvFds(
    sock: number,
    maxBytes: number,
    maxFds: number,
    timeoutMs?: number,
  ): { data: Buffer; fds: number[]; truncated: boolean } | null;
  peerCred(sock: number): { pid: number; uid: number; gid: number };
  peerGroups(sock: number): number[];
  /**
   * The user namespace of the process at the other end of a unix socket, found through its pidfd
   * (SO_PEERPIDFD, so never another process that took over its pid), relative to this process's:
   * `sameNs` when it is ours; otherwise `owners` are the owner uids (in our namespace) of the
   * namespaces from the child of ours down to the peer's, outermost first. Throws ESRCH for a peer
   * that has exited, EPERM for a namespace outside ours, ENOPROTOOPT before Linux 6.5, and
   * EACCES without ptrace read access to the peer (CAP_SYS_PTRACE for another uid's process) —
   * unless this process is in the initial user namespace: then the peer's id maps (anyone may read
   * them, read through its pid while its pidfd shows it running) answer instead, `sameNs` when
   * they map every id to itself, else `owners` null and the maps' text.
   */
  peerUserns(sock: number): { sameNs: boolean; owners: number[] } | { sameNs: false; owners: null; uidMap: string; gidMap: string };
  socketpair(type: number): [number, number];
  capEffective(): bigint;
  /** close(2), stopping this thread's watches of fd first. */
  close(fd: number): void;
  /**
   * A blocking, close-on-exec AF_UNIX stream socket connected to `path` (native/unix.cc). connect,
   * send and receive each wait at most `timeoutMs` (1…600000), then fail with EAGAIN.
   */
  unixConnect(path: string, timeoutMs: number): number;
  /**
   * Opens `path` (bytes) `O_RDONLY | O_CLOEXEC | flags` as fsuid `uid`, fsgid `gid` with supplementary
   * `groups`, in a thread made for this one open (native/access.cc), so the kernel decides as it would
   * for that user. `flags` may hold only O_NONBLOCK, O_NOCTTY, O_NOFOLLOW and O_DIRECTORY. Throws the
   * open's errno, or EPERM with `syscall` setgroups, setfsgid or setfsuid when this process may not
   * take on those credentials.
   */
  openAs(path: Uint8Array, uid: number, gid: number, groups: readonly number[], flags: number): number;
  /** lgetxattr(2) of `system.posix_acl_access` or `system.posix_acl_default`; null when there is none. */
  lgetxattr(path: Uint8Array, name: 'system.posix_acl_access' | 'system.posix_acl_default'): Buffer | null;
  /**
   * A non-blocking, close-on-exec AF_UNIX stream socket bound to `path` (with the process's umask)
   * and listening with `backlog` (1..65535). Accept from it with {@link NativeAddon.unixAccept}.
   */
  unixListen(path: string, backlog: number): number;
  /** One pending connection (non-blocking, close-on-exec), or null when none is pending. */
  unixAccept(fd: number): number | null;
}

/**
 * The addon's file in the package at `root`: build/Release/qbh.node when this machine compiled it
 * (an install that found no prebuilt binary for it, or a development build), else the prebuilt
 * prebuilds/linux-ARCH/qbh.node the tarball ships (scripts/prebuilds.mjs). The same order as
 * node-gyp-build, which decides at install time whether to compile; but only these two paths,
 * relative to the package itself: node-gyp-build's loader also takes a directory from
 * `QBH_PREBUILD`, the architecture from `npm_config_arch` and binaries beside `process.execPath`,
 * and the helper and daemon must never load native code named by the environment or the cwd
 * (docs/helper.md, "Trust model"). One stat, no directory scan: nothing added to the helper's start.
 */
export function addonPath(root: string = PACKAGE_ROOT): string {
  const built = join(root, 'build', 'Release', 'qbh.node');
  if (existsSync(built)) return built;
  const prebuilt = join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'qbh.node');
  if (existsSync(prebuilt)) return prebuilt;
  throw new Error(
    `qbh's native addon is missing: no ${built} and no prebuilt ${prebuilt}; reinstall qbh (npm rebuild qbh compiles it, with a C++ compiler and make)`,
  );
}

/**
 * The loaded addon (see {@link addonPath}). process.dlopen, not require(): the path is absolute
 * and final, and require() would first resolve it (stats, realpath, the package scope) — a
 * share of the helper's start-up, for nothing.
 */
export const native: NativeAddon = loadAddon(addonPath());

/** Bit 12 of the capability sets (linux/capability.h). */
const CAP_NET_ADMIN = 12n;

/** Whether this process may create taps and change links itself: CAP_NET_ADMIN in its effective set (root, or an ambient or file capability). */
export function hasNetAdmin(): boolean {
  return ((native.capEffective() >> CAP_NET_ADMIN) & 1n) === 1n;
}

function loadAddon(file: string): NativeAddon {
  const module = { exports: {} };
  process.dlopen(module, file);
  return module.exports as NativeAddon;
}

/** True when `e` is an addon error with the given code. */
export function isErrno(e: unknown, code: string): e is SyscallError {
  return e instanceof Error && (e as Partial<SyscallError>).code === code;
}
