/**
 * A request/response rtnetlink socket: sequence and port checks, ACK on every request, multipart
 * dumps, errors from NLMSG_ERROR and NLMSG_DONE with their extended-ack text, NLM_F_DUMP_INTR
 * retries, ENOBUFS surfaced. Blocking (for short-lived processes) and non-blocking (for the event
 * loop) forms share one state machine.
 * @module
 */
import { QbhError } from '../errors.js';
import { NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_ERROR } from './constants.js';
import { NetlinkError, type NetlinkErrorContext } from './errors.js';
import { decodeMessage, type Message, type RawMessage } from './message.js';
import {
  DUMP_RETRIES,
  EBADF,
  SYNC_TIMEOUT_MS,
  addonTransport,
  awaitExchangeSync,
  beginExchange,
  decodeError,
  dumpResult,
  encodeMessage,
  feedExchange,
  finishExchange,
  kernelError,
  nextSeq,
  openRouteSocket,
  requestMessage,
  splitMessages,
  syscallError,
  type Exchange,
  type Transport,
} from './wire.js';

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

/** An rtnetlink socket for requests and dumps. Not for notifications: those use their own socket. */
export class NetlinkSocket {
  readonly fd: number;
  readonly portId: number;
  /** The socket calls it makes: the addon's, or a test's fake kernel. */
  private readonly transport: Transport;
  /** How long a blocking request waits for its answer. @internal */
  syncTimeoutMs = SYNC_TIMEOUT_MS;
  private closed = false;
  /** How many dumps came back flagged NLM_F_DUMP_INTR (each one retried, or given up on). */
  interruptedDumps = 0;
  private queue: Promise<unknown> = Promise.resolve();
  /** Ends the exchange waiting on the event loop, if any: close() calls it, as its watch would never fire again. */
  private abortWaiting: (() => void) | undefined;

  private constructor(fd: number, portId: number, transport: Transport) {
    this.fd = fd;
    this.portId = portId;
    this.transport = transport;
  }

  /** Opens and configures a NETLINK_ROUTE socket. */
  static open(opts: SocketOptions = {}): NetlinkSocket {
    const { fd, portId } = openRouteSocket(opts);
    return new NetlinkSocket(fd, portId, addonTransport);
  }

  /**
   * A socket over `transport` (a test's fake kernel, or a wrapper that watches the addon): `fd`
   * and `portId` are what the transport knows it by. @internal
   */
  static over(transport: Transport, fd: number, portId: number): NetlinkSocket {
    return new NetlinkSocket(fd, portId, transport);
  }

  /** Closes the socket. Idempotent. A request still waiting for its answer fails with EBADF. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.abortWaiting?.();
    this.transport.close(this.fd);
  }

  private begin(type: number, flags: number, body: Buffer, ctx: NetlinkErrorContext): Exchange {
    this.checkOpen(ctx);
    return beginExchange(this.transport, this.fd, requestMessage(type, flags, body), ctx);
  }

  private checkOpen(ctx: NetlinkErrorContext): void {
    if (this.closed) throw new QbhError(`${ctx.op}: the netlink socket is closed (open another handle)`, { code: 'EBADF', op: ctx.op, target: ctx.target });
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
    return awaitExchangeSync(this.transport, this.fd, this.begin(type, flags, body, ctx), this.syncTimeoutMs);
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
              let got;
              try {
                got = this.transport.nlRecv(this.fd, 0);
              } catch (e) {
                throw syscallError(e, ctx, true);
              }
              if (got === null) return false;
              feedExchange(ex, got.data, got.portId);
              if (ex.done) {
                end();
                resolve(finishExchange(ex));
                return true;
              }
            }
          } catch (e) {
            end();
            reject(e);
            return true;
          }
        };
        if (!drain()) {
          stop = this.transport.watch(this.fd, () => void drain());
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
          this.checkOpen(requests[next]!.ctx);
          const last = Math.min(requests.length, next + PIPELINE_WINDOW);
          const msgs: Buffer[] = [];
          sent.clear();
          for (; next < last; next++) {
            const r = requests[next]!;
            const seq = nextSeq();
            sent.set(seq, next);
            // The kernel answers a failed request whether or not it asked for an ACK, and runs a
            // datagram's messages in order: the last one's ACK therefore closes the window.
            const ack = next === last - 1 ? NLM_F_ACK : 0;
            msgs.push(encodeMessage({ type: r.type, flags: r.flags | NLM_F_REQUEST | ack, seq, pid: 0 }, r.body));
            lastSeq = seq;
          }
          waiting = true;
          try {
            this.transport.nlSend(this.fd, msgs.length === 1 ? msgs[0]! : Buffer.concat(msgs));
          } catch (e) {
            throw syscallError(e, requests[next - 1]!.ctx, false);
          }
          return true;
        };
        const drain = (): void => {
          try {
            for (;;) {
              let got;
              try {
                got = this.transport.nlRecv(this.fd, 0);
              } catch (e) {
                throw syscallError(e, requests[Math.max(0, next - 1)]!.ctx, true);
              }
              if (got === null) {
                // The kernel answers inside sendmsg, so this is rare: wait on the event loop.
                stop ??= this.transport.watch(this.fd, () => drain());
                this.abortWaiting ??= () => fail(NetlinkError.fromQbh(EBADF, requests[0]!.ctx, 'the socket was closed while waiting for the answer'));
                return;
              }
              if (got.portId !== 0) continue; // only the kernel answers requests
              for (const m of splitMessages(got.data)) {
                const i = sent.get(m.seq);
                if (i === undefined || m.type !== NLMSG_ERROR) continue; // stale, or a reply before the ACK
                const ack = decodeError(m);
                if (ack.errno !== 0) outcomes[i] = kernelError(ack, requests[i]!.ctx);
                if (m.seq === lastSeq) waiting = false;
              }
              if (!waiting && !sendWindow()) {
                end();
                resolve(outcomes);
                return;
              }
            }
          } catch (e) {
            fail(e);
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
    for (let attempt = 0; ; attempt++) {
      const replies = this.dumpResult(await this.exchange(type, NLM_F_DUMP, body, ctx), attempt);
      if (replies) return replies;
    }
  }

  /** The blocking form of {@link dump}. */
  dumpSync(type: number, body: Buffer, ctx: NetlinkErrorContext): Message[] {
    for (let attempt = 0; ; attempt++) {
      const replies = this.dumpResult(this.exchangeSync(type, NLM_F_DUMP, body, ctx), attempt);
      if (replies) return replies.map(decodeMessage);
    }
  }

  /** One dump attempt, counted in {@link interruptedDumps} if interrupted: the wire core's dumpResult. */
  private dumpResult(ex: Exchange, attempt: number): RawMessage[] | undefined {
    if (ex.interrupted) this.interruptedDumps++;
    return dumpResult(ex, attempt, (replies) => replies.map(decodeMessage));
  }
}
