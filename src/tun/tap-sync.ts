/**
 * The helper's tap steps, blocking, on an rtnetlink socket's fd: `tap%d` as the C helper makes it
 * (openTapSync) and a chosen name (`--ifname`, as openTap makes one). Without the generic netlink
 * codec: the bridge lookup, the one RTM_NEWLINK and the failure paths' requests are
 * src/netlink/lean.ts's, so that the helper's bundle loads none of rtnl.ts, attr.ts or tables.ts.
 * @internal
 * @module
 */
// (The module comment above sticks to the first import, and stripInternal drops both from the
// .d.ts: that import must be one the declarations do not need.)
import { NetlinkError } from '../netlink/errors.js';
import type { LinkMessage } from '../netlink/message.js';
import { linkNamesSync, setLinkSync } from '../netlink/lean.js';
import { lookupLinkSync } from '../netlink/lookup.js';
import { IFF_NO_PI, IFF_TAP, IFF_TUN_EXCL, IFF_VNET_HDR, TAP_MAX_MTU } from './constants.js';
import {
  EINVAL,
  ENODEV,
  EOPNOTSUPP,
  HELPER_PREFIX,
  attributeSync,
  checkBridgeLink,
  checkName,
  closeAfter,
  ifindexOf,
  linkKind,
  openTun,
  probeFeatures,
  randomMac,
  setIff,
  stepError,
} from './device.js';
import { TapError } from './errors.js';

/** Options of {@link openTapSync}: exactly what qemu-bridge-helper takes. */
export interface HelperTapOptions {
  /** The bridge to attach to (`--br=`). */
  bridge: string;
  /** Ask for IFF_VNET_HDR (`--use-vnet`); used only if TUNGETFEATURES reports it. */
  vnetHdr: boolean;
  /**
   * The bridge's RTM_NEWLINK as already looked up (by the helper, before its ACL check, to learn the
   * kernel's name for it): the tap then joins exactly that ifindex. Default: looked up by `bridge`.
   * @internal
   */
  bridgeLink?: LinkMessage;
}

/** A tap made by {@link openTapSync}: non-persistent, so it vanishes when `fd` is closed. */
export interface HelperTap {
  name: string;
  ifindex: number;
  fd: number;
  vnetHdr: boolean;
}

/**
 * The name the kernel would give `tap%d` now: the lowest `tapN` that no link has as its name or
 * an altname. Only for messages about a tap that was never made (one dump: failure paths only).
 */
function nextTapName(rtnlFd: number): string {
  try {
    const used = linkNamesSync(rtnlFd, 'openTap');
    let n = 0;
    while (used.has(`tap${n}`)) n++;
    return `tap${n}`;
  } catch {
    return 'tap%d';
  }
}

/**
 * Refuses a "bridge" that is not one, before any tap exists, with the error the C helper reports
 * when SIOCBRADDIF meets it (spec §8: ``failed to add interface `tap0' to bridge `notbr': Operation
 * not supported``, naming the tap it would have made). The C helper copies the MTU first, so a
 * device whose MTU no tap can take (`lo`, 65536) is that step's error, as there.
 */
function notABridge(rtnlFd: number, br: LinkMessage, bridge: string): TapError {
  const tap = nextTapName(rtnlFd);
  const mtu = br.attrs.mtu as number;
  // The errors the kernel gives for these steps, with the same messages as when it gives them.
  if (mtu > TAP_MAX_MTU) return new TapError({ step: 'set-mtu', errno: EINVAL, tap, bridge, mtu });
  return new TapError({ step: 'enslave', errno: EOPNOTSUPP, tap, bridge });
}

/**
 * {@link openTapSync} on the rtnetlink socket `rtnlFd` (an `Rtnl`'s `socket.fd`, or one of
 * `openRouteSocketSync`): the same steps, requests and errors.
 */
export function helperTapSync(opts: HelperTapOptions, rtnlFd: number): HelperTap {
  const { bridge } = opts;
  let fd: number;
  try {
    fd = openTun();
  } catch (e) {
    throw stepError('open', e, 'tap%d', bridge);
  }
  let name = 'tap%d';
  try {
    // The bridge is looked up before the tap is made, and a device that is not a bridge is refused
    // now: nothing is created and no RTM_NEWLINK with IFLA_MASTER is ever sent for it. A missing
    // bridge is still reported after TUNSETIFF, where the C helper meets it (spec §1.2, §3).
    let br: LinkMessage | undefined = opts.bridgeLink;
    let lookupError: unknown;
    if (br === undefined) {
      const ctx = { op: 'openTap', target: bridge };
      try {
        if (bridge === '') throw new NetlinkError(ENODEV, ctx);
        br = lookupLinkSync(rtnlFd, bridge, ctx);
      } catch (e) {
        lookupError = e;
      }
    }
    if (br !== undefined && linkKind(br) !== 'bridge') throw notABridge(rtnlFd, br, bridge);
    let flags = IFF_TAP | IFF_NO_PI;
    if (opts.vnetHdr && probeFeatures(fd) & IFF_VNET_HDR) flags |= IFF_VNET_HDR;
    try {
      name = setIff(fd, name, flags);
    } catch (e) {
      throw stepError('create', e, name, bridge);
    }
    if (br === undefined) throw stepError('bridge-mtu', lookupError, name, bridge);
    const mtu = br.attrs.mtu as number;
    let ifindex: number;
    try {
      ifindex = ifindexOf(rtnlFd, name);
    } catch (e) {
      throw stepError('mac', e, name, bridge);
    }
    const address = randomMac(HELPER_PREFIX);
    const changes = { mtu, address, master: br.index, up: true };
    try {
      setLinkSync(rtnlFd, ifindex, changes, name);
    } catch (e) {
      throw attributeSync(rtnlFd, ifindex, changes, e, name, bridge, name);
    }
    return { name, ifindex, fd, vnetHdr: (flags & IFF_VNET_HDR) !== 0 };
  } catch (e) {
    throw closeAfter(e, [fd]);
  }
}

/** What {@link namedTapSync} makes: a name or `%d` template, on a bridge, vnet_hdr when supported unless refused. */
export interface NamedTapOptions {
  /** The bridge's kernel name. */
  bridge: string;
  /** The tap's name or `%d` template. */
  name: string;
  /** false: no IFF_VNET_HDR; undefined: on exactly when the kernel supports it. */
  vnetHdr: false | undefined;
  /** The bridge's RTM_NEWLINK as the caller looked it up (the tap joins exactly that device); default: looked up by `bridge`. */
  bridgeLink?: LinkMessage;
}

/**
 * A tap with a chosen name on a bridge, blocking, on the rtnetlink socket `rtnlFd`: what
 * `openTap({ bridge, name, vnetHdr })` makes, with its checks, steps and errors in its order —
 * names checked (InvalidArgumentError), the bridge looked up (`bridge-mtu`) and refused when it is
 * not one (`bridge`) or its MTU is above a tap's (`set-mtu`), then TUNSETIFF with IFF_TUN_EXCL (an
 * existing device is EBUSY, never taken over), SIOCGIFINDEX (`create`), one RTM_NEWLINK for MTU,
 * a 0xFE MAC, master and up. Throws a {@link TapError} (the fd closed: nothing is left behind).
 *
 * Equivalent to `ip tuntap add NAME mode tap [vnet_hdr]` + `ip link set NAME mtu N address fe:… master BR up`.
 */
export function namedTapSync(opts: NamedTapOptions, rtnlFd: number): HelperTap {
  const op = 'openTap';
  const template = checkName('tap', opts.name, true, op);
  const bridge = checkName('bridge', opts.bridge, false, op);
  let br = opts.bridgeLink;
  if (br === undefined) {
    try {
      br = lookupLinkSync(rtnlFd, bridge, { op, target: bridge });
    } catch (e) {
      throw stepError('bridge-mtu', e, template, bridge);
    }
  }
  const mtu = checkBridgeLink(br, template, bridge);
  let name = template;
  let fd: number;
  try {
    fd = openTun();
  } catch (e) {
    throw stepError('open', e, name, bridge);
  }
  try {
    const features = probeFeatures(fd);
    const vnetHdr = opts.vnetHdr ?? (features & IFF_VNET_HDR) !== 0;
    const flags = IFF_TAP | IFF_NO_PI | (vnetHdr ? IFF_VNET_HDR : 0);
    try {
      // IFF_TUN_EXCL: never attach to (and then, on rollback, destroy) someone else's device.
      name = setIff(fd, name, flags | IFF_TUN_EXCL);
    } catch (e) {
      throw stepError('create', e, name, bridge);
    }
    let ifindex: number;
    let address: string;
    try {
      ifindex = ifindexOf(rtnlFd, name);
      address = randomMac(HELPER_PREFIX);
    } catch (e) {
      throw stepError('create', e, name, bridge);
    }
    const changes = { mtu, address, master: br.index, up: true };
    try {
      setLinkSync(rtnlFd, ifindex, changes);
    } catch (e) {
      throw attributeSync(rtnlFd, ifindex, changes, e, name, bridge, String(ifindex));
    }
    return { name, ifindex, fd, vnetHdr };
  } catch (e) {
    throw closeAfter(e, [fd]);
  }
}
