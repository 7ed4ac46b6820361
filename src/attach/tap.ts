/**
 * The helper's bridge lookup and tap step as calls of their own, so that the direct path (this
 * process holds CAP_NET_ADMIN) and a privileged service acting for an unprivileged helper resolve
 * the same bridge, decide on the same names and make the very same tap.
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import type { AttrSet } from '../netlink/attr.js';
import { openRouteSocketSync } from '../netlink/lean.js';
import { lookupLinkSync } from '../netlink/lookup.js';
import type { LinkMessage } from '../netlink/message.js';
import { native } from '../native.js';
import { linkKind } from '../tun/device.js';
import { TapError } from '../tun/errors.js';
import { helperTapSync, namedTapSync, type HelperTapOptions } from '../tun/helper-tap.js';
import { sameBytes } from './argv.js';

/**
 * An rtnetlink handle as the helper's steps use it: its socket's fd. An `Rtnl` is one (the daemon
 * passes its own); the helper passes `{ socket: { fd } }` of `openRouteSocketSync()`, so that it
 * never loads rtnl.ts and the generic codec (src/netlink/lean.ts).
 */
export interface RouteHandle {
  readonly socket: { readonly fd: number };
}

/** What the helper asks for: `--br`, `--use-vnet` and the qbh extension `--ifname`. */
export interface HelperTapRequest {
  bridge: string;
  vnetHdr: boolean;
  /** A chosen name (or `%d` template) instead of the kernel's `tap%d`. */
  ifname: string | null;
  /**
   * The bridge as {@link resolveBridge} found it (before the ACL was decided on its names): the tap
   * joins exactly that device. Default: looked up again by `bridge`.
   */
  resolved?: ResolvedBridge | null;
  /** The rtnetlink handle to use (default: a new socket, closed before this returns). */
  rtnl?: RouteHandle;
}

/** The tap to hand over: its fd (non-persistent, so closing it removes the tap), its name and ifindex. */
export interface HelperTapResult {
  fd: number;
  name: string;
  ifindex: number;
}

/** A bridge name as the kernel resolved it. */
export interface ResolvedBridge {
  /** The name asked for (`--br`): the kernel name or one of its altnames. */
  requested: string;
  /** The kernel's name for the device (IFLA_IFNAME). */
  ifname: string;
  /** Its altnames (`ip link property add dev BR altname NAME`). */
  altnames: string[];
  ifindex: number;
  /** IFLA_INFO_KIND (`bridge` for a Linux bridge); undefined for a device without one (`lo`). */
  kind: string | undefined;
  /** The RTM_NEWLINK, for the tap layer: only ifname, mtu, linkinfo.kind and propList decoded. @internal */
  link: LinkMessage;
}

/**
 * Looks `--br` up the way the kernel will when the tap joins it: an altname finds its device. Returns
 * null when there is no such device (the tap step then fails with the C helper's `failed to get mtu of
 * bridge` message, after the ACL, as in C). The ACL must then be decided on {@link bridgeNames} too:
 * `deny br0` has to deny `--br=lan0` when lan0 is an altname of br0 (the C helper lets it through).
 * Equivalent to `ip -j -d link show dev NAME`.
 */
export function resolveBridge(bridge: string, rtnl: RouteHandle): ResolvedBridge | null {
  if (bridge === '') return null;
  let link: LinkMessage;
  try {
    // Only the name, MTU, kind and altnames are decoded: what the ACL and the tap step read.
    link = lookupLinkSync(rtnl.socket.fd, bridge, { op: 'resolveBridge', target: bridge });
  } catch {
    // ENODEV, or a name the kernel refuses: the tap step reports it in the C helper's words.
    return null;
  }
  const altnames = ((link.attrs.propList as AttrSet | undefined)?.altIfname as string[] | undefined) ?? [];
  return { requested: bridge, ifname: link.attrs.ifname as string, altnames: [...altnames], ifindex: link.index, kind: linkKind(link), link };
}

/** Every name of the resolved device other than the one asked for: what `evaluateAcl`'s `bridgeNames` takes. */
export function bridgeNames(resolved: ResolvedBridge | null): string[] {
  if (resolved === null) return [];
  return [resolved.ifname, ...resolved.altnames].filter((n) => n !== resolved.requested);
}

/**
 * Makes the helper's tap, exactly as the C helper does (spec §3): `tap%d`, IFF_TAP|IFF_NO_PI
 * (+IFF_VNET_HDR when asked for and supported), bridge MTU, MAC byte 0 = 0xFE, enslaved, up.
 * A device that is not a Linux bridge is refused before anything is made. With `ifname`, the tap
 * gets that name and it must be new (an existing device is EBUSY: the helper never takes over
 * someone else's tap); whether the caller may use that name is the ACL's decision (`allow-ifname`),
 * made before this. Throws a {@link TapError}; nothing is left behind.
 *
 * Equivalent to `ip tuntap add tap%d mode tap vnet_hdr` + `ip link set TAP mtu N address fe:… master BR up`.
 */
export async function makeHelperTap(req: HelperTapRequest): Promise<HelperTapResult> {
  // A socket of its own is closed on every path: the daemon calls this for every request.
  const fd = req.rtnl?.socket.fd ?? openRouteSocketSync();
  try {
    if (req.ifname === null) {
      // The device the ACL was decided for (its ifindex); messages name it as it was asked for.
      const opts: HelperTapOptions = { bridge: req.bridge, vnetHdr: req.vnetHdr };
      if (req.resolved) opts.bridgeLink = req.resolved.link;
      const tap = helperTapSync(opts, fd);
      return { fd: tap.fd, name: tap.name, ifindex: tap.ifindex };
    }
    // As openTap({ bridge, name, vnetHdr }) makes it; vnetHdr undefined: on exactly when the kernel
    // supports it, as --use-vnet asks. The tap joins the device the ACL was decided for.
    const bridge = req.resolved?.ifname ?? req.bridge;
    let tap;
    try {
      tap = namedTapSync({ bridge, name: req.ifname, vnetHdr: req.vnetHdr ? undefined : false, bridgeLink: req.resolved?.link }, fd);
    } catch (e) {
      // A name the shared check refuses: a tap step error like every other failure the helper and
      // the daemon print (they print TapErrors only), in the library's words.
      if (e instanceof InvalidArgumentError) throw new TapError({ step: 'validate', errno: 22, detail: e.problem, tap: req.ifname, bridge });
      throw e;
    }
    return { fd: tap.fd, name: tap.name, ifindex: tap.ifindex };
  } finally {
    if (req.rtnl === undefined) native.close(fd);
  }
}

/**
 * An interface name from argv bytes, as the text the tap layer takes. Bytes that are not UTF-8
 * would be changed on the way to the kernel (to U+FFFD) and could name another bridge than the one
 * the ACL allowed: refused (a qbh deviation; the C helper passes the bytes through).
 */
export function utf8Name(what: 'bridge' | 'tap', bytes: Buffer): string {
  const text = bytes.toString('utf8');
  if (!sameBytes(Buffer.from(text, 'utf8'), bytes)) {
    throw new TapError({ step: 'validate', errno: 22, detail: `${what} name \`${text}' is not valid UTF-8` });
  }
  return text;
}
