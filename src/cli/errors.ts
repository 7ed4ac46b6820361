/**
 * The two ways a command fails: a usage mistake (exit 2, with the usage line) and an operation that
 * could not be done (exit 1, one line naming the object and the cause). Neither prints a stack.
 * @module
 */
import { InvalidArgumentError, NameTakenError, NetlinkError, NoSuchDeviceError, NotABridgeError, QbhError, strerror, TapError } from '../index.js';
import { hintFor } from '../errors.js';

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
  if (e instanceof QbhError || e instanceof CliError || e instanceof UsageError) return true;
  const x = e as ErrnoLike;
  return e instanceof Error && (typeof x.code === 'string' || typeof x.errno === 'number');
}

/**
 * The cause part of an error line: the kernel's words (strerror, and its extended-ack text or
 * qbh's own words about the request when there are some), a tap step's `reason`, or the error's
 * own message; then what to do, in the API's words (a missing permission: `; this needs
 * CAP_NET_ADMIN: …`, as a NetlinkError's message ends).
 */
export function describeCause(e: unknown): string {
  let text: string;
  let hint: string | undefined;
  if (e instanceof NetlinkError) {
    const words = [e.kernelMessage, e.detail].filter((w) => w).join('; ');
    text = words ? `${strerror(e.errno)} (${words})` : strerror(e.errno);
    hint = e.hint;
  } else if (e instanceof TapError) {
    text = e.reason;
    hint = e.hint;
  } else if (e instanceof QbhError) {
    text = e.message; // ends with its hint already
  } else if (e instanceof Error) {
    const x = e as ErrnoLike;
    const errno = typeof x.errno === 'number' ? Math.abs(x.errno) : undefined;
    // Addon errors carry errno + syscall; Node's fs errors carry a message of their own.
    text = errno !== undefined && typeof x.syscall === 'string' && !e.message.includes(':') ? strerror(errno) : e.message;
    hint = typeof x.code === 'string' ? hintFor(x.code) : undefined;
  } else {
    text = String(e);
  }
  return hint ? `${text}; ${hint}` : text;
}

/**
 * Wraps any failure of `action` ("create bridge br0") as `cannot ACTION: CAUSE`. Input the API
 * refused before the kernel saw it is a usage error, in the API's words; a missing device is the
 * API's `bridge br9 does not exist` as it is; a device of the wrong kind is the API's words
 * (`cannot show bridge v0: v0 is a veth, not a bridge`), without the errno's. A tap step's error
 * whose cause is one of these reads as that cause does.
 */
export function cannot(action: string, e: unknown): CliError | UsageError {
  if (e instanceof CliError || e instanceof UsageError) return e;
  if (e instanceof TapError && (e.cause instanceof NoSuchDeviceError || e.cause instanceof NotABridgeError)) return cannot(action, e.cause);
  // A missing device reads the same in every command: `bridge br9 does not exist`.
  if (e instanceof NoSuchDeviceError) return new CliError(e.problem);
  if (e instanceof NotABridgeError || e instanceof NameTakenError) return new CliError(`cannot ${action}: ${e.problem}`);
  if (e instanceof InvalidArgumentError) return new UsageError(e.problem);
  if (!isOperationalError(e)) throw e;
  return new CliError(`cannot ${action}: ${describeCause(e)}`);
}

/** True when `e` is a NetlinkError (or an addon error) with this errno name. */
export function hasCode(e: unknown, code: string): boolean {
  return e instanceof Error && (e as ErrnoLike).code === code;
}
