/**
 * Deciding, for a peer the kernel identified: the helper's own evaluateAcl/checkAcl from src/acl,
 * with that peer's uid, gid and groups, the ACL read afresh for every request, hardened (every
 * file and directory root's and not group- or world-writable, or no decision). Includes the peer
 * could not read count as they would for the C helper run by that user.
 * @module
 */
import { credentialReader, displayBytes, evaluateAcl, type AclCredentials, type AclReader, type AclRule, type EvaluateAclOptions } from '../acl/index.js';
import { authorizeTap } from '../attach/authorize.js';
import type { ResolvedBridge } from '../attach/bridge.js';
import { allowedBridges, checkBridge, kernelAliases, type BridgeAllowance } from '../attach/probe.js';
import type { TapRequest } from '../attach/protocol.js';
import type { PortGuard } from '../guard/policy.js';
import { Rtnl } from '../netlink/rtnl.js';
import type { Peer } from './peer.js';

/** The outcome of the ACL for one tap request. */
export interface TapDecision {
  permitted: boolean;
  /** What the helper prints, exactly (C helper bytes, UTF-8 decoded): empty when permitted without notes. */
  message: string;
  /** For the audit line: `FILE:LINE` of the rule that decided, `default-deny`, or the error. */
  rule: string;
  /** The bridge the decision was made for, as the kernel resolved it: the tap joins exactly that device. */
  resolved: ResolvedBridge | null;
  /** The port guard the ACL gives this peer on this bridge (permitted only; undefined: none). */
  guard?: PortGuard;
}

/**
 * Stands for the working directory when the peer's cannot be read (a pid in another namespace):
 * a relative include then fails closed instead of being silently skipped.
 */
const UNKNOWN_CWD = '/proc/qbhd-unknown-peer-cwd';

/** evaluateAcl's options for this peer: credentials, hardening (the default with credentials), cwd. */
function aclOptions(aclPath: string, peer: Peer): EvaluateAclOptions & { credentials: AclCredentials } {
  const credentials: AclCredentials = { uid: peer.uid, gid: peer.gid, groups: peer.groups };
  if (peer.cwd !== null) return { aclPath, credentials, cwd: peer.cwd };
  const files = credentialReader(credentials, { harden: true });
  const reader: AclReader = (path) =>
    path.startsWith(`${UNKNOWN_CWD}/`) ? { status: 'insecure', detail: `relative include \`${displayBytes(path.slice(UNKNOWN_CWD.length + 1))}': the peer's working directory is unknown` } : files(path);
  return { aclPath, credentials, cwd: UNKNOWN_CWD, reader };
}

function where(rule: AclRule): string {
  return `${displayBytes(rule.file)}:${rule.line}`;
}

/**
 * Decides a tap request: may this peer use `bridge` (and the chosen tap name)? The very call the
 * helper's step 3 makes (authorizeTap, src/attach/authorize.ts), with the peer's credentials: the
 * bridge resolved through the kernel (a deny of any of its names denies), `allow-ifname` for a
 * chosen name, so no policy holds for one path and not the other.
 */
export function decideTap(req: TapRequest, aclPath: string, peer: Peer, rtnl: Rtnl): TapDecision {
  const { verdict: v, resolved } = authorizeTap(
    { bridge: Buffer.from(req.bridge, 'utf8'), ifname: req.ifname === null ? null : Buffer.from(req.ifname, 'utf8') },
    rtnl,
    aclOptions(aclPath, peer),
  );
  const message = v.stderr.toString('utf8');
  if (v.error !== undefined) return { permitted: false, message, rule: `error: ${v.error.message}`, resolved };
  const d = v.decision!;
  const rule = d.deny !== null ? where(d.deny) : d.allow !== null ? where(d.allow) : 'default-deny';
  const guard = v.permitted ? v.guard?.guard : undefined;
  return { permitted: v.permitted, message, rule, resolved, ...(guard === undefined ? {} : { guard }) };
}

/** What a check request learns: the bridges this peer may use, and optionally one decision explained. */
export interface PeerAllowance extends BridgeAllowance {
  error?: string;
  bridge?: { name: string; allowed: boolean; reason: string; message: string };
}

/**
 * Answers a check request with the probe `qbh acl check` and `qbh doctor` use (src/attach/probe.ts):
 * creates nothing, reads the ACL as it would for a tap request, and finds each bridge through the
 * kernel as a tap request does: a bridge denied by another of its names (an altname) is denied here too.
 */
export function checkPeer(aclPath: string, peer: Peer, bridge: string | null): PeerAllowance {
  const options = aclOptions(aclPath, peer);
  const v = evaluateAcl('qbhd-probe', options);
  let out: PeerAllowance = { bridges: [], any: false, except: [] };
  const rtnl = Rtnl.openSync();
  try {
    if (v.ruleSet === undefined) out.error = v.error?.message ?? v.stderr.toString('utf8').trim();
    else out = allowedBridges(v.ruleSet.rules, options.credentials, kernelAliases(rtnl));
    if (bridge !== null) {
      const { credentials, ...rest } = options;
      const c = checkBridge({ ...rest, bridge, uid: credentials.uid, gid: credentials.gid, groups: [...credentials.groups] }, rtnl);
      out.bridge = { name: bridge, allowed: c.allowed, reason: c.reason, message: c.stderr.toString('utf8') };
    }
  } finally {
    rtnl.close();
  }
  return out;
}
