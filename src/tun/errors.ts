/**
 * Errors of the tap layer: which step of the tap setup failed, with the errno, the tap and the bridge.
 * @module
 */
import { EIO, ENODEV, QbhError, privilegeHint, type ErrnoCode } from '../errors.js';
import { errnoConstants, errnoName, strerror } from '../netlink/errors.js';
import { GuardError, type GuardedPort } from '../guard/apply.js';

/**
 * The steps of tap setup, in the order the C qemu-bridge-helper runs them, plus the steps only
 * {@link openTap} has.
 * - `open`: opening /dev/net/tun
 * - `create`: TUNSETIFF (for queue 0: creating the device)
 * - `bridge-mtu`: looking the bridge up (missing: ENODEV) and reading its MTU
 * - `set-mtu`, `mac`, `enslave`, `up`: the link changes
 * - `validate`: a request the helper and the daemon refuse before anything is made (a name that is
 *   not UTF-8 or not valid), and deleteTap's "that device is not a tap"
 * - `bridge`: the helper's and the daemon's named tap (`--ifname`) on a device that is not a
 *   bridge; `cause` is the {@link NotABridgeError} that {@link openTap} throws as it is
 * - `queue`: attaching queue 1…N-1 of a multiqueue tap
 * - `owner`, `group`, `persist`: TUNSETOWNER, TUNSETGROUP, TUNSETPERSIST
 * - `query`: TUNGETFEATURES or TUNGETIFF ({@link tunFeatures}, {@link tapInfo})
 * - `guard`: applying a port guard while the tap is down (`detail` names the part that failed)
 */
export type TapStep =
  | 'open'
  | 'create'
  | 'bridge-mtu'
  | 'set-mtu'
  | 'mac'
  | 'enslave'
  | 'up'
  | 'validate'
  | 'bridge'
  | 'queue'
  | 'owner'
  | 'group'
  | 'persist'
  | 'query'
  | 'guard';

/** Where a TapError came from. */
export interface TapErrorContext {
  step: TapStep;
  /** Positive errno. */
  errno: number;
  /** The tap's name (kernel-assigned once it exists, else the requested template). */
  tap?: string | undefined;
  bridge?: string | undefined;
  /** For `set-mtu`: the MTU that was refused. */
  mtu?: number | undefined;
  /** The kernel's extended-ack text, when it gave one. */
  kernelMessage?: string | undefined;
  /** Explanation for errors qbh raises itself (`validate`, `bridge`): becomes the `reason`. */
  detail?: string | undefined;
  /** The underlying error. */
  cause?: unknown;
  /** The public function that failed; 'openTap' unless said (deleteTap, tunFeatures, tapInfo). */
  op?: string | undefined;
}

/** What was being done, for steps that are part of a larger one ("adding tap3 to br0"). */
function stepText(c: TapErrorContext): string {
  switch (c.step) {
    case 'set-mtu':
      return `setting MTU ${c.mtu ?? ''}: `;
    case 'mac':
      return 'setting the MAC address: ';
    case 'up':
      return 'bringing it up: ';
    case 'queue':
      return 'attaching a queue: ';
    case 'owner':
      return 'setting the owner: ';
    case 'group':
      return 'setting the group: ';
    case 'persist':
      return 'making it persistent: ';
    case 'guard':
      return 'applying its port guard: ';
    default:
      return '';
  }
}

/** The message of a TapError in two parts: what could not be done (`cannot add tap3 to bridge br0: `) and why (the `reason`). */
function describe(c: TapErrorContext): { what: string; reason: string } {
  const why = c.detail ?? `${strerror(c.errno)}${c.kernelMessage ? ` (${c.kernelMessage})` : ''}`;
  const tap = c.tap ?? 'tap';
  switch (c.step) {
    case 'validate':
      return { what: 'invalid tap request: ', reason: why };
    case 'open':
      return { what: 'cannot open /dev/net/tun: ', reason: why };
    case 'query':
      return { what: `cannot query ${c.tap ?? '/dev/net/tun'}: `, reason: why };
    case 'create':
      return { what: `cannot create ${tap}: `, reason: why };
    case 'bridge':
      return c.detail !== undefined ? { what: '', reason: c.detail } : { what: `${c.bridge} is not a bridge: `, reason: why };
    case 'bridge-mtu':
      // Checked before any tap exists: name the bridge, not a tap%d template.
      return c.errno === ENODEV && c.detail === undefined
        ? { what: `cannot create ${tap}: `, reason: `bridge ${c.bridge} does not exist` }
        : { what: `cannot use bridge ${c.bridge}: `, reason: why };
    default:
      return { what: c.bridge !== undefined ? `cannot add ${tap} to bridge ${c.bridge}: ` : `cannot set up ${tap}: `, reason: `${stepText(c)}${why}` };
  }
}

/**
 * A step of tap setup that the system refused. `step` says which step, `errno`/`code` why, and
 * `reason` in words; `tap` and `bridge` name the objects (`op` is the public function, 'openTap'
 * for tap setup; `target` the tap). Nothing is left behind: the fds were closed and a persistent
 * tap deleted. If that cleanup failed too, `cleanupError` holds its error (the first error is the
 * one thrown). The message reads `cannot add tap3 to bridge br0: Operation not supported`; for
 * EPERM/EACCES it ends with what to do (`hint`), true of the process that failed: the capability
 * it lacks, or the mode of /dev/net/tun that refused it. For the steps the C helper has, the
 * helper prints that helper's text instead ({@link helperMessage}).
 *
 * The caller's mistakes are not TapErrors: they raise the class the same mistake raises from every
 * function of the library, whichever found it — bad input (a name, an MTU, a queue count, an
 * owner that does not exist) an {@link InvalidArgumentError}, a bridge that is not one a
 * {@link NotABridgeError} — thrown by openTap and openTaps before anything is made.
 * @category Errors
 */
export class TapError extends QbhError {
  override name = 'TapError';
  readonly step: TapStep;
  /** Positive errno, e.g. 95. */
  readonly errno: number;
  /** Its name, e.g. 'EOPNOTSUPP'. */
  declare readonly code: ErrnoCode;
  readonly tap: string | undefined;
  readonly bridge: string | undefined;
  readonly mtu: number | undefined;
  /** The kernel's extended-ack text, when it gave one. */
  readonly kernelMessage: string | undefined;
  /**
   * Why the step failed, the message's words after what could not be done and before the `hint`:
   * `Device or resource busy`, `setting MTU 9000: Invalid argument (mtu greater than device
   * maximum)`, `name t0 is taken by a veth device`.
   */
  readonly reason: string;

  constructor(ctx: TapErrorContext) {
    const code = errnoName(ctx.errno);
    const hint = ctx.detail === undefined ? privilegeHint(code, ctx.step === 'open') : undefined;
    const { what, reason } = describe(ctx);
    super(`${what}${reason}${hint ? `; ${hint}` : ''}`, { code, op: ctx.op ?? 'openTap', target: ctx.tap, hint, cause: ctx.cause });
    this.reason = reason;
    this.step = ctx.step;
    this.errno = ctx.errno;
    this.tap = ctx.tap;
    this.bridge = ctx.bridge;
    this.mtu = ctx.mtu;
    this.kernelMessage = ctx.kernelMessage;
  }
}

/** A positive errno from an addon, fs or netlink error (Node's fs errors carry it negated). */
export function errnoOf(e: unknown): number {
  if (e !== null && typeof e === 'object') {
    const { errno, code } = e as { errno?: unknown; code?: unknown };
    if (typeof errno === 'number' && errno !== 0) return Math.abs(errno);
    if (typeof code === 'string') {
      const n = errnoConstants()[code];
      if (n !== undefined) return n;
    }
  }
  return EIO; // not a system error at all
}

/**
 * The line the C qemu-bridge-helper prints to stderr for a failed tap step, without the
 * newline: e.g. ``failed to add interface `tap0' to bridge `notbr': Operation not supported``.
 * Steps the C helper has no message for (openTap-only ones) get the TapError's own message.
 * @category Errors
 */
export function helperMessage(err: TapError): string {
  const why = strerror(err.errno);
  switch (err.step) {
    case 'open':
      return `failed to open /dev/net/tun: ${why}`;
    case 'create':
      return `failed to create tun device: ${why}`;
    case 'bridge-mtu':
      return `failed to get mtu of bridge \`${err.bridge ?? ''}': ${why}`;
    case 'set-mtu':
      return `failed to set mtu of device \`${err.tap ?? ''}' to ${err.mtu ?? 0}: ${why}`;
    case 'mac':
      return `failed to set MAC address of device \`${err.tap ?? ''}': ${why}`;
    case 'enslave':
      return `failed to add interface \`${err.tap ?? ''}' to bridge \`${err.bridge ?? ''}': ${why}`;
    case 'up':
      return `failed to bring up interface \`${err.tap ?? ''}': ${why}`;
    case 'guard':
      return `failed to apply guard to interface \`${err.tap ?? ''}' on bridge \`${err.bridge ?? ''}': ${err.reason.replace(/^applying its port guard: /, '')}`;
    default:
      return err.message;
  }
}

/**
 * A guard's refusal ({@link GuardError}) as the TapError of step `guard` that every tap path
 * reports (`cannot add tap0 to bridge br0: applying its port guard: port flags: Operation not
 * supported`); anything else unchanged.
 */
export function guardTapError(e: unknown, port: GuardedPort, op?: string): unknown {
  if (!(e instanceof GuardError)) return e;
  return new TapError({ step: 'guard', errno: e.errno, tap: port.name, bridge: port.bridge.name, detail: `${e.part}: ${e.reason}`, cause: e, op });
}
