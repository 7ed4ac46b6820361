/**
 * Which bridges may this identity use: the probe behind the daemon's `check`, `qbh acl check` and
 * `qbh doctor`. It creates nothing; it reads the rules as a tap request would and finds each bridge
 * through the kernel as a tap request does (`resolveAclBridge`), so a bridge denied by another of
 * its names (an altname) is denied here too.
 * @module
 */
import { checkAcl, decideAcl, displayBytes, type AclCheck, type AclCredentials, type AclRule, type CheckAclOptions } from '../acl/index.js';
import { resolveAclBridge, type RouteHandle } from './bridge.js';

/** The other names a bridge goes by (its kernel name, its altnames), for a name as bytes. */
export type BridgeAliases = (bridge: Buffer) => string[];

/** What the probe finds: the bridges the rules name that the identity may use, and whether any other is allowed. */
export interface BridgeAllowance {
  /** Bridges named by a rule and allowed (display text). */
  bridges: string[];
  /** Whether a bridge no rule names is allowed (`allow all` applies to this identity). */
  any: boolean;
  /** With `any`: the bridges named by a rule and denied; else empty. */
  except: string[];
}

/** Every other name of a bridge, looked up on `rtnl` as a tap request looks it up. */
export function kernelAliases(rtnl: RouteHandle): BridgeAliases {
  return (bridge) => resolveAclBridge(bridge, rtnl).bridgeNames;
}

/** A bridge name no rule mentions, to see whether a wildcard applies. */
function unnamed(named: readonly string[]): string {
  let probe = 'qbh-probe';
  for (let i = 0; named.includes(probe); i++) probe = `qbh-probe${i}`;
  return probe;
}

/**
 * The bridges `rules` let `identity` use: each bridge a rule names, decided on every name it goes
 * by (`aliases`; none: on the name alone), and whether a bridge no rule names is allowed.
 */
export function allowedBridges(rules: readonly AclRule[], identity: AclCredentials, aliases: BridgeAliases = () => []): BridgeAllowance {
  const out: BridgeAllowance = { bridges: [], any: false, except: [] };
  const named = [...new Set(rules.flatMap((r) => (r.bridge === null ? [] : [r.bridge])))];
  for (const n of named) {
    const bytes = Buffer.from(n, 'latin1');
    (decideAcl(rules, bytes, { identity, aliases: aliases(bytes) }).permitted ? out.bridges : out.except).push(displayBytes(n));
  }
  out.any = decideAcl(rules, unnamed(named), { identity }).permitted;
  if (!out.any) out.except = [];
  return out;
}

/**
 * `checkAcl` for one bridge, decided as a tap request is: on every name the kernel knows the
 * bridge by, found on `rtnl` (null: no rtnetlink here, decided on the name as given).
 */
export function checkBridge(options: CheckAclOptions, rtnl: RouteHandle | null): AclCheck {
  if (rtnl === null) return checkAcl(options);
  const bytes = Buffer.isBuffer(options.bridge) ? options.bridge : Buffer.from(options.bridge, 'utf8');
  return checkAcl({ ...options, bridgeNames: resolveAclBridge(bytes, rtnl).bridgeNames });
}
