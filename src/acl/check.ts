/**
 * `checkAcl`: the same decision as the helper's, explained — which rule decided and where it lives,
 * which files were read or skipped and why, what the helper would print, and what looks risky.
 */
import { displayBytes, toByteString } from './bytes.js';
import { AclError } from './errors.js';
import { evaluateAcl, processCredentials, type EvaluateAclOptions } from './evaluate.js';
import { formatGuard } from '../guard/policy.js';
import type { AclFileRecord, AclFileStatus, AclGuardRule, AclRule } from './load.js';
import type { AclCredentials } from './read.js';
import { readUserDb, type UserDb } from './users.js';

/** Options of {@link checkAcl}. Give `user` or `uid` (optionally `gid`, `groups`) to check for someone else. */
export interface CheckAclOptions extends Omit<EvaluateAclOptions, 'credentials'> {
  /** The bridge name as given to `--br=` (text, or raw bytes). */
  bridge: string | Buffer;
  /** A user name: uid, gid and supplementary groups come from /etc/passwd and /etc/group. */
  user?: string;
  /** A numeric uid; gid and groups are looked up when the uid is in /etc/passwd. */
  uid?: number;
  /** Overrides the primary gid. */
  gid?: number;
  /** Overrides the supplementary groups. */
  groups?: readonly number[];
}

/** A line of an ACL file, for people: display text, 1-based line. */
export interface AclRuleRef {
  file: string;
  line: number;
  text: string;
}

/** A file the check looked at, for people. */
export interface AclFileInfo {
  path: string;
  status: AclFileStatus;
  depth: number;
  detail?: string;
  includedFrom?: AclRuleRef;
  /** The syntax error that ended reading it: line and the C helper's message (without newline; for a qbh line such as `guard`, qbh's words). */
  error?: { line: number; message: string };
}

/** Who the check was made for. */
export interface AclCaller {
  uid: number;
  gid: number;
  groups: number[];
  /** The user name, when the uid is in /etc/passwd. */
  user?: string;
  /** `self`: the current process, real access checks; `credentials`: another user, decided as the kernel would for them (credentialReader). */
  as: 'self' | 'credentials';
}

/** The port guard a permitted caller's tap gets, for people. */
export interface AclGuardInfo {
  /** The guard's canonical words (`isolated mac=sticky:1 server-guard`), `none` for no guard. */
  words: string;
  /** The `guard*` line that decided; null when no line applies. */
  rule: AclRuleRef | null;
}

/** What {@link checkAcl} found. */
export interface AclCheck {
  allowed: boolean;
  /** One line a person understands, e.g. `denied: "deny all" at /etc/qemu/bridge.conf:3 overrides "allow br0" at line 1`. */
  reason: string;
  /** The rule that decided: the winning deny, else the allow; absent for default deny and errors. */
  rule?: AclRuleRef;
  /** The allow rule a deny overrode. */
  overridden?: AclRuleRef;
  /** No decision could be made: name too long, main file missing or broken, or a qbh deviation. */
  fatal: boolean;
  /** Every file looked at, in the order met. */
  files: AclFileInfo[];
  /** The lines the helper prints to stderr for this check (UTF-8 decoded); `stderr` has the exact bytes. */
  messages: string[];
  /** Exactly what the helper writes to stderr. */
  stderr: Buffer;
  /** Things that are legal but risky or surprising (relative includes, broken includes, unknown names, …). */
  warnings: string[];
  caller: AclCaller;
  /** When allowed: the port guard the tap gets and the line that says so (evaluateAcl's `guard`). */
  guard?: AclGuardInfo;
}

function ref(file: string, line: number, text: string): AclRuleRef {
  return { file: displayBytes(file), line, text: displayBytes(text) };
}

function ruleRef(rule: { file: string; line: number; text: string }): AclRuleRef {
  return ref(rule.file, rule.line, rule.text);
}

function fileInfo(record: AclFileRecord): AclFileInfo {
  const info: AclFileInfo = { path: displayBytes(record.path), status: record.status, depth: record.depth };
  if (record.detail !== undefined) info.detail = record.detail;
  if (record.includedFrom !== undefined) info.includedFrom = ref(record.includedFrom.file, record.includedFrom.line, record.includedFrom.text);
  if (record.error !== undefined) info.error = { line: record.error.line, message: displayBytes(record.error.problem ?? record.error.message).replace(/\n$/, '') };
  return info;
}

function isId(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 4294967294;
}

function resolveCaller(options: CheckAclOptions, db: () => UserDb): AclCaller {
  const { user, uid, gid, groups } = options;
  if (user === undefined && uid === undefined && gid === undefined && groups === undefined) {
    const self = processCredentials();
    const name = db().userById(self.uid)?.name;
    return { ...self, groups: [...self.groups], ...(name === undefined ? {} : { user: name }), as: 'self' };
  }
  let id = uid;
  let primary = gid;
  let supplementary = groups === undefined ? undefined : [...groups];
  let name: string | undefined;
  const entry = user !== undefined ? db().user(user) : uid !== undefined ? db().userById(uid) : undefined;
  if (user !== undefined && entry === undefined) throw new AclError('credentials', `no user "${user}" in /etc/passwd`);
  if (entry !== undefined) {
    if (id !== undefined && id !== entry.uid) throw new AclError('credentials', `user "${entry.name}" has uid ${entry.uid}, not ${id}`);
    id = entry.uid;
    name = entry.name;
    primary ??= entry.gid;
    supplementary ??= db().groupsOf(entry);
  }
  if (id === undefined) throw new AclError('credentials', 'a user or uid is needed to check for someone else');
  if (primary === undefined) throw new AclError('credentials', `uid ${id} is not in /etc/passwd: give its gid too`);
  supplementary ??= [primary];
  for (const n of [id, primary, ...supplementary]) {
    if (!isId(n)) throw new AclError('credentials', `not a valid uid or gid: ${n}`);
  }
  return { uid: id, gid: primary, groups: supplementary, ...(name === undefined ? {} : { user: name }), as: 'credentials' };
}

function who(caller: AclCaller): string {
  const name = caller.user === undefined ? `uid ${caller.uid}` : `${caller.user} (uid ${caller.uid})`;
  return caller.as === 'self' ? `this process, ${name},` : name;
}

function quoteRule(rule: AclRule, relativeTo?: AclRule): string {
  const where = relativeTo !== undefined && relativeTo.file === rule.file ? `line ${rule.line}` : `${displayBytes(rule.file)}:${rule.line}`;
  return `"${displayBytes(rule.text)}" at ${where}`;
}

/** Whether a principal written as a name names nobody in /etc/passwd or /etc/group. */
function unknownPrincipal(p: NonNullable<AclRule['principal']>, db: () => UserDb): boolean {
  const name = displayBytes(p.name);
  return p.kind === 'user' ? db().user(name) === undefined : db().group(name) === undefined;
}

/**
 * The identity rules whose user or group name is not in /etc/passwd or /etc/group: a deny among them
 * denies every caller (fail closed), an allow allows nobody. For `qbh acl check` and `qbh doctor`.
 */
export function unknownPrincipalRules(rules: readonly AclRule[], userDb?: UserDb): AclRule[] {
  let db = userDb;
  const users = (): UserDb => (db ??= readUserDb());
  return rules.filter((r) => r.principal !== undefined && r.principal.id === undefined && unknownPrincipal(r.principal, users));
}

function identityNote(rule: AclRule, caller: AclCaller, db: () => UserDb): string {
  const p = rule.principal;
  if (p === undefined) return '';
  const name = displayBytes(p.name);
  if (p.id === undefined && unknownPrincipal(p, db)) return ` (no ${p.kind} "${name}" exists: a deny naming an unknown ${p.kind} denies every caller)`;
  if (p.kind === 'user') return ` (the caller is ${p.id !== undefined ? `uid ${p.id}` : `user ${name}`})`;
  const gid = p.id ?? db().group(name)?.gid;
  return gid === caller.gid ? ` (group ${name} is the caller's primary group)` : ` (the caller is in group ${name})`;
}

function skippedNote(files: readonly AclFileRecord[]): string {
  const skipped = files.filter((f) => f.depth > 0 && (f.status === 'missing' || f.status === 'unreadable' || f.status === 'partial'));
  if (skipped.length === 0) return '';
  const shown = skipped.slice(0, 3).map((f) => `${displayBytes(f.path)} (${f.status === 'partial' ? `stopped at line ${f.error?.line}` : f.status})`);
  const more = skipped.length > 3 ? ` and ${skipped.length - 3} more` : '';
  return `; includes not (fully) read: ${shown.join(', ')}${more}`;
}

function syntaxSummary(error: { message: string; problem?: string }): string {
  if (error.problem !== undefined) return displayBytes(error.problem);
  const text = displayBytes(error.message);
  return text.startsWith('Invalid config line:') ? 'invalid line (no space or tab after the command)' : text.replace(/\n$/, '');
}

function fatalReason(err: AclError, caller: AclCaller): string {
  const main = err.files[0];
  const path = main === undefined ? '' : displayBytes(main.path);
  switch (err.code) {
    case 'name':
      return `error: ${err.message}: bridge names must be shorter than 16 bytes (checked before the ACL is read)`;
    case 'unreadable':
      if (main?.status === 'missing') return `error: the ACL file ${path} does not exist, so every bridge is denied`;
      return `error: ${who(caller)} cannot read the ACL file ${path}${main?.detail === undefined ? '' : ` (${main.detail})`}, so every bridge is denied`;
    case 'parse': {
      const e = main?.error;
      return `error: ${path}:${e?.line}: ${e === undefined ? err.message : syntaxSummary(e)}; an error in the main ACL file denies every bridge`;
    }
    default:
      return `error: ${err.message}; the check fails`;
  }
}

function collectWarnings(files: readonly AclFileRecord[], rules: readonly AclRule[], guardRules: readonly AclGuardRule[], db: () => UserDb, cwd: string | undefined): string[] {
  const warnings: string[] = [];
  for (const f of files) {
    const from = f.includedFrom;
    if (from === undefined) continue;
    const inc = `${displayBytes(from.file)}:${from.line}`;
    if (from.path !== '' && !from.path.startsWith('/')) {
      warnings.push(`${inc}: relative include "${displayBytes(from.text)}" resolves against ${cwd === undefined ? "the caller's working directory, which the caller chooses" : displayBytes(toByteString(cwd))}`);
    }
    if (f.status === 'partial' && f.error !== undefined) {
      warnings.push(`${displayBytes(f.path)}:${f.error.line}: ${syntaxSummary(f.error)}; the rest of this included file is ignored`);
    }
  }
  // QEMU's own helper reads each qbh line (identity, guard) as an unknown command: say what that does, once per file.
  const first = new Map<string, { line: number; kind: string }>();
  const note = (file: string, line: number, kind: string) => {
    const f = first.get(file);
    if (f === undefined || line < f.line) first.set(file, { line, kind });
  };
  for (const r of rules) if (r.principal !== undefined) note(r.file, r.line, 'identity rules');
  for (const g of guardRules) note(g.file, g.line, 'guard lines');
  for (const f of files) {
    const ext = first.get(f.path);
    if (ext === undefined) continue;
    first.delete(f.path);
    const where = `${displayBytes(f.path)}:${ext.line}`;
    if (f.depth === 0) {
      warnings.push(`${where}: ${ext.kind} make QEMU's own qemu-bridge-helper refuse this whole file (Unknown command)`);
      continue;
    }
    // What QEMU's helper skips from here on; a skipped deny is one it does not enforce.
    const denies = rules.filter((x) => x.file === f.path && x.line >= ext.line && x.action === 'deny').length;
    const unenforced = denies === 0 ? '' : `, including ${denies} deny rule${denies === 1 ? '' : 's'} it then does not enforce`;
    const unguarded = guardRules.some((g) => g.file === f.path) ? '; it never applies guard lines, so a tap it makes is not guarded' : '';
    warnings.push(`${where}: QEMU's own qemu-bridge-helper stops reading this included file here (Unknown command) and ignores the rest of it${unenforced}${unguarded}`);
  }
  for (const r of [...rules, ...guardRules]) {
    const p = r.principal;
    if (p === undefined || p.id !== undefined || !unknownPrincipal(p, db)) continue;
    const file = `/etc/${p.kind === 'user' ? 'passwd' : 'group'}`;
    const effect = !('action' in r) ? 'applies to nobody' : r.action === 'deny' ? 'denies every caller (an unknown principal in a deny fails closed)' : 'allows nobody';
    warnings.push(`${displayBytes(r.file)}:${r.line}: no ${p.kind} "${displayBytes(p.name)}" in ${file}; "${displayBytes(r.text)}" ${effect}`);
  }
  return warnings;
}

/**
 * Checks whether a bridge may be used and says why, in one line a person understands. The decision is
 * the helper's own ({@link evaluateAcl}): for the current process by default, or for another user
 * given by `user` or `uid` (then readability as the kernel decides it for them, hardened, as the daemon does). Throws
 * {@link AclError} only for an unknown or inconsistent identity; problems in the ACL are reported.
 * Equivalent to running `qemu-bridge-helper --br=BRIDGE` and reading its stderr, with an explanation.
 * @category Bridge helper ACL
 */
export function checkAcl(options: CheckAclOptions): AclCheck {
  let db: UserDb | undefined = options.userDb;
  const users = (): UserDb => (db ??= readUserDb());
  const caller = resolveCaller(options, users);
  const { bridge: _bridge, user: _user, uid: _uid, gid: _gid, groups: _groups, ...rest } = options;
  const evaluateOptions: EvaluateAclOptions = { ...rest, userDb: users() };
  if (caller.as === 'credentials') evaluateOptions.credentials = { uid: caller.uid, gid: caller.gid, groups: caller.groups } satisfies AclCredentials;
  const verdict = evaluateAcl(options.bridge, evaluateOptions);
  const text = displayBytes(verdict.stderr.toString('latin1'));
  const messages = text === '' ? [] : text.replace(/\n$/, '').split('\n');
  const bridge = displayBytes(toByteString(options.bridge));

  if (verdict.error !== undefined) {
    return {
      allowed: false,
      reason: fatalReason(verdict.error, caller),
      fatal: true,
      files: verdict.error.files.map(fileInfo),
      messages,
      stderr: verdict.stderr,
      warnings: [],
      caller,
    };
  }
  const ruleSet = verdict.ruleSet as NonNullable<typeof verdict.ruleSet>;
  const { allow, deny } = verdict.decision as NonNullable<typeof verdict.decision>;
  const result: AclCheck = {
    allowed: verdict.permitted,
    reason: '',
    fatal: false,
    files: ruleSet.files.map(fileInfo),
    messages,
    stderr: verdict.stderr,
    warnings: collectWarnings(ruleSet.files, ruleSet.rules, ruleSet.guardRules ?? [], users, options.cwd),
    caller,
  };
  const alias = deny !== null && deny.bridge !== null && deny.bridge !== toByteString(options.bridge) ? ` (${displayBytes(deny.bridge)} is another name of the device "${bridge}" names)` : '';
  if (deny !== null && allow !== null) {
    result.reason = `denied: ${quoteRule(deny)}${alias}${identityNote(deny, caller, users)} overrides ${quoteRule(allow, deny)}`;
    result.rule = ruleRef(deny);
    result.overridden = ruleRef(allow);
  } else if (deny !== null) {
    result.reason = `denied: ${quoteRule(deny)}${alias}${identityNote(deny, caller, users)}, and no rule allows "${bridge}" either`;
    result.rule = ruleRef(deny);
  } else if (allow !== null && verdict.decision?.ifname?.permitted === false) {
    const d = verdict.decision.ifname;
    result.reason = `denied: "${bridge}" is allowed by ${quoteRule(allow)}, but the tap name "${displayBytes(d.name)}" is not: allowed names start with ${d.prefixes.map(displayBytes).join(', ')}`;
    result.rule = ruleRef(allow);
  } else if (allow !== null) {
    result.reason = `allowed: ${quoteRule(allow)}${identityNote(allow, caller, users)}`;
    result.rule = ruleRef(allow);
  } else {
    result.reason = `denied: no rule allows "${bridge}" (default deny)${skippedNote(ruleSet.files)}`;
  }
  if (verdict.guard !== undefined) {
    const { guard, rule } = verdict.guard;
    result.guard = { words: formatGuard(guard), rule: rule === null ? null : ruleRef(rule) };
  }
  return result;
}
