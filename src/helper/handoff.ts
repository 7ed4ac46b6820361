/**
 * The helper's last step, shared by direct mode and the daemon path: one sendmsg of 1 byte 0x00 +
 * one SCM_RIGHTS fd (docs/qemu-bridge-helper.md, §2.2), then the helper's own copy of the tap is closed.
 * @module
 */
import { writeSync } from 'node:fs';
import { native } from '../native.js';

/** The exit status of every failure, as the C helper's `EXIT_FAILURE`. */
export const EXIT_FAILURE = 1;

/** Writes bytes to stderr, synchronously (the process exits right after). A closed stderr is ignored. */
export function printErr(message: string | Buffer): void {
  try {
    writeSync(2, typeof message === 'string' ? Buffer.from(message) : message);
  } catch {
    // Nowhere left to report to; the exit status still says it failed.
  }
}

/** The text after "sendmsg: " in an addon error: the C library's strerror. */
function syscallReason(err: unknown): string {
  if (err instanceof Error) {
    const { syscall } = err as Error & { syscall?: string };
    const prefix = `${syscall ?? ''}: `;
    return err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
  }
  return String(err);
}

/**
 * Sends `tapFd` on the `--fd` socket and returns the exit status. `sendError` is what an fd closed
 * at start-up gives (judged before the helper opened anything). MSG_NOSIGNAL: a closed peer is
 * reported and exits 1 instead of killing the helper with SIGPIPE (deviation).
 */
export function handOff(unixFd: number, sendError: string | null, tapFd: number): number {
  try {
    if (sendError !== null) {
      printErr(`failed to write fd to unix socket: ${sendError}\n`);
      return EXIT_FAILURE;
    }
    try {
      native.sendFds(unixFd, new Uint8Array(1), [tapFd]); // the byte 0x00
    } catch (err) {
      printErr(`failed to write fd to unix socket: ${syscallReason(err)}\n`);
      return EXIT_FAILURE;
    }
  } finally {
    // The only cleanup there is: a non-persistent tap dies with its last fd (docs/qemu-bridge-helper.md, §3).
    native.close(tapFd);
  }
  return 0;
}
