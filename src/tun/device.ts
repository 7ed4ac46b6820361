/**
 * The tap steps every way of making a tap shares (openTap, openTaps, openTapSync, the helper): the
 * /dev/net/tun fd, TUNGETFEATURES, TUNSETIFF, SIOCGIFINDEX, the MAC, the step errors and how a
 * failed RTM_NEWLINK is attributed to a step. Nothing here loads the generic netlink codec: the
 * helper's bundle takes this module without rtnl.ts (src/netlink/link-requests.ts). Integers in a
 * struct ifreq are read and written with a DataView, as the wire core's are (src/netlink/wire.ts).
 * @internal
 * @module
 */
import { closeSync, constants as fsConstants, openSync } from 'node:fs';
import { native } from '../native.js';
import { EBUSY, EINVAL, ELOOP, EADDRNOTAVAIL, EOPNOTSUPP, InvalidArgumentError } from '../errors.js';
import { NetlinkError, NotABridgeError } from '../netlink/errors.js';
import { setLinkSync, type LinkChanges } from '../netlink/link-requests.js';
import { formatMac } from '../netlink/mac.js';
import { le } from '../netlink/wire.js';
import { checkIfname } from '../netlink/validate.js';
import type { LinkMessage } from '../netlink/message.js';
import { IFNAMSIZ, IFREQ_SIZE, SIOCGIFINDEX, TAP_MAX_MTU, TUNGETFEATURES, TUNSETIFF, TUN_PATH } from './constants.js';
import { TapError, errnoOf, type TapStep } from './errors.js';

export function openTun(nonBlocking = false): number {
  return openSync(TUN_PATH, fsConstants.O_RDWR | (nonBlocking ? fsConstants.O_NONBLOCK : 0));
}

export function closeQuietly(fd: number): unknown {
  try {
    closeSync(fd);
    return undefined;
  } catch (e) {
    return e;
  }
}

/** Closes every fd of `fds`, whatever fails; returns the first close error (undefined: none). */
export function closeAll(fds: readonly number[]): unknown {
  let first: unknown;
  for (const fd of fds) {
    const e = closeQuietly(fd);
    first ??= e;
  }
  return first;
}

/**
 * Closes a failed tap's fds (the kernel then removes it) and returns `e` to throw, with the first
 * close error as its `cleanupError` when `e` is a TapError.
 */
export function closeAfter(e: unknown, fds: readonly number[]): unknown {
  const cleanup = closeAll(fds);
  if (e instanceof TapError && cleanup !== undefined) e.cleanupError = cleanup;
  return e;
}

/** TUNGETFEATURES on an open tun fd; 0 when the kernel does not answer (then no optional flag is used). */
export function probeFeatures(fd: number): number {
  const out = Buffer.alloc(4);
  try {
    native.ioctl(fd, TUNGETFEATURES, out);
  } catch {
    return 0;
  }
  return le(out).getUint32(0, true);
}

export function ifreq(name: string): Buffer {
  const b = Buffer.alloc(IFREQ_SIZE);
  b.write(name, 0, IFNAMSIZ - 1, 'utf8');
  return b;
}

export function ifreqName(b: Buffer): string {
  let end = 0;
  while (end < IFNAMSIZ && b[end] !== 0) end++;
  return b.toString('utf8', 0, end);
}

/** TUNSETIFF; returns the name the kernel gave (it resolves `%d` templates). */
export function setIff(fd: number, name: string, flags: number): string {
  const b = ifreq(name);
  le(b).setUint16(IFNAMSIZ, flags, true);
  native.ioctl(fd, TUNSETIFF, b);
  return ifreqName(b);
}

/** Bytes to MAC text (the one formatter: netlink/mac.ts). */
export { formatMac };

/**
 * A new tap's MAC: random, unicast and locally administered, as the kernel would give it
 * (eth_random_addr), with `prefix` laid over its first octets (the C helper sets byte 0 to 0xFE
 * on the kernel's random address). Chosen here rather than read back: the one RTM_NEWLINK then
 * needs no RTM_GETLINK before it (bench/RESULTS.md: one round trip fewer per tap). Math.random, not
 * node:crypto: a MAC must be unlikely to repeat on a segment, not unpredictable (the kernel's own
 * choice is readable by anyone), and loading node:crypto would cost the helper's start-up.
 */
export function randomMac(prefix: Uint8Array): string {
  const out = new Uint8Array(6);
  for (let i = 0; i < 6; i++) out[i] = (Math.random() * 256) | 0;
  out[0] = (out[0]! & 0xfe) | 0x02;
  out.set(prefix.subarray(0, 6));
  return formatMac(out);
}

/**
 * A tap's ifindex by name: SIOCGIFINDEX on the rtnetlink socket `fd`, one syscall on a struct ifreq
 * (an RTM_GETLINK would be a round trip and a kilobyte reply to decode, for one integer).
 */
export function ifindexOf(fd: number, name: string): number {
  const b = ifreq(name);
  native.ioctl(fd, SIOCGIFINDEX, b);
  return le(b).getInt32(IFNAMSIZ, true);
}

/** The MAC prefix of a tap on a bridge: the C helper's first octet 0xFE. */
export const HELPER_PREFIX = Uint8Array.of(0xfe);

/**
 * Checks an interface name with the library's shared check (src/netlink/validate.ts), so openTap,
 * createBridge and `qbh` word the same mistake the same way; a `%d` template is allowed for taps.
 */
export function checkName(what: 'tap' | 'bridge', name: unknown, template: boolean, op: string): string {
  checkIfname(name, { op }, `${what} name`);
  const text = name as string;
  const percents = text.split('%').length - 1;
  if (percents > 0 && !(template && percents === 1 && text.includes('%d'))) {
    throw new InvalidArgumentError(`invalid ${what} name "${text}": only one %d template is allowed`, { op, target: text });
  }
  return text;
}

/** The kind a link's IFLA_LINKINFO names (`bridge`, `veth`, …), if any. */
export function linkKind(m: LinkMessage): string | undefined {
  return m.attrs.linkinfo?.kind;
}

/**
 * The error of a tap function given a device that is not a bridge, or undefined when `br` is one:
 * a {@link NotABridgeError} with EOPNOTSUPP, the errno the kernel gives for enslaving to it.
 */
export function notABridge(br: LinkMessage, bridge: string, op: string): NotABridgeError | undefined {
  const kind = linkKind(br);
  return kind === 'bridge' ? undefined : new NotABridgeError({ op, target: bridge }, bridge, kind, EOPNOTSUPP);
}

/**
 * Refuses, before any tap exists, a "bridge" that is not one (step `bridge`, EOPNOTSUPP, the
 * {@link NotABridgeError} as its cause: the helper and the daemon print TapErrors) and an MTU no
 * tap can take (step `set-mtu`, EINVAL: a bridge's above 65521). Returns the tap's MTU: `mtu` when
 * given, else the bridge's. `tap` and `bridge` are the names the errors give.
 */
export function checkBridgeLink(br: LinkMessage, tap: string, bridge: string, mtu?: number): number {
  const wrong = notABridge(br, bridge, 'openTap');
  if (wrong !== undefined) throw new TapError({ step: 'bridge', errno: wrong.errno, tap, bridge, detail: wrong.problem, cause: wrong });
  return checkTapMtu(br, tap, bridge, mtu);
}

/** The tap's MTU on bridge `br` (`mtu`, else the bridge's); refused (step `set-mtu`) when no tap can take it. */
export function checkTapMtu(br: LinkMessage, tap: string, bridge: string, mtu?: number): number {
  const tapMtu = mtu ?? (br.attrs.mtu as number);
  if (tapMtu > TAP_MAX_MTU) {
    throw new TapError({ step: 'set-mtu', errno: EINVAL, tap, bridge, mtu: tapMtu, detail: `the bridge's MTU ${tapMtu} is above a tap's maximum ${TAP_MAX_MTU}` });
  }
  return tapMtu;
}

/** The changes of the one RTM_NEWLINK; on failure replayed step by step in the C helper's order (MTU, MAC, enslave, up). */
export type { LinkChanges };

export function replaySteps(c: LinkChanges): [TapStep, LinkChanges][] {
  const steps: [TapStep, LinkChanges][] = [];
  if (c.mtu !== undefined) steps.push(['set-mtu', { mtu: c.mtu }]);
  if (c.address !== undefined) steps.push(['mac', { address: c.address }]);
  if (c.master !== undefined) steps.push(['enslave', { master: c.master }]);
  if (c.up) steps.push(['up', { up: true }]);
  return steps;
}

/** When the steps replayed one by one all pass, a best guess from the error itself. */
export function guessStep(e: unknown, c: LinkChanges): TapStep {
  const msg = e instanceof NetlinkError ? (e.kernelMessage ?? '') : '';
  if (/mtu/i.test(msg) && c.mtu !== undefined) return 'set-mtu';
  const errno = errnoOf(e);
  if (c.master !== undefined && (errno === EOPNOTSUPP || errno === ELOOP || errno === EBUSY)) return 'enslave';
  if (errno === EADDRNOTAVAIL && c.address !== undefined) return 'mac';
  return c.master !== undefined ? 'enslave' : 'up';
}

export function stepError(step: TapStep, e: unknown, tap: string, bridge: string | undefined, mtu?: number): TapError {
  return new TapError({
    step,
    errno: errnoOf(e),
    tap,
    bridge,
    mtu,
    kernelMessage: e instanceof NetlinkError ? e.kernelMessage : undefined,
    cause: e,
  });
}

/**
 * The one RTM_NEWLINK carrying MTU, MAC, master and up failed. The kernel applies them in its own
 * order (MAC, MTU, up, master) and its errno does not say which one it refused, so the failure path
 * replays them one by one in the C helper's order (MTU, MAC, enslave, up) on the doomed tap: the
 * first that fails is the step reported, with its own errno. The success path stays one round trip.
 * `fd` is the rtnetlink socket; `target` names the link in the requests' errors.
 */
export function attributeSync(fd: number, ifindex: number, c: LinkChanges, first: unknown, tap: string, bridge: string | undefined, target: string): TapError {
  for (const [step, opts] of replaySteps(c)) {
    try {
      setLinkSync(fd, ifindex, opts, target);
    } catch (e) {
      return stepError(step, e, tap, bridge, c.mtu);
    }
  }
  return stepError(guessStep(first, c), first, tap, bridge, c.mtu);
}
