/**
 * Errors of the netlink layer.
 * @module
 */
import { createRequire } from 'node:module';
import { QbhError, hintFor, type ErrnoCode } from '../errors.js';

/** ENODEV: no such device. */
const ENODEV = 19;

let errnoValues: Readonly<Record<string, number>> | undefined;
let errnoNames: Map<number, string> | undefined;

/**
 * Node's errno table (`os.constants.errno`: 'EEXIST' → 17), loaded when an error first needs it:
 * node:os costs the helper 0.2 ms at every start, and a successful attach makes no error. @internal
 */
export function errnoConstants(): Readonly<Record<string, number>> {
  return (errnoValues ??= (createRequire(import.meta.url)('node:os') as typeof import('node:os')).constants.errno);
}

/**
 * The conventional name of an errno value: 17 → 'EEXIST'.
 * @category Errors
 */
export function errnoName(errno: number): ErrnoCode {
  if (errnoNames === undefined) {
    errnoNames = new Map(Object.entries(errnoConstants()).map(([name, n]) => [n, name]));
    // Linux errno values Node's table leaves out but rtnetlink returns (EXFULL: a bridge's 1024 ports).
    errnoNames.set(54, 'EXFULL');
  }
  return (errnoNames.get(errno) ?? `E${errno}`) as ErrnoCode;
}

// Kernel strerror texts for the errno values rtnetlink returns (glibc's wording), so messages read
// like the kernel's own words without an extra native call.
const STRERROR: Record<string, string> = {
  EPERM: 'Operation not permitted',
  ENOENT: 'No such file or directory',
  EINTR: 'Interrupted system call',
  EIO: 'Input/output error',
  EBADF: 'Bad file descriptor',
  EAGAIN: 'Resource temporarily unavailable',
  ENOMEM: 'Cannot allocate memory',
  EACCES: 'Permission denied',
  EBUSY: 'Device or resource busy',
  EEXIST: 'File exists',
  ENODEV: 'No such device',
  ENOTDIR: 'Not a directory',
  EINVAL: 'Invalid argument',
  ENFILE: 'Too many open files in system',
  EMFILE: 'Too many open files',
  ENOTTY: 'Inappropriate ioctl for device',
  ENOSPC: 'No space left on device',
  ERANGE: 'Numerical result out of range',
  ENAMETOOLONG: 'File name too long',
  ELOOP: 'Too many levels of symbolic links',
  ENOTSOCK: 'Socket operation on non-socket',
  EMSGSIZE: 'Message too long',
  EPROTONOSUPPORT: 'Protocol not supported',
  EOPNOTSUPP: 'Operation not supported',
  EAFNOSUPPORT: 'Address family not supported by protocol',
  EADDRINUSE: 'Address already in use',
  EADDRNOTAVAIL: 'Cannot assign requested address',
  ENETDOWN: 'Network is down',
  ENOBUFS: 'No buffer space available',
  ENOTCONN: 'Transport endpoint is not connected',
  ETIMEDOUT: 'Connection timed out',
  EPIPE: 'Broken pipe',
  E2BIG: 'Argument list too long',
  ENXIO: 'No such device or address',
  ENOTSUP: 'Operation not supported',
  EXFULL: 'Exchange full',
  ENOTEMPTY: 'Directory not empty',
  ESRCH: 'No such process',
};

/**
 * The C library's text for an errno value ('No such device').
 * @category Errors
 */
export function strerror(errno: number): string {
  return STRERROR[errnoName(errno)] ?? `Unknown error ${errno}`;
}

/** Where a NetlinkError came from: the operation and the object it acted on. */
export interface NetlinkErrorContext {
  /** The API operation, e.g. 'createBridge'. */
  op: string;
  /** The link (or address) the operation acted on, e.g. 'br0'. */
  target?: string;
}

/**
 * The kernel refused a request. Carries the errno, its name, the operation and the target, and the
 * kernel's extended-ack text when it gave one. The message reads
 * `createBridge br0: File exists` or `setLink qb0: Invalid argument (mtu less than device minimum)`;
 * a missing privilege (EPERM, EACCES) adds what to do: `…: Operation not permitted; this needs
 * CAP_NET_ADMIN: …` (the `hint`).
 * @category Errors
 */
export class NetlinkError extends QbhError {
  override name = 'NetlinkError';
  /** Positive errno, e.g. 17. */
  readonly errno: number;
  /** Its name, e.g. 'EEXIST'. */
  declare readonly code: ErrnoCode;
  /** The API operation that failed. */
  declare readonly op: string;
  /** The object it acted on, when there is one. */
  declare readonly target: string | undefined;
  /** The kernel's extended-ack message, when it gave one. */
  readonly kernelMessage: string | undefined;
  /** Offset into the request of the attribute the kernel objected to (NLMSGERR_ATTR_OFFS). */
  readonly kernelOffset: number | undefined;

  constructor(errno: number, ctx: NetlinkErrorContext, kernelMessage?: string, kernelOffset?: number) {
    const what = ctx.target !== undefined ? `${ctx.op} ${ctx.target}` : ctx.op;
    const code = errnoName(errno);
    const hint = hintFor(code);
    super(`${what}: ${strerror(errno)}${kernelMessage ? ` (${kernelMessage})` : ''}${hint ? `; ${hint}` : ''}`, { code, op: ctx.op, target: ctx.target, hint });
    this.errno = errno;
    this.kernelMessage = kernelMessage;
    this.kernelOffset = kernelOffset;
  }
}

/** What a missing device was wanted as: the first word of `bridge br9 does not exist`. */
export type DeviceKind = 'bridge' | 'device' | 'tap' | 'master';

/**
 * A device the operation needs does not exist (ENODEV): `device` names it and `kind` says what it
 * was wanted as. The message reads `getBridge: bridge br9 does not exist`, or with the operation's
 * own target when that is another object: `setLink v0: master br9 does not exist`. `problem` is the
 * same words without the operation, which the CLI prints.
 * @category Errors
 */
export class NoSuchDeviceError extends NetlinkError {
  override name = 'NoSuchDeviceError';
  declare readonly code: 'ENODEV';
  /** The missing device's name (or ifindex). */
  readonly device: string;
  /** What it was wanted as. */
  readonly kind: DeviceKind;
  /** `bridge br9 does not exist`: the words without the operation. */
  readonly problem: string;

  constructor(ctx: NetlinkErrorContext, kind: DeviceKind, device: string) {
    super(ENODEV, ctx);
    this.device = device;
    this.kind = kind;
    this.problem = `${kind} ${device} does not exist`;
    const what = ctx.target !== undefined && ctx.target !== device ? `${ctx.op} ${ctx.target}` : ctx.op;
    this.message = `${what}: ${this.problem}`;
  }
}

/** Turns an ENODEV NetlinkError about `device` into a {@link NoSuchDeviceError}; anything else is returned as it is. @internal */
export function missingDevice(e: unknown, ctx: NetlinkErrorContext, kind: DeviceKind, device: string): unknown {
  return e instanceof NetlinkError && e.errno === ENODEV && !(e instanceof NoSuchDeviceError) ? new NoSuchDeviceError(ctx, kind, device) : e;
}

/**
 * Bytes that are not a well-formed netlink message (`code` 'EBADMSG'). The only error the decoder throws.
 * @category Errors
 */
export class NetlinkDecodeError extends QbhError {
  override name = 'NetlinkDecodeError';
  constructor(message: string) {
    super(message, { code: 'EBADMSG', op: 'decode' });
  }
}

/**
 * A dump kept being interrupted (NLM_F_DUMP_INTR: the set changed while it was read) after the
 * bounded number of retries. `partial` holds the last, possibly inconsistent, result.
 * @category Errors
 */
export class DumpInterruptedError extends QbhError {
  override name = 'DumpInterruptedError';
  declare readonly code: 'EINTR';
  declare readonly op: string;
  constructor(
    op: string,
    readonly attempts: number,
    readonly partial: unknown[],
  ) {
    super(`${op}: dump interrupted ${attempts} times in a row (links changed while being listed); try again`, { code: 'EINTR', op });
  }
}
