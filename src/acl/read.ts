/**
 * How ACL files are opened. Three readers share one result type:
 * - {@link callerReader}: the process reads as itself (the helper, like the C helper after its privilege
 *   drop): the kernel's own access check decides.
 * - {@link credentialReader}: a privileged process (the daemon) reads on behalf of a peer: readability
 *   is decided from owner, group and mode bits along the whole path, as the kernel would for that peer,
 *   and, hardened, only root-controlled files are trusted.
 * - {@link memoryReader}: files held in memory, for tests, fuzzing and previews.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, readlinkSync, statSync } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import { byteStringBuffer, displayBytes, toByteString } from './bytes.js';

/**
 * Largest single ACL file read (16 MiB); anything bigger is refused (docs/acl.md, deviations).
 * @category Bridge helper ACL
 */
export const ACL_MAX_FILE_BYTES = 16 * 1024 * 1024;

/** What opening one ACL path gave. */
export type AclSource =
  /** Read in full. `key` identifies the file (device:inode) so include cycles can be seen. */
  | { status: 'read'; data: Buffer; key: string }
  /** Does not exist (ENOENT, ENOTDIR, ELOOP, empty path): an include is silently skipped, as in C. */
  | { status: 'missing'; detail?: string }
  /** Exists, but the caller may not read it: an include is silently skipped, as in C. */
  | { status: 'unreadable'; detail?: string }
  /** A directory the caller may open: reads as empty, as in C (fopen works, fgets fails). */
  | { status: 'directory'; detail?: string }
  /** Hardened mode: the file or a directory on its path is not under root's sole control. Fatal. */
  | { status: 'insecure'; detail: string }
  /** A FIFO, socket or device, an over-large file, or a read that failed midway. Fatal. */
  | { status: 'error'; detail: string };

/**
 * Opens one ACL path. `path` is a byte string: absolute, or relative to the process's working
 * directory (the loader has already applied an explicit `cwd`). `maxBytes` (default
 * {@link ACL_MAX_FILE_BYTES}) is what the caller still accepts: a file reader reads at most one byte
 * more than that, so the loader can see it is over without reading the rest (a pseudo-file such as
 * /proc/PID/maps reports size 0 and may be hundreds of megabytes).
 */
export type AclReader = (path: string, maxBytes?: number) => AclSource;

/**
 * How long an open waits in all for a file lease to be released (fcntl F_SETLEASE). The C helper
 * blocks until the holder releases it or the kernel breaks it (`/proc/sys/fs/lease-break-time`,
 * 45 s by default); a holder that answers its SIGIO lets go in microseconds, and a hung helper
 * hangs QEMU (spec §2.1, no timeout there), so qbh waits this long and then fails closed.
 */
export const ACL_LEASE_WAIT_MS = 2000;

/** A caller's identity for permission decisions: real uid, real gid and supplementary groups. */
export interface AclCredentials {
  uid: number;
  gid: number;
  groups: readonly number[];
}

function errnoCode(err: unknown): string {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : 'EIO';
}

/** Open errors that mean "no such file": the C helper's fopen fails and an include is skipped. */
const NOT_FOUND = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'ENAMETOOLONG']);
/**
 * Open errors that mean "this caller may not read it": skipped like the C helper skips them, which
 * is the point of per-user include files (spec §4.6). Every other error (EMFILE, ENFILE, ENOMEM, EIO,
 * a lease not released, …) says nothing about what the file holds: skipping it could skip a deny, so
 * it is fatal (docs/acl.md, deviations).
 */
const NOT_PERMITTED = new Set(['EACCES', 'EPERM']);

/** Blocks the thread for `ms` (the helper is synchronous by design; there is nothing else to run). */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * openSync, waiting out a file lease: with O_NONBLOCK (kept so that a FIFO never
 * hangs the open) a write lease held by someone else makes open fail with EWOULDBLOCK; the failed
 * open has already told the holder to release it (SIGIO), so trying again shortly succeeds. Still
 * blocked after {@link ACL_LEASE_WAIT_MS}: the error is thrown, and the caller fails closed.
 */
function openWaitingForLease(path: Buffer, flags: number): number {
  let waited = 0;
  for (let delay = 1; ; delay = Math.min(delay * 2, 100)) {
    try {
      return openSync(path, flags);
    } catch (err) {
      if (errnoCode(err) !== 'EAGAIN' && errnoCode(err) !== 'EWOULDBLOCK') throw err;
      if (waited >= ACL_LEASE_WAIT_MS) throw err;
    }
    sleepSync(delay);
    waited += delay;
  }
}

/** Why an open failed, as an outcome: missing and not-permitted are skipped as in C, anything else is fatal. */
function openFailure(err: unknown, shown: string): AclSource {
  const code = errnoCode(err);
  if (NOT_FOUND.has(code)) return { status: 'missing', detail: code };
  if (NOT_PERMITTED.has(code)) return { status: 'unreadable', detail: code };
  const why = code === 'EAGAIN' || code === 'EWOULDBLOCK' ? `${code} (a file lease on it was not released within ${ACL_LEASE_WAIT_MS} ms)` : code;
  return { status: 'error', detail: `cannot open acl file \`${shown}': ${why}` };
}

/** Reads at most `limit` bytes from `fd` (fewer at end of file), whatever size the file reports. */
function readBounded(fd: number, sizeHint: number, limit: number): Buffer {
  let buf = Buffer.allocUnsafe(Math.min(limit, Math.max(sizeHint + 1, 64 * 1024)));
  let used = 0;
  while (used < limit) {
    if (used === buf.length) {
      const bigger = Buffer.allocUnsafe(Math.min(limit, buf.length * 2));
      buf.copy(bigger, 0, 0, used);
      buf = bigger;
    }
    const n = readSync(fd, buf, used, buf.length - used, null);
    if (n === 0) break;
    used += n;
  }
  return buf.subarray(0, used);
}

function readOpened(fd: number, st: BigIntStats, shown: string, maxBytes = ACL_MAX_FILE_BYTES): AclSource {
  if (st.isDirectory()) return { status: 'directory' };
  if (!st.isFile()) {
    // The C helper would block on a FIFO or read a device forever; refusing is the closed choice.
    return { status: 'error', detail: `acl file \`${shown}' is not a regular file` };
  }
  if (st.size > BigInt(ACL_MAX_FILE_BYTES)) {
    return { status: 'error', detail: `acl file \`${shown}' is larger than ${ACL_MAX_FILE_BYTES} bytes` };
  }
  // The bound is in force while reading: at most one byte past what is accepted, never the whole
  // file first (a 0-size pseudo-file can be huge). One byte over is enough to know it is too big.
  const limit = Math.min(Math.max(0, maxBytes), ACL_MAX_FILE_BYTES) + 1;
  let data: Buffer;
  try {
    data = readBounded(fd, Number(st.size), limit);
  } catch (err) {
    if (errnoCode(err) === 'EISDIR') return { status: 'directory' };
    return { status: 'error', detail: `cannot read acl file \`${shown}': ${errnoCode(err)}` };
  }
  if (data.length > ACL_MAX_FILE_BYTES) {
    return { status: 'error', detail: `acl file \`${shown}' is larger than ${ACL_MAX_FILE_BYTES} bytes` };
  }
  return { status: 'read', data, key: `${st.dev}:${st.ino}` };
}

// O_NONBLOCK: opening a FIFO must not hang the helper; it is then refused as "not a regular file".
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

/**
 * A reader that opens files as the current process: what the kernel lets this process read is
 * readable. This is the C helper's model (it reads after dropping to the caller's ids, spec §4.2).
 * @category Bridge helper ACL
 */
export function callerReader(): AclReader {
  return (path, maxBytes) => {
    let fd: number;
    try {
      fd = openWaitingForLease(byteStringBuffer(path), OPEN_FLAGS);
    } catch (err) {
      return openFailure(err, displayBytes(path));
    }
    try {
      return readOpened(fd, fstatSync(fd, { bigint: true }), displayBytes(path), maxBytes);
    } finally {
      closeSync(fd);
    }
  };
}

/** Whether `cred` may read (bit 4) or search/execute (bit 1) an object, by the classic Unix rule. */
export function mayAccess(st: { uid: number | bigint; gid: number | bigint; mode: number | bigint }, cred: AclCredentials, bit: 4 | 1): boolean {
  // uid 0 has CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH: it reads and searches everything.
  if (cred.uid === 0) return true;
  const uid = Number(st.uid);
  const gid = Number(st.gid);
  const mode = Number(st.mode);
  // Owner class first and exclusively, then group class, then others: a file's owner with 0o044 cannot read it.
  const shift = uid === cred.uid ? 6 : gid === cred.gid || cred.groups.includes(gid) ? 3 : 0;
  return ((mode >> shift) & bit) !== 0;
}

function octal(mode: number | bigint): string {
  return `0${(Number(mode) & 0o7777).toString(8).padStart(3, '0')}`;
}

/**
 * Why an object is not under root's sole control, or null. `label` names it, already quoted.
 * Directories may be writable by others only with the sticky bit (as /tmp): then nobody can replace
 * root's entries, and anything they add is not owned by root, so it fails this check in turn.
 */
function insecurity(what: 'file' | 'directory', label: string, st: BigIntStats): string | null {
  if (st.uid !== 0n) return `acl ${what} ${label} is not owned by root (owner uid ${st.uid})`;
  const mode = Number(st.mode);
  const sticky = what === 'directory' && (mode & 0o1000) !== 0;
  if (!sticky && (mode & 0o002) !== 0) return `acl ${what} ${label} is writable by others (mode ${octal(mode)})`;
  if (!sticky && (mode & 0o020) !== 0) return `acl ${what} ${label} is writable by group (mode ${octal(mode)})`;
  return null;
}

/** Options of {@link credentialReader}. */
export interface CredentialReaderOptions {
  /**
   * Trust only root-controlled files (default true): every ACL file and every directory on its path
   * must be owned by root and not writable by group or others (directories: unless sticky).
   */
  harden?: boolean;
  /** Base for relative paths (default: the process's working directory). */
  cwd?: string;
}

const MAX_SYMLINKS = 40; // the kernel's limit per path walk

/**
 * A reader for a privileged process acting for another user: it walks the path itself (following
 * symlinks like the kernel), requires search permission for `cred` on every directory passed and read
 * permission on the file, and then reads it with its own privileges. Hardened (the default), a file
 * or directory that someone other than root could change makes the whole check fail. The file read
 * is the one that was checked (device and inode compared after opening).
 * @category Bridge helper ACL
 */
export function credentialReader(cred: AclCredentials, options: CredentialReaderOptions = {}): AclReader {
  const harden = options.harden ?? true;
  const base = toByteString(options.cwd ?? process.cwd());
  const dirs = new Map<string, { searchable: boolean; insecure: string | null }>();

  function lstat(p: string): BigIntStats | null {
    try {
      return lstatSync(byteStringBuffer(p), { bigint: true });
    } catch {
      return null;
    }
  }

  function dirVerdict(dir: string, st: BigIntStats) {
    let v = dirs.get(dir);
    if (v === undefined) {
      v = { searchable: mayAccess(st, cred, 1), insecure: harden ? insecurity('directory', `\`${displayBytes(dir)}'`, st) : null };
      dirs.set(dir, v);
    }
    return v;
  }

  return (path, maxBytes) => {
    if (path === '') return { status: 'missing', detail: 'ENOENT' };
    const shown = displayBytes(path);
    const abs = path.startsWith('/') ? path : `${base.endsWith('/') ? base : `${base}/`}${path}`;
    const todo = abs.split('/').reverse();
    let cur = '/';
    let curSt = statSync('/', { bigint: true });
    let links = 0;
    let searchDenied: string | null = null;
    let insecure: string | null = null;
    let found = true;
    while (todo.length > 0) {
      const c = todo.pop() as string;
      if (!curSt.isDirectory()) {
        found = false; // ENOTDIR: a component after a non-directory, even "" from a trailing slash
        break;
      }
      if (c === '' || c === '.') continue;
      const v = dirVerdict(cur, curSt);
      if (!v.searchable && searchDenied === null) searchDenied = cur;
      if (v.insecure !== null && insecure === null) insecure = v.insecure;
      if (c === '..') {
        cur = cur.slice(0, Math.max(1, cur.lastIndexOf('/')));
        curSt = lstat(cur) ?? curSt;
        continue;
      }
      const next = cur === '/' ? `/${c}` : `${cur}/${c}`;
      const st = lstat(next);
      if (st === null) {
        found = false;
        break;
      }
      if (st.isSymbolicLink()) {
        if (++links > MAX_SYMLINKS) {
          found = false;
          break;
        }
        let target: string;
        try {
          target = readlinkSync(byteStringBuffer(next), { encoding: 'buffer' }).toString('latin1');
        } catch {
          found = false;
          break;
        }
        if (target.startsWith('/')) {
          cur = '/';
          curSt = statSync('/', { bigint: true });
        }
        const parts = target.split('/');
        for (let k = parts.length - 1; k >= 0; k--) todo.push(parts[k] as string);
        continue;
      }
      cur = next;
      curSt = st;
    }

    if (insecure !== null) return { status: 'insecure', detail: `${insecure}, on the path of \`${shown}'` };
    if (!found) return searchDenied !== null ? { status: 'unreadable', detail: `no search permission on ${displayBytes(searchDenied)}` } : { status: 'missing', detail: 'ENOENT' };
    if (harden) {
      const label = cur === abs ? `\`${shown}'` : `\`${shown}' (\`${displayBytes(cur)}')`;
      const bad = insecurity(curSt.isDirectory() ? 'directory' : 'file', label, curSt);
      if (bad !== null) return { status: 'insecure', detail: bad };
    }
    if (searchDenied !== null) return { status: 'unreadable', detail: `no search permission on ${displayBytes(searchDenied)}` };
    if (!mayAccess(curSt, cred, 4)) {
      return { status: 'unreadable', detail: `mode ${octal(curSt.mode)} owner ${curSt.uid} group ${curSt.gid}` };
    }
    if (curSt.isDirectory()) return { status: 'directory' };
    let fd: number;
    try {
      fd = openWaitingForLease(byteStringBuffer(cur), OPEN_FLAGS | constants.O_NOFOLLOW);
    } catch (err) {
      const failed = openFailure(err, shown);
      // The mode bits said readable: any failure now is not the caller's permission, so never skipped.
      return failed.status === 'error' ? failed : { status: 'error', detail: `cannot open acl file \`${shown}': ${errnoCode(err)}` };
    }
    try {
      const st = fstatSync(fd, { bigint: true });
      if (st.dev !== curSt.dev || st.ino !== curSt.ino) {
        return { status: 'error', detail: `acl file \`${shown}' changed while it was being checked` };
      }
      return readOpened(fd, st, shown, maxBytes);
    } finally {
      closeSync(fd);
    }
  };
}

/**
 * A reader over files held in memory: keys are paths exactly as the loader asks for them (the main
 * path, include paths as written or joined to `cwd`). A string value is UTF-8 text, a Buffer raw
 * bytes, an {@link AclSource} any outcome (e.g. `{ status: 'unreadable' }`). Absent paths are missing.
 * @category Bridge helper ACL
 */
export function memoryReader(files: Readonly<Record<string, string | Buffer | AclSource>>): AclReader {
  const table = new Map<string, AclSource>();
  for (const [p, v] of Object.entries(files)) {
    const key = `mem:${p}`; // one file per path: a path that includes itself is a cycle
    const source: AclSource =
      typeof v === 'string' ? { status: 'read', data: Buffer.from(v, 'utf8'), key } : Buffer.isBuffer(v) ? { status: 'read', data: v, key } : v.status === 'read' ? { ...v, key } : v;
    table.set(toByteString(p), source);
  }
  return (path) => table.get(path) ?? { status: 'missing', detail: 'ENOENT' };
}
