/**
 * Loading an ACL: the main file and its includes, in place and in order, into one rule list, with the
 * stderr bytes the C helper would print along the way (docs/qemu-bridge-helper.md, §4.3–§4.5). Fatal
 * outcomes throw {@link AclError}; everything else (missing or unreadable includes, errors inside
 * includes) is recorded and skipped exactly like the C helper skips it.
 */
import { byteStringBuffer, displayBytes, toByteString } from './bytes.js';
import { AclError, type AclErrorCode } from './errors.js';
import type { AclFileRecord } from './files.js';
import type { PortGuard } from '../guard/policy.js';
import { tokenizeAcl, type AclPrincipal, type AclSyntaxError } from './parse.js';
import { ACL_MAX_FILE_BYTES, type AclReader, type AclSource } from './read.js';

/**
 * The ACL file the helper reads. Fixed: never taken from argv, the environment or the executable's
 * location (docs/qemu-bridge-helper.md, §4.1).
 * @category Bridge helper ACL
 */
export const DEFAULT_ACL_FILE = '/etc/qemu/bridge.conf';

/**
 * Deepest include nesting accepted (the main file is depth 0). Deeper is an error, not a crash (docs/acl.md).
 * @category Bridge helper ACL
 */
export const ACL_MAX_DEPTH = 32;
/**
 * Most `include` lines followed in one evaluation (includes of includes multiply; the C helper has no bound).
 * @category Bridge helper ACL
 */
export const ACL_MAX_INCLUDES = 4096;
/**
 * Most bytes read in one evaluation, over all files.
 * @category Bridge helper ACL
 */
export const ACL_MAX_TOTAL_BYTES = 64 * 1024 * 1024;

/** One rule, where it came from, ready to evaluate. Strings are byte strings (one char per byte). */
export interface AclRule {
  action: 'allow' | 'deny';
  /** Bridge name, or null for `all`. */
  bridge: string | null;
  /** Identity rules only. */
  principal?: AclPrincipal;
  /** The file as it was opened (main path, or include path resolved against `cwd`). */
  file: string;
  line: number;
  /** The statement as written. */
  text: string;
}

/** An `allow-ifname` rule (qbh extension), where it came from. Strings are byte strings. */
export interface AclIfnameRule {
  /** The prefix a chosen tap name must start with, or null for `all`. */
  prefix: string | null;
  principal?: AclPrincipal;
  file: string;
  line: number;
  text: string;
}

/** A `guard` line (qbh extension), where it came from. Strings are byte strings. */
export interface AclGuardRule {
  /** Bridge name, or null for `all`. */
  bridge: string | null;
  /** Only for `guard-user` / `guard-group`. */
  principal?: AclPrincipal;
  /** The guard its words say; `{}` for `none`. */
  guard: PortGuard;
  file: string;
  line: number;
  text: string;
}

export type { AclFileRecord, AclFileStatus } from './files.js';

/** The rules of a whole ACL (main file and includes), in file order, plus what was printed. */
export interface AclRuleSet {
  rules: AclRule[];
  files: AclFileRecord[];
  /** Everything the C helper prints while parsing (error lines from includes), as a byte string. */
  stderr: string;
  /** True when any rule names a user or group (the evaluator then needs the caller's identity). */
  hasIdentityRules: boolean;
  /** The `allow-ifname*` rules, in file order (they decide `--ifname`, never a bridge). */
  ifnameRules?: AclIfnameRule[];
  /** The `guard*` lines, in file order (they decide a permitted tap's port guard, never whether it is permitted). */
  guardRules?: AclGuardRule[];
}

/** Options of {@link loadAcl}. */
export interface LoadOptions {
  /** Recognise identity rules (default true); false reads them as unknown commands, like C. */
  extensions?: boolean;
  /** Base directory for relative includes; default: left relative, i.e. the process's cwd (as C). */
  cwd?: string;
}

/** Joins a relative include to `cwd` without normalising (`..` must go through the file system, as the kernel does). */
function resolveInclude(path: string, cwd: string | undefined): string {
  if (cwd === undefined || path === '' || path.startsWith('/')) return path;
  return cwd.endsWith('/') ? cwd + path : `${cwd}/${path}`;
}

class Loader {
  readonly rules: AclRule[] = [];
  readonly ifnameRules: AclIfnameRule[] = [];
  readonly guardRules: AclGuardRule[] = [];
  readonly files: AclFileRecord[] = [];
  stderr = '';
  hasIdentityRules = false;
  private readonly stack: string[] = [];
  private includes = 0;
  private bytes = 0;

  constructor(
    private readonly reader: AclReader,
    private readonly extensions: boolean,
    private readonly cwd: string | undefined,
  ) {}

  /** Prints `line` (a byte string, without its newline) and throws. */
  fail(code: AclErrorCode, line: string, where: { file?: string; line?: number } = {}): never {
    this.stderr += `${line}\n`;
    throw new AclError(code, displayBytes(line), { ...where, stderr: byteStringBuffer(this.stderr), files: this.files });
  }

  /** Reads and applies the main file. */
  main(path: string, source: AclSource): void {
    const record: AclFileRecord = { path, status: source.status === 'read' ? 'read' : source.status, depth: 0 };
    if ('detail' in source && source.detail !== undefined) record.detail = source.detail;
    this.files.push(record);
    const failed = `failed to parse default acl file \`${path}'`;
    if (source.status === 'missing' || source.status === 'unreadable') {
      this.fail('unreadable', failed, { file: path });
    }
    this.refuse(source, record, {});
    if (source.status !== 'read') return; // a directory reads as empty
    const error = this.parse(path, source, record, 0);
    if (error !== null) this.fail('parse', failed, { file: path, line: error.line });
  }

  /** Fails for the sources that are fatal wherever they appear. */
  private refuse(source: AclSource, record: AclFileRecord, from: { file?: string; line?: number }): void {
    // Reader details are display text; stderr holds bytes.
    if (source.status === 'insecure') this.fail('insecure', toByteString(source.detail), { file: record.path, ...from });
    if (source.status === 'error') this.fail('io', toByteString(source.detail), { file: record.path, ...from });
  }

  /** Applies one read file; returns its syntax error (already printed) or null. */
  private parse(path: string, source: { data: Buffer; key: string }, record: AclFileRecord, depth: number): AclSyntaxError | null {
    const from = record.includedFrom;
    const where = from === undefined ? { file: path } : { file: from.file, line: from.line };
    const shownFrom = from === undefined ? '' : ` at \`${from.file}' line ${from.line}`;
    if (this.stack.includes(source.key)) {
      record.status = 'cycle';
      this.fail('cycle', `include cycle${shownFrom}: \`${path}' is already being read`, where);
    }
    if (depth > ACL_MAX_DEPTH) {
      record.status = 'too-deep';
      this.fail('depth', `include nesting deeper than ${ACL_MAX_DEPTH} levels${shownFrom} (\`${path}')`, where);
    }
    this.bytes += source.data.length;
    if (this.bytes > ACL_MAX_TOTAL_BYTES) {
      record.status = 'error';
      this.fail('limit', `acl files too large: more than ${ACL_MAX_TOTAL_BYTES} bytes in all${shownFrom}`, where);
    }

    const { statements, error } = tokenizeAcl(source.data, { extensions: this.extensions, file: path });
    this.stack.push(source.key);
    for (const st of statements) {
      if (st.kind === 'rule') {
        const rule: AclRule = { action: st.action, bridge: st.bridge, file: path, line: st.line, text: st.text };
        if (st.principal !== undefined) {
          rule.principal = st.principal;
          this.hasIdentityRules = true;
        }
        this.rules.push(rule);
        continue;
      }
      if (st.kind === 'ifname') {
        const rule: AclIfnameRule = { prefix: st.prefix, file: path, line: st.line, text: st.text };
        if (st.principal !== undefined) {
          rule.principal = st.principal;
          this.hasIdentityRules = true;
        }
        this.ifnameRules.push(rule);
        continue;
      }
      if (st.kind === 'guard') {
        const rule: AclGuardRule = { bridge: st.bridge, guard: st.guard, file: path, line: st.line, text: st.text };
        if (st.principal !== undefined) {
          rule.principal = st.principal;
          this.hasIdentityRules = true;
        }
        this.guardRules.push(rule);
        continue;
      }
      // include: errors in the included file are printed, never fatal (docs/qemu-bridge-helper.md, §4.5)
      if (++this.includes > ACL_MAX_INCLUDES) {
        this.fail('limit', `too many includes: more than ${ACL_MAX_INCLUDES} at \`${path}' line ${st.line}`, { file: path, line: st.line });
      }
      const target = resolveInclude(st.path, this.cwd);
      // The total bound is in force while reading: the reader stops one byte past what is left.
      const inner = this.reader(target, Math.max(0, ACL_MAX_TOTAL_BYTES - this.bytes));
      const innerFrom = { file: path, line: st.line, text: st.text, path: st.path };
      const innerRecord: AclFileRecord = { path: target, status: inner.status === 'read' ? 'read' : inner.status, depth: depth + 1, includedFrom: innerFrom };
      if ('detail' in inner && inner.detail !== undefined) innerRecord.detail = inner.detail;
      this.files.push(innerRecord);
      this.refuse(inner, innerRecord, { file: path, line: st.line });
      if (inner.status === 'read') this.parse(target, inner, innerRecord, depth + 1);
    }
    this.stack.pop();
    if (error !== null) {
      this.stderr += error.message;
      record.status = 'partial';
      record.error = error;
    }
    return error;
  }
}

/**
 * Loads an ACL as qemu-bridge-helper does: the main file `path` (byte string) through `reader`, each
 * `include` read in place, relative includes against `options.cwd` (default: the process's cwd).
 * Returns the rules in file order and the messages printed so far. Throws {@link AclError} (and
 * nothing else) when the C helper would fail (`failed to parse default acl file …`) or a qbh
 * deviation applies (include cycle, depth, size limits, hardening, non-regular files).
 * @category Bridge helper ACL
 */
export function loadAcl(path: string, reader: AclReader, options: LoadOptions = {}): AclRuleSet {
  const loader = new Loader(reader, options.extensions ?? true, options.cwd === undefined ? undefined : toByteString(options.cwd));
  loader.main(path, reader(path, Math.min(ACL_MAX_FILE_BYTES, ACL_MAX_TOTAL_BYTES)));
  return { rules: loader.rules, files: loader.files, stderr: loader.stderr, hasIdentityRules: loader.hasIdentityRules, ifnameRules: loader.ifnameRules, guardRules: loader.guardRules };
}
