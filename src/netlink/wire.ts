/**
 * The bottom of rtnetlink, under everything that speaks it (the generic codec, NetlinkSocket, the
 * monitor, the helper's hand-built requests in link-requests.ts): the transport (the addon's
 * socket calls, or a fake kernel in tests), socket set-up, sequence numbers, the nlmsghdr and TLV
 * walks, ack and error decoding with the extended-ack TLVs, the mapping of failed syscalls, and
 * the exchange of one request for its answer. It loads no attribute table: the helper's bundle
 * takes it (scripts/bundle.mjs checks that the generic codec stays out). Integers are read and
 * written with a DataView, or by index on a hot path, never with Buffer's readUInt32LE and kin:
 * those are JavaScript that Node compiles on first use, and the helper uses each once per attach,
 * while a DataView's are built into V8 (docs/performance.md, "Helper attach").
 * @internal
 * @module
 */
// (The module comment above sticks to the first import, and stripInternal drops both from the
// .d.ts: that import must be one the declarations do not need.)
import { native } from '../native.js';
import { EBADF, EINVAL, ENOBUFS, ENODEV, ETIMEDOUT, QbhError } from '../errors.js';
import {
  NETLINK_EXT_ACK,
  NETLINK_GET_STRICT_CHK,
  NETLINK_ROUTE,
  NLA_F_NESTED,
  NLA_HDRLEN,
  NLA_TYPE_MASK,
  NLMSGERR_ATTR_MSG,
  NLMSGERR_ATTR_OFFS,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLM_F_ACK,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLM_F_DUMP,
  NLM_F_DUMP_INTR,
  NLM_F_REQUEST,
  SOL_NETLINK,
  SOL_SOCKET,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
} from './constants.js';
import { DumpInterruptedError, NetlinkDecodeError, NetlinkError, type NetlinkErrorContext } from './errors.js';

export { EBADF, EINVAL, ENOBUFS, ENODEV, ETIMEDOUT };

/** How long a blocking request waits for the kernel before giving up. */
export const SYNC_TIMEOUT_MS = 30_000;
/** Receive buffer, as iproute2 uses: large enough for a dump burst (docs/netlink-pitfalls.md, §1). */
export const RECEIVE_BUFFER = 1024 * 1024;
/** How many times a dump interrupted by concurrent changes is run (docs/netlink-pitfalls.md, §3). */
export const DUMP_RETRIES = 8;

/**
 * The socket calls the wire core makes: the addon's (`native` is one) or a test's fake kernel
 * (test/fake-kernel.ts). Each is the addon's function of the same name.
 */
export interface Transport {
  /** Sends a datagram to the kernel; returns the bytes sent. */
  nlSend(fd: number, msg: Uint8Array): number;
  /** One whole datagram and the port it came from, or null when none arrives within `timeoutMs`. */
  nlRecv(fd: number, timeoutMs: number): { data: Buffer; portId: number } | null;
  /** Calls `onReadable` on the event loop whenever fd is readable, until the returned stop(). */
  watch(fd: number, onReadable: (status: number) => void): () => void;
  /** Closes the socket (ending its watches). */
  close(fd: number): void;
}

/** The addon's socket calls: the transport of every socket but a test's. */
export const addonTransport: Transport = native;

/** A little-endian reader and writer over `b`'s bytes. */
export const le = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** Options of {@link openRouteSocket}. */
export interface RouteSocketOptions {
  /** NETLINK_EXT_ACK: the kernel's error text. Default true. */
  extAck?: boolean;
  /** NETLINK_GET_STRICT_CHK: strict header checks and kernel-side dump filters. Default true. */
  strict?: boolean;
  /** An open fd of a network namespace to make the socket in (default: the calling thread's). */
  netnsFd?: number;
  /** Receive buffer in bytes (default {@link RECEIVE_BUFFER}). */
  receiveBuffer?: number;
}

/**
 * Opens a NETLINK_ROUTE socket with NETLINK_EXT_ACK and NETLINK_GET_STRICT_CHK (each unless turned
 * off) and a receive buffer of {@link RECEIVE_BUFFER}: every qbh netlink socket, NetlinkSocket's and
 * the monitor's included. Close it with `native.close`.
 */
export function openRouteSocket(opts: RouteSocketOptions = {}): { fd: number; portId: number } {
  const sock = opts.netnsFd === undefined ? native.nlOpen(NETLINK_ROUTE) : native.nlOpenIn(NETLINK_ROUTE, opts.netnsFd);
  try {
    if (opts.extAck ?? true) native.setsockoptInt(sock.fd, SOL_NETLINK, NETLINK_EXT_ACK, 1);
    if (opts.strict ?? true) native.setsockoptInt(sock.fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1);
    const size = opts.receiveBuffer ?? RECEIVE_BUFFER;
    try {
      // Past the system's rmem_max: needs CAP_NET_ADMIN, which a monitor may not hold.
      native.setsockoptInt(sock.fd, SOL_SOCKET, SO_RCVBUFFORCE, size);
    } catch {
      native.setsockoptInt(sock.fd, SOL_SOCKET, SO_RCVBUF, size);
    }
  } catch (e) {
    native.close(sock.fd);
    throw e;
  }
  return sock;
}

/** The fd of a new socket configured as {@link openRouteSocket} does by default (the helper's). */
export const openRouteSocketSync = (): number => openRouteSocket().fd;

/**
 * The process's request sequence numbers, one counter for every socket and request: an answer left
 * over from an abandoned request never carries the number of a later one. Starts at the clock's
 * seconds, as iproute2's do; never 0.
 */
let lastSeq = Math.floor(Date.now() / 1000) >>> 0;

/** The next sequence number. */
export function nextSeq(): number {
  lastSeq = (lastSeq + 1) >>> 0 || 1;
  return lastSeq;
}

/** struct nlmsghdr. */
export interface NlHeader {
  type: number;
  flags: number;
  seq: number;
  pid: number;
}

/** One raw message: header and payload (without the header). */
export interface RawMessage extends NlHeader {
  payload: Buffer;
}

/** Builds one message: header + payload, length filled in. */
export function encodeMessage(hdr: NlHeader, payload: Uint8Array): Buffer {
  const b = Buffer.alloc(NLMSG_HDRLEN + payload.length);
  const v = le(b);
  v.setUint32(0, b.length, true);
  v.setUint16(4, hdr.type, true);
  v.setUint16(6, hdr.flags, true);
  v.setUint32(8, hdr.seq >>> 0, true);
  v.setUint32(12, hdr.pid >>> 0, true);
  b.set(payload, NLMSG_HDRLEN);
  return b;
}

/** Splits a datagram into messages. Throws NetlinkDecodeError on a malformed length. */
export function splitMessages(buf: Buffer): RawMessage[] {
  const out: RawMessage[] = [];
  const v = le(buf);
  for (let off = 0; off < buf.length; ) {
    if (buf.length - off < NLMSG_HDRLEN) throw new NetlinkDecodeError(`truncated message header at offset ${off}`);
    const len = v.getUint32(off, true);
    if (len < NLMSG_HDRLEN || len > buf.length - off) throw new NetlinkDecodeError(`message at offset ${off}: bad length ${len}`);
    out.push({
      type: v.getUint16(off + 4, true),
      flags: v.getUint16(off + 6, true),
      seq: v.getUint32(off + 8, true),
      pid: v.getUint32(off + 12, true),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += (len + 3) & ~3;
  }
  return out;
}

/**
 * The length of the attribute at `off` (of attributes ending at `end`), 0 for trailing zero
 * padding; throws NetlinkDecodeError on a bad one. Every attribute walk in qbh checks its bounds
 * here (read by index: the generic decoder calls it for every attribute of a dump).
 */
export function attrLength(buf: Uint8Array, off: number, end = buf.length): number {
  if (end - off < NLA_HDRLEN) {
    for (let i = off; i < end; i++) {
      if (buf[i] !== 0) throw new NetlinkDecodeError(`truncated attribute header at offset ${off}`);
    }
    return 0;
  }
  const len = buf[off]! | (buf[off + 1]! << 8);
  if (len < NLA_HDRLEN || off + len > end) {
    throw new NetlinkDecodeError(`attribute type ${(buf[off + 2]! | (buf[off + 3]! << 8)) & NLA_TYPE_MASK} at offset ${off}: bad length ${len}`);
  }
  return len;
}

/**
 * Calls `fn(type, start, end)` for each attribute in buf[from, to): its type with the flag bits
 * (NLA_F_NESTED…), its payload's bounds. Bad lengths throw (attrLength); trailing zero padding ends
 * the walk.
 */
export function eachAttr(buf: Uint8Array, from: number, to: number, fn: (type: number, start: number, end: number) => void): void {
  for (let off = from; off < to; ) {
    const len = attrLength(buf, off, to);
    if (len === 0) return;
    fn(buf[off + 2]! | (buf[off + 3]! << 8), off + NLA_HDRLEN, off + len);
    off += (len + 3) & ~3;
  }
}

/** One attribute, padded to 4 bytes: header then `payload`. */
export function nlAttr(type: number, payload: Uint8Array): Uint8Array {
  const b = new Uint8Array((NLA_HDRLEN + payload.length + 3) & ~3);
  const v = le(b);
  v.setUint16(0, NLA_HDRLEN + payload.length, true);
  v.setUint16(2, type, true);
  b.set(payload, NLA_HDRLEN);
  return b;
}

/** A u8 attribute. */
export const nlU8 = (type: number, value: number): Uint8Array => nlAttr(type, Uint8Array.of(value));

/** A u16 attribute (host order). */
export function nlU16(type: number, value: number): Uint8Array {
  const b = new Uint8Array(2);
  le(b).setUint16(0, value, true);
  return nlAttr(type, b);
}

/** A u32 attribute (host order). */
export function nlU32(type: number, value: number): Uint8Array {
  const b = new Uint8Array(4);
  le(b).setUint32(0, value >>> 0, true);
  return nlAttr(type, b);
}

/** A NUL-terminated string attribute. */
export const nlString = (type: number, value: string): Uint8Array => nlAttr(type, Buffer.from(`${value}\0`, 'utf8'));

/** A nested attribute (NLA_F_NESTED set) holding `parts`. */
export const nlNested = (type: number, parts: readonly Uint8Array[]): Uint8Array => nlAttr(type | NLA_F_NESTED, concatBytes(new Uint8Array(0), parts));

/** A fixed header followed by attributes, as one message body. */
export function concatBytes(head: Uint8Array, parts: readonly Uint8Array[]): Uint8Array {
  let len = head.length;
  for (const p of parts) len += p.length;
  const b = new Uint8Array(len);
  b.set(head, 0);
  let off = head.length;
  for (const p of parts) {
    b.set(p, off);
    off += p.length;
  }
  return b;
}

/** A string attribute's payload: UTF-8 up to the first NUL. */
export function text(buf: Buffer, start: number, end: number): string {
  let nul = start;
  while (nul < end && buf[nul] !== 0) nul++;
  return buf.toString('utf8', start, nul);
}

/** An NLMSG_ERROR (errno 0 is an ACK) or an NLMSG_DONE with its status, plus extended-ack data. */
export interface ErrorMessage {
  /** Positive errno; 0 for an ACK or a clean DONE. */
  errno: number;
  message?: string;
  offset?: number;
}

/**
 * Decodes NLMSG_ERROR or NLMSG_DONE. An error echoes the request's header (whole request unless
 * NLM_F_CAPPED), then extended-ack TLVs if NLM_F_ACK_TLVS; a DONE carries only the status and TLVs
 * (dump errors arrive there: docs/netlink-pitfalls.md, §4).
 */
export function decodeError(msg: RawMessage): ErrorMessage {
  const p = msg.payload;
  if (msg.type === NLMSG_DONE && p.length < 4) return { errno: 0 };
  const what = msg.type === NLMSG_ERROR ? 'NLMSG_ERROR' : 'NLMSG_DONE';
  if (p.length < 4 || (msg.type === NLMSG_ERROR && p.length < 4 + NLMSG_HDRLEN)) throw new NetlinkDecodeError(`${what}: ${p.length} bytes`);
  const v = le(p);
  const out: ErrorMessage = { errno: 0 - v.getInt32(0, true) || 0 };
  let tlvs = 4;
  if (msg.type === NLMSG_ERROR) tlvs += msg.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : (v.getUint32(4, true) + 3) & ~3;
  if (msg.flags & NLM_F_ACK_TLVS && tlvs <= p.length) {
    eachAttr(p, tlvs, p.length, (type, s, e) => {
      if ((type & NLA_TYPE_MASK) === NLMSGERR_ATTR_MSG) out.message = text(p, s, e);
      else if ((type & NLA_TYPE_MASK) === NLMSGERR_ATTR_OFFS && e - s >= 4) out.offset = v.getUint32(s, true);
    });
  }
  return out;
}

/** The kernel's refusal of a request, with its extended-ack text and offset. */
export function kernelError(ack: ErrorMessage, ctx: NetlinkErrorContext): NetlinkError {
  return new NetlinkError(ack.errno, ctx, ack.message, ack.offset);
}

/**
 * A failed send or receive syscall as a NetlinkError naming the request, so every error the API
 * throws is a QbhError with errno and code (the addon's own errors carry errno and code only); on
 * a receive, ENOBUFS says that messages were dropped. Errors already in the family pass through.
 */
export function syscallError(e: unknown, ctx: NetlinkErrorContext, receiving: boolean): unknown {
  if (e instanceof QbhError || !(e instanceof Error)) return e;
  const errno = (e as { errno?: unknown }).errno;
  if (typeof errno !== 'number' || errno === 0) return e;
  if (receiving && Math.abs(errno) === ENOBUFS) return NetlinkError.fromQbh(ENOBUFS, ctx, 'receive buffer overrun: kernel messages were dropped');
  return new NetlinkError(Math.abs(errno), ctx);
}

/** The collected answer to one request. */
export interface Exchange {
  seq: number;
  dump: boolean;
  /**
   * The answer's messages, not yet decoded: a dump's callers decode one message at a time, so
   * that what they do not keep dies young (a 10 000-link dump decoded whole survives several
   * garbage collections, and copying it cost more than decoding it).
   */
  replies: RawMessage[];
  interrupted: boolean;
  error?: NetlinkError;
  done: boolean;
  ctx: NetlinkErrorContext;
}

/**
 * A request message: NLM_F_REQUEST and NLM_F_ACK added to `flags`, sequence number 0 (written when
 * it is sent), addressed to the kernel.
 */
export function requestMessage(type: number, flags: number, body: Uint8Array): Buffer {
  return encodeMessage({ type, flags: flags | NLM_F_REQUEST | NLM_F_ACK, seq: 0, pid: 0 }, body);
}

/**
 * Sends `request` (a whole message: see {@link requestMessage}; its sequence number is written
 * here) on `fd` and returns the exchange that collects its answer: an ACK ends a request, a DONE
 * ends a dump (NLM_F_DUMP in its flags).
 */
export function beginExchange(t: Transport, fd: number, request: Uint8Array, ctx: NetlinkErrorContext): Exchange {
  const seq = nextSeq();
  const head = le(request);
  head.setUint32(8, seq, true);
  const dump = (head.getUint16(6, true) & NLM_F_DUMP) === NLM_F_DUMP;
  try {
    t.nlSend(fd, request);
  } catch (e) {
    throw syscallError(e, ctx, false);
  }
  return { seq, dump, replies: [], interrupted: false, done: false, ctx };
}

/**
 * Feeds one received datagram into an exchange: only the kernel's (port 0) messages with its
 * sequence number count; others are left-overs of abandoned requests.
 */
export function feedExchange(ex: Exchange, data: Buffer, fromPort: number): void {
  if (fromPort !== 0) return; // only the kernel answers requests
  for (const m of splitMessages(data)) {
    if (m.seq !== ex.seq || ex.done) continue;
    if (m.flags & NLM_F_DUMP_INTR) ex.interrupted = true;
    if (m.type === NLMSG_ERROR || m.type === NLMSG_DONE) {
      const ack = decodeError(m);
      if (ack.errno !== 0) ex.error = kernelError(ack, ex.ctx);
      // An ACK ends a "do" request; a dump ends only with DONE (or an error).
      if (m.type === NLMSG_DONE || !ex.dump || ack.errno !== 0) ex.done = true;
      continue;
    }
    ex.replies.push(m);
  }
}

/** The exchange, or the kernel's error if it refused the request. */
export function finishExchange(ex: Exchange): Exchange {
  if (ex.error) throw ex.error;
  return ex;
}

/**
 * Blocks until the kernel has answered the exchange in full (at most `timeoutMs`: then ETIMEDOUT),
 * and returns it; throws the kernel's error as a NetlinkError.
 */
export function awaitExchangeSync(t: Transport, fd: number, ex: Exchange, timeoutMs = SYNC_TIMEOUT_MS): Exchange {
  const deadline = Date.now() + timeoutMs;
  while (!ex.done) {
    let got;
    try {
      got = t.nlRecv(fd, Math.max(1, deadline - Date.now()));
    } catch (e) {
      throw syscallError(e, ex.ctx, true);
    }
    if (got === null) {
      if (Date.now() >= deadline) throw NetlinkError.fromQbh(ETIMEDOUT, ex.ctx, 'no answer from the kernel');
      continue;
    }
    feedExchange(ex, got.data, got.portId);
  }
  return finishExchange(ex);
}

/**
 * Sends `request` (see {@link requestMessage}) on the rtnetlink socket `fd` and blocks until the
 * kernel has answered it in full: the ACK of a request, or the DONE of a dump. Throws the kernel's
 * error as a NetlinkError.
 */
export function exchangeSync(fd: number, request: Uint8Array, ctx: NetlinkErrorContext, t: Transport = addonTransport, timeoutMs = SYNC_TIMEOUT_MS): Exchange {
  return awaitExchangeSync(t, fd, beginExchange(t, fd, request, ctx), timeoutMs);
}

/** How many requests {@link exchangeBatchSync} sends per sendmsg before it reads their answers. */
export const BATCH_WINDOW = 32;

/**
 * Sends many requests (see {@link requestMessage}) on `fd`, {@link BATCH_WINDOW} per sendmsg, and
 * blocks until each is answered; returns each one's error (undefined: ACKed), in order. The kernel
 * runs every request of a sendmsg, also after one failed. For requests that need no reply but the ACK.
 */
export function exchangeBatchSync(fd: number, requests: readonly Uint8Array[], ctxs: readonly NetlinkErrorContext[], t: Transport = addonTransport, timeoutMs = SYNC_TIMEOUT_MS): (NetlinkError | undefined)[] {
  const out: (NetlinkError | undefined)[] = [];
  for (let from = 0; from < requests.length; from += BATCH_WINDOW) {
    const chunk = requests.slice(from, from + BATCH_WINDOW);
    const pending: Exchange[] = chunk.map((r, i) => {
      const seq = nextSeq();
      le(r).setUint32(8, seq, true);
      return { seq, dump: false, replies: [], interrupted: false, done: false, ctx: ctxs[from + i]! };
    });
    const buf = Buffer.concat(chunk);
    try {
      t.nlSend(fd, buf);
    } catch (e) {
      throw syscallError(e, pending[0]!.ctx, false);
    }
    const deadline = Date.now() + timeoutMs;
    while (pending.some((ex) => !ex.done)) {
      let got;
      try {
        got = t.nlRecv(fd, Math.max(1, deadline - Date.now()));
      } catch (e) {
        throw syscallError(e, pending[0]!.ctx, true);
      }
      if (got === null) {
        if (Date.now() >= deadline) throw NetlinkError.fromQbh(ETIMEDOUT, pending[0]!.ctx, 'no answer from the kernel');
        continue;
      }
      for (const ex of pending) feedExchange(ex, got.data, got.portId);
    }
    for (const ex of pending) out.push(ex.error);
  }
  return out;
}

/**
 * A dump's answer, if it is final. `attempt` counts from 0. Not interrupted: its messages. Flagged
 * NLM_F_DUMP_INTR: undefined (run it again), or after {@link DUMP_RETRIES} attempts a
 * DumpInterruptedError holding `partial(replies)`.
 */
export function dumpResult(ex: Exchange, attempt: number, partial: (replies: RawMessage[]) => unknown[] = () => []): RawMessage[] | undefined {
  if (!ex.interrupted) return ex.replies;
  if (attempt + 1 < DUMP_RETRIES) return undefined;
  throw new DumpInterruptedError(ex.ctx.op, DUMP_RETRIES, partial(ex.replies));
}

/** Runs the dump `request` on `fd` until an attempt is not interrupted (see {@link dumpResult}), blocking. */
export function dumpSync(fd: number, request: Uint8Array, ctx: NetlinkErrorContext, t: Transport = addonTransport): RawMessage[] {
  for (let attempt = 0; ; attempt++) {
    const replies = dumpResult(exchangeSync(fd, request, ctx, t), attempt);
    if (replies) return replies;
  }
}
