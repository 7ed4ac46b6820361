/**
 * Deciding, for a peer the kernel identified: the helper's own evaluateAcl/checkAcl from src/acl,
 * with that peer's uid, gid and groups, the ACL read afresh for every request, hardened (every
 * file and directory root's and not group- or world-writable, or no decision). Includes the peer
 * could not read count as they would for the C helper run by that user.
 * @module
 */
import { checkAcl, credentialReader, decideAcl, displayBytes, evaluateAcl, type AclCredentials, type AclReader, type AclRule, type EvaluateAclOptions } from '../acl/index.js';
import { authorizeHelper, resolveAclBridge } from '../helper/authorize.js';
import type { ResolvedBridge } from '../helper/tap.js';
import { Rtnl } from '../netlink/rtnl.js';
import type { Peer } from './peer.js';
import type { TapRequest } from './protocol.js';

/** The outcome of the ACL for one tap request. */
export interface TapDecision {
  permitted: boolean;
  /** What the helper prints, exactly (C helper bytes, UTF-8 decoded): empty when permitted without notes. */
  message: string;
  /** For the audit line: `FILE:LINE` of the rule that decided, `default-deny`, or the error. */
  rule: string;
  /** The bridge the decision was made for, as the kernel resolved it: the tap joins exactly that device. */
  resolved: ResolvedBridge | null;
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
 * helper's step 3 makes (authorizeHelper, src/helper/main.ts), with the peer's credentials: the
 * bridge resolved through the kernel (a deny of any of its names denies), `allow-ifname` for a
 * chosen name, so no policy holds for one path and not the other.
 */
export function decideTap(req: TapRequest, aclPath: string, peer: Peer, rtnl: Rtnl): TapDecision {
  const { verdict: v, resolved } = authorizeHelper(
    { bridge: Buffer.from(req.bridge, 'utf8'), ifname: req.ifname === null ? null : Buffer.from(req.ifname, 'utf8') },
    rtnl,
    aclOptions(aclPath, peer),
  );
  const message = v.stderr.toString('utf8');
  if (v.error !== undefined) return { permitted: false, message, rule: `error: ${v.error.message}`, resolved };
  const d = v.decision!;
  const rule = d.deny !== null ? where(d.deny) : d.allow !== null ? where(d.allow) : 'default-deny';
  return { permitted: v.permitted, message, rule, resolved };
}

/** What a check request learns: the bridges this peer may use, and optionally one decision explained. */
export interface PeerAllowance {
  bridges: string[];
  any: boolean;
  except: string[];
  error?: string;
  bridge?: { name: string; allowed: boolean; reason: string; message: string };
}

/** A bridge name no ACL rule mentions, to see whether a wildcard applies to this peer. */
function probeName(named: readonly string[]): string {
  let probe = 'qbhd-probe';
  for (let i = 0; named.includes(probe); i++) probe = `qbhd-probe${i}`;
  return probe;
}

/**
 * Answers a check request: creates nothing, reads the ACL as it would for a tap request, and finds
 * each bridge through the kernel as a tap request does ({@link resolveAclBridge}): a bridge denied by
 * another of its names (an altname) is denied here too.
 */
export function checkPeer(aclPath: string, peer: Peer, bridge: string | null): PeerAllowance {
  const options = aclOptions(aclPath, peer);
  const v = evaluateAcl('qbhd-probe', options);
  const out: PeerAllowance = { bridges: [], any: false, except: [] };
  const rtnl = Rtnl.openSync();
  try {
    const aliases = (name: string | Buffer) => resolveAclBridge(Buffer.isBuffer(name) ? name : Buffer.from(name, 'latin1'), rtnl).bridgeNames;
    if (v.ruleSet === undefined) {
      out.error = v.error?.message ?? v.stderr.toString('utf8').trim();
    } else {
      const rules = v.ruleSet.rules;
      const named = [...new Set(rules.flatMap((r) => (r.bridge === null ? [] : [r.bridge])))];
      const identity = options.credentials;
      for (const n of named) {
        const bytes = Buffer.from(n, 'latin1');
        (decideAcl(rules, bytes, { identity, aliases: aliases(bytes) }).permitted ? out.bridges : out.except).push(displayBytes(n));
      }
      out.any = decideAcl(rules, probeName(named), { identity }).permitted;
      if (!out.any) out.except = [];
    }
    if (bridge !== null) {
      const { credentials, ...rest } = options;
      const c = checkAcl({ ...rest, bridge, bridgeNames: aliases(Buffer.from(bridge, 'utf8')), uid: credentials.uid, gid: credentials.gid, groups: [...credentials.groups] });
      out.bridge = { name: bridge, allowed: c.allowed, reason: c.reason, message: c.stderr.toString('utf8') };
    }
  } finally {
    rtnl.close();
  }
  return out;
}
