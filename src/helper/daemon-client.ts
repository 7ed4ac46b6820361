/**
 * The helper's daemon path: a process without CAP_NET_ADMIN asks the qbh daemon at the fixed path
 * {@link DAEMON_SOCKET} for its tap, and hands the fd it receives to QEMU exactly as direct mode
 * does. Lean on purpose: no ACL read and no netlink socket here (the daemon does both, for the
 * identity the kernel gives it). The reply is read with the addon's recvmsg, never a Node stream,
 * which would drop the SCM_RIGHTS fd.
 * @module
 */
import { lstatSync, statSync, writeSync } from 'node:fs';
import { native } from '../native.js';
import { DAEMON_SOCKET, ERRNO, MAX_REPLY_BYTES, encodeRequest, parseReply, type DaemonReply, type DaemonRequest } from '../attach/protocol.js';
import type { HelperArgs } from './argv.js';
import { EXIT_FAILURE, handOff, printErr } from './handoff.js';
import { utf8Name } from '../attach/names.js';
import { TapError, helperMessage } from '../tun/errors.js';

/**
 * How long the helper waits for the daemon in all, retries included. QEMU has no timeout of its own
 * and would hang with the helper; a daemon answers in milliseconds, and a busy one asks
 * to retry, so 15 s is only reached when something is wrong.
 */
export const DAEMON_TIMEOUT_MS = 15000;

/** Whether the daemon's socket is there (a socket at {@link DAEMON_SOCKET}). */
export function daemonListening(path: string = DAEMON_SOCKET): boolean {
  try {
    return lstatSync(path).isSocket();
  } catch {
    return false;
  }
}

/**
 * Whether a daemon listens on {@link DAEMON_SOCKET}: its socket is there and a connection is
 * accepted (then closed without a byte: the daemon takes it for a probe). A socket left over by a
 * daemon that died is refused at once.
 */
export function daemonAnswers(path: string = DAEMON_SOCKET, timeoutMs = 1000): boolean {
  if (!daemonListening(path)) return false;
  try {
    native.close(native.unixConnect(path, timeoutMs));
    return true;
  } catch {
    return false;
  }
}

/** The daemon could not be asked, or gave no answer: one line saying so. */
export class DaemonUnreachableError extends Error {
  override name = 'DaemonUnreachableError';
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Why connect() on the daemon's socket failed with EACCES, as far as this user can see: not whether
 * a daemon runs (the permission check comes first), but that connecting needs write permission on the
 * socket and search permission on every directory on its path.
 */
function refusedBy(path: string): string {
  const uid = process.getuid?.() ?? 0;
  let st;
  try {
    st = statSync(path);
  } catch {
    return `the qbh daemon's socket ${path} cannot be reached by uid ${uid} (connect: Permission denied): a directory on its path does not let this user search it`;
  }
  const groups = [process.getgid?.() ?? 0, ...(process.getgroups?.() ?? [])];
  const mode = st.mode & 0o7777;
  const writable = ((st.uid === uid ? mode >> 6 : groups.includes(st.gid) ? mode >> 3 : mode) & 0o2) !== 0;
  const what = `mode 0${mode.toString(8)}, owner uid ${st.uid}, group gid ${st.gid}`;
  if (writable) {
    return `the qbh daemon's socket ${path} (${what}) refuses uid ${uid} (connect: Permission denied) although its mode lets this user write: a directory on its path, a POSIX ACL or a security module refuses`;
  }
  return (
    `the qbh daemon's socket ${path} does not let uid ${uid} connect (connect: Permission denied): it is ${what}, and connecting needs write permission; ` +
    'to let every user ask (the ACL decides), make it 0666: SocketMode=0666 in qbhd.socket, `qbh daemon --socket-mode 0666`, or chmod 0666 after systemd-socket-activate made it (docs/daemon.md)'
  );
}

/** One connection: send the request, read the reply line and the fds that came with it. */
function exchange(path: string, request: Buffer, timeoutMs: number): { reply: DaemonReply; fds: number[] } {
  let sock: number;
  try {
    sock = native.unixConnect(path, timeoutMs);
  } catch (err) {
    if ((err as { code?: string }).code === 'EACCES') throw new DaemonUnreachableError(`qbh: ${refusedBy(path)}`);
    throw new DaemonUnreachableError(`qbh: cannot reach the qbh daemon at ${path} (${reason(err)}); is it running? (systemctl status qbhd.socket)`);
  }
  const fds: number[] = [];
  try {
    // A busy daemon may answer and close before the request is written (EPIPE): its reply is
    // still there to read, so a failed write is reported only if no reply follows.
    let writeError: unknown = null;
    try {
      for (let off = 0; off < request.length; ) off += writeSync(sock, request, off);
    } catch (err) {
      writeError = err;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = deadline - Date.now();
      let got;
      try {
        got = left > 0 ? native.recvFds(sock, MAX_REPLY_BYTES, 4, left) : null;
      } catch (err) {
        // ECONNRESET: the daemon closed (or died) with the request still unread.
        if ((err as { code?: string }).code !== 'ECONNRESET') throw new DaemonUnreachableError(`qbh: no reply from the qbh daemon at ${path} (${reason(err)})`);
        got = { data: Buffer.alloc(0), fds: [], truncated: false };
      }
      if (got === null) throw new DaemonUnreachableError(`qbh: no reply from the qbh daemon at ${path} within ${timeoutMs} ms`);
      fds.push(...got.fds);
      if (got.data.length === 0 && writeError !== null) throw new DaemonUnreachableError(`qbh: the qbh daemon at ${path} did not take the request (${reason(writeError)})`);
      if (got.data.length === 0) throw new DaemonUnreachableError(`qbh: the qbh daemon at ${path} closed the connection without a reply (did it stop?)`);
      chunks.push(got.data);
      size += got.data.length;
      if (got.data.includes(0x0a)) break;
      if (size > MAX_REPLY_BYTES) throw new DaemonUnreachableError(`qbh: the qbh daemon at ${path} sent a reply over ${MAX_REPLY_BYTES} bytes`);
    }
    const all = Buffer.concat(chunks);
    let reply: DaemonReply;
    try {
      reply = parseReply(all.subarray(0, all.indexOf(0x0a)));
    } catch (err) {
      throw new DaemonUnreachableError(`qbh: the qbh daemon at ${path} sent a reply this helper cannot read (${reason(err)})`);
    }
    return { reply, fds: fds.splice(0) };
  } finally {
    for (const fd of fds) native.close(fd);
    native.close(sock);
  }
}

/**
 * Sends `request` to the daemon and returns its reply and the fds that came with it (the caller
 * closes them). A busy daemon (EAGAIN) is asked again, with a growing pause, until
 * {@link DAEMON_TIMEOUT_MS}. Throws {@link DaemonUnreachableError}.
 */
export function askDaemon(request: DaemonRequest, options: { path?: string; timeoutMs?: number } = {}): { reply: DaemonReply; fds: number[] } {
  const path = options.path ?? DAEMON_SOCKET;
  const deadline = Date.now() + (options.timeoutMs ?? DAEMON_TIMEOUT_MS);
  const line = encodeRequest(request);
  for (let attempt = 0; ; attempt++) {
    const left = deadline - Date.now();
    if (left <= 0) throw new DaemonUnreachableError(`qbh: the qbh daemon at ${path} stayed busy for ${options.timeoutMs ?? DAEMON_TIMEOUT_MS} ms`);
    const got = exchange(path, line, Math.max(1, Math.min(left, 600000)));
    if (got.reply.ok || got.reply.errno !== ERRNO.EAGAIN) return got;
    for (const fd of got.fds) native.close(fd);
    sleep(Math.min(left, Math.min(200, 5 << Math.min(attempt, 6)) * (0.5 + Math.random())));
  }
}

/**
 * Steps 3 and 4 through the daemon, then the hand-off. The daemon's messages are the C helper's
 * (`access denied by acl file`, `failed to get mtu of bridge …`) and are printed unchanged.
 * Returns the exit status.
 */
export function tapFromDaemon(opts: HelperArgs, sendError: string | null): number {
  let bridge: string;
  let ifname: string | null;
  try {
    bridge = utf8Name('bridge', opts.bridge);
    ifname = opts.ifname === null ? null : utf8Name('tap', opts.ifname);
  } catch (err) {
    if (!(err instanceof TapError)) throw err;
    printErr(`${helperMessage(err)}\n`);
    return EXIT_FAILURE;
  }
  let got: { reply: DaemonReply; fds: number[] };
  try {
    got = askDaemon({ op: 'tap', bridge, vnetHdr: opts.useVnet, ifname });
  } catch (err) {
    if (!(err instanceof DaemonUnreachableError)) throw err;
    printErr(`${err.message}\n`);
    return EXIT_FAILURE;
  }
  const { reply, fds } = got;
  if (!reply.ok || reply.op !== 'tap' || fds.length !== 1) {
    for (const fd of fds) native.close(fd);
    printErr(reply.ok ? `qbh: the qbh daemon sent ${fds.length} descriptors with its reply, not one\n` : reply.message);
    return EXIT_FAILURE;
  }
  if (reply.message !== undefined) printErr(reply.message);
  return handOff(opts.fd, sendError, fds[0]!);
}
