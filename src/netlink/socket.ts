/**
 * A request/response rtnetlink socket: sequence and port checks, ACK on every request, multipart
 * dumps, errors from NLMSG_ERROR and NLMSG_DONE with their extended-ack text, NLM_F_DUMP_INTR
 * retries, ENOBUFS surfaced. Blocking (for short-lived processes) and non-blocking (for the event
 * loop) forms share one state machine.
 * @module
 */
import { EBADF, ETIMEDOUT, QbhError } from '../errors.js';
import { native, isErrno } from '../native.js';
import {
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_DUMP_INTR,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
} from './constants.js';
import { DumpInterruptedError, NetlinkError, type NetlinkErrorContext } from './errors.js';
import { DUMP_RETRIES, SYNC_TIMEOUT_MS, openRouteSocket } from './lean.js';
import { decodeError, decodeMessage, decodeMessages, encodeMessage, splitMessages, type Message, type RawMessage } from './message.js';

export { DUMP_RETRIES };

const noop = (): undefined => undefined;

/** How many requests {@link NetlinkSocket.requestPipelined} sends before it reads the kernel's answers. */
export const PIPELINE_WINDOW = 64;

/** One request of {@link NetlinkSocket.requestPipelined}: a "do" request answered by an ACK. */
export interface PipelinedRequest {
  type: number;
  flags: number;
  body: Buffer;
  ctx: NetlinkErrorContext;
}

/** Options for opening a socket. */
export interface SocketOptions {
  /** NETLINK_EXT_ACK: kernel error text. Default true. */
  extAck?: boolean;
  /** NETLINK_GET_STRICT_CHK: strict header checks and kernel-side dump filters. Default true. */
  strict?: boolean;
  /** An open fd of a network namespace to make the socket in (default: the calling thread's). */
  netnsFd?: number;
}

/** The collected answer to one request. */
interface Exchange {
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

/** An rtnetlink socket for requests and dumps. Not for notifications: those use their own socket. */
export class NetlinkSocket {
  readonly fd: number;
  readonly portId: number;
  private seq: number;
  private closed = false;
  /** How many dumps came back flagged NLM_F_DUMP_INTR (each one retried, or given up on). */
  interruptedDumps = 0;
  private queue: Promise<unknown> = Promise.resolve();
  /** Ends the exchange waiting on the event loop, if any: close() calls it, as its watch would never fire again. */
  private abortWaiting: (() => void) | undefined;

  private constructor(fd: number, portId: number) {
    this.fd = fd;
    this.portId = portId;
    this.seq = Math.floor(Date.now() / 1000) & 0x7fffffff;
  }

  /** Opens and configures a NETLINK_ROUTE socket. */
  static open(opts: SocketOptions = {}): NetlinkSocket {
    const { fd, portId } = openRouteSocket(opts);
    return new NetlinkSocket(fd, portId);
  }

  /** Closes the socket. Idempotent. A request still waiting for its answer fails with EBADF. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.abortWaiting?.();
    native.close(this.fd);
  }

  private begin(type: number, flags: number, body: Buffer, ctx: NetlinkErrorContext): Exchange {
    if (this.closed) throw new QbhError(`${ctx.op}: the netlink socket is closed (open another handle)`, { code: 'EBADF', op: ctx.op, target: ctx.target });
    this.seq = (this.seq + 1) >>> 0 || 1;
    const dump = (flags & NLM_F_DUMP) === NLM_F_DUMP;
    const msg = encodeMessage({ type, flags: flags | NLM_F_REQUEST | NLM_F_ACK, seq: this.seq, pid: 0 }, body);
    try {
      native.nlSend(this.fd, msg);
    } catch (e) {
      throw inFamily(e, ctx);
    }
    return { seq: this.seq, dump, replies: [], interrupted: false, done: false, ctx };
  }

  /** Feeds one datagram into an exchange. */
  private feed(ex: Exchange, data: Buffer, fromPort: number): void {
    if (fromPort !== 0) return; // only the kernel answers requests
    for (const m of splitMessages(data)) {
      if (m.seq !== ex.seq || ex.done) continue; // stale answer to an earlier, abandoned request
      if (m.flags & NLM_F_DUMP_INTR) ex.interrupted = true;
      if (m.type === NLMSG_ERROR || m.type === NLMSG_DONE) {
        const error = decodeError(m);
        if (error.errno !== 0) ex.error = new NetlinkError(error.errno, ex.ctx, error.message, error.offset);
        // An ACK ends a "do" request; a dump ends only with DONE (or an error).
        if (m.type === NLMSG_DONE || !ex.dump || error.errno !== 0) ex.done = true;
        continue;
      }
      ex.replies.push(m);
    }
  }

  private recvError(e: unknown, ctx: NetlinkErrorContext): never {
    if (isErrno(e, 'ENOBUFS')) throw NetlinkError.fromQbh(e.errno, ctx, 'receive buffer overrun: kernel messages were dropped');
    throw inFamily(e, ctx);
  }

  private finish(ex: Exchange): Exchange {
    if (ex.error) throw ex.error;
    return ex;
  }

  /** Sends a request and blocks until the kernel has answered it in full. */
  requestSync(type: number, flags: number, body: Buffer, ctx: NetlinkErrorContext): Message[] {
    return this.exchangeSync(type, flags, body, ctx).replies.map(decodeMessage);
  }

  /** Sends a request and resolves when the kernel has answered it in full; never blocks the loop. */
  async request(type: number, flags: number, body: Buffer, ctx: NetlinkErrorContext): Promise<Message[]> {
    return (await this.exchange(type, flags, body, ctx)).replies.map(decodeMessage);
  }

  private exchangeSync(type: number, flags: number, body: Buffer, ctx: NetlinkErrorContext): Exchange {
    const ex = this.begin(type, flags, body, ctx);
    const deadline = Date.now() + SYNC_TIMEOUT_MS;
    while (!ex.done) {
      let got;
      try {
        got = native.nlRecv(this.fd, Math.max(1, deadline - Date.now()));
      } catch (e) {
        this.recvError(e, ctx);
      }
      if (got === null) {
        if (Date.now() >= deadline) throw NetlinkError.fromQbh(ETIMEDOUT, ctx, 'no answer from the kernel');
        continue;
      }
      this.feed(ex, got.data, got.portId);
    }
    return this.finish(ex);
  }

  private exchange(type: number, flags: number, body: Buffer, ctx: NetlinkErrorContext): Promise<Exchange> {
    const run = (): Promise<Exchange> =>
      new Promise<Exchange>((resolve, reject) => {
        let ex: Exchange;
        try {
          ex = this.begin(type, flags, body, ctx);
        } catch (e) {
          reject(e);
          return;
        }
        let stop: (() => void) | undefined;
        const end = (): void => {
          stop?.();
          this.abortWaiting = undefined;
        };
        const drain = (): boolean => {
          try {
            for (;;) {
              const got = native.nlRecv(this.fd, 0);
              if (got === null) return false;
              this.feed(ex, got.data, got.portId);
              if (ex.done) {
                end();
                resolve(this.finish(ex));
                return true;
              }
            }
          } catch (e) {
            end();
            try {
              this.recvError(e, ctx);
            } catch (err) {
              reject(err);
            }
            return true;
          }
        };
        if (!drain()) {
          stop = native.watch(this.fd, () => void drain());
          this.abortWaiting = () => {
            end();
            reject(NetlinkError.fromQbh(EBADF, ctx, 'the socket was closed while waiting for the answer'));
          };
        }
      });
    const p = this.queue.then(run, run);
    // Settled to undefined, not to p's value: the queue would otherwise keep the last answer (a
    // whole dump's datagrams) alive until the next request.
    this.queue = p.then(noop, noop);
    return p;
  }

  /**
   * Sends many "do" requests (no dumps) pipelined: up to {@link PIPELINE_WINDOW} netlink messages in
   * one sendmsg, then the next window once the kernel has answered. The kernel runs a datagram's
   * messages in turn and answers each failed one (matched here by sequence number) whether or not
   * it asked for an ACK; only the window's last message asks for one, so a window costs one
   * answer, not one per request. One request's failure does not stop the others. Resolves with
   * one outcome per request, in order (`undefined`: done; else its NetlinkError); rejects only when
   * the socket itself fails. The window bounds the unread answers (an error carries the whole
   * request back), so the receive buffer never overruns.
   */
  requestPipelined(requests: readonly PipelinedRequest[]): Promise<(NetlinkError | undefined)[]> {
    const run = (): Promise<(NetlinkError | undefined)[]> =>
      new Promise((resolve, reject) => {
        const outcomes: (NetlinkError | undefined)[] = new Array(requests.length);
        const sent = new Map<number, number>(); // seq → index into requests, for this window
        let lastSeq = -1; // the window's last request: the only one that asks for an ACK
        let waiting = false;
        let next = 0;
        let stop: (() => void) | undefined;
        const end = (): void => {
          stop?.();
          stop = undefined;
          this.abortWaiting = undefined;
        };
        const fail = (e: unknown): void => {
          end();
          reject(e);
        };
        /** Sends the next window; false when every request has been sent. */
        const sendWindow = (): boolean => {
          if (next >= requests.length) return false;
          if (this.closed) throw new QbhError(`${requests[next]!.ctx.op}: the netlink socket is closed (open another handle)`, { code: 'EBADF', op: requests[next]!.ctx.op, target: requests[next]!.ctx.target });
          const last = Math.min(requests.length, next + PIPELINE_WINDOW);
          const msgs: Buffer[] = [];
          sent.clear();
          for (; next < last; next++) {
            const r = requests[next]!;
            this.seq = (this.seq + 1) >>> 0 || 1;
            sent.set(this.seq, next);
            // The kernel answers a failed request whether or not it asked for an ACK, and runs a
            // datagram's messages in order: the last one's ACK therefore closes the window.
            const ack = next === last - 1 ? NLM_F_ACK : 0;
            msgs.push(encodeMessage({ type: r.type, flags: r.flags | NLM_F_REQUEST | ack, seq: this.seq, pid: 0 }, r.body));
          }
          lastSeq = this.seq;
          waiting = true;
          try {
            native.nlSend(this.fd, msgs.length === 1 ? msgs[0]! : Buffer.concat(msgs));
          } catch (e) {
            throw inFamily(e, requests[next - 1]!.ctx);
          }
          return true;
        };
        const drain = (): void => {
          try {
            for (;;) {
              const got = native.nlRecv(this.fd, 0);
              if (got === null) {
                // The kernel answers inside sendmsg, so this is rare: wait on the event loop.
                stop ??= native.watch(this.fd, () => drain());
                this.abortWaiting ??= () => fail(NetlinkError.fromQbh(EBADF, requests[0]!.ctx, 'the socket was closed while waiting for the answer'));
                return;
              }
              if (got.portId !== 0) continue;
              for (const m of decodeMessages(got.data)) {
                const i = sent.get(m.seq);
                if (i === undefined || m.kind !== 'error') continue; // stale, or a reply before the ACK
                if (m.error.errno !== 0) outcomes[i] = new NetlinkError(m.error.errno, requests[i]!.ctx, m.error.message, m.error.offset);
                if (m.seq === lastSeq) waiting = false;
              }
              if (!waiting && !sendWindow()) {
                end();
                resolve(outcomes);
                return;
              }
            }
          } catch (e) {
            try {
              this.recvError(e, requests[Math.max(0, next - 1)]!.ctx);
            } catch (err) {
              fail(err);
            }
          }
        };
        try {
          if (!sendWindow()) {
            resolve(outcomes);
            return;
          }
        } catch (e) {
          reject(e);
          return;
        }
        drain();
      });
    const p = this.queue.then(run, run);
    // Settled to undefined, not to p's value: the queue would otherwise keep the last answer (a
    // whole dump's datagrams) alive until the next request.
    this.queue = p.then(noop, noop);
    return p;
  }

  /**
   * Dumps, retrying while the kernel flags the dump as interrupted; after DUMP_RETRIES a
   * DumpInterruptedError holding the last result.
   */
  async dump(type: number, body: Buffer, ctx: NetlinkErrorContext): Promise<Message[]> {
    return (await this.dumpRaw(type, body, ctx)).map(decodeMessage);
  }

  /** {@link dump}, its messages not yet decoded (for {@link decodeMessage}, one at a time). */
  async dumpRaw(type: number, body: Buffer, ctx: NetlinkErrorContext): Promise<RawMessage[]> {
    let last: RawMessage[] = [];
    for (let i = 0; i < DUMP_RETRIES; i++) {
      const ex = await this.exchange(type, NLM_F_DUMP, body, ctx);
      last = ex.replies;
      if (!ex.interrupted) return last;
      this.interruptedDumps++;
    }
    throw new DumpInterruptedError(ctx.op, DUMP_RETRIES, last.map(decodeMessage));
  }

  /** The blocking form of {@link dump}. */
  dumpSync(type: number, body: Buffer, ctx: NetlinkErrorContext): Message[] {
    let last: RawMessage[] = [];
    for (let i = 0; i < DUMP_RETRIES; i++) {
      const ex = this.exchangeSync(type, NLM_F_DUMP, body, ctx);
      last = ex.replies;
      if (!ex.interrupted) return last.map(decodeMessage);
      this.interruptedDumps++;
    }
    throw new DumpInterruptedError(ctx.op, DUMP_RETRIES, last.map(decodeMessage));
  }
}

/**
 * A failed send or receive syscall as a NetlinkError naming the request, so every error the API
 * throws is a QbhError with errno and code (the addon's own errors carry errno and code only).
 * Errors already in the family (a decode error, say) pass through.
 */
function inFamily(e: unknown, ctx: NetlinkErrorContext): unknown {
  if (e instanceof QbhError || !(e instanceof Error)) return e;
  const errno = (e as { errno?: unknown }).errno;
  return typeof errno === 'number' && errno !== 0 ? new NetlinkError(Math.abs(errno), ctx) : e;
}
