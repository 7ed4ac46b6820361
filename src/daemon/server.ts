/**
 * The daemon's listener: accept, identify the peer (kernel), read one request (bounded), then the
 * four steps — parse ({@link parseRequest}), decide ({@link decideTap}), act ({@link makeTap}),
 * reply ({@link sendReply}) — and one audit line. The daemon only ever receives bytes, so Node's
 * `net` reads requests; the reply, which carries an fd, goes out with the addon's sendmsg.
 * @module
 */
import { createRequire } from 'node:module';
import type net from 'node:net';
import { native } from '../native.js';
import { Rtnl } from '../netlink/rtnl.js';
import { makeTap, sendReply, tapReply, type TapOutcome } from './act.js';
import { checkPeer, decideTap, type TapDecision } from './decide.js';
import { UnidentifiedPeerError, peerOf, type Peer } from './peer.js';
import type { HandedTap } from './revoke.js';
import { ERRNO, MAX_REQUEST_BYTES, PROTOCOL_VERSION, ProtocolError, errorReply, parseRequest, type CheckReply, type DaemonRequest } from './protocol.js';

/**
 * Connections held at once. Each costs one fd and a few KiB; 512 covers a host starting hundreds
 * of NICs together and stays far below the fd limit Node raises itself to. Beyond it a client gets
 * an EAGAIN reply at once (the helper retries), so a flood cannot pile up work.
 */
export const MAX_CONNECTIONS = 512;

/**
 * Connections one person (uid; a peer in a user namespace counts as the namespace's owner, so
 * subordinate uids do not multiply it) may hold at once: a user's VMs starting together fit, and one
 * user (or one misbehaving program) cannot take more than an eighth of the slots from everyone else.
 */
export const MAX_CONNECTIONS_PER_UID = 64;

/**
 * Time a client has, from connect, to send its whole request. A helper sends it at once (≪ 1 ms);
 * 5 s forgives a loaded machine and bounds how long a silent client holds a slot.
 */
export const REQUEST_DEADLINE_MS = 5000;

/** How long a shutdown waits for requests in flight before closing them (a deadline plus margin). */
export const SHUTDOWN_GRACE_MS = REQUEST_DEADLINE_MS + 1000;

/**
 * The kernel's queue of connections not yet accepted (capped by net.core.somaxconn, 4096 by default).
 * A burst beyond it makes a non-blocking connect fail with EAGAIN; the helper connects blocking with
 * a timeout, so it waits instead. Queued connections cost the daemon nothing until accepted.
 */
export const LISTEN_BACKLOG = 4096;

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
}

/** One line per decision: time, peer (the person, the namespace's ids, command names), request, outcome, rule. */
export function auditLine(peer: Peer, what: string, fields: Record<string, string>): string {
  const extra = Object.entries(fields).map(([k, v]) => `${k}=${/^[\w.:/%@+-]+$/.test(v) ? v : JSON.stringify(v)}`);
  return [
    new Date().toISOString(),
    `qbhd: ${what}`,
    `uid=${peer.uid}`,
    `gid=${peer.gid}`,
    `groups=${peer.groups.join(',') || '-'}`,
    // A peer in a user namespace below ours: the kernel's ids there, and who owns the namespaces.
    ...(peer.ns === null ? [] : [`ns_uid=${peer.ns.uid}`, `ns_gid=${peer.ns.gid}`, peer.ns.owners === null ? `userns=idmap:${peer.ns.byMaps ?? '-'}` : `userns=owner:${peer.ns.owners.join(',')}`]),
    `pid=${peer.pid}`,
    `comm=${JSON.stringify(peer.comm)}`,
    `parent=${JSON.stringify(peer.parentComm)}`,
    ...extra,
  ].join(' ');
}

/** The raw fd of an accepted connection (a libuv pipe handle; Linux always has it). */
function fdOf(sock: net.Socket): number {
  const fd = (sock as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : -1;
}

/** The listener with its limits. */
export class DaemonServer {
  private readonly server: net.Server;
  private readonly open = new Set<net.Socket>();
  private readonly perUid = new Map<number, number>();
  private readonly options: ServerOptions;
  private drained: (() => void) | null = null;

  constructor(options: ServerOptions) {
    this.options = options;
    // allowHalfOpen: a client may shut its write side after the request and still read the reply.
    // node:net (and the stream machinery under it) only when a server is made: `qbh` bundles this
    // module for `qbh daemon`, and every other qbh command would load it at start (≈2 ms, measured).
    const { createServer } = createRequire(import.meta.url)('node:net') as typeof net;
    this.server = createServer({ allowHalfOpen: true }, (sock) => this.accept(sock));
    this.server.on('error', (e) => options.log(`qbhd: listener error: ${e.message}`));
  }

  /** Listens on a path (already prepared by the caller) or on an inherited listening fd. */
  listen(target: { path: string } | { fd: number }): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      const done = () => {
        this.server.off('error', reject);
        resolve();
      };
      if ('fd' in target) this.server.listen({ fd: target.fd, backlog: LISTEN_BACKLOG }, done);
      else this.server.listen({ path: target.path, backlog: LISTEN_BACKLOG }, done);
    });
  }

  /** Connections open now. */
  get connections(): number {
    return this.open.size;
  }

  /** Stops accepting, lets requests in flight finish (at most {@link SHUTDOWN_GRACE_MS}), then closes the rest. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (this.open.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => (this.drained = resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, SHUTDOWN_GRACE_MS))),
      ]);
      clearTimeout(timer);
      for (const sock of this.open) sock.destroy();
    }
    await closed;
  }

  private accept(sock: net.Socket): void {
    const fd = fdOf(sock);
    let peer: Peer;
    try {
      if (fd < 0) throw new Error('no fd');
      peer = peerOf(fd);
    } catch (err) {
      // Who is asking cannot be known: refused, in words (fail closed).
      if (err instanceof UnidentifiedPeerError) {
        sendReply(fd, errorReply(ERRNO.EACCES, `qbhd: ${err.message}\n`));
        this.options.log(auditLine(err.peer, 'refused', { error: err.message }));
      }
      sock.destroy(); // else gone already: nobody to answer
      return;
    }
    // Counted by the person: a user's subordinate uids are that user's connections.
    const held = this.perUid.get(peer.person) ?? 0;
    if (this.open.size >= MAX_CONNECTIONS || held >= MAX_CONNECTIONS_PER_UID) {
      const why = held >= MAX_CONNECTIONS_PER_UID ? `${held} requests of uid ${peer.person} in progress` : `${this.open.size} connections open`;
      sendReply(fd, errorReply(ERRNO.EAGAIN, `qbhd: busy (${why}); try again`));
      sock.destroy();
      this.options.log(auditLine(peer, 'busy', {}));
      return;
    }
    this.open.add(sock);
    this.perUid.set(peer.person, held + 1);
    sock.once('close', () => {
      this.open.delete(sock);
      const n = (this.perUid.get(peer.person) ?? 1) - 1;
      if (n === 0) this.perUid.delete(peer.person);
      else this.perUid.set(peer.person, n);
      if (this.open.size === 0) this.drained?.();
    });
    this.readRequest(sock, fd, peer);
  }

  /** Collects bytes up to the first newline, within the size cap and the deadline; anything else is answered with an error. */
  private readRequest(sock: net.Socket, fd: number, peer: Peer): void {
    const chunks: Buffer[] = [];
    let size = 0;
    const refuse = (errno: number, message: string) => {
      finish();
      if (!sock.destroyed) sendReply(fd, errorReply(errno, `qbhd: ${message}`));
      sock.destroy();
      this.options.log(auditLine(peer, 'refused', { error: message }));
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
      void this.handle(sock, fd, peer, Buffer.concat(chunks)).catch((err: unknown) => {
        // A bug, not a client's doing: say so in the log, answer, keep serving.
        this.options.log(`qbhd: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        if (!sock.destroyed) sendReply(fd, errorReply(ERRNO.EIO, 'qbhd: internal error'));
        sock.destroy();
      });
    };
    const onEnd = () => refuse(ERRNO.EPROTO, 'truncated request (connection ended before a newline)');
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

  /** Parse → decide → act → reply, and the audit line. */
  private async handle(sock: net.Socket, fd: number, peer: Peer, line: Buffer): Promise<void> {
    let req: DaemonRequest;
    try {
      req = parseRequest(line);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      sendReply(fd, errorReply(err.errno, `qbhd: ${err.message}`));
      sock.destroy();
      this.options.log(auditLine(peer, 'refused', { error: err.message }));
      return;
    }
    if (req.op === 'check') {
      const a = checkPeer(this.options.aclPath, peer, req.bridge);
      const reply: CheckReply = { v: PROTOCOL_VERSION, ok: true, op: 'check', daemon: this.options.version, uid: peer.uid, gid: peer.gid, groups: peer.groups, ...a };
      sendReply(fd, reply);
      sock.destroy();
      this.options.log(auditLine(peer, 'check', { bridge: req.bridge ?? '-', ...(a.bridge ? { outcome: a.bridge.allowed ? 'allowed' : 'denied' } : {}) }));
      return;
    }
    // One rtnetlink handle per request, for the decision's bridge lookup and the tap: closed here.
    const rtnl = Rtnl.openSync();
    let decision: TapDecision;
    let tap: TapOutcome | null = null;
    try {
      decision = decideTap(req, this.options.aclPath, peer, rtnl);
      if (decision.permitted) tap = await makeTap(req, decision.resolved, rtnl);
    } finally {
      rtnl.close();
    }
    const fields: Record<string, string> = { bridge: req.bridge, ...(req.ifname === null ? {} : { ifname: req.ifname }) };
    if (tap === null) {
      sendReply(fd, errorReply(ERRNO.EACCES, decision.message));
      sock.destroy();
      this.options.log(auditLine(peer, 'tap', { ...fields, tap: '-', outcome: 'denied', rule: decision.rule }));
      return;
    }
    if (!tap.ok) {
      sendReply(fd, errorReply(tap.errno, decision.message + tap.message));
      sock.destroy();
      this.options.log(auditLine(peer, 'tap', { ...fields, tap: '-', outcome: 'failed', rule: decision.rule, error: tap.message.trimEnd() }));
      return;
    }
    this.options.onTap?.({ ifindex: tap.ifindex, name: tap.name, request: req, peer });
    // The socket may have been closed while the tap was made: its fd number could now be another
    // connection's, so never send on it then. Checked and sent in the same tick.
    let sendError: string | null = 'client went away';
    if (sock.destroyed) native.close(tap.fd);
    else sendError = sendReply(fd, tapReply(tap.name, decision.message), tap.fd);
    sock.destroy();
    const outcome = sendError === null ? 'allowed' : 'abandoned';
    this.options.log(auditLine(peer, 'tap', { ...fields, tap: tap.name, outcome, rule: decision.rule, ...(sendError === null ? {} : { error: sendError }) }));
  }
}
