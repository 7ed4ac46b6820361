/**
 * The two ways a command fails: a usage mistake (exit 2, with the usage line) and an operation that
 * could not be done (exit 1, one line naming the object and the cause). Neither prints a stack.
 * @module
 */
import { NetlinkError, strerror } from '../index.js';

/** The command line is wrong: exit 2, print the message and the command's usage line. */
export class UsageError extends Error {
  override name = 'UsageError';
  /** The usage line of the command that was misused; filled in by the dispatcher when absent. */
  usage: string | undefined;
  constructor(message: string, usage?: string) {
    super(message);
    this.usage = usage;
  }
}

/** An operation failed: exit 1 (or `exitCode`), print `qbh: MESSAGE`. */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

interface ErrnoLike {
  code?: unknown;
  errno?: unknown;
  syscall?: unknown;
}

/** Errors a user can cause (as opposed to bugs in qbh), whose message is enough. */
export function isOperationalError(e: unknown): boolean {
  if (e instanceof NetlinkError || e instanceof CliError || e instanceof UsageError) return true;
  const x = e as ErrnoLike;
  return e instanceof Error && (typeof x.code === 'string' || typeof x.errno === 'number');
}

/**
 * The cause part of an error line: the kernel's words (strerror, and its extended-ack text when it
 * gave one), or the error's own message. A missing permission gets the fix appended.
 */
export function describeCause(e: unknown): string {
  let text: string;
  let code: string | undefined;
  if (e instanceof NetlinkError) {
    text = e.kernelMessage ? `${strerror(e.errno)} (${e.kernelMessage})` : strerror(e.errno);
    code = e.code;
  } else if (e instanceof Error) {
    const x = e as ErrnoLike;
    code = typeof x.code === 'string' ? x.code : undefined;
    const errno = typeof x.errno === 'number' ? Math.abs(x.errno) : undefined;
    // Addon errors carry errno + syscall; Node's fs errors carry a message of their own.
    text = errno !== undefined && typeof x.syscall === 'string' && !e.message.includes(':') ? strerror(errno) : e.message;
  } else {
    text = String(e);
  }
  if (code === 'EPERM' || code === 'EACCES') text += ' (this needs CAP_NET_ADMIN: run as root)';
  return text;
}

/** Wraps any failure of `action` ("create bridge br0") as `cannot ACTION: CAUSE`. */
export function cannot(action: string, e: unknown): CliError {
  if (e instanceof CliError) return e;
  if (!isOperationalError(e)) throw e;
  return new CliError(`cannot ${action}: ${describeCause(e)}`);
}

/** True when `e` is a NetlinkError (or an addon error) with this errno name. */
export function hasCode(e: unknown, code: string): boolean {
  return e instanceof Error && (e as ErrnoLike).code === code;
}
