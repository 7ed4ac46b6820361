/**
 * rtnetlink for the helper without the generic codec (attr.ts, tables.ts, message.ts, rtnl.ts): the
 * socket, one blocking request/answer exchange, and the few messages an attach sends, encoded and
 * decoded by hand. The helper runs once per attach, and loading, compiling and running the generic
 * tables cost it about a millisecond of its ≈2 ms budget. The requests are byte for byte the ones
 * `Rtnl` sends for the same call (test/netlink-lean.test.ts compares them) but their sequence
 * numbers; the errors are the same NetlinkErrors. Integers are read and written with a DataView, not
 * Buffer's readUInt32LE and kin: those are JavaScript that Node compiles on first use, and the
 * helper uses each once (≈0.2 ms of an attach); a DataView's are built into V8.
 * @internal
 * @module
 */
import { native, isErrno } from '../native.js';
import {
  IFF_UP,
  NETLINK_EXT_ACK,
  NETLINK_GET_STRICT_CHK,
  NETLINK_ROUTE,
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
  RTM_GETLINK,
  RTM_NEWLINK,
  SOL_NETLINK,
  SOL_SOCKET,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
} from './constants.js';
import { DumpInterruptedError, NetlinkDecodeError, NetlinkError, type NetlinkErrorContext } from './errors.js';
import { ETIMEDOUT } from '../errors.js';

// include/uapi/linux/if_link.h
const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_MASTER = 10;
const IFLA_EXT_MASK = 29;
const IFLA_PROP_LIST = 52;
const IFLA_ALT_IFNAME = 53;
const RTEXT_FILTER_SKIP_STATS = 1 << 3;
export const IFINFOMSG_LEN = 16;
/** How long a blocking request waits for the kernel before giving up (here and in NetlinkSocket). */
export const SYNC_TIMEOUT_MS = 30_000;
/** Receive buffer, as iproute2 uses: large enough for a dump burst (docs/netlink-pitfalls.md, §1). */
const RCVBUF = 1024 * 1024;
/** How many times a dump interrupted by concurrent changes is run (docs/netlink-pitfalls.md, §3; here and in NetlinkSocket). */
export const DUMP_RETRIES = 8;

/** A little-endian reader and writer over `b`'s bytes. */
export const le = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);

/**
 * Opens a NETLINK_ROUTE socket with NETLINK_EXT_ACK and NETLINK_GET_STRICT_CHK (each unless turned
 * off) and a 1 MiB receive buffer: every qbh netlink socket, `NetlinkSocket.open()`'s included.
 * Close it with `native.close`.
 */
export function openRouteSocket(opts: { extAck?: boolean; strict?: boolean; netnsFd?: number } = {}): { fd: number; portId: number } {
  const sock = opts.netnsFd === undefined ? native.nlOpen(NETLINK_ROUTE) : native.nlOpenIn(NETLINK_ROUTE, opts.netnsFd);
  try {
    if (opts.extAck ?? true) native.setsockoptInt(sock.fd, SOL_NETLINK, NETLINK_EXT_ACK, 1);
    if (opts.strict ?? true) native.setsockoptInt(sock.fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1);
    try {
      native.setsockoptInt(sock.fd, SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF);
    } catch {
      native.setsockoptInt(sock.fd, SOL_SOCKET, SO_RCVBUF, RCVBUF);
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
 * Sequence numbers of their own: NetlinkSocket numbers its requests from the clock's seconds,
 * below 2^31, so an answer left over from an abandoned request is never taken for one of its own.
 */
let seq = 0x80000000;

/** A request's bytes: netlink header (REQUEST|ACK, and `flags`), ifinfomsg, then `attrs` (already padded). */
function linkRequest(type: number, flags: number, index: number, ifFlags: number, change: number, attrs: Uint8Array[]): Uint8Array {
  let len = NLMSG_HDRLEN + IFINFOMSG_LEN;
  for (const a of attrs) len += a.length;
  const b = new Uint8Array(len);
  const v = le(b);
  v.setUint32(0, len, true);
  v.setUint16(4, type, true);
  v.setUint16(6, flags | NLM_F_REQUEST | NLM_F_ACK, true);
  // bytes 8-11: the sequence number, written by exchangeSync; 12-15: port 0 (the kernel).
  v.setInt32(NLMSG_HDRLEN + 4, index, true);
  v.setUint32(NLMSG_HDRLEN + 8, ifFlags >>> 0, true);
  v.setUint32(NLMSG_HDRLEN + 12, change >>> 0, true);
  let off = NLMSG_HDRLEN + IFINFOMSG_LEN;
  for (const a of attrs) {
    b.set(a, off);
    off += a.length;
  }
  return b;
}

/** One attribute, padded to 4 bytes: header then `payload`. */
function attr(type: number, payload: Uint8Array): Uint8Array {
  const b = new Uint8Array((NLA_HDRLEN + payload.length + 3) & ~3);
  const v = le(b);
  v.setUint16(0, NLA_HDRLEN + payload.length, true);
  v.setUint16(2, type, true);
  b.set(payload, NLA_HDRLEN);
  return b;
}

function u32(type: number, value: number): Uint8Array {
  const b = new Uint8Array(4);
  le(b).setUint32(0, value >>> 0, true);
  return attr(type, b);
}

/**
 * Calls `fn(type, start, end)` for each attribute in buf[from, to), type without its flag bits.
 * Bad lengths throw as the generic decoder's do; trailing zero padding ends the walk.
 */
export function eachAttr(buf: Buffer, from: number, to: number, fn: (type: number, start: number, end: number) => void): void {
  const v = le(buf);
  for (let off = from; off < to; ) {
    if (to - off < NLA_HDRLEN) {
      for (let i = off; i < to; i++) if (buf[i] !== 0) throw new NetlinkDecodeError(`truncated attribute header at offset ${off - from}`);
      return;
    }
    const len = v.getUint16(off, true);
    const type = v.getUint16(off + 2, true) & NLA_TYPE_MASK;
    if (len < NLA_HDRLEN || off + len > to) throw new NetlinkDecodeError(`attribute type ${type} at offset ${off - from}: bad length ${len}`);
    fn(type, off + NLA_HDRLEN, off + len);
    off += (len + 3) & ~3;
  }
}

/** A string attribute as attr.ts decodes one: UTF-8 up to the first NUL. */
export function text(buf: Buffer, start: number, end: number): string {
  let nul = start;
  while (nul < end && buf[nul] !== 0) nul++;
  return buf.toString('utf8', start, nul);
}

/**
 * The error an NLMSG_ERROR or NLMSG_DONE body reports, with the kernel's extended-ack text and
 * offset (null: an ACK, or a dump's clean end). An NLMSG_ERROR body echoes the request (only its
 * header when NLM_F_CAPPED), then the TLVs if NLM_F_ACK_TLVS; as message.ts's decodeError.
 */
function ackError(type: number, body: Buffer, flags: number, ctx: NetlinkErrorContext): NetlinkError | null {
  if (type === NLMSG_DONE && body.length < 4) return null;
  const what = type === NLMSG_ERROR ? 'NLMSG_ERROR' : 'NLMSG_DONE';
  if (body.length < 4 || (type === NLMSG_ERROR && body.length < 4 + NLMSG_HDRLEN)) throw new NetlinkDecodeError(`${what}: ${body.length} bytes`);
  const v = le(body);
  const errno = 0 - v.getInt32(0, true) || 0;
  if (errno === 0) return null;
  let message: string | undefined;
  let offset: number | undefined;
  let tlvs = 4;
  if (type === NLMSG_ERROR) tlvs += flags & NLM_F_CAPPED ? NLMSG_HDRLEN : (v.getUint32(4, true) + 3) & ~3;
  if (flags & NLM_F_ACK_TLVS && tlvs <= body.length) {
    eachAttr(body, tlvs, body.length, (t, s, e) => {
      if (t === NLMSGERR_ATTR_MSG) message = text(body, s, e);
      else if (t === NLMSGERR_ATTR_OFFS && e - s >= 4) offset = v.getUint32(s, true);
    });
  }
  return new NetlinkError(errno, ctx, message, offset);
}

/** A failed send or receive as a NetlinkError naming the request (ENOBUFS: messages were dropped). */
function syscallError(e: unknown, ctx: NetlinkErrorContext): unknown {
  if (isErrno(e, 'ENOBUFS')) return NetlinkError.fromQbh(e.errno, ctx, 'receive buffer overrun: kernel messages were dropped');
  const errno = (e as { errno?: unknown }).errno;
  return typeof errno === 'number' && errno !== 0 ? new NetlinkError(Math.abs(errno), ctx) : e;
}

/**
 * Sends `request` (its sequence number written here) on the rtnetlink socket `fd` and blocks until
 * the kernel has answered it: the ACK of a request, or the NLMSG_DONE of a dump (NLM_F_DUMP in its
 * flags). `onReply(type, body)` gets each other message of the answer. Throws the kernel's error as
 * a NetlinkError. Returns whether a dump was flagged NLM_F_DUMP_INTR (interrupted: run it again).
 */
export function exchangeSync(fd: number, request: Uint8Array, ctx: NetlinkErrorContext, onReply: (type: number, body: Buffer) => void = () => undefined): boolean {
  seq = seq >= 0xffffffff ? 0x80000000 : seq + 1;
  const mySeq = seq;
  const head = le(request);
  head.setUint32(8, mySeq, true);
  const dump = (head.getUint16(6, true) & NLM_F_DUMP) === NLM_F_DUMP;
  try {
    native.nlSend(fd, request);
  } catch (e) {
    throw syscallError(e, ctx);
  }
  const deadline = Date.now() + SYNC_TIMEOUT_MS;
  let interrupted = false;
  for (;;) {
    let got;
    try {
      got = native.nlRecv(fd, Math.max(1, deadline - Date.now()));
    } catch (e) {
      throw syscallError(e, ctx);
    }
    if (got === null) {
      if (Date.now() >= deadline) throw NetlinkError.fromQbh(ETIMEDOUT, ctx, 'no answer from the kernel');
      continue;
    }
    if (got.portId !== 0) continue; // only the kernel answers requests
    const buf = got.data;
    const v = le(buf);
    for (let off = 0; off < buf.length; ) {
      if (buf.length - off < NLMSG_HDRLEN) throw new NetlinkDecodeError(`truncated message header at offset ${off}`);
      const len = v.getUint32(off, true);
      if (len < NLMSG_HDRLEN || len > buf.length - off) throw new NetlinkDecodeError(`message at offset ${off}: bad length ${len}`);
      const type = v.getUint16(off + 4, true);
      const flags = v.getUint16(off + 6, true);
      if (v.getUint32(off + 8, true) === mySeq) {
        if (flags & NLM_F_DUMP_INTR) interrupted = true;
        const body = buf.subarray(off + NLMSG_HDRLEN, off + len);
        if (type === NLMSG_ERROR || type === NLMSG_DONE) {
          const error = ackError(type, body, flags, ctx);
          if (error) throw error;
          // An ACK ends a request; a dump ends only with DONE.
          if (type === NLMSG_DONE || !dump) return interrupted;
        } else onReply(type, body);
      }
      off += (len + 3) & ~3;
    }
  }
}

/** The RTM_GETLINK of one link by name, as `Rtnl.getLinkMessageSync(name)` sends it. */
export function getLinkRequest(name: string): Uint8Array {
  return linkRequest(RTM_GETLINK, 0, 0, 0, 0, [attr(IFLA_IFNAME, Buffer.from(`${name}\0`, 'utf8')), u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)]);
}

/** What one RTM_NEWLINK changes on a link, as `Rtnl.setLinkSync` takes it (MAC as `aa:bb:…`). */
export interface LeanLinkChanges {
  mtu?: number;
  address?: string;
  master?: number;
  up?: boolean;
}

/**
 * The RTM_NEWLINK that `Rtnl.setLinkSync(index, changes)` sends: ifinfomsg with IFF_UP in flags and
 * change when `up` is given, then IFLA_ADDRESS, IFLA_MTU, IFLA_MASTER (the IFLA table's order).
 */
export function setLinkRequest(index: number, c: LeanLinkChanges): Uint8Array {
  const attrs: Uint8Array[] = [];
  if (c.address !== undefined) attrs.push(attr(IFLA_ADDRESS, Uint8Array.from(c.address.split(':'), (h) => parseInt(h, 16))));
  if (c.mtu !== undefined) attrs.push(u32(IFLA_MTU, c.mtu));
  if (c.master !== undefined) attrs.push(u32(IFLA_MASTER, c.master));
  return linkRequest(RTM_NEWLINK, 0, index, c.up ? IFF_UP : 0, c.up === undefined ? 0 : IFF_UP, attrs);
}

/**
 * Applies `changes` to the link `index` in one RTM_NEWLINK on the rtnetlink socket `fd`, blocking;
 * errors name `target` as `Rtnl.setLinkSync`'s do (`setLink TARGET: …`).
 * Equivalent to `ip link set dev TARGET [mtu N] [address MAC] [master BR] [up]`.
 */
export function setLinkSync(fd: number, index: number, changes: LeanLinkChanges, target = String(index)): void {
  exchangeSync(fd, setLinkRequest(index, changes), { op: 'setLink', target });
}

/**
 * Every name in use by a link, altnames included (one dump, run again while interrupted), blocking:
 * `Rtnl.linkNamesSync`, for failure paths only (it scales with the links on the machine).
 */
export function linkNamesSync(fd: number, op = 'getLink'): Set<string> {
  for (let run = 0; run < DUMP_RETRIES; run++) {
    const names = new Set<string>();
    // ifinfomsg all zero (AF_UNSPEC): every link.
    const request = linkRequest(RTM_GETLINK, NLM_F_DUMP, 0, 0, 0, [u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)]);
    const interrupted = exchangeSync(fd, request, { op }, (type, body) => {
      if (type !== RTM_NEWLINK || body.length < IFINFOMSG_LEN) return;
      let named = false;
      eachAttr(body, IFINFOMSG_LEN, body.length, (t, s, e) => {
        if (t === IFLA_IFNAME && !named) {
          names.add(text(body, s, e));
          named = true;
        } else if (t === IFLA_PROP_LIST) eachAttr(body, s, e, (t2, s2, e2) => t2 === IFLA_ALT_IFNAME && names.add(text(body, s2, e2)));
      });
    });
    if (!interrupted) return names;
  }
  throw new DumpInterruptedError(op, DUMP_RETRIES, []);
}
