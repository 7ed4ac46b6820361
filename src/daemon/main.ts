/**
 * `qbh daemon` / `qbhd`: the privileged service an unprivileged helper asks for its tap. Runs in
 * the foreground, logs on stderr, takes its listening socket from systemd (`LISTEN_FDS`) or makes
 * it, and on SIGTERM/SIGINT stops accepting, lets requests in flight finish, and exits 0.
 * @module
 */
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { credentialAccessMode } from '../acl/index.js';
import { native } from '../native.js';
import { DaemonServer } from './server.js';
import { PROTOCOL_VERSION } from './protocol.js';

/** Bit 12 of the capability sets (linux/capability.h). */
const CAP_NET_ADMIN = 12n;
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

/** Makes the socket's directory (0755) if missing and removes a stale socket; refuses to replace anything else. */
function prepareSocketPath(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new Error(`${path} exists and is not a socket`);
  let fd = -1;
  try {
    fd = native.unixConnect(path, 1000);
  } catch {
    unlinkSync(path); // nobody listening: left over from a daemon that died
    return;
  } finally {
    if (fd >= 0) native.close(fd);
  }
  throw new Error(`another daemon is already listening on ${path}`);
}

/** Whether this process may create taps (CAP_NET_ADMIN in its effective set). */
function hasNetAdmin(): boolean {
  return ((native.capEffective() >> CAP_NET_ADMIN) & 1n) === 1n;
}

/** Runs the daemon until the signal; returns the exit status (0 after a clean stop, 1 if it could not start). */
export async function runDaemon(config: DaemonConfig, rt: DaemonRuntime): Promise<number> {
  if (!hasNetAdmin()) {
    rt.log('qbh daemon: this process lacks CAP_NET_ADMIN; run it as root (or with AmbientCapabilities=CAP_NET_ADMIN and read access to the ACL files)');
    return 1;
  }
  const server = new DaemonServer({ aclPath: config.acl, version: rt.version, log: rt.log });
  let made: string | null = null;
  try {
    const fd = activationFd(rt.env);
    if (fd !== null) {
      await server.listen({ fd });
      rt.log(`qbhd ${rt.version}: listening on the socket systemd passed (fd ${fd}), acl ${config.acl}, protocol ${PROTOCOL_VERSION}`);
    } else {
      prepareSocketPath(config.socket);
      // Created owner-only, then opened up: never, even briefly, wider than asked.
      const umask = process.umask(0o177);
      try {
        await server.listen({ path: config.socket });
      } finally {
        process.umask(umask);
      }
      made = config.socket;
      if (config.socketGroup !== null) chownSync(config.socket, process.getuid?.() ?? 0, config.socketGroup);
      chmodSync(config.socket, config.socketMode);
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
