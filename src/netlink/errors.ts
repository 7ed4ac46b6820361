/**
 * Errors of the netlink layer.
 * @module
 */
import { createRequire } from 'node:module';
import { EEXIST, EINVAL, ENODEV, EXFULL, QbhError, hintFor, type ErrnoCode } from '../errors.js';

let errnoValues: Readonly<Record<string, number>> | undefined;
let errnoNames: Map<number, string> | undefined;

/**
 * Node's errno table (`os.constants.errno`: 'EEXIST' → 17), loaded when an error first needs it:
 * loading node:os costs the helper at every start (docs/performance.md), and a successful attach makes no error. @internal
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
    errnoNames.set(EXFULL, 'EXFULL');
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
 * kernel's extended-ack text when it gave one (`kernelMessage`: only ever the kernel's words). An
 * error qbh raises itself about a request (no answer in time, a closed socket, a receive buffer
 * overrun, a bridge with other settings) has qbh's words in `detail` instead. The message reads
 * `createBridge br0: File exists`, `setLink qb0: Invalid argument (mtu less than device minimum)`
 * or `getLink br0: Connection timed out (no answer from the kernel)`; a missing privilege (EPERM,
 * EACCES) adds what to do: `…: Operation not permitted; this needs CAP_NET_ADMIN: …` (the `hint`).
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
  /** The kernel's extended-ack message (NLMSGERR_ATTR_MSG), when it gave one; never qbh's words. */
  readonly kernelMessage: string | undefined;
  /** Offset into the request of the attribute the kernel objected to (NLMSGERR_ATTR_OFFS). */
  readonly kernelOffset: number | undefined;
  /** qbh's own words about the failure, when qbh raised it rather than the kernel: `no answer from the kernel`. */
  readonly detail: string | undefined;

  /**
   * `kernelMessage` and `kernelOffset` are what the kernel's NLMSG_ERROR carried; `detail` is qbh's
   * words (shown in the message where the kernel's would be).
   */
  constructor(errno: number, ctx: NetlinkErrorContext, kernelMessage?: string, kernelOffset?: number, detail?: string) {
    const what = ctx.target !== undefined ? `${ctx.op} ${ctx.target}` : ctx.op;
    const code = errnoName(errno);
    const hint = hintFor(code);
    const words = [kernelMessage, detail].filter((w) => w).join('; ');
    super(`${what}: ${strerror(errno)}${words ? ` (${words})` : ''}${hint ? `; ${hint}` : ''}`, { code, op: ctx.op, target: ctx.target, hint });
    this.errno = errno;
    this.kernelMessage = kernelMessage;
    this.kernelOffset = kernelOffset;
    this.detail = detail;
  }

  /**
   * An error qbh raises itself about a netlink request, with its own words in `detail`
   * (`kernelMessage` stays undefined): `NetlinkError.fromQbh(ETIMEDOUT, ctx, 'no answer from the kernel')`.
   * @internal
   */
  static fromQbh(errno: number, ctx: NetlinkErrorContext, detail: string): NetlinkError {
    return new NetlinkError(errno, ctx, undefined, undefined, detail);
  }
}

/**
 * The start of a message about `device`: the operation, and its target when that is another
 * object (`setLink v0` for a missing master br9; `getBridge` alone when br9 is the target).
 */
function opAbout(ctx: NetlinkErrorContext, device: string): string {
  return ctx.target !== undefined && ctx.target !== device ? `${ctx.op} ${ctx.target}` : ctx.op;
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
    this.message = `${opAbout(ctx, device)}: ${this.problem}`;
  }
}

/**
 * A device is not a bridge where the operation needs one (`getBridge`, `deleteBridge`, `openTap`'s
 * `bridge`…): `device` names it and `kind` is what it is (`veth`, `tun`; undefined for a device
 * without IFLA_INFO_KIND, such as `lo` or a physical NIC). The errno is the one each operation has
 * always given: EINVAL from the bridge functions, EOPNOTSUPP (what the kernel answers when a port
 * is enslaved to it) from the tap functions. The message reads `getBridge: v0 is a veth, not a
 * bridge`; `problem` is the same words without the operation, which the CLI prints.
 * @category Errors
 */
export class NotABridgeError extends NetlinkError {
  override name = 'NotABridgeError';
  /** The device's name. */
  readonly device: string;
  /** Its kind (IFLA_INFO_KIND), undefined when it has none. */
  readonly kind: string | undefined;
  /** `v0 is a veth, not a bridge`: the words without the operation. */
  readonly problem: string;

  /** @internal */
  constructor(ctx: NetlinkErrorContext, device: string, kind: string | undefined, errno = EINVAL) {
    const problem = `${device} is a ${kind ?? 'device'}, not a bridge`;
    super(errno, ctx, undefined, undefined, problem);
    this.device = device;
    this.kind = kind;
    this.problem = problem;
    this.message = `${opAbout(ctx, device)}: ${problem}`;
  }
}

/**
 * A name is taken by a device of another kind than the one asked for (`createBridge('v0')` where
 * `v0` is a veth): `code` 'EEXIST', `device` the name, `kind` what holds it (undefined for a
 * device without IFLA_INFO_KIND). The message reads `createBridge: v0 exists and is a veth, not a
 * bridge`; `problem` is the same words without the operation.
 * @category Errors
 */
export class NameTakenError extends NetlinkError {
  override name = 'NameTakenError';
  declare readonly code: 'EEXIST';
  /** The name that is taken. */
  readonly device: string;
  /** The kind of the device that holds it, undefined when it has none. */
  readonly kind: string | undefined;
  /** What was asked for ('bridge'). */
  readonly wanted: string;
  /** `v0 exists and is a veth, not a bridge`: the words without the operation. */
  readonly problem: string;

  /** @internal */
  constructor(ctx: NetlinkErrorContext, device: string, kind: string | undefined, wanted = 'bridge') {
    const problem = `${device} exists and is a ${kind ?? 'device'}, not a ${wanted}`;
    super(EEXIST, ctx, undefined, undefined, problem);
    this.device = device;
    this.kind = kind;
    this.wanted = wanted;
    this.problem = problem;
    this.message = `${opAbout(ctx, device)}: ${problem}`;
  }
}

/**
 * The kernel refused to add or remove an address (`addAddress`, `deleteAddress`, or the
 * `addresses` of `createBridge`): a NetlinkError that also names the address (`address`, as it was
 * given) and the link. When createBridge undid what it had done, `undone` says what (`bridge br0
 * was removed again`), as the message's end does.
 * @category Errors
 */
export class AddressError extends NetlinkError {
  override name = 'AddressError';
  /** The address, as given (`10.0.0.1/24`). */
  readonly address: string;
  /** The link, as given. */
  readonly link: string;
  /** What createBridge undid after this failure (and, if undoing failed, that too), or undefined. */
  undone: string | undefined;

  /** @internal */
  constructor(from: NetlinkError, ctx: NetlinkErrorContext, address: string, link: string) {
    super(from.errno, ctx, from.kernelMessage, from.kernelOffset, from.detail);
    this.address = address;
    this.link = link;
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
