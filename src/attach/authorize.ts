/**
 * The helper's decision as one call: find the bridge the way the kernel will, then decide the ACL on
 * every name it goes by and on a chosen tap name. The direct helper and the privileged daemon (for a
 * peer's credentials) both call this, so neither can decide on less than the other.
 * @module
 */
import { evaluateAcl, type AclVerdict, type EvaluateAclOptions } from '../acl/evaluate.js';
import { sameBytes } from './argv.js';
import { bridgeNames, resolveBridge, type ResolvedBridge, type RouteHandle } from './tap.js';

/** What is asked: `--br` and `--ifname` as bytes (as the C helper compares them). */
export interface HelperAuthRequest {
  bridge: Buffer;
  ifname: Buffer | null;
}

/** The ACL's answer, and the bridge it was decided for (null: no such device, or not UTF-8). */
export interface HelperAuthorization {
  verdict: AclVerdict;
  resolved: ResolvedBridge | null;
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
  const text = bridge.toString('utf8');
  // A name that is not UTF-8 is refused by the tap step; it cannot name a device here.
  const utf8 = sameBytes(Buffer.from(text, 'utf8'), bridge);
  const resolved = utf8 && bridge.length < 16 ? resolveBridge(text, rtnl) : null;
  return { resolved, bridgeNames: bridgeNames(resolved) };
}

/**
 * Steps 3 and 4 of the C helper's `main()` (name length, ACL), hardened: `--br` is resolved first
 * ({@link resolveAclBridge}) and a deny naming the device's kernel name or any of its altnames denies,
 * and `--ifname` must be allowed by the ACL (`allow-ifname`; `tap…`/`vnet…` by default). `acl`
 * passes through to {@link evaluateAcl} (the daemon gives the peer's `credentials` and `cwd`).
 * Never throws for anything in the ACL files; pass `resolved` on to `makeHelperTap`.
 */
export function authorizeHelper(req: HelperAuthRequest, rtnl: RouteHandle, acl: EvaluateAclOptions = {}): HelperAuthorization {
  const { resolved, bridgeNames: names } = resolveAclBridge(req.bridge, rtnl);
  const verdict = evaluateAcl(req.bridge, { ...acl, bridgeNames: names, ifname: req.ifname });
  return { verdict, resolved };
}
