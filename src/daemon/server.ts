/**
 * The daemon's listener: accept, identify the peer (kernel), read one request (bounded), queue it
 * with its person's, then — served round-robin across persons — the four steps: parse
 * ({@link parseRequest}), decide ({@link decideTap}), act ({@link makeTap}), reply
 * ({@link sendReply}), and one audit line. The daemon only ever receives bytes, so Node's `net`
 * reads requests; the reply, which carries an fd, goes out with the addon's sendmsg.
 *
 * Fairness: everything a person has in the daemon — connections being read, requests queued or in
 * service, tap replies sent but not yet read — counts against one share
 * ({@link MAX_CONNECTIONS_PER_UID}); connections are accepted as fast as they come, so the kernel's
 * listen queue (one queue for everybody) stays short; the queue of requests is served one person
 * after the other; and answers that give nothing (refusals, denials, failures) come at a bounded
 * rate per person.
 * @module
 */
import { unlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import type net from 'node:net';
import { native } from '../native.js';
import { Rtnl } from '../netlink/rtnl.js';
import { makeTap, sendReply, tapReply, type TapOutcome } from './act.js';
import { AuditLog, auditLine } from './audit.js';
import { checkPeer, decideTap, type TapDecision } from './decide.js';
import { FairQueue, TokenBuckets } from './fair.js';
import { formatGuard, isGuarded } from '../guard/policy.js';
import { UnidentifiedPeerError, peerOf, type Peer } from './peer.js';
import type { HandedTap } from './revoke.js';
import { ERRNO, MAX_REQUEST_BYTES, PROTOCOL_VERSION, ProtocolError, errorReply, parseRequest, type CheckReply, type DaemonRequest } from '../attach/protocol.js';

/**
 * Connections held at once. Each costs one fd and a few KiB; 512 covers a host starting hundreds
 * of NICs together and stays far below the fd limit Node raises itself to. Beyond it a client gets
 * an EAGAIN reply at once (the helper retries), so a flood cannot pile up work.
 */
export const MAX_CONNECTIONS = 512;

/**
 * Connections one person (see {@link Peer.person}) may hold at once — being read, queued, in
 * service, or with a tap reply not yet read: a user's VMs starting together fit, and one user (or
 * one misbehaving program) cannot take more than an eighth of the slots from everyone else, nor
 * have more than this many tap fds in flight (see {@link DaemonServer}'s holdUntilRead).
 */
export const MAX_CONNECTIONS_PER_UID = 64;

/**
 * Requests worked on at once. Making a tap waits on the kernel (RTNL, netlink replies) and another
 * request can use that time; more would only lengthen the stretches in which the event loop does
 * not accept, since each request's synchronous part (reading the ACL) runs in one piece.
 */
export const MAX_IN_SERVICE = 4;

/**
 * Answers that give nothing (a refusal, a denial, a failed tap) one person may have at once; then
 * {@link REFUSALS_PER_SECOND}. A user's VMs failing together all hear why at once; a client looping
 * on requests it is refused waits for its answers instead of keeping the daemon (and the journal)
 * busy.
 */
export const REFUSAL_BURST = 32;

/** Answers that give nothing, per second and person, once {@link REFUSAL_BURST} is spent. */
export const REFUSALS_PER_SECOND = 16;

/** Persons whose refusal rate is tracked one by one; beyond it they share one rate (bounded memory). */
export const MAX_RATED_PERSONS = 4096;

/**
 * After a tap reply, how soon the daemon first looks whether the client has read it, and the
 * longest pause between looks (doubling in between). A helper reads at once and closes, which is
 * noticed without waiting; the looks are for clients that keep their end open.
 */
export const REPLY_POLL_FIRST_MS = 10;
export const REPLY_POLL_MAX_MS = 1000;

/** ioctl: bytes sent on a socket and not yet read by its peer (unix(7); TIOCOUTQ's number). */
const SIOCOUTQ = 0x5411;

/**
 * Time a client has, from connect, to send its whole request. A helper sends it at once (≪ 1 ms);
 * 5 s forgives a loaded machine and bounds how long a silent client holds a slot.
 */
export const REQUEST_DEADLINE_MS = 5000;

/** How long a shutdown waits for requests in flight before closing them (a deadline plus margin). */
export const SHUTDOWN_GRACE_MS = REQUEST_DEADLINE_MS + 1000;

/**
 * The kernel's queue of connections not yet accepted. It is one queue for everybody, in arrival
 * order, and a client that loops on connect() keeps it full however fast the daemon accepts
 * (connecting costs a client far less than identifying a peer costs the daemon): whoever connects
 * then waits behind the whole queue, so it is kept short — about 0.1 s of accepting on a busy
 * machine. Beyond it, connect() waits (the helper connects blocking, with a timeout), and the
 * kernel lets the waiting clients in one at a time in the order they came; a non-blocking connect
 * fails with EAGAIN instead. The work waits in the daemon's per-person queue, not here.
 */
export const LISTEN_BACKLOG = 128;

/**
 * Connections taken from the listen queue per turn of the event loop. libuv's own accept loop
 * (net.Server) runs until the queue is empty: a client that refills it as fast as it is emptied
 * keeps it running, and nothing else — no request read, none served — happens meanwhile. The
 * daemon accepts itself, this many at a time, then lets the rest of the loop run.
 */
export const ACCEPT_BATCH = 64;

/** After accept() fails (EMFILE: out of fds), the pause before the daemon tries again. */
export const ACCEPT_RETRY_MS = 100;

/**
 * The key under which callers the daemon could not identify are audited: one for all of them (a
 * uid no process has), since the ids they show are theirs to choose.
 */
export const UNIDENTIFIED_PERSON = -1;

/** What the server needs to know. */
export interface ServerOptions {
  /** The main ACL file, read afresh for every request. */
  aclPath: string;
  /** The package version, told to `check` requests. */
  version: string;
  /** Where audit and error lines go (stderr in the daemon). One call per line, without newline. */
  log(line: string): void;
  /**
   * Told of every tap made, before its reply is sent and in the same turn of the event loop as
   * its decision (so a revocation sweep never falls between the two): src/daemon/revoke.ts.
   */
  onTap?(tap: HandedTap): void;
  /** Whether the sticky pinner runs (src/guard/pinner.ts): without it a `mac=sticky` guard fails closed. */
  pinning?: boolean;
}

/** Bytes sent on `fd` that its peer has not read yet; 0 once the peer is gone (nothing can be read then). */
function unreadBytes(fd: number): number {
  const out = Buffer.alloc(4);
  try {
    native.ioctl(fd, SIOCOUTQ, out);
  } catch {
    return 0;
  }
  return out.readInt32LE(0);
}

/** An accepted connection and who is at its other end. */
interface Connection {
  sock: net.Socket;
  fd: number;
  peer: Peer;
  /** Its request while queued, so a client that leaves is taken out of the queue. */
  queued: Job | null;
}

/** A request read and waiting to be served: its line, or the refusal reading it ended in. */
type Job = { conn: Connection; line: Buffer } | { conn: Connection; errno: number; error: string; what: 'refused' | 'probe' };

/** The listener with its limits. */
export class DaemonServer {
  private readonly Socket: typeof net.Socket;
  private listenFd = -1;
  /** The socket file this server made (removed when it stops listening), or null. */
  private listenPath: string | null = null;
  private stopWatch: (() => void) | null = null;
  private retry: NodeJS.Timeout | null = null;
  private readonly open = new Set<net.Socket>();
  /** Connections each person holds (see {@link MAX_CONNECTIONS_PER_UID}); a person with none has no entry. */
  private readonly perUid = new Map<number, number>();
  /** Tap replies sent and not yet read: done, but still counted (see holdUntilRead). */
  private readonly delivering = new Set<net.Socket>();
  private readonly queue = new FairQueue<Job>();
  private readonly refusals = new TokenBuckets(REFUSAL_BURST, REFUSALS_PER_SECOND, MAX_RATED_PERSONS);
  private readonly audit: AuditLog;
  private readonly options: ServerOptions;
  private inService = 0;
  private pumping = false;
  private wake: NodeJS.Timeout | null = null;
  private drained: (() => void) | null = null;

  constructor(options: ServerOptions) {
    this.options = options;
    this.audit = new AuditLog(options.log);
    // node:net (and the stream machinery under it) only when a server is made: `qbh` bundles this
    // module for `qbh daemon`, and every other qbh command would load it at start (docs/performance.md).
    this.Socket = (createRequire(import.meta.url)('node:net') as typeof net).Socket;
  }

  /** Listens on a path (already prepared by the caller) or on an inherited listening fd. */
  async listen(target: { path: string } | { fd: number }): Promise<void> {
    this.listenFd = 'fd' in target ? target.fd : native.unixListen(target.path, LISTEN_BACKLOG);
    if ('path' in target) this.listenPath = target.path;
    this.watchListener();
  }

  private watchListener(): void {
    this.retry = null;
    if (this.listenFd >= 0) this.stopWatch = native.watch(this.listenFd, () => this.acceptSome());
  }

  /** Accepts up to {@link ACCEPT_BATCH} connections; the watch calls again while more are pending. */
  private acceptSome(): void {
    for (let i = 0; i < ACCEPT_BATCH && this.listenFd >= 0; i++) {
      let fd: number | null;
      try {
        fd = native.unixAccept(this.listenFd);
      } catch (err) {
        this.options.log(`qbhd: listener error: ${err instanceof Error ? err.message : String(err)}`);
        this.stopWatch?.();
        this.stopWatch = null;
        this.retry = setTimeout(() => this.watchListener(), ACCEPT_RETRY_MS);
        return;
      }
      if (fd === null) return;
      this.accept(fd);
    }
  }

  /** Connections open now. */
  get connections(): number {
    return this.open.size;
  }

  /**
   * Stops accepting, lets requests in flight finish (at most {@link SHUTDOWN_GRACE_MS}), then closes
   * the rest. Connections that only wait for their client to read a tap reply are closed at once.
   */
  async close(): Promise<void> {
    this.stopWatch?.();
    if (this.retry !== null) clearTimeout(this.retry);
    // The file first, then the fd: the other way round, a new daemon's socket made in between
    // could be the one removed. A client then gets ENOENT at once ("no daemon").
    try {
      if (this.listenPath !== null) unlinkSync(this.listenPath);
    } catch {
      // already gone
    }
    this.listenPath = null;
    if (this.listenFd >= 0) native.close(this.listenFd);
    this.listenFd = -1;
    for (const sock of this.delivering) sock.destroy();
    if (this.open.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => (this.drained = resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, SHUTDOWN_GRACE_MS))),
      ]);
      clearTimeout(timer);
      for (const sock of this.open) sock.destroy();
    }
    if (this.wake !== null) clearTimeout(this.wake);
    this.audit.flush();
  }

  /** Writes a line for `peer`'s person, within their audit rate unless `always`. */
  private log(peer: Peer, what: string, fields: Record<string, string>, always = false): void {
    this.audit.write(peer.person, () => auditLine(peer, what, fields), always);
  }

  private accept(fd: number): void {
    let peer: Peer;
    try {
      peer = peerOf(fd);
    } catch (err) {
      // Who is asking cannot be known: refused, in words (fail closed), within their audit rate.
      if (err instanceof UnidentifiedPeerError) {
        sendReply(fd, errorReply(ERRNO.EACCES, `qbhd: ${err.message}\n`));
        // Under one key for all such callers: their ids are the ones they chose, so keyed by those, a
        // user with subordinate ids would get one audit budget per id.
        this.log({ ...err.peer, person: UNIDENTIFIED_PERSON }, 'refused', { error: err.message });
      }
      native.close(fd); // else gone already: nobody to answer
      return;
    }
    const held = this.perUid.get(peer.person) ?? 0;
    if (this.open.size >= MAX_CONNECTIONS || held >= MAX_CONNECTIONS_PER_UID) {
      const why = held >= MAX_CONNECTIONS_PER_UID ? `${held} requests of uid ${peer.person} in progress` : `${this.open.size} connections open`;
      sendReply(fd, errorReply(ERRNO.EAGAIN, `qbhd: busy (${why}); try again`));
      native.close(fd);
      this.log(peer, 'busy', {});
      return;
    }
    // allowHalfOpen: a client may shut its write side after the request and still read the reply.
    const sock = new this.Socket({ fd, readable: true, writable: true, allowHalfOpen: true });
    const conn: Connection = { sock, fd, peer, queued: null };
    this.open.add(sock);
    this.perUid.set(peer.person, held + 1);
    sock.once('close', () => {
      this.open.delete(sock);
      const n = (this.perUid.get(peer.person) ?? 1) - 1;
      if (n === 0) this.perUid.delete(peer.person);
      else this.perUid.set(peer.person, n);
      if (conn.queued !== null) this.queue.remove(peer.person, conn.queued);
      if (this.open.size === 0) this.drained?.();
    });
    this.readRequest(conn);
  }

  /** Collects bytes up to the first newline, within the size cap and the deadline, and queues the request (or the refusal). */
  private readRequest(conn: Connection): void {
    const { sock } = conn;
    const chunks: Buffer[] = [];
    let size = 0;
    const refuse = (errno: number, error: string, what: 'refused' | 'probe' = 'refused') => {
      finish();
      this.enqueue({ conn, errno, error, what });
    };
    const timer = setTimeout(() => refuse(ERRNO.ETIMEDOUT, `no complete request within ${REQUEST_DEADLINE_MS} ms`), REQUEST_DEADLINE_MS);
    const onData = (chunk: Buffer) => {
      const nl = chunk.indexOf(0x0a);
      if (size + (nl < 0 ? chunk.length : nl + 1) > MAX_REQUEST_BYTES) return refuse(ERRNO.EMSGSIZE, `request larger than ${MAX_REQUEST_BYTES} bytes`);
      if (nl < 0) {
        chunks.push(chunk);
        size += chunk.length;
        return;
      }
      if (nl !== chunk.length - 1) return refuse(ERRNO.EPROTO, 'bytes after the request: one request per connection');
      chunks.push(chunk.subarray(0, nl));
      finish();
      this.enqueue({ conn, line: Buffer.concat(chunks) });
    };
    // Not a byte before the end: a liveness probe (a second `qbh daemon` seeing whether this one
    // listens), answered as any truncated request but not audited as a refused one.
    const onEnd = () => refuse(ERRNO.EPROTO, 'truncated request (connection ended before a newline)', size === 0 ? 'probe' : 'refused');
    const finish = () => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('end', onEnd);
      sock.pause();
    };
    sock.on('data', onData);
    sock.on('end', onEnd);
    sock.on('error', () => {
      finish();
      sock.destroy();
    });
  }

  private enqueue(job: Job): void {
    job.conn.queued = job;
    this.queue.push(job.conn.peer.person, job);
    this.pump();
  }

  /**
   * Starts queued requests on the next turn of the event loop — after the connections waiting in the
   * kernel's listen queue have been accepted — never all in one go.
   */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    setImmediate(() => {
      this.pumping = false;
      this.startQueued();
    });
  }

  /** Up to {@link MAX_IN_SERVICE} requests, one person after the other, skipping persons over their refusal rate. */
  private startQueued(): void {
    while (this.inService < MAX_IN_SERVICE) {
      const next = this.queue.take((person) => this.refusals.tokens(person) >= 1);
      if (next === null) break;
      next.item.conn.queued = null;
      this.inService++;
      void this.serve(next.item).finally(() => {
        this.inService--;
        this.pump();
      });
    }
    if (this.inService < MAX_IN_SERVICE && this.queue.size > 0 && this.wake === null) {
      // Whoever waits is over their refusal rate: look again when the first of them has a token.
      const ms = Math.min(...Array.from(this.queue.persons(), (p) => this.refusals.msUntilToken(p)));
      this.wake = setTimeout(() => {
        this.wake = null;
        this.startQueued();
      }, ms);
    }
  }

  private async serve(job: Job): Promise<void> {
    const { conn } = job;
    if (conn.sock.destroyed) return;
    if (!('line' in job)) return this.refuse(conn, job.errno, job.error, job.what);
    try {
      await this.handle(conn, job.line);
    } catch (err) {
      // A bug, not a client's doing: say so in the log, answer, keep serving.
      this.options.log(`qbhd: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      if (!conn.sock.destroyed) sendReply(conn.fd, errorReply(ERRNO.EIO, 'qbhd: internal error'));
      conn.sock.destroy();
    }
  }

  /** An answer that gives nothing: sent, the connection closed, one token of the person's refusal rate spent. */
  private answerNothing(conn: Connection, errno: number, message: string, what: string, fields: Record<string, string>): void {
    if (!conn.sock.destroyed) sendReply(conn.fd, errorReply(errno, message));
    conn.sock.destroy();
    this.refusals.spend(conn.peer.person);
    this.log(conn.peer, what, fields);
  }

  private refuse(conn: Connection, errno: number, error: string, what: 'refused' | 'probe' = 'refused'): void {
    this.answerNothing(conn, errno, `qbhd: ${error}`, what, what === 'refused' ? { error } : {});
  }

  /** Parse → decide → act → reply, and the audit line. */
  private async handle(conn: Connection, line: Buffer): Promise<void> {
    const { sock, fd, peer } = conn;
    let req: DaemonRequest;
    try {
      req = parseRequest(line);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      return this.refuse(conn, err.errno, err.message);
    }
    if (req.op === 'check') {
      const a = checkPeer(this.options.aclPath, peer, req.bridge);
      const reply: CheckReply = { v: PROTOCOL_VERSION, ok: true, op: 'check', daemon: this.options.version, uid: peer.uid, gid: peer.gid, groups: peer.groups, ...a };
      sendReply(fd, reply);
      sock.destroy();
      this.log(peer, 'check', { bridge: req.bridge ?? '-', ...(a.bridge ? { outcome: a.bridge.allowed ? 'allowed' : 'denied' } : {}) });
      return;
    }
    // One rtnetlink handle per request, for the decision's bridge lookup and the tap: closed here.
    const rtnl = Rtnl.openSync();
    let decision: TapDecision;
    let tap: TapOutcome | null = null;
    try {
      decision = decideTap(req, this.options.aclPath, peer, rtnl);
      if (decision.permitted) tap = makeTap(req, decision.resolved, rtnl, decision.guard, this.options.pinning === true);
    } finally {
      rtnl.close();
    }
    const fields: Record<string, string> = { bridge: req.bridge, ...(req.ifname === null ? {} : { ifname: req.ifname }) };
    // The guard the tap was (or was to be) made with, in its canonical words.
    const guarded: Record<string, string> = isGuarded(decision.guard) ? { guard: formatGuard(decision.guard) } : {};
    if (tap === null) return this.answerNothing(conn, ERRNO.EACCES, decision.message, 'tap', { ...fields, tap: '-', outcome: 'denied', rule: decision.rule });
    if (!tap.ok) return this.answerNothing(conn, tap.errno, decision.message + tap.message, 'tap', { ...fields, tap: '-', outcome: 'failed', rule: decision.rule, ...guarded, error: tap.message.trimEnd() });
    try {
      this.options.onTap?.({ ifindex: tap.ifindex, name: tap.name, request: req, peer });
    } catch (err) {
      native.close(tap.fd); // not handed out unless remembered (revocable): a bug, answered as one
      throw err;
    }
    // The socket may have been closed while the tap was made: its fd number could now be another
    // connection's, so never send on it then. Checked and sent in the same tick.
    let sendError: string | null = 'client went away';
    if (sock.destroyed) native.close(tap.fd);
    else sendError = sendReply(fd, tapReply(tap.name, decision.message), tap.fd);
    if (sendError === null) this.holdUntilRead(conn);
    else sock.destroy();
    const outcome = sendError === null ? 'allowed' : 'abandoned';
    this.log(peer, 'tap', { ...fields, tap: tap.name, outcome, rule: decision.rule, ...guarded, ...(sendError === null ? {} : { error: sendError }) }, sendError === null);
  }

  /**
   * Keeps a connection whose tap reply is sent, and so its person's share, until the client has read
   * the reply (SIOCOUTQ 0), or is gone (its unread data is then freed: 0 as well). An fd in flight
   * counts against the sender's user — root's, for every client at once — and the kernel refuses
   * more once that count passes the daemon's RLIMIT_NOFILE (ETOOMANYREFS), and nothing can take a sent fd
   * back: counted so, one person holds at most {@link MAX_CONNECTIONS_PER_UID} of them unread.
   */
  private holdUntilRead(conn: Connection): void {
    const { sock, fd } = conn;
    this.delivering.add(sock);
    let pause = REPLY_POLL_FIRST_MS;
    let timer: NodeJS.Timeout | undefined;
    const look = () => {
      clearTimeout(timer);
      if (sock.destroyed) return;
      if (unreadBytes(fd) === 0) return void sock.destroy();
      timer = setTimeout(look, pause);
      pause = Math.min(2 * pause, REPLY_POLL_MAX_MS);
    };
    sock.once('close', () => {
      clearTimeout(timer);
      this.delivering.delete(sock);
    });
    // A helper reads, then closes: the end of its stream is the moment to look. Anything it sends
    // meanwhile is not a request (one per connection): reading stops there, and the looks go on.
    sock.on('data', () => sock.pause());
    sock.on('end', look);
    sock.resume();
    look();
  }
}
