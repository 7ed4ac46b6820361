/**
 * One link looked up by name, with only the attributes the helper decides on decoded: its name,
 * MTU, kind and altnames. The helper runs once per attach, and decoding a whole RTM_NEWLINK with
 * the generic tables (attr.ts, tables.ts) cost it 0.8 ms of its ≈2 ms budget (the tables' builders
 * are compiled on first use); this reads four attributes in one pass over the reply.
 * @internal
 * @module
 */
import { native, isErrno } from '../native.js';
import {
  NLA_HDRLEN,
  NLA_TYPE_MASK,
  NLMSGERR_ATTR_MSG,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLM_F_ACK,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLM_F_REQUEST,
  RTM_GETLINK,
  RTM_NEWLINK,
} from './constants.js';
import { NetlinkDecodeError, NetlinkError, type NetlinkErrorContext } from './errors.js';
import type { LinkMessage } from './message.js';

// include/uapi/linux/if_link.h
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_LINKINFO = 18;
const IFLA_EXT_MASK = 29;
const IFLA_PROP_LIST = 52;
const IFLA_ALT_IFNAME = 53;
const IFLA_INFO_KIND = 1;
const RTEXT_FILTER_SKIP_STATS = 1 << 3;
const IFINFOMSG_LEN = 16;
/** How long the lookup waits for the kernel (as NetlinkSocket's blocking requests do). */
const TIMEOUT_MS = 30_000;

/**
 * Sequence numbers of their own: NetlinkSocket numbers its requests from the clock's seconds,
 * below 2^31, so an answer left over from an abandoned lookup is never taken for one of its own.
 */
let seq = 0x80000000;

/** The request: ifinfomsg (all zero) + IFLA_IFNAME + IFLA_EXT_MASK, as `Rtnl.getLinkMessageSync` sends it. */
function request(name: string, seqNo: number): Buffer {
  const ifname = Buffer.from(`${name}\0`, 'utf8');
  const nameLen = NLA_HDRLEN + ifname.length;
  const nameSpace = (nameLen + 3) & ~3;
  const b = Buffer.alloc(NLMSG_HDRLEN + IFINFOMSG_LEN + nameSpace + 8);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt16LE(RTM_GETLINK, 4);
  b.writeUInt16LE(NLM_F_REQUEST | NLM_F_ACK, 6);
  b.writeUInt32LE(seqNo, 8);
  let off = NLMSG_HDRLEN + IFINFOMSG_LEN;
  b.writeUInt16LE(nameLen, off);
  b.writeUInt16LE(IFLA_IFNAME, off + 2);
  ifname.copy(b, off + NLA_HDRLEN);
  off += nameSpace;
  b.writeUInt16LE(8, off);
  b.writeUInt16LE(IFLA_EXT_MASK, off + 2);
  b.writeUInt32LE(RTEXT_FILTER_SKIP_STATS, off + 4);
  return b;
}

/**
 * Calls `fn(type, start, end)` for each attribute in buf[from, to), type without its flag bits.
 * Bad lengths throw as the generic decoder's do; trailing zero padding ends the walk.
 */
function eachAttr(buf: Buffer, from: number, to: number, fn: (type: number, start: number, end: number) => void): void {
  for (let off = from; off < to; ) {
    if (to - off < NLA_HDRLEN) {
      if (buf.subarray(off, to).some((x) => x !== 0)) throw new NetlinkDecodeError(`truncated attribute header at offset ${off - from}`);
      return;
    }
    const len = buf.readUInt16LE(off);
    const type = buf.readUInt16LE(off + 2) & NLA_TYPE_MASK;
    if (len < NLA_HDRLEN || off + len > to) throw new NetlinkDecodeError(`attribute type ${type} at offset ${off - from}: bad length ${len}`);
    fn(type, off + NLA_HDRLEN, off + len);
    off += (len + 3) & ~3;
  }
}

/** A string attribute as attr.ts decodes one: UTF-8 up to the first NUL. */
function text(buf: Buffer, start: number, end: number): string {
  const nul = buf.indexOf(0, start);
  return buf.toString('utf8', start, nul < 0 || nul >= end ? end : nul);
}

/**
 * The link's RTM_NEWLINK with these attributes only, decoded as the generic tables decode them
 * (the first of a repeated attribute counts; altnames are all kept): `ifname`, `mtu`,
 * `linkinfo.kind`, `propList.altIfname`. Enough for the helper's ACL names and for the tap layer
 * (`openTapSync`'s `bridgeLink`).
 */
function decodeBrief(payload: Buffer): LinkMessage {
  if (payload.length < IFINFOMSG_LEN) throw new NetlinkDecodeError(`ifinfomsg: ${payload.length} bytes, expected ${IFINFOMSG_LEN}`);
  const attrs: LinkMessage['attrs'] = {};
  const altnames: string[] = [];
  eachAttr(payload, IFINFOMSG_LEN, payload.length, (type, start, end) => {
    if (type === IFLA_IFNAME && attrs.ifname === undefined) attrs.ifname = text(payload, start, end);
    else if (type === IFLA_MTU && attrs.mtu === undefined) {
      if (end - start < 4) throw new NetlinkDecodeError(`IFLA_MTU: ${end - start} bytes, expected 4`);
      attrs.mtu = payload.readUInt32LE(start);
    } else if (type === IFLA_LINKINFO && attrs.linkinfo === undefined) {
      const linkinfo: { kind?: string } = {};
      eachAttr(payload, start, end, (t, s, e) => {
        if (t === IFLA_INFO_KIND && linkinfo.kind === undefined) linkinfo.kind = text(payload, s, e);
      });
      attrs.linkinfo = linkinfo;
    } else if (type === IFLA_PROP_LIST && attrs.propList === undefined) {
      eachAttr(payload, start, end, (t, s, e) => {
        if (t === IFLA_ALT_IFNAME) altnames.push(text(payload, s, e));
      });
      attrs.propList = { altIfname: altnames };
    }
  });
  return { family: payload[0]!, type: payload.readUInt16LE(2), index: payload.readInt32LE(4), flags: payload.readUInt32LE(8), change: payload.readUInt32LE(12), attrs };
}

/**
 * The error an NLMSG_ERROR body reports, with the kernel's extended-ack text (null: an ACK). The
 * body echoes the request (only its header when NLM_F_CAPPED), then the TLVs if NLM_F_ACK_TLVS.
 */
function ackError(body: Buffer, flags: number, ctx: NetlinkErrorContext): NetlinkError | null {
  if (body.length < 4 + NLMSG_HDRLEN) throw new NetlinkDecodeError(`NLMSG_ERROR: ${body.length} bytes`);
  const errno = -body.readInt32LE(0);
  if (errno === 0) return null;
  let message: string | undefined;
  const tlvs = 4 + (flags & NLM_F_CAPPED ? NLMSG_HDRLEN : (body.readUInt32LE(4) + 3) & ~3);
  if (flags & NLM_F_ACK_TLVS && tlvs <= body.length) {
    eachAttr(body, tlvs, body.length, (t, s, e) => {
      if (t === NLMSGERR_ATTR_MSG) message = text(body, s, e);
    });
  }
  return new NetlinkError(errno, ctx, message);
}

/**
 * Looks one link up by name (or altname: the kernel resolves both) on the rtnetlink socket `fd`,
 * blocking, and returns its RTM_NEWLINK decoded as {@link decodeBrief} says. Throws a NetlinkError
 * (ENODEV: no such link) or a NetlinkDecodeError.
 *
 * Equivalent to `ip -d link show dev NAME`, reading four of its fields.
 */
export function lookupLinkSync(fd: number, name: string, ctx: NetlinkErrorContext): LinkMessage {
  seq = seq >= 0xffffffff ? 0x80000000 : seq + 1;
  const mySeq = seq;
  try {
    native.nlSend(fd, request(name, mySeq));
  } catch (e) {
    throw syscallError(e, ctx);
  }
  const deadline = Date.now() + TIMEOUT_MS;
  let link: LinkMessage | undefined;
  for (;;) {
    let got;
    try {
      got = native.nlRecv(fd, Math.max(1, deadline - Date.now()));
    } catch (e) {
      throw syscallError(e, ctx);
    }
    if (got === null) {
      if (Date.now() >= deadline) throw new NetlinkError(110, ctx, 'no answer from the kernel');
      continue;
    }
    if (got.portId !== 0) continue; // only the kernel answers requests
    const buf = got.data;
    for (let off = 0; off < buf.length; ) {
      if (buf.length - off < NLMSG_HDRLEN) throw new NetlinkDecodeError(`truncated message header at offset ${off}`);
      const len = buf.readUInt32LE(off);
      if (len < NLMSG_HDRLEN || len > buf.length - off) throw new NetlinkDecodeError(`message at offset ${off}: bad length ${len}`);
      const type = buf.readUInt16LE(off + 4);
      const flags = buf.readUInt16LE(off + 6);
      if (buf.readUInt32LE(off + 8) === mySeq) {
        const body = buf.subarray(off + NLMSG_HDRLEN, off + len);
        if (type === RTM_NEWLINK) link ??= decodeBrief(body);
        else if (type === NLMSG_ERROR) {
          // The ACK ends the request: the link came before it, or there is none.
          const error = ackError(body, flags, ctx);
          if (error) throw error;
          if (!link) throw new NetlinkError(19, ctx);
          return link;
        }
      }
      off += (len + 3) & ~3;
    }
  }
}

/** A failed send or receive as a NetlinkError naming the request (ENOBUFS: messages were dropped). */
function syscallError(e: unknown, ctx: NetlinkErrorContext): unknown {
  if (isErrno(e, 'ENOBUFS')) return new NetlinkError(e.errno, ctx, 'receive buffer overrun: kernel messages were dropped');
  const errno = (e as { errno?: unknown }).errno;
  return typeof errno === 'number' && errno !== 0 ? new NetlinkError(Math.abs(errno), ctx) : e;
}
