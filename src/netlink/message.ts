/**
 * Netlink messages: nlmsghdr, and the rtnetlink bodies qbh uses (ifinfomsg, ifaddrmsg), each a
 * fixed header followed by attributes decoded with the tables.
 * @module
 */
import { decodeAttrs, encodeAttrs, pickAttrs, type AttrSet, type AttrTable } from './attr.js';
import {
  NLMSG_DONE,
  NLMSG_ERROR,
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
import { decodeError, encodeMessage, splitMessages, type ErrorMessage, type NlHeader, type RawMessage } from './wire.js';

// The header and ack parts live in the wire core, which the helper loads without the tables.
export { decodeError, encodeMessage, splitMessages, type ErrorMessage, type NlHeader, type RawMessage };

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

const IFINFOMSG_LEN = 16;
const IFADDRMSG_LEN = 8;

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
