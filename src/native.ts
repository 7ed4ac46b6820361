/**
 * The native addon (native/qbh.cc): syscalls Node.js lacks. Internal; the public API wraps it.
 * @internal
 * @module
 */
import { createRequire } from 'node:module';

/** An error thrown by the addon: `errno`, `code` ('EPERM'…) and the failed `syscall`. */
export interface SyscallError extends Error {
  errno: number;
  code: string;
  syscall: string;
}

export interface NativeAddon {
  nlOpen(protocol: number): { fd: number; portId: number };
  setsockoptInt(fd: number, level: number, name: number, value: number): void;
  getsockoptInt(fd: number, level: number, name: number): number;
  nlSend(fd: number, msg: Uint8Array): number;
  nlRecv(fd: number, timeoutMs: number): { data: Buffer; portId: number; truncated: boolean } | null;
  watch(fd: number, onReadable: (status: number) => void): () => void;
  ioctl(fd: number, request: number, arg: Buffer): number;
  ioctlInt(fd: number, request: number, value: number): number;
  sendFds(sock: number, data: Uint8Array, fds: readonly number[]): number;
  recvFds(
    sock: number,
    maxBytes: number,
    maxFds: number,
    timeoutMs?: number,
  ): { data: Buffer; fds: number[]; truncated: boolean } | null;
  peerCred(sock: number): { pid: number; uid: number; gid: number };
  peerGroups(sock: number): number[];
  socketpair(type: number): [number, number];
  capEffective(): bigint;
  close(fd: number): void;
  /**
   * A blocking, close-on-exec AF_UNIX stream socket connected to `path` (native/unix.cc). connect,
   * send and receive each wait at most `timeoutMs` (1…600000), then fail with EAGAIN.
   */
  unixConnect(path: string, timeoutMs: number): number;
}

const require = createRequire(import.meta.url);
/** The loaded addon. Resolved relative to this file: dist/native.js → build/Release/qbh.node. */
export const native: NativeAddon = require('../build/Release/qbh.node') as NativeAddon;

/** True when `e` is an addon error with the given code. */
export function isErrno(e: unknown, code: string): e is SyscallError {
  return e instanceof Error && (e as Partial<SyscallError>).code === code;
}
