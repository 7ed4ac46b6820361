/**
 * Tap making, blocking, on an rtnetlink socket's fd: `tap%d` as the C helper makes it (openTapSync,
 * the helper's default) and a chosen name (`--ifname`, as openTap makes one), in one call. Without
 * the generic netlink codec: the bridge lookup, the RTM_NEWLINK and the failure paths' requests are
 * src/netlink/link-requests.ts's (on the wire core), so that the helper's bundle loads none of rtnl.ts, attr.ts or tables.ts.
 * @internal
 * @module
 */
// (The module comment above sticks to the first import, and stripInternal drops both from the
// .d.ts: that import must be one the declarations do not need.)
import { NetlinkError } from '../netlink/errors.js';
import type { LinkMessage } from '../netlink/message.js';
import { linkNamesSync, lookupLinkSync, setLinkSync } from '../netlink/link-requests.js';
import { EINVAL, ENODEV, EOPNOTSUPP } from '../errors.js';
import { IFF_NO_PI, IFF_TAP, IFF_TUN_EXCL, IFF_VNET_HDR, TAP_MAX_MTU } from './constants.js';
import {
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
  type LinkChanges,
} from './device.js';
import { TapError, type TapStep } from './errors.js';

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
 * A tap as a {@link TapSyncOptions.beforeUp} hook sees it: made, with its MTU and MAC, enslaved to
 * `bridge`, and still down. `fd` is the tap's queue (closing it removes the tap: leave that to the caller).
 * @internal
 */
export interface DownTap {
  name: string;
  ifindex: number;
  fd: number;
  /** The bridge it joined: its kernel name and ifindex. */
  bridge: { name: string; ifindex: number };
}

/** What {@link tapSync} makes. @internal */
export interface TapSyncOptions extends HelperTapOptions {
  /**
   * A name or `%d` template for the tap, made as `openTap({ bridge, name })` makes it: the names
   * checked first (InvalidArgumentError), the bridge then, and an existing device is EBUSY (never
   * taken over). Absent: `tap%d` in the C helper's order of steps and with its errors.
   */
  name?: string;
  /**
   * Run on the tap after it joined the bridge and before it comes up (policy that must hold before
   * the first frame). Without it the tap's MTU, MAC, master and up are one RTM_NEWLINK; with it, the
   * tap joins down, the hook runs, then a second RTM_NEWLINK sets it up. A hook that throws: the tap
   * is closed (so removed) and its error propagates unchanged.
   */
  beforeUp?: (tap: DownTap) => void;
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
 * when SIOCBRADDIF meets it (``failed to add interface `tap0' to bridge `notbr': Operation not
 * supported``, naming the tap it would have made). The C helper copies the MTU first, so a device
 * whose MTU no tap can take (`lo`, 65536) is that step's error, as there.
 */
function notABridge(rtnlFd: number, br: LinkMessage, bridge: string): TapError {
  const tap = nextTapName(rtnlFd);
  const mtu = br.attrs.mtu as number;
  // The errors the kernel gives for these steps, with the same messages as when it gives them.
  if (mtu > TAP_MAX_MTU) return new TapError({ step: 'set-mtu', errno: EINVAL, tap, bridge, mtu });
  return new TapError({ step: 'enslave', errno: EOPNOTSUPP, tap, bridge });
}

/**
 * The tap `tapSync` made (TUNSETIFF done, `fd` open) and where it goes: the steps both orders end
 * with. `indexStep` is the step a failed SIOCGIFINDEX is reported as; `target` names the link in
 * the RTM_NEWLINK's errors.
 */
interface Made {
  fd: number;
  name: string;
  vnetHdr: boolean;
  br: LinkMessage;
  mtu: number;
  bridge: string;
  indexStep: TapStep;
  target: string | undefined;
}

/**
 * Gives the tap its MTU and a 0xFE MAC, enslaves it and brings it up: one RTM_NEWLINK, or, with a
 * `beforeUp` hook, the same without up, the hook, then up. Throws with `fd` still open (the caller closes it).
 */
function joinBridge(m: Made, rtnlFd: number, beforeUp: TapSyncOptions['beforeUp']): HelperTap {
  const { fd, name, br, bridge } = m;
  let ifindex: number;
  try {
    ifindex = ifindexOf(rtnlFd, name);
  } catch (e) {
    throw stepError(m.indexStep, e, name, bridge);
  }
  const target = m.target ?? String(ifindex);
  const address = randomMac(HELPER_PREFIX);
  const changes: LinkChanges = { mtu: m.mtu, address, master: br.index };
  if (beforeUp === undefined) changes.up = true;
  try {
    setLinkSync(rtnlFd, ifindex, changes, target);
  } catch (e) {
    throw attributeSync(rtnlFd, ifindex, changes, e, name, bridge, target);
  }
  if (beforeUp !== undefined) {
    beforeUp({ name, ifindex, fd, bridge: { name: br.attrs.ifname as string, ifindex: br.index } });
    try {
      setLinkSync(rtnlFd, ifindex, { up: true }, target);
    } catch (e) {
      throw stepError('up', e, name, bridge, m.mtu);
    }
  }
  return { name, ifindex, fd, vnetHdr: m.vnetHdr };
}

/**
 * Makes a tap on a bridge on the rtnetlink socket `rtnlFd` (an `Rtnl`'s `socket.fd`, or one of
 * `openRouteSocketSync`), blocking. Without `name`: {@link openTapSync}'s steps, requests and
 * errors (the C helper's). With `name`: what `openTap({ bridge, name, vnetHdr })` makes, with its
 * checks, steps and errors in its order. Either way the tap gets the bridge's MTU and a 0xFE MAC,
 * joins the bridge and comes up ({@link TapSyncOptions.beforeUp} runs just before it does).
 * Throws a {@link TapError} (or the hook's error); the tap's fd is closed, so nothing is left behind.
 *
 * Equivalent to `ip tuntap add NAME mode tap [vnet_hdr]` + `ip link set NAME mtu N address fe:… master BR up`.
 * @internal
 */
export function tapSync(opts: TapSyncOptions, rtnlFd: number): HelperTap {
  return opts.name === undefined ? helperOrder(opts, rtnlFd) : namedOrder(opts, opts.name, rtnlFd);
}

/**
 * `tap%d` in the C helper's order: /dev/net/tun, TUNSETIFF, the bridge (missing: reported now,
 * as `bridge-mtu`), then the RTM_NEWLINK. A device that is not a bridge is refused before the tap
 * is made: nothing is created and no RTM_NEWLINK with IFLA_MASTER is ever sent for it.
 */
function helperOrder(opts: TapSyncOptions, rtnlFd: number): HelperTap {
  const { bridge } = opts;
  let fd: number;
  try {
    fd = openTun();
  } catch (e) {
    throw stepError('open', e, 'tap%d', bridge);
  }
  let name = 'tap%d';
  try {
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
    const made: Made = { fd, name, vnetHdr: (flags & IFF_VNET_HDR) !== 0, br, mtu: br.attrs.mtu as number, bridge, indexStep: 'mac', target: name };
    return joinBridge(made, rtnlFd, opts.beforeUp);
  } catch (e) {
    throw closeAfter(e, [fd]);
  }
}

/**
 * A chosen name in openTap's order: names checked (InvalidArgumentError), the bridge looked up
 * (`bridge-mtu`) and refused when it is not one (`bridge`) or its MTU is above a tap's (`set-mtu`),
 * then TUNSETIFF with IFF_TUN_EXCL (`create`; an existing device is EBUSY, never taken over), then
 * the RTM_NEWLINK.
 */
function namedOrder(opts: TapSyncOptions, tapName: string, rtnlFd: number): HelperTap {
  const op = 'openTap';
  const template = checkName('tap', tapName, true, op);
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
    const vnetHdr = opts.vnetHdr && (probeFeatures(fd) & IFF_VNET_HDR) !== 0;
    const flags = IFF_TAP | IFF_NO_PI | (vnetHdr ? IFF_VNET_HDR : 0);
    try {
      // IFF_TUN_EXCL: never attach to (and then, on rollback, destroy) someone else's device.
      name = setIff(fd, name, flags | IFF_TUN_EXCL);
    } catch (e) {
      throw stepError('create', e, name, bridge);
    }
    return joinBridge({ fd, name, vnetHdr, br, mtu, bridge, indexStep: 'create', target: undefined }, rtnlFd, opts.beforeUp);
  } catch (e) {
    throw closeAfter(e, [fd]);
  }
}
