/**
 * Authorizing a tap for an identity as one call: find the bridge the way the kernel will, then
 * decide the ACL on every name it goes by and on a chosen tap name. The direct helper (for its
 * caller) and the privileged daemon (for a peer's credentials) both call this, so neither can
 * decide on less than the other.
 * @module
 */
import { evaluateAcl, type AclVerdict, type EvaluateAclOptions } from '../acl/evaluate.js';
import { resolveAclBridge, type ResolvedBridge, type RouteHandle } from './bridge.js';

/** What is asked: `--br` and `--ifname` as bytes (as the C helper compares them). */
export interface TapAuthRequest {
  bridge: Buffer;
  ifname: Buffer | null;
}

/** The ACL's answer, and the bridge it was decided for (null: no such device, or not UTF-8). */
export interface TapAuthorization {
  verdict: AclVerdict;
  resolved: ResolvedBridge | null;
}

/**
 * Steps 3 and 4 of the C helper's `main()` (name length, ACL), hardened: `--br` is resolved first
 * ({@link resolveAclBridge}) and a deny naming the device's kernel name or any of its altnames denies,
 * and `--ifname` must be allowed by the ACL (`allow-ifname`; `tap…`/`vnet…` by default). `acl`
 * passes through to {@link evaluateAcl} (the daemon gives the peer's `credentials` and `cwd`).
 * When permitted, `verdict.guard` is the port guard the ACL's `guard` lines give this caller on this
 * bridge (decided on every name of the device, as the denies are). Never throws for anything in the
 * ACL files; pass `resolved` and `verdict.guard.guard` on to `attachTap`.
 */
export function authorizeTap(req: TapAuthRequest, rtnl: RouteHandle, acl: EvaluateAclOptions = {}): TapAuthorization {
  const { resolved, bridgeNames } = resolveAclBridge(req.bridge, rtnl);
  const verdict = evaluateAcl(req.bridge, { ...acl, bridgeNames, ifname: req.ifname });
  return { verdict, resolved };
}
