/**
 * Tokenising one bridge.conf file exactly as qemu-bridge-helper's `parse_acl_file()` does
 * (docs/qemu-bridge-helper.md, §4.2–§4.3), plus the qbh identity, tap-name and guard lines (docs/acl.md). Includes are not
 * followed here; the loader (load.ts) does that so that readability, cycles and limits are decided in
 * one place.
 */
import { readGuardWords, type PortGuard } from '../guard/policy.js';
import { isAsciiSpace } from './bytes.js';

/** `IFNAMSIZ`: a bridge name, in `--br=` or in a rule, must be shorter than this many bytes (CVE-2019-13164). */
export const IFNAMSIZ = 16;

/**
 * `fgets(line, 4096, f)` returns at most 4095 bytes; each such chunk of a longer line is a line of
 * its own (docs/qemu-bridge-helper.md, §4.2).
 */
export const ACL_CHUNK_MAX = 4095;

/** Who an identity rule is about: a user or a group, by name or by numeric id. */
export interface AclPrincipal {
  kind: 'user' | 'group';
  /** As written (byte string); for a numeric principal, the digits. */
  name: string;
  /** Set when the principal was written as a decimal id (`allow-user 1000 br0`). */
  id?: number;
}

/** An `allow`/`deny` rule (or a qbh identity rule) as read from one line. */
export interface AclRuleStatement {
  kind: 'rule';
  action: 'allow' | 'deny';
  /** The bridge name as a byte string, or `null` for `all`. */
  bridge: string | null;
  /** Only for identity rules (`allow-user`, `deny-group`, …). */
  principal?: AclPrincipal;
  /** 1-based line of the file (chunks of an over-long line share its number). */
  line: number;
  /** The statement as written, without leading or trailing whitespace (byte string). */
  text: string;
}

/** An `include PATH` line. */
export interface AclIncludeStatement {
  kind: 'include';
  /** The path as written (byte string, may be relative or empty). */
  path: string;
  line: number;
  text: string;
}

/**
 * A qbh `allow-ifname` line (docs/acl.md, "Tap names"): which names a caller may give its tap with
 * `--ifname`. Optionally for one user or group only.
 */
export interface AclIfnameStatement {
  kind: 'ifname';
  /** The prefix a chosen name must start with (byte string), or null for `all` (any name). */
  prefix: string | null;
  /** Only for `allow-ifname-user` / `allow-ifname-group`. */
  principal?: AclPrincipal;
  line: number;
  text: string;
}

/**
 * A qbh `guard` line (docs/acl.md, "Port guards"): the port guard a tap on the bridge gets, for
 * everyone (`guard`) or for one user or group (`guard-user`, `guard-group`).
 */
export interface AclGuardStatement {
  kind: 'guard';
  /** The bridge name as a byte string, or `null` for `all`. */
  bridge: string | null;
  /** Only for `guard-user` / `guard-group`. */
  principal?: AclPrincipal;
  /** The guard the line's words say (`{}` for `none`, an explicit exemption). */
  guard: PortGuard;
  line: number;
  text: string;
}

/** One meaningful line of an ACL file. */
export type AclStatement = AclRuleStatement | AclIncludeStatement | AclIfnameStatement | AclGuardStatement;

/** The first syntax error of a file: where, and the exact bytes the C helper prints for it. */
export interface AclSyntaxError {
  line: number;
  /**
   * Exact stderr text (byte string, ends in `\n`), e.g. ``Unknown command `foo'\n``; for qbh's own
   * lines (`guard`), one line naming file and line: `/etc/qemu/bridge.conf:3: invalid guard word …`.
   */
  message: string;
  /** qbh's own lines only: the problem without file and line (`invalid guard word "x": …`). */
  problem?: string;
}

/** One file's statements up to (not including) its first syntax error. */
export interface AclTokens {
  statements: AclStatement[];
  error: AclSyntaxError | null;
}

/** Options of {@link tokenizeAcl}. */
export interface TokenizeOptions {
  /**
   * Recognise the qbh identity rules `allow-user`, `deny-user`, `allow-group`, `deny-group` and the
   * tap-name rules `allow-ifname`, `allow-ifname-user`, `allow-ifname-group` (default true). With
   * `false` they are unknown commands, exactly as in the C helper. The same holds for the port guard
   * lines `guard`, `guard-user`, `guard-group`.
   */
  extensions?: boolean;
  /** The file's name (byte string) for qbh's own error messages (`FILE:LINE: …`; without it `line N: …`). */
  file?: string;
}

const IDENTITY_COMMANDS: ReadonlyMap<string, readonly ['allow' | 'deny', 'user' | 'group']> = new Map([
  ['allow-user', ['allow', 'user']],
  ['deny-user', ['deny', 'user']],
  ['allow-group', ['allow', 'group']],
  ['deny-group', ['deny', 'group']],
] as const);

/** The `allow-ifname` family: the principal kind, or null for the line that applies to everyone. */
const IFNAME_COMMANDS: ReadonlyMap<string, 'user' | 'group' | null> = new Map([
  ['allow-ifname', null],
  ['allow-ifname-user', 'user'],
  ['allow-ifname-group', 'group'],
] as const);

/** The `guard` family: the principal kind, or null for the line that applies to everyone. */
const GUARD_COMMANDS: ReadonlyMap<string, 'user' | 'group' | null> = new Map([
  ['guard', null],
  ['guard-user', 'user'],
  ['guard-group', 'group'],
] as const);

/** Largest uid/gid: (uid_t)-1 is "no id" to the kernel. */
const MAX_ID = 4294967294;

/** Splits `a WS b` into [a, b]; null unless there are exactly two whitespace-free words. */
function twoWords(arg: string): [string, string] | null {
  let i = 0;
  while (i < arg.length && !isAsciiSpace(arg.charCodeAt(i))) i++;
  if (i === 0 || i === arg.length) return null;
  let j = i;
  while (j < arg.length && isAsciiSpace(arg.charCodeAt(j))) j++;
  const second = arg.slice(j);
  for (let k = 0; k < second.length; k++) if (isAsciiSpace(second.charCodeAt(k))) return null;
  return [arg.slice(0, i), second];
}

/** The words of `arg`, split at ASCII whitespace. */
function asciiWords(arg: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < arg.length) {
    while (i < arg.length && isAsciiSpace(arg.charCodeAt(i))) i++;
    const from = i;
    while (i < arg.length && !isAsciiSpace(arg.charCodeAt(i))) i++;
    if (i > from) words.push(arg.slice(from, i));
  }
  return words;
}

/**
 * Reads the argument of a `guard`, `guard-user` or `guard-group` line (`kind`: the principal's kind,
 * null for `guard`): `[WHO] BRIDGE|all WORDS…`. Returns the statement's parts, a name that is too
 * long (the C helper's 16-byte rule), or the problem in qbh's words.
 */
function readGuardLine(cmd: string, kind: 'user' | 'group' | null, arg: string): Omit<AclGuardStatement, 'kind' | 'line' | 'text'> | { tooLong: string } | { problem: string } {
  const words = asciiWords(arg);
  const usage = `"${cmd}" needs ${kind === null ? '' : `a ${kind} (name or id), `}a bridge (or all) and guard words, as in "${cmd} ${kind === null ? '' : 'alice '}br0 strict"`;
  let principal: AclPrincipal | undefined;
  if (kind !== null) {
    const who = words.shift();
    if (who === undefined) return { problem: usage };
    const id = /^[0-9]+$/.test(who) ? Number(who) : undefined;
    if (id !== undefined && id > MAX_ID) return { problem: `${kind === 'user' ? 'uid' : 'gid'} "${who}" is out of range (at most ${MAX_ID})` };
    principal = id === undefined ? { kind, name: who } : { kind, name: who, id };
  }
  const bridge = words.shift();
  if (bridge === undefined || words.length === 0) return { problem: usage };
  if (bridge.length >= IFNAMSIZ) return { tooLong: bridge };
  const guard = readGuardWords(words);
  if ('error' in guard) return { problem: guard.error as string };
  return { bridge: bridge === 'all' ? null : bridge, guard, ...(principal === undefined ? {} : { principal }) };
}

/**
 * Splits one ACL file into statements the way qemu-bridge-helper reads it: 4095-byte fgets chunks,
 * content ending at an embedded NUL, `#` comments only at line start, separator = first space
 * anywhere else first tab, command not trimmed, argument trimmed of ASCII whitespace, the 16-byte name
 * limit checked before the command is recognised (except for `include`). Reading stops at the first
 * syntax error, whose exact C message is returned (for qbh's own `guard` lines, one line in qbh's
 * words naming `options.file`, the line and the bad word); statements before it stand. Never throws.
 *
 * `data` is the file's bytes, as a Buffer or a byte string (one char per byte).
 */
export function tokenizeAcl(data: Buffer | string, options: TokenizeOptions = {}): AclTokens {
  const extensions = options.extensions ?? true;
  const s = typeof data === 'string' ? data : data.toString('latin1');
  const n = s.length;
  const statements: AclStatement[] = [];
  let pos = 0;
  let line = 1;
  // Positions of the next '\n' and NUL at or after pos (-1: none left), kept across chunks so that the
  // whole file is scanned for each only once: parsing stays linear in the file size whatever the shape.
  // Within a chunk everything else works on indices, without copying the chunk.
  let nextNl = s.indexOf('\n');
  let nextNul = s.indexOf('\0');
  const invalid = (from: number, to: number, at: number): AclTokens => ({
    statements,
    // The raw line, leading whitespace and own newline included (docs/qemu-bridge-helper.md, §8).
    error: { line: at, message: `Invalid config line:\n  ${s.slice(from, to)}\n` },
  });
  while (pos < n) {
    if (nextNl !== -1 && nextNl < pos) nextNl = s.indexOf('\n', pos);
    if (nextNul !== -1 && nextNul < pos) nextNul = s.indexOf('\0', pos);
    let end = nextNl === -1 ? n : nextNl + 1;
    if (end - pos > ACL_CHUNK_MAX) end = pos + ACL_CHUNK_MAX;
    const start = pos;
    const chunkLine = line;
    if (s.charCodeAt(end - 1) === 0x0a) line++;
    pos = end;
    // C string semantics: everything after an embedded NUL is invisible (docs/qemu-bridge-helper.md, §4.2).
    const stop = nextNul !== -1 && nextNul < end ? nextNul : end;

    let i = start;
    while (i < stop && isAsciiSpace(s.charCodeAt(i))) i++;
    if (i === stop || s.charCodeAt(i) === 0x23 /* # */) continue;

    let sep = i;
    while (sep < stop && s.charCodeAt(sep) !== 0x20) sep++;
    if (sep === stop) {
      sep = i;
      while (sep < stop && s.charCodeAt(sep) !== 0x09) sep++;
      if (sep === stop) return invalid(start, stop, chunkLine);
    }
    let a = sep + 1;
    let b = stop;
    while (a < b && isAsciiSpace(s.charCodeAt(a))) a++;
    while (b > a && isAsciiSpace(s.charCodeAt(b - 1))) b--;
    const cmd = s.slice(i, sep);
    const arg = s.slice(a, b);
    let textEnd = stop;
    while (textEnd > i && isAsciiSpace(s.charCodeAt(textEnd - 1))) textEnd--;
    const text = s.slice(i, textEnd);

    const identity = extensions ? IDENTITY_COMMANDS.get(cmd) : undefined;
    if (identity !== undefined) {
      const words = twoWords(arg);
      const id = words !== null && /^[0-9]+$/.test(words[0]) ? Number(words[0]) : undefined;
      if (words === null || (id !== undefined && id > MAX_ID)) return invalid(start, stop, chunkLine);
      const [who, bridge] = words;
      if (bridge.length >= IFNAMSIZ) {
        return { statements, error: { line: chunkLine, message: nameTooLongMessage(bridge) } };
      }
      const principal: AclPrincipal = id === undefined ? { kind: identity[1], name: who } : { kind: identity[1], name: who, id };
      statements.push({ kind: 'rule', action: identity[0], bridge: bridge === 'all' ? null : bridge, principal, line: chunkLine, text });
      continue;
    }

    const guardKind = extensions ? GUARD_COMMANDS.get(cmd) : undefined;
    if (guardKind !== undefined) {
      const g = readGuardLine(cmd, guardKind, arg);
      if ('tooLong' in g) return { statements, error: { line: chunkLine, message: nameTooLongMessage(g.tooLong) } };
      if ('problem' in g) return { statements, error: { line: chunkLine, message: `${options.file === undefined ? `line ${chunkLine}` : `${options.file}:${chunkLine}`}: ${g.problem}\n`, problem: g.problem } };
      statements.push({ kind: 'guard', ...g, line: chunkLine, text });
      continue;
    }

    const ifnameKind = extensions ? IFNAME_COMMANDS.get(cmd) : undefined;
    if (ifnameKind !== undefined) {
      let prefix = arg;
      let principal: AclPrincipal | undefined;
      if (ifnameKind !== null) {
        const words = twoWords(arg);
        const id = words !== null && /^[0-9]+$/.test(words[0]) ? Number(words[0]) : undefined;
        if (words === null || (id !== undefined && id > MAX_ID)) return invalid(start, stop, chunkLine);
        prefix = words[1];
        principal = id === undefined ? { kind: ifnameKind, name: words[0] } : { kind: ifnameKind, name: words[0], id };
      }
      // Exactly one non-empty word: an empty prefix would allow every name, so it must be spelled `all`.
      if (prefix === '' || [...prefix].some((c) => isAsciiSpace(c.charCodeAt(0)))) return invalid(start, stop, chunkLine);
      if (prefix.length >= IFNAMSIZ) return { statements, error: { line: chunkLine, message: nameTooLongMessage(prefix) } };
      const st: AclIfnameStatement = { kind: 'ifname', prefix: prefix === 'all' ? null : prefix, line: chunkLine, text };
      if (principal !== undefined) st.principal = principal;
      statements.push(st);
      continue;
    }

    // CVE-2019-13164: checked before the command is recognised, so `bogus 0123456789abcdef` is "too long".
    if (cmd !== 'include' && arg.length >= IFNAMSIZ) {
      return { statements, error: { line: chunkLine, message: nameTooLongMessage(arg) } };
    }
    if (cmd === 'allow' || cmd === 'deny') {
      statements.push({ kind: 'rule', action: cmd, bridge: arg === 'all' ? null : arg, line: chunkLine, text });
    } else if (cmd === 'include') {
      statements.push({ kind: 'include', path: arg, line: chunkLine, text });
    } else {
      return { statements, error: { line: chunkLine, message: `Unknown command \`${cmd}'\n` } };
    }
  }
  return { statements, error: null };
}

/** The C helper's ``name `X' too long: N`` line (byte string, with `\n`); N is the length in bytes. */
export function nameTooLongMessage(name: string): string {
  return `name \`${name}' too long: ${name.length}\n`;
}
