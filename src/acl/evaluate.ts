/**
 * Deciding: the C helper's rule (docs/qemu-bridge-helper.md, §4.4) — permitted when some rule allows
 * the bridge and none denies it; order and duplicates do not matter; deny wins; default deny — plus the
 * qbh identity rules, which take part only when the caller's identity is known.
 */
import { byteStringBuffer, displayBytes, toByteString } from './bytes.js';
import { AclError } from './errors.js';
import type { PortGuard } from '../guard/policy.js';
import { DEFAULT_ACL_FILE, loadAcl, type AclGuardRule, type AclIfnameRule, type AclRule, type AclRuleSet } from './load.js';
import { IFNAMSIZ, nameTooLongMessage, type AclPrincipal } from './parse.js';
import { callerReader, credentialReader, type AclCredentials, type AclReader } from './read.js';
import { readUserDb, type UserDb } from './users.js';

/** The C helper's denial line (docs/qemu-bridge-helper.md, §8). */
export const ACCESS_DENIED_MESSAGE = 'access denied by acl file\n';

/**
 * Tap names a caller may always choose with `--ifname`, whatever the ACL says: the kernel's and the
 * C helper's own `tap%d`, and libvirt's `vnet%d`. Anything else needs an `allow-ifname` rule, so
 * that nobody can take a name the system will want later (`eth%d`, `virbr0`, `br9`).
 * @category Bridge helper ACL
 */
export const DEFAULT_IFNAME_PREFIXES: readonly string[] = ['tap', 'vnet'];

/** Whether a chosen tap name (`--ifname`) is allowed, and by what. */
export interface AclIfnameDecision {
  /** The name as asked for (byte string). */
  name: string;
  permitted: boolean;
  /** The first `allow-ifname*` rule that allows it; null when a default prefix did, or nothing. */
  rule: AclIfnameRule | null;
  /** The prefixes this caller may use (byte strings; `all` when any name is allowed), for messages. */
  prefixes: string[];
}

/** Which rules decided. */
export interface AclDecision {
  permitted: boolean;
  /** The first rule, in file order, that allows the bridge for this caller. */
  allow: AclRule | null;
  /** The first rule, in file order, that denies it. A deny always wins. */
  deny: AclRule | null;
  /** With {@link EvaluateAclOptions.ifname}: the tap-name decision (`permitted` is false when it refuses). */
  ifname?: AclIfnameDecision;
}

/** Options of {@link decideAcl}. */
export interface DecideOptions {
  /**
   * The caller, for identity rules. Without it an `allow-user`/`allow-group` rule never matches and a
   * `deny-user`/`deny-group` rule always does: an unknown caller is treated as the one denied. The
   * same holds for a rule naming a user or group that does not exist: its deny matches every caller.
   */
  identity?: AclCredentials;
  /** Where user and group names are looked up (default: /etc/passwd and /etc/group, read on first need). */
  userDb?: UserDb;
  /**
   * Other names of the same device (text or bytes): the kernel's name for it and its altnames, when
   * the bridge was given by an altname. A deny naming any of them denies; an allow counts for the
   * name asked for only, as in the C helper (so `allow br0` does not allow `--br=lan0`).
   */
  aliases?: readonly (string | Buffer)[];
}

/** The port guard a permitted caller's tap gets, and the line that says so. */
export interface AclGuardDecision {
  /** The guard to apply (`{}`: none, for want of a line or by a `none` line). */
  guard: PortGuard;
  /** The `guard*` line that decided; null when no line applies. */
  rule: AclGuardRule | null;
}

/** Options of {@link decideGuard}. */
export interface DecideGuardOptions {
  /** The caller. Without it only the lines for everyone (`guard`) apply. */
  identity?: AclCredentials;
  /** Where user and group names are looked up (default: /etc/passwd and /etc/group, read on first need). */
  userDb?: UserDb;
  /**
   * Every name the kernel knows the bridge by (its kernel name and altnames; text or bytes): a line
   * naming any of them names the bridge.
   */
  bridgeNames?: readonly (string | Buffer)[];
}

/** Caches name → id lookups for one decision; reads the user database only if a name must be resolved. */
class PrincipalIds {
  private db: UserDb | undefined;
  private readonly cache = new Map<string, number | null>();
  constructor(db: UserDb | undefined) {
    this.db = db;
  }
  id(p: AclPrincipal): number | null {
    if (p.id !== undefined) return p.id;
    const key = `${p.kind}:${p.name}`;
    let id = this.cache.get(key);
    if (id === undefined) {
      this.db ??= readUserDb();
      const name = displayBytes(p.name);
      id = (p.kind === 'user' ? this.db.user(name)?.uid : this.db.group(name)?.gid) ?? null;
      this.cache.set(key, id);
    }
    return id;
  }
}

function principalMatches(rule: { action: 'allow' | 'deny'; principal?: AclPrincipal }, identity: AclCredentials | undefined, ids: PrincipalIds): boolean {
  const p = rule.principal;
  if (p === undefined) return true;
  if (identity === undefined) return rule.action === 'deny';
  const id = ids.id(p);
  // A name that resolves to nobody on this system: an allow for it allows nobody, and a deny for it
  // denies everybody (fail closed: a typo or a removed account must not silently lift a deny).
  if (id === null) return rule.action === 'deny';
  return p.kind === 'user' ? id === identity.uid : id === identity.gid || identity.groups.includes(id);
}

/** How specific a guard line is for a caller it applies to: a user line over a group line over one for everyone, then a named bridge over `all`. */
function guardRank(rule: AclGuardRule): number {
  const who = rule.principal === undefined ? 0 : rule.principal.kind === 'group' ? 1 : 2;
  return who * 2 + (rule.bridge === null ? 0 : 1);
}

/**
 * Decides the port guard of a caller's tap on `bridge` (text or bytes) from the `guard*` lines: of
 * the lines that apply, the most specific wins — a `guard-user` line over a `guard-group` line over a
 * `guard` line, then a line naming the bridge (by any of `bridgeNames`) over one for `all`, then the
 * later line. `none` is an explicit exemption. No line: no guard (`{}`, rule null). A line for a user
 * or group applies only to a known caller who is that user or in that group; one naming a user or
 * group that does not exist applies to nobody.
 * @category Bridge helper ACL
 */
export function decideGuard(guardRules: readonly AclGuardRule[], bridge: string | Buffer, options: DecideGuardOptions = {}): AclGuardDecision {
  return decideGuardBytes(guardRules, toByteString(bridge), options);
}

/** @internal {@link decideGuard} with `bridge` a byte string. */
export function decideGuardBytes(guardRules: readonly AclGuardRule[], bridge: string, options: DecideGuardOptions = {}): AclGuardDecision {
  if (guardRules.length === 0) return { guard: {}, rule: null };
  const names = new Set([bridge, ...(options.bridgeNames ?? []).map(toByteString)]);
  const ids = new PrincipalIds(options.userDb);
  let rule: AclGuardRule | null = null;
  let best = -1;
  for (const r of guardRules) {
    if (r.bridge !== null && !names.has(r.bridge)) continue;
    const rank = guardRank(r);
    if (rank < best) continue;
    // An unknown caller, or a principal nobody is: the line applies to no one (an allow's meaning).
    if (!principalMatches({ action: 'allow', ...(r.principal === undefined ? {} : { principal: r.principal }) }, options.identity, ids)) continue;
    rule = r;
    best = rank;
  }
  return { guard: rule === null ? {} : rule.guard, rule };
}

/** @internal `bridge` is a byte string. */
export function decideBytes(rules: readonly AclRule[], bridge: string, options: DecideOptions = {}): AclDecision {
  const ids = new PrincipalIds(options.userDb);
  const aliases = (options.aliases ?? []).map(toByteString).filter((a) => a !== bridge);
  let allow: AclRule | null = null;
  let deny: AclRule | null = null;
  for (const rule of rules) {
    if (rule.action === 'allow' ? allow !== null : deny !== null) continue;
    if (rule.bridge !== null && rule.bridge !== bridge && !(rule.action === 'deny' && aliases.includes(rule.bridge))) continue;
    if (!principalMatches(rule, options.identity, ids)) continue;
    if (rule.action === 'allow') allow = rule;
    else deny = rule;
    if (allow !== null && deny !== null) break;
  }
  return { permitted: allow !== null && deny === null, allow, deny };
}

/**
 * Decides whether a caller may name its tap `ifname` (byte string; a `%d` template counts as
 * written): it must start with one of {@link DEFAULT_IFNAME_PREFIXES} or with the prefix of an
 * `allow-ifname` rule that applies to the caller (`allow-ifname-user`/`-group` by identity, with the
 * identity rules' meaning of an unknown caller or principal: such an allow allows nobody).
 * @category Bridge helper ACL
 */
export function decideIfname(ifnameRules: readonly AclIfnameRule[], ifname: string | Buffer, options: DecideOptions = {}): AclIfnameDecision {
  const name = toByteString(ifname);
  const ids = new PrincipalIds(options.userDb);
  const prefixes = [...DEFAULT_IFNAME_PREFIXES];
  let rule: AclIfnameRule | null = null;
  let permitted = DEFAULT_IFNAME_PREFIXES.some((p) => name.startsWith(p));
  for (const r of ifnameRules) {
    if (!principalMatches({ action: 'allow', ...(r.principal === undefined ? {} : { principal: r.principal }) }, options.identity, ids)) continue;
    prefixes.push(r.prefix ?? 'all');
    if (!permitted && (r.prefix === null || name.startsWith(r.prefix))) {
      permitted = true;
      rule = r;
    }
  }
  return { name, permitted, rule, prefixes: [...new Set(prefixes)] };
}

/** The qbh line for a refused `--ifname` (byte string, with `\n`). */
export function ifnameDeniedMessage(d: AclIfnameDecision): string {
  // Byte string (stderr bytes): ASCII words only around the names.
  return `tap name \`${d.name}' not allowed by acl file (allowed prefixes: ${d.prefixes.join(', ')})\n`;
}

/**
 * Decides whether `bridge` (text, or raw bytes) may be used under `rules`: allowed by some rule and
 * denied by none (docs/qemu-bridge-helper.md, §4.4). Names compare byte for byte; `all` matches every
 * name.
 * @category Bridge helper ACL
 */
export function decideAcl(rules: readonly AclRule[], bridge: string | Buffer, options: DecideOptions = {}): AclDecision {
  return decideBytes(rules, toByteString(bridge), options);
}

/**
 * The C helper's check on `--br` before it reads the ACL (CVE-2019-13164): returns the exact stderr
 * bytes ``name `X' too long: N\n`` when the name is IFNAMSIZ (16) bytes or longer, else null.
 * @category Bridge helper ACL
 */
export function bridgeNameError(bridge: string | Buffer): Buffer | null {
  const name = toByteString(bridge);
  return name.length >= IFNAMSIZ ? byteStringBuffer(nameTooLongMessage(name)) : null;
}

/** Options of {@link evaluateAcl}. */
export interface EvaluateAclOptions {
  /** The main ACL file (default {@link DEFAULT_ACL_FILE}). */
  aclPath?: string;
  /** Base for relative includes (default: the process's working directory, as the C helper). */
  cwd?: string;
  /**
   * Evaluate for this caller instead of the current process: readability is what the kernel lets
   * this caller read ({@link credentialReader}), and identity rules match this uid/gid/groups.
   */
  credentials?: AclCredentials;
  /** Hardening (root-owned, not group/other-writable files only); default: on when `credentials` are given. */
  harden?: boolean;
  /** Recognise identity rules (default true). False reproduces the C helper on every file. */
  extensions?: boolean;
  /** Read files through this instead of the file system (tests, previews). */
  reader?: AclReader;
  /** User and group names for identity rules (default: /etc/passwd and /etc/group when needed). */
  userDb?: UserDb;
  /**
   * Other names the kernel knows the bridge by (its IFLA_IFNAME and altnames, when `bridge` was an
   * altname): a deny naming any of them denies. The helper's `resolveBridge` gives them.
   */
  bridgeNames?: readonly (string | Buffer)[];
  /**
   * A tap name the caller chose (`--ifname`, qbh extension): permitted only if it starts with an
   * allowed prefix ({@link decideIfname}); refused with ``tap name `X' not allowed by acl file (…)``.
   */
  ifname?: string | Buffer | null;
}

/** The helper's answer: whether to go on, and exactly what to print first. */
export interface AclVerdict {
  /** Go on to tap setup. When false the helper prints `stderr` and exits 1. */
  permitted: boolean;
  /** No decision could be made (name too long, main file missing or broken, a qbh deviation). */
  fatal: boolean;
  /**
   * The bytes to write to stderr, in the C helper's order: messages from broken includes, then
   * `access denied by acl file` or `failed to parse default acl file …`. May be non-empty even when
   * permitted (an include had an error).
   */
  stderr: Buffer;
  /** Which rules decided (absent when fatal). */
  decision?: AclDecision;
  /** The loaded rules and files (absent when fatal). */
  ruleSet?: AclRuleSet;
  /** The failure (present when fatal). */
  error?: AclError;
  /**
   * When permitted: the port guard the tap gets ({@link decideGuard}, for the same caller and bridge
   * names), to be handed to `attachTap(…, { guard })`. Absent when not permitted.
   */
  guard?: AclGuardDecision;
}

/** The current process's real ids, as the C helper has them after its privilege drop. */
export function processCredentials(): AclCredentials {
  return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, groups: process.getgroups?.() ?? [] };
}

/** @internal The reader evaluateAcl and checkAcl use for these options. */
export function readerFor(options: EvaluateAclOptions): AclReader {
  if (options.reader !== undefined) return options.reader;
  if (options.credentials === undefined) return callerReader();
  const readerOptions: { harden?: boolean; cwd?: string } = {};
  if (options.harden !== undefined) readerOptions.harden = options.harden;
  if (options.cwd !== undefined) readerOptions.cwd = options.cwd;
  return credentialReader(options.credentials, readerOptions);
}

/**
 * The helper's hot path, steps 3 and 4 of the C helper's `main()` (docs/qemu-bridge-helper.md, §1.2):
 * check the bridge name's length, read the ACL (main file, includes), decide. Synchronous, never throws
 * for anything in the files. The helper writes `stderr` as is, then exits 1 unless `permitted`:
 *
 * ```ts
 * const v = evaluateAcl(bridge);
 * if (v.stderr.length > 0) writeSync(2, v.stderr);
 * if (!v.permitted) process.exit(1);
 * ```
 * @category Bridge helper ACL
 */
export function evaluateAcl(bridge: string | Buffer, options: EvaluateAclOptions = {}): AclVerdict {
  const name = toByteString(bridge);
  if (name.length >= IFNAMSIZ) {
    const message = nameTooLongMessage(name);
    const error = new AclError('name', displayBytes(message.slice(0, -1)), { stderr: byteStringBuffer(message) });
    return { permitted: false, fatal: true, stderr: error.stderr, error };
  }
  let ruleSet: AclRuleSet;
  try {
    const loadOptions: { extensions?: boolean; cwd?: string } = {};
    if (options.extensions !== undefined) loadOptions.extensions = options.extensions;
    if (options.cwd !== undefined) loadOptions.cwd = options.cwd;
    ruleSet = loadAcl(toByteString(options.aclPath ?? DEFAULT_ACL_FILE), readerFor(options), loadOptions);
  } catch (err) {
    if (!(err instanceof AclError)) throw err;
    return { permitted: false, fatal: true, stderr: err.stderr, error: err };
  }
  const decideOptions: DecideOptions = {};
  const identity = options.credentials ?? (ruleSet.hasIdentityRules ? processCredentials() : undefined);
  if (identity !== undefined) decideOptions.identity = identity;
  if (options.userDb !== undefined) decideOptions.userDb = options.userDb;
  if (options.bridgeNames !== undefined) decideOptions.aliases = options.bridgeNames;
  const decision = decideBytes(ruleSet.rules, name, decideOptions);
  let stderr = decision.permitted ? ruleSet.stderr : ruleSet.stderr + ACCESS_DENIED_MESSAGE;
  if (options.ifname !== undefined && options.ifname !== null) {
    decision.ifname = decideIfname(ruleSet.ifnameRules ?? [], options.ifname, decideOptions);
    if (decision.permitted && !decision.ifname.permitted) {
      decision.permitted = false;
      stderr += ifnameDeniedMessage(decision.ifname);
    }
  }
  const verdict: AclVerdict = { permitted: decision.permitted, fatal: false, stderr: byteStringBuffer(stderr), decision, ruleSet };
  if (decision.permitted) {
    const guardOptions: DecideGuardOptions = { bridgeNames: options.bridgeNames ?? [] };
    if (decideOptions.identity !== undefined) guardOptions.identity = decideOptions.identity;
    if (decideOptions.userDb !== undefined) guardOptions.userDb = decideOptions.userDb;
    verdict.guard = decideGuardBytes(ruleSet.guardRules ?? [], name, guardOptions);
  }
  return verdict;
}

/** Options of {@link parseAcl}. */
export interface ParseAclOptions {
  /** The name the data goes by, in messages and for self-includes (default {@link DEFAULT_ACL_FILE}). */
  path?: string;
  /** How includes are read (default: every include is missing). See {@link memoryReader}. */
  reader?: AclReader;
  /** Recognise identity rules (default true). */
  extensions?: boolean;
  /** Base for relative includes (default: left relative). */
  cwd?: string;
}

/**
 * Parses ACL bytes held in memory as the main file, following includes through `options.reader` only
 * (the disk is never touched unless that reader does). Throws {@link AclError} for the fatal cases and
 * nothing else; decide with {@link decideAcl}.
 * @category Bridge helper ACL
 */
export function parseAcl(data: Buffer | string, options: ParseAclOptions = {}): AclRuleSet {
  const path = toByteString(options.path ?? DEFAULT_ACL_FILE);
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const includes: AclReader = options.reader ?? (() => ({ status: 'missing' }));
  const reader: AclReader = (p) => (p === path ? { status: 'read', data: bytes, key: `main:${path}` } : includes(p));
  const loadOptions: { extensions?: boolean; cwd?: string } = {};
  if (options.extensions !== undefined) loadOptions.extensions = options.extensions;
  if (options.cwd !== undefined) loadOptions.cwd = options.cwd;
  return loadAcl(path, reader, loadOptions);
}
