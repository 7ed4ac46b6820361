/**
 * `qbh daemon` / `qbhd`: the privileged service an unprivileged helper asks for its tap. Runs in
 * the foreground, logs on stderr, takes its listening socket from systemd (`LISTEN_FDS`) or makes
 * it, and on SIGTERM/SIGINT stops accepting, lets requests in flight finish, and exits 0. On
 * SIGHUP (`systemctl reload`) it decides every tap it has handed out again and deletes those the
 * ACL no longer allows (src/daemon/revoke.ts).
 * @module
 */
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, realpathSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { credentialAccessMode } from '../acl/index.js';
import { hasNetAdmin, isErrno, native } from '../native.js';
import { DaemonServer } from './server.js';
import { PROTOCOL_VERSION } from '../attach/protocol.js';
import { TapRegistry } from './revoke.js';
import { auditValue } from './audit.js';
import { StickyPinner, type PinEvent } from '../guard/pinner.js';

/** The first fd systemd passes (sd_listen_fds(3): SD_LISTEN_FDS_START). */
const SD_LISTEN_FDS_START = 3;
const SOL_SOCKET = 1;
const SO_TYPE = 3;
const SO_ACCEPTCONN = 30;
const SO_DOMAIN = 39;
const AF_UNIX = 1;
const SOCK_STREAM = 1;

/** How the daemon is set up. */
export interface DaemonConfig {
  /** The socket path to create (ignored under socket activation). */
  socket: string;
  /** The main ACL file. */
  acl: string;
  /** The socket's mode (default 0666: anyone may ask; the ACL decides). */
  socketMode: number;
  /** The socket's group, or null to keep root's. */
  socketGroup: number | null;
}

/** What the daemon is given by its caller. */
export interface DaemonRuntime {
  /** Aborted by SIGTERM/SIGINT. */
  signal: AbortSignal;
  /** One line (no newline) to stderr. */
  log(line: string): void;
  /** The environment, for LISTEN_FDS/LISTEN_PID (removed once read, as sd_listen_fds does). */
  env: NodeJS.ProcessEnv;
  version: string;
}

/** The listening socket systemd passed, or null when not socket-activated. Throws for a socket it cannot use. */
export function activationFd(env: NodeJS.ProcessEnv): number | null {
  const pid = env.LISTEN_PID;
  const fds = env.LISTEN_FDS;
  if (pid === undefined || fds === undefined || Number(pid) !== process.pid) return null;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
  if (!/^[1-9][0-9]*$/.test(fds)) throw new Error(`LISTEN_FDS=${fds}: expected a positive count`);
  if (fds !== '1') throw new Error(`LISTEN_FDS=${fds}: qbhd takes exactly one socket`);
  const fd = SD_LISTEN_FDS_START;
  const ok =
    native.getsockoptInt(fd, SOL_SOCKET, SO_DOMAIN) === AF_UNIX &&
    native.getsockoptInt(fd, SOL_SOCKET, SO_TYPE) === SOCK_STREAM &&
    native.getsockoptInt(fd, SOL_SOCKET, SO_ACCEPTCONN) === 1;
  if (!ok) throw new Error('the socket systemd passed is not a listening unix stream socket (ListenStream=/path in the .socket unit)');
  return fd;
}

/**
 * Why the directory `dir` (already resolved, no symlinks) or one above it would let someone other
 * than root or this process's user change what is in it, or null. Such a user could replace the
 * socket with a symlink between bind() and the chmod/chown that opens it up, and turn them on any
 * file. A sticky directory (/tmp) is fine: nobody can rename or remove another user's entry there.
 */
function unsafeSocketDir(dir: string): string | null {
  const me = process.geteuid?.() ?? 0;
  for (let d = dir; ; d = dirname(d)) {
    const st = lstatSync(d);
    const mode = st.mode & 0o7777;
    if (st.uid !== 0 && st.uid !== me) return `directory ${d} is owned by uid ${st.uid}`;
    if ((mode & 0o1000) === 0 && (mode & 0o022) !== 0) return `directory ${d} is writable by ${mode & 0o002 ? 'others' : 'group'} (mode 0${mode.toString(8)})`;
    if (d === '/') return null;
  }
}

/**
 * Makes the socket's directory (0755) if missing, checks that nobody but root can change it or a
 * directory above it, and removes a stale socket; refuses to replace anything else. Returns the path
 * to bind, its directory resolved (every later step then works on a path nobody else can alter).
 */
function prepareSocketPath(path: string): string {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  const real = join(realpathSync(dirname(path)), basename(path));
  const unsafe = unsafeSocketDir(dirname(real));
  if (unsafe !== null) throw new Error(`will not make the socket ${path}: ${unsafe}, so another user could swap the socket for a symlink before its mode is set; choose a directory only root can change`);
  let st;
  try {
    st = lstatSync(real);
  } catch {
    return real;
  }
  if (!st.isSocket()) throw new Error(`${path} exists and is not a socket`);
  let fd = -1;
  try {
    fd = native.unixConnect(real, 1000);
  } catch {
    unlinkSync(real); // nobody listening: left over from a daemon that died
    return real;
  } finally {
    if (fd >= 0) native.close(fd);
  }
  throw new Error(`another daemon is already listening on ${path}`);
}


/**
 * Why this kernel cannot tell the daemon who asks, or null. The daemon identifies every caller by
 * its pidfd (SO_PEERPIDFD, Linux 6.5); without it every request would be refused, so it does not
 * start, and says why, instead of refusing everyone later.
 */
function identityUnsupported(): string | null {
  const [a, b] = native.socketpair(SOCK_STREAM);
  try {
    native.peerUserns(a);
    return null;
  } catch (err) {
    return isErrno(err, 'ENOPROTOOPT') ? 'this kernel cannot give the pidfd of a caller (SO_PEERPIDFD, Linux 6.5 or later): qbhd could not tell who asks, so it does not start' : null;
  } finally {
    native.close(a);
    native.close(b);
  }
}

/** Runs the daemon until the signal; returns the exit status (0 after a clean stop, 1 if it could not start). */
export async function runDaemon(config: DaemonConfig, rt: DaemonRuntime): Promise<number> {
  if (!hasNetAdmin()) {
    rt.log('qbh daemon: this process lacks CAP_NET_ADMIN; run it as root (or with AmbientCapabilities=CAP_NET_ADMIN and read access to the ACL files)');
    return 1;
  }
  const unsupported = identityUnsupported();
  if (unsupported !== null) {
    rt.log(`qbh daemon: ${unsupported}`);
    return 1;
  }
  // Before the first request: a mac=sticky port it makes is pinned from its first frame on, and
  // what another qbhd left pending (or what arrived while none ran) is pinned now.
  let pinner: StickyPinner;
  try {
    pinner = StickyPinner.start({ report: (e) => rt.log(pinLine(e)) });
  } catch (err) {
    rt.log(`qbh daemon: cannot start the sticky pinner: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
  const taps = new TapRegistry({ aclPath: config.acl, log: rt.log });
  const server = new DaemonServer({ aclPath: config.acl, version: rt.version, log: rt.log, onTap: (tap) => taps.remember(tap), pinning: true });
  // Node's default for SIGHUP is to exit: from here on it is a reload, never a stop.
  const onReload = () => reload(taps, rt.log);
  process.on('SIGHUP', onReload);
  try {
    return await serve(server, config, rt);
  } finally {
    process.off('SIGHUP', onReload);
    pinner.stop();
  }
}

/**
 * The audit line of a pinner event. Port names can be chosen by users (`allow-ifname`): escaped as
 * every audit value is. A refusal is written at most once per port every 10 s (the pinner's rate).
 */
export function pinLine(e: PinEvent): string {
  const head = `${new Date().toISOString()} qbhd:`;
  if (e.kind === 'error') return `${head} pinner: ${auditValue(e.message)}`;
  const where = `bridge=${auditValue(e.bridge)} port=${auditValue(e.port)}`;
  if (e.kind === 'pinned') return `${head} pinned ${where} mac=${e.mac} macs=${e.held}/${e.limit}`;
  // `locked=N`: how many MACs the port holds locked (dropped) now, when more than the one named.
  return `${head} pin-refused ${where} mac=${e.macs[0]} macs=${e.limit}/${e.limit} outcome=dropped${e.macs.length > 1 ? ` locked=${e.macs.length}` : ''}`;
}

/** SIGHUP: one sweep of the taps handed out, and one line saying what it did. */
function reload(taps: TapRegistry, log: (line: string) => void): void {
  try {
    const r = taps.sweep();
    log(`qbhd: reload: ${r.revoked} tap${r.revoked === 1 ? '' : 's'} revoked, ${r.kept} kept, ${r.gone} gone already${r.failed ? `, ${r.failed} failed` : ''}`);
  } catch (err) {
    log(`qbhd: reload: nothing revoked: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Listens, serves until the signal, stops; the exit status. */
async function serve(server: DaemonServer, config: DaemonConfig, rt: DaemonRuntime): Promise<number> {
  let made: string | null = null;
  try {
    const fd = activationFd(rt.env);
    if (fd !== null) {
      await server.listen({ fd });
      rt.log(`qbhd ${rt.version}: listening on the socket systemd passed (fd ${fd}), acl ${config.acl}, protocol ${PROTOCOL_VERSION}`);
    } else {
      const socket = prepareSocketPath(config.socket);
      // Created owner-only, then opened up: never, even briefly, wider than asked.
      const umask = process.umask(0o177);
      try {
        await server.listen({ path: socket });
      } finally {
        process.umask(umask);
      }
      made = socket;
      if (config.socketGroup !== null) chownSync(socket, process.getuid?.() ?? 0, config.socketGroup);
      chmodSync(socket, config.socketMode);
      rt.log(`qbhd ${rt.version}: listening on ${config.socket} (mode 0${config.socketMode.toString(8)}), acl ${config.acl}, protocol ${PROTOCOL_VERSION}`);
    }
  } catch (err) {
    rt.log(`qbh daemon: ${err instanceof Error ? err.message : String(err)}`);
    await server.close();
    if (made !== null) unlinkQuietly(made);
    return 1;
  }
  rt.log(
    credentialAccessMode() === 'kernel'
      ? "qbhd: ACL files are opened with each peer's credentials: the kernel decides what a peer may read"
      : "qbhd: no CAP_SETUID/CAP_SETGID (or setfsuid refused): a peer's access to ACL files is decided from owner, group, mode bits and POSIX ACLs, as the kernel would without a security module",
  );
  // Read afresh per request, so not needed now; but a missing file denies everyone, which an
  // operator wants to hear at start rather than from users.
  if (!existsSync(config.acl)) rt.log(`qbhd: warning: the ACL ${config.acl} does not exist: every request is denied until it does`);
  if (!rt.signal.aborted) await new Promise((resolve) => rt.signal.addEventListener('abort', resolve, { once: true }));
  rt.log(`qbhd: stopping (${server.connections} request${server.connections === 1 ? '' : 's'} in flight)`);
  await server.close();
  // Gone with the daemon: a helper then says "no daemon" instead of "connection refused".
  if (made !== null) unlinkQuietly(made);
  rt.log('qbhd: stopped');
  return 0;
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}
