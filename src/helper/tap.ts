/**
 * The helper's tap step as one call, so that the direct path (this process holds CAP_NET_ADMIN)
 * and a privileged service acting for an unprivileged helper make the very same tap.
 * @module
 */
import { Rtnl } from '../netlink/rtnl.js';
import { TapError } from '../tun/errors.js';
import { openTap, openTapSync } from '../tun/tap.js';

/** What the helper asks for: `--br`, `--use-vnet` and the qbh extension `--ifname`. */
export interface HelperTapRequest {
  bridge: string;
  vnetHdr: boolean;
  /** A chosen name (or `%d` template) instead of the kernel's `tap%d`. */
  ifname: string | null;
}

/** The tap to hand over: its fd (non-persistent, so closing it removes the tap) and its name. */
export interface HelperTapResult {
  fd: number;
  name: string;
}

/**
 * Makes the helper's tap, exactly as the C helper does (spec §3): `tap%d`, IFF_TAP|IFF_NO_PI
 * (+IFF_VNET_HDR when asked for and supported), bridge MTU, MAC byte 0 = 0xFE, enslaved, up.
 * With `ifname`, the tap gets that name and it must be new (an existing device is EBUSY: the helper
 * never takes over someone else's tap). Throws a {@link TapError}; nothing is left behind.
 *
 * Equivalent to `ip tuntap add tap%d mode tap vnet_hdr` + `ip link set TAP mtu N address fe:… master BR up`.
 */
export async function makeHelperTap(req: HelperTapRequest): Promise<HelperTapResult> {
  // Closed on every path: the daemon calls this for every request (a socket per call would leak).
  const rtnl = Rtnl.openSync();
  try {
    if (req.ifname === null) {
      const tap = openTapSync({ bridge: req.bridge, vnetHdr: req.vnetHdr }, rtnl);
      return { fd: tap.fd, name: tap.name };
    }
    // vnetHdr undefined: on exactly when the kernel supports it, as --use-vnet asks.
    const tap = await openTap({ bridge: req.bridge, name: req.ifname, vnetHdr: req.vnetHdr ? undefined : false }, rtnl);
    return { fd: tap.fds[0]!, name: tap.name };
  } finally {
    rtnl.close();
  }
}

/**
 * An interface name from argv bytes, as the text the tap layer takes. Bytes that are not UTF-8
 * would be changed on the way to the kernel (to U+FFFD) and could name another bridge than the one
 * the ACL allowed: refused (a qbh deviation; the C helper passes the bytes through).
 */
export function utf8Name(what: 'bridge' | 'tap', bytes: Buffer): string {
  const text = bytes.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(bytes)) {
    throw new TapError({ step: 'validate', errno: 22, detail: `${what} name \`${text}' is not valid UTF-8` });
  }
  return text;
}
