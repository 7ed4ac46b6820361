/**
 * Errors of the tap layer: which step of the tap setup failed, with the errno, the tap and the bridge.
 * @module
 */
import { QbhError, privilegeHint, type ErrnoCode } from '../errors.js';
import { errnoConstants, errnoName, strerror } from '../netlink/errors.js';

/**
 * The steps of tap setup, in the order the C qemu-bridge-helper runs them (spec §3), plus the
 * steps only {@link openTap} has.
 * - `open`: opening /dev/net/tun
 * - `create`: TUNSETIFF (for queue 0: creating the device)
 * - `bridge-mtu`: looking the bridge up (missing: ENODEV) and reading its MTU
 * - `set-mtu`, `mac`, `enslave`, `up`: the link changes
 * - `validate`: bad input, refused before anything was created
 * - `bridge`: the named bridge is not a bridge (openTap checks this up front)
 * - `queue`: attaching queue 1…N-1 of a multiqueue tap
 * - `owner`, `group`, `persist`: TUNSETOWNER, TUNSETGROUP, TUNSETPERSIST
 * - `query`: TUNGETFEATURES or TUNGETIFF ({@link tunFeatures}, {@link tapInfo})
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
  | 'query';

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
  /** Explanation for errors qbh raises itself (`validate`, `bridge`). */
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
    default:
      return '';
  }
}

function describe(c: TapErrorContext): string {
  const why = c.detail ?? `${strerror(c.errno)}${c.kernelMessage ? ` (${c.kernelMessage})` : ''}`;
  const tap = c.tap ?? 'tap';
  switch (c.step) {
    case 'validate':
      return `invalid tap request: ${why}`;
    case 'open':
      return `cannot open /dev/net/tun: ${why}`;
    case 'query':
      return `cannot query ${c.tap ?? '/dev/net/tun'}: ${why}`;
    case 'create':
      return `cannot create ${tap}: ${why}`;
    case 'bridge':
      return c.detail ?? `${c.bridge} is not a bridge: ${why}`;
    case 'bridge-mtu':
      // Checked before any tap exists: name the bridge, not a tap%d template.
      return c.errno === 19 && c.detail === undefined ? `cannot create ${tap}: bridge ${c.bridge} does not exist` : `cannot use bridge ${c.bridge}: ${why}`;
    default:
      return c.bridge !== undefined
        ? `cannot add ${tap} to bridge ${c.bridge}: ${stepText(c)}${why}`
        : `cannot set up ${tap}: ${stepText(c)}${why}`;
  }
}

/**
 * Tap setup failed. `step` says which step, `errno`/`code` why; `tap` and `bridge` name the
 * objects (`op` is the public function, 'openTap' for tap setup; `target` the tap). Nothing is left behind: the fds were closed and a
 * persistent tap deleted. If that cleanup failed too, `cleanupError` holds its error (the first
 * error is the one thrown). The message reads `cannot add tap3 to bridge br0: Operation not
 * supported`; for EPERM/EACCES it ends with what to do (`hint`), true of the process that failed:
 * the capability it lacks, or the mode of /dev/net/tun that refused it. For the steps the C helper has,
 * the helper prints that helper's text instead ({@link helperMessage}).
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
  readonly kernelMessage: string | undefined;

  constructor(ctx: TapErrorContext) {
    const code = errnoName(ctx.errno);
    const hint = ctx.detail === undefined ? privilegeHint(code, ctx.step === 'open') : undefined;
    super(`${describe(ctx)}${hint ? `; ${hint}` : ''}`, { code, op: ctx.op ?? 'openTap', target: ctx.tap, hint, cause: ctx.cause });
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
  return 5; // EIO: not a system error at all
}

/**
 * The line the C qemu-bridge-helper prints to stderr for a failed tap step (spec §8), without the
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
    default:
      return err.message;
  }
}
