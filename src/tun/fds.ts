/**
 * File-descriptor passing over unix sockets (SCM_RIGHTS): how a tap fd reaches QEMU (spec §2.2).
 * @module
 */
import { native } from '../native.js';
import { InvalidArgumentError, QbhError } from '../errors.js';
import { SCM_MAX_FD } from './constants.js';

function checkFd(what: string, fd: unknown, op: string): number {
  if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) {
    throw new InvalidArgumentError(`${what} must be a file descriptor (a non-negative integer), not ${String(fd)}`, { op });
  }
  return fd;
}

/**
 * Sends fds in one SCM_RIGHTS message with `payload` (at least one byte: a message without data
 * carries no fds on a stream socket). The default, one 0x00 byte with one fd, is exactly what
 * qemu-bridge-helper sends QEMU (spec §2.2). A closed peer is an EPIPE error, never SIGPIPE.
 * Returns the number of payload bytes sent. No iproute2 equivalent (`sendmsg(2)` with SCM_RIGHTS).
 */
export function sendFds(socketFd: number, fds: readonly number[], payload: Uint8Array = Buffer.of(0)): number {
  checkFd('socketFd', socketFd, 'sendFds');
  if (!Array.isArray(fds) || fds.length === 0 || fds.length > SCM_MAX_FD) {
    throw new InvalidArgumentError(`sendFds needs 1-${SCM_MAX_FD} fds, not ${Array.isArray(fds) ? fds.length : String(fds)}`, { op: 'sendFds' });
  }
  fds.forEach((fd, i) => checkFd(`fds[${i}]`, fd, 'sendFds'));
  if (!(payload instanceof Uint8Array) || payload.length === 0) throw new InvalidArgumentError('sendFds needs a payload of at least one byte', { op: 'sendFds' });
  return native.sendFds(socketFd, payload, fds);
}

/** Options of {@link recvFds}. */
export interface RecvFdsOptions {
  /** Largest payload accepted. Default 1 (one byte, as QEMU reads). */
  maxBytes?: number;
  /** Give up after this long: the result is then null. Default: wait for ever. */
  timeoutMs?: number;
}

/**
 * Receives one message and the fds it carries (close-on-exec). Throws, closing whatever arrived,
 * if the message or its fds were cut short (more than `maxFds` fds, or more than `maxBytes` bytes),
 * so an fd is never silently lost. An empty `data` with no fds means the peer closed the socket.
 * Returns null when `timeoutMs` passes first. No iproute2 equivalent (`recvmsg(2)` with SCM_RIGHTS).
 */
export function recvFds(socketFd: number, maxFds: number, opts: RecvFdsOptions = {}): { data: Buffer; fds: number[] } | null {
  checkFd('socketFd', socketFd, 'recvFds');
  if (!Number.isInteger(maxFds) || maxFds < 1 || maxFds > SCM_MAX_FD) throw new InvalidArgumentError(`maxFds must be 1-${SCM_MAX_FD}, not ${maxFds}`, { op: 'recvFds' });
  const maxBytes = opts.maxBytes ?? 1;
  if (!Number.isInteger(maxBytes) || maxBytes < 1) throw new InvalidArgumentError(`maxBytes must be a positive integer, not ${maxBytes}`, { op: 'recvFds' });
  const got =
    opts.timeoutMs === undefined
      ? native.recvFds(socketFd, maxBytes, maxFds)
      : native.recvFds(socketFd, maxBytes, maxFds, Math.max(0, Math.floor(opts.timeoutMs)));
  if (got === null) return null;
  if (got.truncated) {
    for (const fd of got.fds) native.close(fd);
    throw new QbhError(`recvFds: message truncated (more than ${maxFds} fds or ${maxBytes} bytes were sent); received fds closed`, { code: 'EMSGSIZE', op: 'recvFds' });
  }
  return { data: got.data, fds: got.fds };
}
