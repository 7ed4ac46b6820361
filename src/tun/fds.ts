/**
 * File-descriptor passing over unix sockets (SCM_RIGHTS): how a tap fd reaches QEMU.
 * Every argument is checked here, with the library's errors ({@link InvalidArgumentError}, code
 * 'EINVAL'), before the addon sees it; the addon checks again at its own boundary.
 * @module
 */
import { native } from '../native.js';
import { EMSGSIZE, InvalidArgumentError, QbhError } from '../errors.js';
import { checkInteger } from '../netlink/validate.js';
import { RECV_MAX_BYTES, SCM_MAX_FD } from './constants.js';

function checkFd(what: string, fd: unknown, op: string): number {
  if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) {
    throw new InvalidArgumentError(`${what} must be a file descriptor (a non-negative integer), not ${String(fd)}`, { op });
  }
  return fd;
}

/**
 * A message that did not fit what {@link recvFds} was told to accept: more than `maxFds` fds, or
 * (on a datagram or seqpacket socket) more than `maxBytes` bytes. Every fd that arrived with it
 * has been closed. `code` is 'EMSGSIZE', so it reads like the errno a syscall would give.
 * @category Errors
 */
export class FdMessageTruncatedError extends QbhError {
  override name = 'FdMessageTruncatedError';
  readonly errno = EMSGSIZE;
  constructor(
    /** How many fds arrived (and were closed). */
    readonly fdsClosed: number,
    readonly maxFds: number,
    readonly maxBytes: number,
  ) {
    super(`recvFds: message truncated (more than ${maxFds} fds or ${maxBytes} bytes were sent); ${fdsClosed} received fds closed`, {
      code: 'EMSGSIZE',
      op: 'recvFds',
    });
  }
}

/**
 * Sends fds in one SCM_RIGHTS message with `payload` (at least one byte: a message without data
 * carries no fds on a stream socket). The default, one 0x00 byte with one fd, is exactly what
 * qemu-bridge-helper sends QEMU, which reads one byte. A closed peer is an EPIPE error, never SIGPIPE.
 * Returns the number of payload bytes sent. No iproute2 equivalent (`sendmsg(2)` with SCM_RIGHTS).
 * @category Taps for QEMU
 */
export function sendFds(socketFd: number, fds: readonly number[], payload: Uint8Array = Buffer.of(0)): number {
  checkFd('socketFd', socketFd, 'sendFds');
  if (!Array.isArray(fds) || fds.length === 0 || fds.length > SCM_MAX_FD) {
    throw new InvalidArgumentError(`sendFds needs 1-${SCM_MAX_FD} fds, not ${Array.isArray(fds) ? fds.length : String(fds)}`, { op: 'sendFds' });
  }
  // A copy: a getter or a proxy on the caller's array runs here, once, not inside the addon.
  const list = Array.from(fds, (fd, i) => checkFd(`fds[${i}]`, fd, 'sendFds'));
  if (!(payload instanceof Uint8Array) || payload.length === 0) {
    throw new InvalidArgumentError('sendFds needs a payload of at least one byte', { op: 'sendFds' });
  }
  return native.sendFds(socketFd, payload, list);
}

/** Options of {@link recvFds}. */
export interface RecvFdsOptions {
  /** Largest payload accepted, 1-65536 ({@link RECV_MAX_BYTES}). Default 1 (one byte, as QEMU reads). */
  maxBytes?: number;
  /**
   * Give up after this long (ms, 0-2147483647; a negative value is 0): the result is then null.
   * Default, or Infinity: wait for ever.
   */
  timeoutMs?: number;
}

/**
 * Receives one message and the fds it carries (close-on-exec). Throws an
 * {@link FdMessageTruncatedError}, closing whatever arrived, if the message or its fds were cut
 * short (more than `maxFds` fds, 1-253, or on a datagram socket more than `maxBytes` bytes), so an
 * fd is never silently lost. On a stream socket there are no message boundaries: bytes beyond
 * `maxBytes` stay queued and the next call reads them. An empty `data` with no fds means the peer
 * closed the socket. Returns null when `timeoutMs` passes first. Works the same on a blocking and a
 * non-blocking socket. No iproute2 equivalent (`recvmsg(2)` with SCM_RIGHTS).
 * @category Taps for QEMU
 */
export function recvFds(socketFd: number, maxFds: number, opts: RecvFdsOptions = {}): { data: Buffer; fds: number[] } | null {
  checkFd('socketFd', socketFd, 'recvFds');
  checkInteger(maxFds, 'maxFds', 1, SCM_MAX_FD, { op: 'recvFds' });
  const maxBytes = checkInteger(opts.maxBytes ?? 1, 'maxBytes', 1, RECV_MAX_BYTES, { op: 'recvFds' });
  let timeoutMs = opts.timeoutMs;
  if (timeoutMs !== undefined) {
    if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || (timeoutMs > 0x7fffffff && timeoutMs !== Infinity)) {
      throw new InvalidArgumentError(`timeoutMs must be 0-2147483647 or Infinity, not ${String(timeoutMs)}`, { op: 'recvFds' });
    }
    timeoutMs = timeoutMs === Infinity ? undefined : Math.max(0, Math.ceil(timeoutMs));
  }
  const got = native.recvFds(socketFd, maxBytes, maxFds, timeoutMs);
  if (got === null) return null;
  if (got.truncated) {
    for (const fd of got.fds) native.close(fd);
    throw new FdMessageTruncatedError(got.fds.length, maxFds, maxBytes);
  }
  return { data: got.data, fds: got.fds };
}
