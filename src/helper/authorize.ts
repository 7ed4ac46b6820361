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

/**
 * Steps 3 and 4 of the C helper's `main()` (name length, ACL), hardened: `--br` is resolved first
 * ({@link resolveBridge}) and a deny naming the device's kernel name or any of its altnames denies,
 * and `--ifname` must be allowed by the ACL (`allow-ifname`; `tap…`/`vnet…` by default). `acl`
 * passes through to {@link evaluateAcl} (the daemon gives the peer's `credentials` and `cwd`).
 * Never throws for anything in the ACL files; pass `resolved` on to `makeHelperTap`.
 */
export function authorizeHelper(req: HelperAuthRequest, rtnl: RouteHandle, acl: EvaluateAclOptions = {}): HelperAuthorization {
  const text = req.bridge.toString('utf8');
  // A name that is not UTF-8 is refused by the tap step; it cannot name a device here.
  const utf8 = sameBytes(Buffer.from(text, 'utf8'), req.bridge);
  const resolved = utf8 && req.bridge.length < 16 ? resolveBridge(text, rtnl) : null;
  const verdict = evaluateAcl(req.bridge, { ...acl, bridgeNames: bridgeNames(resolved), ifname: req.ifname });
  return { verdict, resolved };
}
