// A fake rtnetlink kernel for unit tests of the wire core and NetlinkSocket: it implements the
// transport (src/netlink/wire.ts, `Transport`) and answers each request as a test scripts it —
// ACK, NLMSG_ERROR with extended-ack text and offset, multipart replies and DONE, NLM_F_DUMP_INTR,
// left-overs with a stale sequence number, messages from another port, or no answer at all. No root
// and no network namespace: nothing reaches a real socket. Also a transport that records what goes
// over the addon's real one, for tests that watch the wire without changing it.
import {
  NLMSGERR_ATTR_MSG,
  NLMSGERR_ATTR_OFFS,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLM_F_ACK,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLM_F_MULTI,
} from '../src/netlink/constants.js';
import { NetlinkSocket } from '../src/netlink/socket.js';
import { addonTransport, encodeMessage, openRouteSocket, splitMessages, type RawMessage, type Transport } from '../src/netlink/wire.js';

/** One datagram the kernel sends: from port 0 unless `portId` says otherwise. */
export interface Datagram {
  data: Buffer;
  portId?: number;
}

/** What the fake kernel answers to one request message: datagrams, each a Buffer (from the kernel) or a {@link Datagram}. */
export type Answer = (Buffer | Datagram)[];

/** One attribute (header, payload, padding). */
function tlv(type: number, payload: Buffer): Buffer {
  const b = Buffer.alloc((4 + payload.length + 3) & ~3);
  b.writeUInt16LE(4 + payload.length, 0);
  b.writeUInt16LE(type, 2);
  payload.copy(b, 4);
  return b;
}

/** A message answering `req` (its sequence number unless `seq` is given), from the kernel (pid 0). */
export function message(req: RawMessage, type: number, payload: Buffer = Buffer.alloc(0), flags = 0, seq = req.seq): Buffer {
  return encodeMessage({ type, flags, seq, pid: 0 }, payload);
}

/** The NLMSG_ERROR that acknowledges `req` (errno 0; the request echoed capped, as with extended acks). */
export function ack(req: RawMessage, flags = NLM_F_CAPPED): Buffer {
  return nlError(req, 0, { flags });
}

/**
 * The NLMSG_ERROR refusing `req` with `errno`: the request's header echoed (the whole request
 * unless `capped`, the default), then the extended-ack TLVs when `text` or `offset` is given.
 */
export function nlError(req: RawMessage, errno: number, opts: { text?: string; offset?: number; capped?: boolean; flags?: number; seq?: number } = {}): Buffer {
  const capped = opts.capped ?? true;
  const status = Buffer.alloc(4);
  status.writeInt32LE(-errno, 0);
  const echo = encodeMessage(req, capped ? Buffer.alloc(0) : req.payload);
  if (capped) echo.writeUInt32LE(NLMSG_HDRLEN + req.payload.length, 0); // the length of what was sent
  const tlvs: Buffer[] = [];
  if (opts.text !== undefined) tlvs.push(tlv(NLMSGERR_ATTR_MSG, Buffer.from(`${opts.text}\0`)));
  if (opts.offset !== undefined) {
    const off = Buffer.alloc(4);
    off.writeUInt32LE(opts.offset, 0);
    tlvs.push(tlv(NLMSGERR_ATTR_OFFS, off));
  }
  const flags = (opts.flags ?? 0) | (capped ? NLM_F_CAPPED : 0) | (tlvs.length > 0 ? NLM_F_ACK_TLVS : 0);
  const padded = Buffer.alloc((echo.length + 3) & ~3);
  echo.copy(padded);
  return message(req, NLMSG_ERROR, Buffer.concat([status, capped ? echo.subarray(0, NLMSG_HDRLEN) : padded, ...tlvs]), flags, opts.seq ?? req.seq);
}

/** The NLMSG_DONE ending a dump of `req`: status `errno` (a dump's error arrives here), with `text` as extended ack. */
export function done(req: RawMessage, opts: { errno?: number; text?: string; flags?: number } = {}): Buffer {
  const status = Buffer.alloc(4);
  status.writeInt32LE(-(opts.errno ?? 0), 0);
  const tlvs = opts.text === undefined ? [] : [tlv(NLMSGERR_ATTR_MSG, Buffer.from(`${opts.text}\0`))];
  return message(req, NLMSG_DONE, Buffer.concat([status, ...tlvs]), NLM_F_MULTI | (opts.flags ?? 0) | (tlvs.length > 0 ? NLM_F_ACK_TLVS : 0));
}

/** Messages in one datagram. */
export const datagram = (...msgs: Buffer[]): Buffer => Buffer.concat(msgs);

const sleep = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** An addon-like error of a syscall: `errno`, `code`, `syscall`. */
function syscallFailure(errno: number, code: string, syscall: string): Error {
  return Object.assign(new Error(`${syscall}: ${code}`), { errno, code, syscall });
}

/**
 * The fake kernel. Each message of each datagram sent goes to {@link answer} (default: an ACK
 * when it asks for one), and what that returns is queued for the socket to read — at once, as the
 * kernel answers a request inside sendmsg, or with {@link deferred} on a later turn of the event
 * loop (a watch then fires), as a dump's later datagrams come.
 */
export class FakeKernel implements Transport {
  /** The fd and port id of the socket it plays. */
  readonly fd = 900;
  readonly portId = 4321;
  /** Every datagram sent, as sent. */
  readonly sent: Buffer[] = [];
  /** Every request message sent, split out of the datagrams. */
  readonly requests: RawMessage[] = [];
  /** Answers one request message. */
  answer: (req: RawMessage, kernel: FakeKernel) => Answer = (req) => (req.flags & NLM_F_ACK ? [ack(req)] : []);
  /** Deliver answers on a later turn of the event loop instead of at once. */
  deferred = false;
  /** nlRecv fails once with this errno (105 ENOBUFS: the receive buffer overran). */
  failRecv: number | undefined;
  closed = false;
  private readonly inbox: Datagram[] = [];
  private readonly watchers = new Set<() => void>();

  /** A NetlinkSocket over this kernel. */
  socket(): NetlinkSocket {
    return NetlinkSocket.over(this, this.fd, this.portId);
  }

  /** Queues datagrams for the socket to read now (left-overs of an earlier request, another port's messages). */
  inject(...datagrams: (Buffer | Datagram)[]): void {
    for (const d of datagrams) this.inbox.push(Buffer.isBuffer(d) ? { data: d } : d);
    this.wake();
  }

  nlSend(fd: number, msg: Uint8Array): number {
    this.check(fd, 'sendmsg');
    const data = Buffer.from(msg);
    this.sent.push(data);
    const replies: Datagram[] = [];
    for (const req of splitMessages(data)) {
      this.requests.push(req);
      for (const d of this.answer(req, this)) replies.push(Buffer.isBuffer(d) ? { data: d } : d);
    }
    if (this.deferred) setImmediate(() => this.inject(...replies));
    else this.inject(...replies);
    return data.length;
  }

  nlRecv(fd: number, timeoutMs: number): { data: Buffer; portId: number } | null {
    this.check(fd, 'recvmsg');
    if (this.failRecv !== undefined) {
      const errno = this.failRecv;
      this.failRecv = undefined;
      throw syscallFailure(errno, errno === 105 ? 'ENOBUFS' : `E${errno}`, 'recvmsg');
    }
    const d = this.inbox.shift();
    if (d) return { data: d.data, portId: d.portId ?? 0 };
    // Nothing will arrive while this thread blocks: wait out the timeout, as the addon would.
    if (timeoutMs > 0 && Number.isFinite(timeoutMs)) sleep(timeoutMs);
    return null;
  }

  watch(fd: number, onReadable: (status: number) => void): () => void {
    this.check(fd, 'watch');
    const w = () => onReadable(0);
    this.watchers.add(w);
    if (this.inbox.length > 0) this.wake();
    return () => void this.watchers.delete(w);
  }

  close(fd: number): void {
    this.check(fd, 'close');
    this.closed = true;
    this.watchers.clear();
  }

  private wake(): void {
    if (this.inbox.length === 0) return;
    for (const w of [...this.watchers]) setImmediate(() => this.watchers.has(w) && w());
  }

  private check(fd: number, syscall: string): void {
    if (fd !== this.fd || this.closed) throw syscallFailure(9, 'EBADF', syscall);
  }
}

/** What a {@link RecordingTransport} shows each datagram to. */
export interface Observer {
  onSend?(data: Buffer): void;
  /** Each datagram received (not kept: a dump's are megabytes). */
  onReceive?(data: Buffer): void;
}

/**
 * The addon's transport with every datagram sent recorded in `sent`, and each one sent and
 * received shown to the observer: for tests that watch what goes over a real socket, without
 * changing it. `socket()` opens one as NetlinkSocket.open() does.
 */
export class RecordingTransport implements Transport {
  readonly sent: Buffer[] = [];
  constructor(
    private readonly observer: Observer = {},
    private readonly inner: Transport = addonTransport,
  ) {}

  socket(): NetlinkSocket {
    const { fd, portId } = openRouteSocket();
    return NetlinkSocket.over(this, fd, portId);
  }

  nlSend(fd: number, msg: Uint8Array): number {
    const data = Buffer.from(msg);
    this.sent.push(data);
    this.observer.onSend?.(data);
    return this.inner.nlSend(fd, msg);
  }

  nlRecv(fd: number, timeoutMs: number): { data: Buffer; portId: number } | null {
    const got = this.inner.nlRecv(fd, timeoutMs);
    if (got) this.observer.onReceive?.(got.data);
    return got;
  }

  watch(fd: number, onReadable: (status: number) => void): () => void {
    return this.inner.watch(fd, onReadable);
  }

  close(fd: number): void {
    this.inner.close(fd);
  }
}
