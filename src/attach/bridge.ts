/**
 * The bridge a request names, found the way the kernel will find it when the tap joins it: the
 * kernel name or an altname finds the device. Every decision (a tap request, a check, the probe of
 * the bridges an identity may use) is made on what this returns, so they always agree.
 * @module
 */
import { lookupLinkSync } from '../netlink/link-requests.js';
import type { LinkMessage } from '../netlink/message.js';
import { linkKind } from '../tun/device.js';
import { isUtf8 } from './names.js';

/** IFNAMSIZ: a name of this many bytes or more names no device. */
const IFNAMSIZ = 16;

/**
 * An rtnetlink handle as the attach steps use it: its socket's fd. An `Rtnl` is one (the daemon and
 * the CLI pass their own); the helper passes `{ socket: { fd } }` of `openRouteSocketSync()`, so that
 * it never loads rtnl.ts and the generic codec (src/netlink/link-requests.ts on the wire core).
 */
export interface RouteHandle {
  readonly socket: { readonly fd: number };
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
  const altnames = link.attrs.propList?.altIfname ?? [];
  return { requested: bridge, ifname: link.attrs.ifname as string, altnames: [...altnames], ifindex: link.index, kind: linkKind(link), link };
}

/** Every name of the resolved device other than the one asked for: what `evaluateAcl`'s `bridgeNames` takes. */
export function bridgeNames(resolved: ResolvedBridge | null): string[] {
  if (resolved === null) return [];
  return [resolved.ifname, ...resolved.altnames].filter((n) => n !== resolved.requested);
}

/** `--br` looked up as the kernel will look it up, and the names the ACL must be decided on besides it. */
export interface AclBridge {
  resolved: ResolvedBridge | null;
  /** Every other name of that device (its kernel name, its altnames): `evaluateAcl`'s `bridgeNames`. */
  bridgeNames: string[];
}

/**
 * Finds the device `--br` names as the tap step will ({@link resolveBridge}): the kernel name or an
 * altname, a name of 16 bytes or more or not UTF-8 finding nothing. A tap request and a check
 * (`qbh acl check`, the daemon's `check`) both decide on what this returns, so they always agree.
 */
export function resolveAclBridge(bridge: Buffer, rtnl: RouteHandle): AclBridge {
  // A name that is not UTF-8 is refused by the tap step; it cannot name a device here.
  const resolved = isUtf8(bridge) && bridge.length < IFNAMSIZ ? resolveBridge(bridge.toString('utf8'), rtnl) : null;
  return { resolved, bridgeNames: bridgeNames(resolved) };
}
