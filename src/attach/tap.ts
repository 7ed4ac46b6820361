/**
 * Making the tap for an authorized request: the one call the direct helper and the daemon both
 * make, so the daemon's tap is the helper's tap, checks included. A tap is made, joins its bridge,
 * and comes up; policy that must hold before the first frame (port isolation, MAC/IP pinning, rate
 * limits) runs in between, through {@link AttachOptions.beforeUp}, while the tap is still down.
 * @module
 */
import { EINVAL, InvalidArgumentError } from '../errors.js';
import { openRouteSocketSync } from '../netlink/wire.js';
import { native } from '../native.js';
import { TapError, guardTapError } from '../tun/errors.js';
import { applyGuardSync } from '../guard/apply.js';
import { isGuarded, type PortGuard } from '../guard/policy.js';
import { tapSync, type DownTap, type TapSyncOptions } from '../tun/tap-sync.js';
import type { ResolvedBridge, RouteHandle } from './bridge.js';

export type { DownTap };

/** What is asked for: `--br`, `--use-vnet` and the qbh extension `--ifname`. */
export interface AttachRequest {
  bridge: string;
  vnetHdr: boolean;
  /** A chosen name (or `%d` template) instead of the kernel's `tap%d`. */
  ifname: string | null;
  /**
   * The bridge as `resolveBridge` found it (before the ACL was decided on its names): the tap
   * joins exactly that device. Default: looked up again by `bridge`.
   */
  resolved?: ResolvedBridge | null;
  /** The rtnetlink handle to use (default: a new socket, closed before this returns). */
  rtnl?: RouteHandle;
}

/** How the tap is attached. */
export interface AttachOptions {
  /**
   * Policy applied to the tap after it joined the bridge and before it comes up. Without it, the
   * tap's MTU, MAC, master and up are one RTM_NEWLINK (the C helper's result, in one round trip);
   * with it, the tap joins the bridge down, this runs, then the tap is set up. If it throws, the tap
   * is closed (the kernel removes it) and its error propagates.
   */
  beforeUp?: (tap: DownTap) => void;
  /**
   * A port guard (src/guard) applied while the tap is down, before `beforeUp` runs: alias, port
   * flags, pinned MACs, frame filter. A refusal is a TapError of step `guard`; nothing is left.
   * Whether a sticky MAC pin has a pinner (qbhd) is the caller's to check.
   */
  guard?: PortGuard;
}

/** The tap to hand over: its fd (non-persistent, so closing it removes the tap), its name and ifindex. */
export interface AttachedTap {
  fd: number;
  name: string;
  ifindex: number;
}

/**
 * Makes the tap, exactly as the C helper does: `tap%d`, IFF_TAP|IFF_NO_PI (+IFF_VNET_HDR when
 * asked for and supported), bridge MTU, MAC byte 0 = 0xFE, enslaved, up. A device that is not a
 * Linux bridge is refused before anything is made. With `ifname`, the tap gets that name and it
 * must be new (an existing device is EBUSY: the helper never takes over someone else's tap);
 * whether the caller may use that name is the ACL's decision (`allow-ifname`, `authorizeTap`),
 * made before this. Throws a {@link TapError} (or the hook's error); nothing is left behind.
 *
 * Equivalent to `ip tuntap add tap%d mode tap vnet_hdr` + `ip link set TAP mtu N address fe:… master BR up`.
 */
export function attachTap(req: AttachRequest, options: AttachOptions = {}): AttachedTap {
  // A socket of its own is closed on every path: the daemon calls this for every request.
  const fd = req.rtnl?.socket.fd ?? openRouteSocketSync();
  try {
    // The device the ACL was decided for (its ifindex). Messages name it as it was asked for on
    // the C helper's path; a chosen name's (openTap's) name its kernel name.
    const opts: TapSyncOptions = { bridge: req.bridge, vnetHdr: req.vnetHdr };
    if (req.resolved) opts.bridgeLink = req.resolved.link;
    const { guard, beforeUp } = options;
    if (isGuarded(guard)) {
      opts.beforeUp = (tap) => {
        try {
          applyGuardSync(fd, tap, guard);
        } catch (e) {
          throw guardTapError(e, tap);
        }
        beforeUp?.(tap);
      };
    } else if (beforeUp !== undefined) opts.beforeUp = beforeUp;
    if (req.ifname !== null) {
      opts.name = req.ifname;
      opts.bridge = req.resolved?.ifname ?? req.bridge;
    }
    let tap;
    try {
      tap = tapSync(opts, fd);
    } catch (e) {
      // A name the shared check refuses: a tap step error like every other failure the helper and
      // the daemon print (they print TapErrors only), in the library's words.
      if (e instanceof InvalidArgumentError) throw new TapError({ step: 'validate', errno: EINVAL, detail: e.problem, tap: req.ifname ?? undefined, bridge: opts.bridge });
      throw e;
    }
    return { fd: tap.fd, name: tap.name, ifindex: tap.ifindex };
  } finally {
    if (req.rtnl === undefined) native.close(fd);
  }
}
