/**
 * How ACL files are opened. Three readers share one result type:
 * - {@link callerReader}: the process reads as itself (the helper, like the C helper after its privilege
 *   drop): the kernel's own access check decides.
 * - {@link credentialReader}: a privileged process (the daemon) reads on behalf of a peer: the kernel
 *   decides readability, the file being opened with the peer's credentials (mode bits, POSIX ACLs and
 *   security modules, as for the C helper run by that peer); a process that may not take on another
 *   user's credentials decides from owner, group, mode bits and POSIX ACLs as the kernel does. Hardened,
 *   only root-controlled files are trusted.
 * - {@link memoryReader}: files held in memory, for tests, fuzzing and previews.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, readlinkSync, statSync } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import { isErrno, native } from '../native.js';
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
 * How long an open waits in all for a file lease to be released (fcntl F_SETLEASE). The C helper blocks
 * until the holder releases it or the kernel breaks it (`/proc/sys/fs/lease-break-time`, 45 s by
 * default); a holder that answers its SIGIO lets go in microseconds, and a hung helper hangs QEMU (it
 * waits with no timeout: docs/qemu-bridge-helper.md, §2.1), so qbh waits this long and then fails
 * closed.
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
 * Open errors that mean "this caller may not read it": skipped like the C helper skips them, which is
 * the point of per-user include files (docs/qemu-bridge-helper.md, §4.6). Every other error (EMFILE,
 * ENFILE, ENOMEM, EIO, a lease not released, …) says nothing about what the file holds: skipping it
 * could skip a deny, so it is fatal (docs/acl.md, deviations).
 */
const NOT_PERMITTED = new Set(['EACCES', 'EPERM']);

/** Blocks the thread for `ms` (the helper is synchronous by design; there is nothing else to run). */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * An open (`open`: openSync, or the addon's openAs), waiting out a file lease: with O_NONBLOCK
 * (kept so that a FIFO never hangs the open) a write lease held by someone else makes open fail with EWOULDBLOCK; the failed
 * open has already told the holder to release it (SIGIO), so trying again shortly succeeds. Still
 * blocked after {@link ACL_LEASE_WAIT_MS}: the error is thrown, and the caller fails closed.
 */
function openWaitingForLease(open: () => number): number {
  let waited = 0;
  for (let delay = 1; ; delay = Math.min(delay * 2, 100)) {
    try {
      return open();
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

/** An open that failed after the walk found the file: never skipped (it is not the caller's permission), always an error. */
function changedOrFailed(err: unknown, shown: string): AclSource {
  const failed = openFailure(err, shown);
  return failed.status === 'error' ? failed : { status: 'error', detail: `cannot open acl file \`${shown}': ${errnoCode(err)}` };
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
 * A reader that opens files as the current process: what the kernel lets this process read is readable.
 * This is the C helper's model (it reads after dropping to the caller's ids:
 * docs/qemu-bridge-helper.md, §4.2).
 * @category Bridge helper ACL
 */
export function callerReader(): AclReader {
  return (path, maxBytes) => {
    let fd: number;
    try {
      fd = openWaitingForLease(() => openSync(byteStringBuffer(path), OPEN_FLAGS));
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

/** POSIX ACL entry tags (linux/posix_acl.h) and the version of their extended attribute (linux/posix_acl_xattr.h). */
const ACL_USER_OBJ = 0x01;
const ACL_USER = 0x02;
const ACL_GROUP_OBJ = 0x04;
const ACL_GROUP = 0x08;
const ACL_MASK = 0x10;
const ACL_OTHER = 0x20;
const POSIX_ACL_XATTR_VERSION = 2;
/** Bytes of the attribute's header (version) and of each entry (tag, perm, id). */
const ACL_HEADER_BYTES = 4;
const ACL_ENTRY_BYTES = 8;

/** One entry of a POSIX access ACL (`system.posix_acl_access`): tag, rwx bits, uid or gid (named entries). */
export interface PosixAclEntry {
  tag: number;
  perm: number;
  id: number;
}

/** Parses `system.posix_acl_access` as the kernel stores it; throws for anything else. */
export function parsePosixAcl(data: Buffer): PosixAclEntry[] {
  if (data.length < ACL_HEADER_BYTES || (data.length - ACL_HEADER_BYTES) % ACL_ENTRY_BYTES !== 0 || data.readUInt32LE(0) !== POSIX_ACL_XATTR_VERSION) {
    throw new Error('malformed POSIX ACL');
  }
  const entries: PosixAclEntry[] = [];
  for (let off = ACL_HEADER_BYTES; off < data.length; off += ACL_ENTRY_BYTES) {
    entries.push({ tag: data.readUInt16LE(off), perm: data.readUInt16LE(off + 2) & 7, id: data.readUInt32LE(off + 4) });
  }
  const one = (tag: number) => entries.filter((e) => e.tag === tag).length === 1;
  if (!one(ACL_USER_OBJ) || !one(ACL_GROUP_OBJ) || !one(ACL_OTHER)) throw new Error('malformed POSIX ACL');
  return entries;
}

/**
 * Whether `cred` may read (bit 4) or search/execute (bit 1) an object, as the kernel decides for a
 * process without capabilities (fs/namei.c acl_permission_check, posix_acl_permission): the owner by
 * the owner bits; anyone else by the POSIX access ACL when there is one and its mask is not empty —
 * named users (masked), then the owning and named groups (masked; a matching group without the bit
 * denies), then others — else by the group or other bits.
 */
export function mayAccess(
  st: { uid: number | bigint; gid: number | bigint; mode: number | bigint },
  cred: AclCredentials,
  bit: 4 | 1,
  acl: readonly PosixAclEntry[] | null = null,
): boolean {
  // uid 0 has CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH: it reads and searches everything.
  if (cred.uid === 0) return true;
  const uid = Number(st.uid);
  const gid = Number(st.gid);
  const mode = Number(st.mode);
  const inGroup = (g: number) => g === cred.gid || cred.groups.includes(g);
  // The kernel consults an ACL only for someone other than the owner, and only when the group bits
  // (which then hold the mask) are not all clear (fs/namei.c, acl_permission_check).
  if (acl === null || uid === cred.uid || (mode & 0o070) === 0) {
    // Owner class first and exclusively, then group class, then others: a file's owner with 0o044 cannot read it.
    const shift = uid === cred.uid ? 6 : inGroup(gid) ? 3 : 0;
    return ((mode >> shift) & bit) !== 0;
  }
  const mask = acl.find((e) => e.tag === ACL_MASK)?.perm ?? 7;
  const granted = (perm: number, masked: boolean) => (perm & (masked ? mask : 7) & bit) !== 0;
  const named = acl.find((e) => e.tag === ACL_USER && e.id === cred.uid);
  if (named !== undefined) return granted(named.perm, true);
  let member = false;
  for (const e of acl) {
    if (!((e.tag === ACL_GROUP_OBJ && inGroup(gid)) || (e.tag === ACL_GROUP && inGroup(e.id)))) continue;
    member = true;
    if ((e.perm & bit) !== 0) return granted(e.perm, true);
  }
  return !member && granted(acl.find((e) => e.tag === ACL_OTHER)!.perm, false);
}

/** The POSIX access ACL of `path` (not following a symlink at its end), or null when it has none. Throws when unreadable or malformed. */
function posixAclOf(path: string): PosixAclEntry[] | null {
  const data = native.lgetxattr(byteStringBuffer(path), 'system.posix_acl_access');
  return data === null ? null : parsePosixAcl(data);
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
   * must be owned by root and not writable by group or others (directories: unless sticky). A POSIX
   * ACL entry granting write shows in the group bits (as the mask), so it is refused too.
   */
  harden?: boolean;
  /** Base for relative paths (default: the process's working directory). */
  cwd?: string;
}

const MAX_SYMLINKS = 40; // the kernel's limit per path walk
/** The longest path open(2) takes, NUL included (linux/limits.h PATH_MAX). */
const PATH_MAX = 4096;
/** Capability bits (linux/capability.h): taking on a peer's fsgid and groups, and its fsuid. */
const CAP_SETGID = 6n;
const CAP_SETUID = 7n;
/** The system calls with which the addon takes on a peer's credentials: EPERM from them means "not allowed to". */
const CREDENTIAL_CALLS = new Set(['setgroups', 'setfsgid', 'setfsuid']);

/**
 * Whether this process lets the kernel decide for a peer: it may take on another user's credentials
 * (CAP_SETUID and CAP_SETGID, and no seccomp filter refusing setgroups/setfsuid, as systemd's
 * `SystemCallFilter=~@privileged` does). Learnt once, by opening `/` as uid 65534; set to false for
 * good if the kernel refuses later.
 */
let kernelDecides: boolean | undefined;

/** The uid and gid of the trial open: the overflow id, which every system has and nobody owns files as. */
const PROBE_ID = 65534;

function mayOpenAs(): boolean {
  if (kernelDecides === undefined) {
    const caps = native.capEffective();
    kernelDecides = ((caps >> CAP_SETUID) & 1n) === 1n && ((caps >> CAP_SETGID) & 1n) === 1n;
    if (kernelDecides) {
      try {
        closeSync(native.openAs(Buffer.from('/'), PROBE_ID, PROBE_ID, [], constants.O_DIRECTORY));
      } catch (err) {
        // Refused as that user (EACCES) is an answer from the kernel: only a refused credential change is not.
        if (isErrno(err, 'EPERM') && CREDENTIAL_CALLS.has(err.syscall)) kernelDecides = false;
      }
    }
  }
  return kernelDecides;
}

/**
 * Which way {@link credentialReader} decides in this process: `kernel` (the file is opened with the
 * peer's credentials) or `posix-acl` (this process may not take on a peer's credentials: owner, group,
 * mode bits and POSIX ACLs are evaluated as the kernel evaluates them; security modules are not).
 */
export function credentialAccessMode(): 'kernel' | 'posix-acl' {
  return mayOpenAs() ? 'kernel' : 'posix-acl';
}

/**
 * A reader for a privileged process acting for another user. It walks the path itself (following
 * symlinks like the kernel) to see that, hardened (the default), every directory and the file are
 * under root's sole control, else the whole check fails. Then the kernel decides: the path is opened
 * with the peer's credentials (fsuid, fsgid, supplementary groups) in a thread made for that one open,
 * exactly the open the C helper makes as that user. A process that may not take on other credentials
 * (`credentialAccessMode`) decides from owner, group, mode bits and POSIX ACLs along the path
 * and opens the file with its own. Either way, the file read is the one that was checked (device and
 * inode compared after opening).
 * @category Bridge helper ACL
 */
export function credentialReader(cred: AclCredentials, options: CredentialReaderOptions = {}): AclReader {
  const harden = options.harden ?? true;
  const base = toByteString(options.cwd ?? process.cwd());
  const dirs = new Map<string, { searchable: boolean; insecure: string | null; broken: string | null }>();

  function lstat(p: string): BigIntStats | null {
    try {
      return lstatSync(byteStringBuffer(p), { bigint: true });
    } catch {
      return null;
    }
  }

  /** Whether `cred` may access `p` (bit 4 read, 1 search), by mode bits and its POSIX ACL; a string when its ACL cannot be read. */
  function access(p: string, st: BigIntStats, bit: 4 | 1): boolean | string {
    try {
      return mayAccess(st, cred, bit, posixAclOf(p));
    } catch (err) {
      return `cannot read the POSIX ACL of \`${displayBytes(p)}': ${err instanceof Error && !('code' in err) ? err.message : errnoCode(err)}`;
    }
  }

  function dirVerdict(dir: string, st: BigIntStats) {
    let v = dirs.get(dir);
    if (v === undefined) {
      const a = access(dir, st, 1);
      v = { searchable: a === true, broken: typeof a === 'string' ? a : null, insecure: harden ? insecurity('directory', `\`${displayBytes(dir)}'`, st) : null };
      dirs.set(dir, v);
    }
    return v;
  }

  /** Opens the file the walk found (`open`), and reads it if it is still that file. */
  function readChecked(open: () => number, checked: BigIntStats, shown: string, maxBytes: number | undefined): AclSource {
    let fd: number;
    try {
      fd = openWaitingForLease(open);
    } catch (err) {
      return changedOrFailed(err, shown);
    }
    try {
      const st = fstatSync(fd, { bigint: true });
      if (st.dev !== checked.dev || st.ino !== checked.ino) {
        return { status: 'error', detail: `acl file \`${shown}' changed while it was being checked` };
      }
      return readOpened(fd, st, shown, maxBytes);
    } finally {
      closeSync(fd);
    }
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
    let broken: string | null = null;
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
      if (v.broken !== null && broken === null) broken = v.broken;
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
    if (broken !== null) return { status: 'error', detail: `${broken}, on the path of \`${shown}'` };
    if (!found) return searchDenied !== null ? { status: 'unreadable', detail: `no search permission on ${displayBytes(searchDenied)}` } : { status: 'missing', detail: 'ENOENT' };
    if (harden) {
      const label = cur === abs ? `\`${shown}'` : `\`${shown}' (\`${displayBytes(cur)}')`;
      const bad = insecurity(curSt.isDirectory() ? 'directory' : 'file', label, curSt);
      if (bad !== null) return { status: 'insecure', detail: bad };
    }
    const readable = searchDenied === null ? access(cur, curSt, 4) : false;
    if (typeof readable === 'string') return { status: 'error', detail: readable };
    const why = searchDenied !== null ? `no search permission on ${displayBytes(searchDenied)}` : `mode ${octal(curSt.mode)} owner ${curSt.uid} group ${curSt.gid}`;

    if (mayOpenAs()) {
      // The kernel decides: the very open the C helper makes as this user, symlinks followed as it
      // follows them, with every check the kernel applies (mode bits, POSIX ACLs, security modules).
      if (abs.length >= PATH_MAX) return { status: 'missing', detail: 'ENAMETOOLONG' };
      const asPeer = () => native.openAs(byteStringBuffer(abs), cred.uid, cred.gid, cred.groups, constants.O_NONBLOCK | constants.O_NOCTTY);
      let fd: number | null = null;
      try {
        fd = openWaitingForLease(asPeer);
      } catch (err) {
        if (isErrno(err, 'EPERM') && CREDENTIAL_CALLS.has(err.syscall)) {
          kernelDecides = false; // may not take on credentials after all: from now on, decided as below
        } else if (NOT_PERMITTED.has(errnoCode(err))) {
          return { status: 'unreadable', detail: readable ? `${errnoCode(err)} from the kernel for uid ${cred.uid}` : why };
        } else {
          return changedOrFailed(err, shown);
        }
      }
      if (fd !== null) {
        const opened = fd;
        return readChecked(() => opened, curSt, shown, maxBytes);
      }
    }
    if (!readable) return { status: 'unreadable', detail: why };
    if (curSt.isDirectory()) return { status: 'directory' };
    return readChecked(() => openSync(byteStringBuffer(cur), OPEN_FLAGS | constants.O_NOFOLLOW), curSt, shown, maxBytes);
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
