/**
 * qbh: Linux bridges and tap devices over rtnetlink, for virtualization.
 *
 * The functions here use a shared handle, opened on first use; an {@link Rtnl} opened with
 * `await Rtnl.open()` gives the same methods on a socket of your own (`Rtnl.open({ netns })`: in
 * another network namespace).
 *
 * A script need not call {@link closeDefaultHandle}: the shared socket holds the event loop only
 * while a request waits for its answer, so the process exits when its work is done. Call it to
 * release the socket early (a long-running process, a test counting fds); it reopens on next use.
 * A {@link monitor} holds the loop until it ends (`break`, or its signal).
 *
 * ```ts
 * import { createBridge, addAddress, setLink, listBridges, deleteBridge } from 'qbh';
 * await createBridge('br0', { mtu: 1500 });
 * await addAddress('br0', '10.0.0.1/24');
 * await setLink('veth0', { master: 'br0', up: true });
 * console.log(await listBridges());
 * await deleteBridge('br0', { force: true }); // veth0 is released; without force: BridgeNotEmptyError
 * ```
 * @module qbh
 */
import type { InvalidArgumentError } from './errors.js';
import { Rtnl, sharedRtnl, closeSharedRtnl, type Bridge, type CreateBridgeOptions, type DeleteBridgeOptions, type LinkFilter, type LinkRef, type SetLinkOptions } from './netlink/rtnl.js';
import type { Address, BridgePort, Link } from './netlink/present.js';
import { join } from 'node:path';
import { PACKAGE_ROOT } from './root.js';

export { Rtnl } from './netlink/rtnl.js';
export { QbhError, InvalidArgumentError, BridgeNotEmptyError, NEED_NET_ADMIN } from './errors.js';
export type { QbhErrorInit, QbhErrorCode, ErrnoCode } from './errors.js';
export { parseCidr } from './netlink/cidr.js';
export { persistentMac } from './netlink/mac.js';
export type { PersistentMac, PersistentMacSource } from './netlink/mac.js';
export type { Cidr } from './netlink/cidr.js';
export type { Bridge, CreateBridgeOptions, DeleteBridgeOptions, LinkFilter, LinkRef, RtnlOptions, SetLinkOptions } from './netlink/rtnl.js';
export type { NetlinkErrorContext } from './netlink/errors.js';
export type {
  Address,
  AddrInfo,
  AddrFlag,
  BridgePort,
  Link,
  LinkFlag,
  LinkMode,
  OperState,
  PortState,
  LinkInfo,
  BridgeLinkInfo,
  TunLinkInfo,
  VethLinkInfo,
  OtherLinkInfo,
  BridgeInfoData,
  TunInfoData,
  BridgePortFlags,
  BridgePortInfoData,
} from './netlink/present.js';
export { kernelAttributes } from './netlink/present.js';
export type { AttrSet, Decoded, RawAttr } from './netlink/attr.js';
export type { AddrAttrs, LinkAttrs } from './netlink/tables.js';
export { NetlinkError, NoSuchDeviceError, NotABridgeError, NameTakenError, AddressError, NetlinkDecodeError, DumpInterruptedError, errnoName, strerror } from './netlink/errors.js';
export type { DeviceKind } from './netlink/errors.js';

const handle = sharedRtnl;

/**
 * The path of this package's own bridge helper, for QEMU's `-netdev bridge,br=BR,helper=PATH`
 * (or libvirt's `bridge_helper`): dist/qemu-bridge-helper.cjs of the installed package, found
 * from this module's own location, so it is right under npm, pnpm, a hoisted workspace or a global
 * install. QEMU runs it as a program: it needs CAP_NET_ADMIN (a file capability, setuid root, or
 * qbhd for unprivileged QEMU; docs/helper.md).
 * @category Taps for QEMU
 */
export function helperPath(): string {
  return join(PACKAGE_ROOT, 'dist', 'qemu-bridge-helper.cjs');
}

/**
 * Closes the shared handle, which the tap functions use too (it reopens on next use). Optional:
 * a script whose work is done exits without it.
 * @category Handles
 */
export function closeDefaultHandle(): void {
  closeSharedRtnl();
}

/**
 * Lists links, filtered by the kernel. Equivalent to `ip -j -d link show [type KIND] [master NAME]`.
 * @category Links and bridges
 */
export function listLinks(filter?: LinkFilter): Promise<Link[]> {
  return handle().listLinks(filter);
}

/**
 * One link by name or ifindex. Equivalent to `ip -j -d link show NAME`.
 * @category Links and bridges
 */
export function getLink(ref: LinkRef): Promise<Link> {
  return handle().getLink(ref);
}

/**
 * Creates a bridge, up by default, with a MAC that does not change as ports come and go: `address`,
 * or else {@link persistentMac} of its name (opt out with `persistentMac: false`).
 * Equivalent to `ip link add NAME address MAC type bridge && ip link set NAME up`.
 * @category Links and bridges
 */
export function createBridge(name: string, opts?: CreateBridgeOptions): Promise<Bridge> {
  return handle().createBridge(name, opts);
}

/**
 * Deletes a link. Equivalent to `ip link delete NAME`.
 * @category Links and bridges
 */
export function deleteLink(ref: LinkRef): Promise<void> {
  return handle().deleteLink(ref);
}

/**
 * Deletes several links in one kernel request (via a temporary interface group). Equivalent to `ip link delete group N`.
 * @category Links and bridges
 */
export function deleteLinks(refs: LinkRef[]): Promise<void> {
  return handle().deleteLinks(refs);
}

/**
 * Deletes a bridge. One that still has ports is refused with a {@link BridgeNotEmptyError}
 * (`code` 'ENOTEMPTY', naming the ports) unless `force` (release them) or `withPorts` (delete them
 * too, in the same request), as `qbh bridge delete` refuses without `--force` or `--with-ports`.
 * Equivalent to `ip link delete NAME`.
 * @category Links and bridges
 */
export function deleteBridge(name: string, opts?: DeleteBridgeOptions): Promise<void> {
  return handle().deleteBridge(name, opts);
}

/**
 * Changes state, MTU, MAC, master and group in one request. Equivalent to `ip link set NAME up mtu N master BR`.
 * @category Links and bridges
 */
export function setLink(ref: LinkRef, opts: SetLinkOptions): Promise<void> {
  return handle().setLink(ref, opts);
}

/**
 * Every bridge with its ports and addresses. Equivalent to `ip -j -d link show type bridge` + `bridge -j -d link show`.
 * @category Links and bridges
 */
export function listBridges(): Promise<Bridge[]> {
  return handle().listBridges();
}

/**
 * One bridge with its ports and addresses. Equivalent to `ip -j -d link show NAME` + `bridge -j -d link show master NAME`.
 * @category Links and bridges
 */
export function getBridge(name: LinkRef): Promise<Bridge> {
  return handle().getBridge(name);
}

/**
 * Ports of all bridges, or of one. Equivalent to `bridge -j -d link show [master BR]`.
 * @category Links and bridges
 */
export function listBridgePorts(bridge?: LinkRef): Promise<BridgePort[]> {
  return handle().listBridgePorts(bridge);
}

/**
 * Adds an IPv4 or IPv6 address. An address without a prefix length is a host address (`10.0.0.1`
 * is `10.0.0.1/32`, an IPv6 one `/128`) with no subnet route, as with `ip addr add`: write the
 * prefix. A CIDR that does not parse is an {@link InvalidArgumentError}, before the kernel sees it.
 * Equivalent to `ip addr add CIDR dev LINK`.
 * @category Addresses
 */
export function addAddress(link: LinkRef, cidr: string): Promise<void> {
  return handle().addAddress(link, cidr);
}

/**
 * Removes an address. Equivalent to `ip addr del CIDR dev LINK`.
 * @category Addresses
 */
export function deleteAddress(link: LinkRef, cidr: string): Promise<void> {
  return handle().deleteAddress(link, cidr);
}

/**
 * Addresses of a link, or of all links, as one flat list: each an `addr_info` entry of
 * `ip -j addr show` with `ifindex` and `ifname` of its link in front (iproute2 nests the entries
 * in per-link objects instead). Equivalent to `ip -j addr show [dev LINK]`.
 * @category Addresses
 */
export function listAddresses(link?: LinkRef): Promise<Address[]> {
  return handle().listAddresses(link);
}

export { monitor } from './netlink/monitor.js';
export type { MonitorEvent, MonitorOptions } from './netlink/monitor.js';

// Port guards: what a VM may do on its bridge port, applied before its first frame (src/guard, docs/guard.md).
export { parseGuard, formatGuard, checkGuard, STRICT_WORDS } from './guard/policy.js';
export type { PortGuard } from './guard/policy.js';
export { GuardError, GUARD_ALIAS_PREFIX, readGuardAlias } from './guard/apply.js';
export type { GuardedPort } from './guard/apply.js';
export type { FdbEntry } from './guard/fdb.js';
export { readPortGuards } from './guard/state.js';
export type { PortGuardState, PortGuardFlags } from './guard/state.js';

// Taps for QEMU: /dev/net/tun, vnet_hdr, multiqueue, attached to a bridge; fd passing (src/tun).
export * from './tun/index.js';

// bridge.conf exactly as QEMU's qemu-bridge-helper reads it: parse, evaluate, explain (docs/acl.md).
// The helper's and the daemon's building blocks (byte strings, the tokenizer, file-access checks)
// stay in src/acl, not part of the package's API.
export {
  AclError,
  type AclErrorCode,
  DEFAULT_ACL_FILE,
  DEFAULT_IFNAME_PREFIXES,
  ACL_MAX_DEPTH,
  ACL_MAX_INCLUDES,
  ACL_MAX_TOTAL_BYTES,
  ACL_MAX_FILE_BYTES,
  type AclSyntaxError,
  type AclPrincipal,
  checkAcl,
  type AclCheck,
  type AclCaller,
  type AclFileInfo,
  type AclGuardInfo,
  type AclRuleRef,
  type CheckAclOptions,
  evaluateAcl,
  type EvaluateAclOptions,
  type AclVerdict,
  parseAcl,
  type ParseAclOptions,
  loadAcl,
  type LoadOptions,
  type AclRule,
  type AclIfnameRule,
  type AclGuardRule,
  type AclRuleSet,
  type AclFileRecord,
  type AclFileStatus,
  decideAcl,
  decideIfname,
  decideGuard,
  type DecideOptions,
  type DecideGuardOptions,
  type AclDecision,
  type AclIfnameDecision,
  type AclGuardDecision,
  bridgeNameError,
  memoryReader,
  callerReader,
  credentialReader,
  type AclReader,
  type AclSource,
  type AclCredentials,
  type CredentialReaderOptions,
  UserDb,
  readUserDb,
  type UserEntry,
  type GroupEntry,
} from './acl/index.js';
