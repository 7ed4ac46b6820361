/**
 * Netlink messages: nlmsghdr, and the rtnetlink bodies qbh uses (ifinfomsg, ifaddrmsg), each a
 * fixed header followed by attributes decoded with the tables.
 * @module
 */
import { decodeAttrs, encodeAttrs, pickAttrs, walk, type AttrSet, type AttrTable } from './attr.js';
import {
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLMSGERR_ATTR_MSG,
  NLMSGERR_ATTR_OFFS,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLA_TYPE_MASK,
  RTM_DELADDR,
  RTM_DELLINK,
  RTM_GETADDR,
  RTM_GETLINK,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_SETLINK,
} from './constants.js';
import { NetlinkDecodeError } from './errors.js';
import { IFA, IFLA, type AddrAttrs, type LinkAttrs } from './tables.js';

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

/**
 * struct ifinfomsg + IFLA_* attributes: RTM_NEWLINK / DELLINK / GETLINK / SETLINK. `A`: the
 * attributes' type, all of IFLA's by default, or a projection's (see {@link decodeLink}).
 */
export interface LinkMessage<A extends AttrSet = LinkAttrs> {
  family: number;
  /** ARPHRD_* link type. */
  type: number;
  index: number;
  flags: number;
  change: number;
  attrs: A;
  /**
   * The ifinfomsg body, when `attrs` holds only some of its attributes (a projection's): what
   * kernelAttributes() decodes in full.
   */
  body?: Buffer;
}

/** struct ifaddrmsg + IFA_* attributes: RTM_NEWADDR / DELADDR / GETADDR. */
export interface AddrMessage {
  family: number;
  prefixlen: number;
  flags: number;
  scope: number;
  index: number;
  attrs: AddrAttrs;
}

/** An NLMSG_ERROR (errno 0 is an ACK) or an NLMSG_DONE with its status, plus extended-ack data. */
export interface ErrorMessage {
  /** Positive errno; 0 for an ACK or a clean DONE. */
  errno: number;
  message?: string;
  offset?: number;
}

const IFINFOMSG_LEN = 16;
const IFADDRMSG_LEN = 8;

/** Splits a datagram into messages. Throws NetlinkDecodeError on a malformed length. */
export function splitMessages(buf: Buffer): RawMessage[] {
  const out: RawMessage[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < NLMSG_HDRLEN) throw new NetlinkDecodeError(`truncated message header at offset ${off}`);
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || len > buf.length - off) {
      throw new NetlinkDecodeError(`message at offset ${off}: bad length ${len}`);
    }
    out.push({
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      pid: buf.readUInt32LE(off + 12),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += (len + 3) & ~3;
  }
  return out;
}

/** Builds one message: header + payload, length filled in. */
export function encodeMessage(hdr: NlHeader, payload: Buffer): Buffer {
  const b = Buffer.alloc(NLMSG_HDRLEN + payload.length);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt16LE(hdr.type, 4);
  b.writeUInt16LE(hdr.flags, 6);
  b.writeUInt32LE(hdr.seq >>> 0, 8);
  b.writeUInt32LE(hdr.pid >>> 0, 12);
  payload.copy(b, NLMSG_HDRLEN);
  return b;
}

/**
 * Decodes an ifinfomsg body: with IFLA, every attribute (the set re-encodes byte for byte); with
 * a projection (a table pickTable made of IFLA's rows), only the attributes it names, read with
 * pickAttrs, and the body itself kept for a full decode later (`body`). Structs are read by their
 * minimum length. Throws only NetlinkDecodeError.
 */
export function decodeLink(payload: Buffer): LinkMessage;
export function decodeLink<A extends AttrSet>(payload: Buffer, projection: AttrTable<A>): LinkMessage<A>;
export function decodeLink(payload: Buffer, projection: AttrTable = IFLA): LinkMessage<AttrSet> {
  if (payload.length < IFINFOMSG_LEN) throw new NetlinkDecodeError(`ifinfomsg: ${payload.length} bytes, expected ${IFINFOMSG_LEN}`);
  const family = payload.readUInt8(0);
  const type = payload.readUInt16LE(2);
  const index = payload.readInt32LE(4);
  const flags = payload.readUInt32LE(8);
  const change = payload.readUInt32LE(12);
  if (projection === IFLA) return { family, type, index, flags, change, attrs: decodeAttrs(projection, payload.subarray(IFINFOMSG_LEN)) };
  return { family, type, index, flags, change, attrs: pickAttrs(projection, payload, IFINFOMSG_LEN), body: payload };
}

/** Encodes an ifinfomsg body. */
export function encodeLink(m: Partial<LinkMessage>): Buffer {
  const head = Buffer.alloc(IFINFOMSG_LEN);
  head.writeUInt8(m.family ?? 0, 0);
  head.writeUInt16LE(m.type ?? 0, 2);
  head.writeInt32LE(m.index ?? 0, 4);
  head.writeUInt32LE((m.flags ?? 0) >>> 0, 8);
  head.writeUInt32LE((m.change ?? 0) >>> 0, 12);
  return Buffer.concat([head, encodeAttrs(IFLA, m.attrs ?? {})]);
}

/** Decodes an ifaddrmsg body. */
export function decodeAddr(payload: Buffer): AddrMessage {
  if (payload.length < IFADDRMSG_LEN) throw new NetlinkDecodeError(`ifaddrmsg: ${payload.length} bytes, expected ${IFADDRMSG_LEN}`);
  return {
    family: payload.readUInt8(0),
    prefixlen: payload.readUInt8(1),
    flags: payload.readUInt8(2),
    scope: payload.readUInt8(3),
    index: payload.readUInt32LE(4),
    attrs: decodeAttrs(IFA, payload.subarray(IFADDRMSG_LEN)),
  };
}

/** Encodes an ifaddrmsg body. */
export function encodeAddr(m: Partial<AddrMessage>): Buffer {
  const head = Buffer.alloc(IFADDRMSG_LEN);
  head.writeUInt8(m.family ?? 0, 0);
  head.writeUInt8(m.prefixlen ?? 0, 1);
  head.writeUInt8(m.flags ?? 0, 2);
  head.writeUInt8(m.scope ?? 0, 3);
  head.writeUInt32LE(m.index ?? 0, 4);
  return Buffer.concat([head, encodeAttrs(IFA, m.attrs ?? {})]);
}

/**
 * Decodes NLMSG_ERROR or NLMSG_DONE. An error echoes the request's header (whole request unless
 * NLM_F_CAPPED), then extended-ack TLVs if NLM_F_ACK_TLVS; a DONE carries only the status and TLVs
 * (dump errors arrive there: docs/netlink-pitfalls.md, §4).
 */
export function decodeError(msg: RawMessage): ErrorMessage {
  const p = msg.payload;
  if (msg.type === NLMSG_DONE && p.length < 4) return { errno: 0 };
  if (p.length < 4) throw new NetlinkDecodeError(`${msg.type === NLMSG_ERROR ? 'NLMSG_ERROR' : 'NLMSG_DONE'}: ${p.length} bytes`);
  const errno = 0 - p.readInt32LE(0) || 0;
  const out: ErrorMessage = { errno };
  let tlvStart = 4;
  if (msg.type === NLMSG_ERROR) {
    if (p.length < 4 + NLMSG_HDRLEN) throw new NetlinkDecodeError(`NLMSG_ERROR: ${p.length} bytes`);
    const echoed = p.readUInt32LE(4);
    tlvStart = msg.flags & NLM_F_CAPPED ? 4 + NLMSG_HDRLEN : 4 + ((echoed + 3) & ~3);
  }
  if (msg.flags & NLM_F_ACK_TLVS && tlvStart <= p.length) {
    walk(p.subarray(tlvStart), (type, data) => {
      if ((type & NLA_TYPE_MASK) === NLMSGERR_ATTR_MSG) out.message = data.toString('utf8').replace(/\0.*$/s, '');
      else if ((type & NLA_TYPE_MASK) === NLMSGERR_ATTR_OFFS && data.length >= 4) out.offset = data.readUInt32LE(0);
    });
  }
  return out;
}

/** A decoded message of the kinds qbh reads. */
export type Message =
  | (NlHeader & { kind: 'link'; link: LinkMessage })
  | (NlHeader & { kind: 'addr'; addr: AddrMessage })
  | (NlHeader & { kind: 'error' | 'done'; error: ErrorMessage })
  | (NlHeader & { kind: 'other'; payload: Buffer });

/** Decodes one message of a datagram (from {@link splitMessages}). Throws only NetlinkDecodeError. */
export function decodeMessage(m: RawMessage): Message {
  const { type, flags, seq, pid } = m;
  switch (type) {
    case RTM_NEWLINK:
    case RTM_DELLINK:
    case RTM_GETLINK:
    case RTM_SETLINK:
      return { type, flags, seq, pid, kind: 'link', link: decodeLink(m.payload) };
    case RTM_NEWADDR:
    case RTM_DELADDR:
    case RTM_GETADDR:
      return { type, flags, seq, pid, kind: 'addr', addr: decodeAddr(m.payload) };
    case NLMSG_ERROR:
      return { type, flags, seq, pid, kind: 'error', error: decodeError(m) };
    case NLMSG_DONE:
      return { type, flags, seq, pid, kind: 'done', error: decodeError(m) };
    default:
      return { type, flags, seq, pid, kind: 'other', payload: Buffer.from(m.payload) };
  }
}

/** Decodes a datagram into typed messages. Throws only NetlinkDecodeError. */
export function decodeMessages(buf: Buffer): Message[] {
  return splitMessages(buf).map(decodeMessage);
}

/** Encodes a typed link or address message (the inverse of decodeMessages for those kinds). */
export function encodeTyped(m: Message): Buffer {
  const hdr = { type: m.type, flags: m.flags, seq: m.seq, pid: m.pid };
  switch (m.kind) {
    case 'link':
      return encodeMessage(hdr, encodeLink(m.link));
    case 'addr':
      return encodeMessage(hdr, encodeAddr(m.addr));
    case 'other':
      return encodeMessage(hdr, m.payload);
    default:
      throw new TypeError(`cannot re-encode an ${m.kind} message`);
  }
}
