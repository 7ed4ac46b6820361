/**
 * The link requests an attach makes, built and read by hand on the wire core (wire.ts) rather than
 * with the generic tables (attr.ts, tables.ts, message.ts, rtnl.ts): one link looked up by name,
 * one RTM_NEWLINK that changes a link, and the dump of every name in use. The helper runs once per
 * attach, and loading, compiling and running the generic tables would cost it a large share of its
 * start (docs/performance.md, "Helper attach"); these read only the attributes it decides on. The
 * requests are byte for byte the ones `Rtnl` sends for the same call (test/netlink-link-requests.test.ts
 * compares them) but their sequence numbers; the errors are the same NetlinkErrors.
 * @internal
 * @module
 */
import {
  IFF_UP,
  IFINFOMSG_LEN,
  IFLA_ADDRESS,
  IFLA_ALT_IFNAME,
  IFLA_EXT_MASK,
  IFLA_IFNAME,
  IFLA_INFO_KIND,
  IFLA_LINKINFO,
  IFLA_MASTER,
  IFLA_MTU,
  IFLA_PROP_LIST,
  NLA_TYPE_MASK,
  NLM_F_DUMP,
  RTEXT_FILTER_SKIP_STATS,
  RTM_GETLINK,
  RTM_NEWLINK,
} from './constants.js';
import { NetlinkDecodeError, NetlinkError, type NetlinkErrorContext } from './errors.js';
import type { LinkMessage } from './message.js';
import { ENODEV, addonTransport, concatBytes, dumpSync, eachAttr, exchangeSync, le, nlAttr, nlU32, requestMessage, text, type Transport } from './wire.js';

/** An ifinfomsg body: the header's fields, then `attrs` (each already padded). */
function linkBody(index: number, ifFlags: number, change: number, attrs: Uint8Array[]): Uint8Array {
  const head = new Uint8Array(IFINFOMSG_LEN);
  const v = le(head);
  // family (byte 0) and type (bytes 2-3): 0, AF_UNSPEC and any link type.
  v.setInt32(4, index, true);
  v.setUint32(8, ifFlags >>> 0, true);
  v.setUint32(12, change >>> 0, true);
  return concatBytes(head, attrs);
}

const attr = nlAttr;
const u32 = nlU32;

/** The RTM_GETLINK of one link by name, as `Rtnl.getLinkMessage(name)` sends it. */
export function getLinkRequest(name: string): Uint8Array {
  return requestMessage(RTM_GETLINK, 0, linkBody(0, 0, 0, [attr(IFLA_IFNAME, Buffer.from(`${name}\0`, 'utf8')), u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)]));
}

/** What one RTM_NEWLINK changes on a link (MAC as `aa:bb:…`, master by ifindex). */
export interface LinkChanges {
  mtu?: number;
  address?: string;
  master?: number;
  up?: boolean;
}

/**
 * The RTM_NEWLINK that applies `c` to the link `index`, as rtnl.ts's `setLinkBody` encodes it:
 * ifinfomsg with IFF_UP in flags and change when `up` is given, then IFLA_ADDRESS, IFLA_MTU,
 * IFLA_MASTER (the IFLA table's order).
 */
export function setLinkRequest(index: number, c: LinkChanges): Uint8Array {
  const attrs: Uint8Array[] = [];
  if (c.address !== undefined) attrs.push(attr(IFLA_ADDRESS, Uint8Array.from(c.address.split(':'), (h) => parseInt(h, 16))));
  if (c.mtu !== undefined) attrs.push(u32(IFLA_MTU, c.mtu));
  if (c.master !== undefined) attrs.push(u32(IFLA_MASTER, c.master));
  return requestMessage(RTM_NEWLINK, 0, linkBody(index, c.up ? IFF_UP : 0, c.up === undefined ? 0 : IFF_UP, attrs));
}

/** The dump of every link (ifinfomsg all zero: AF_UNSPEC), counters left out. */
export function linkDumpRequest(): Uint8Array {
  return requestMessage(RTM_GETLINK, NLM_F_DUMP, linkBody(0, 0, 0, [u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)]));
}

/**
 * Applies `changes` to the link `index` in one RTM_NEWLINK on the rtnetlink socket `fd`, blocking;
 * errors name `target` as `Rtnl.setLink`'s do (`setLink TARGET: …`).
 * Equivalent to `ip link set dev TARGET [mtu N] [address MAC] [master BR] [up]`.
 */
export function setLinkSync(fd: number, index: number, changes: LinkChanges, target = String(index), t: Transport = addonTransport): void {
  exchangeSync(fd, setLinkRequest(index, changes), { op: 'setLink', target }, t);
}

/**
 * Every name in use by a link, altnames included (one dump, run again while interrupted),
 * blocking: what the kernel checks a `%d` template against. For failure paths only: it scales
 * with the links on the machine.
 */
export function linkNamesSync(fd: number, op = 'getLink', t: Transport = addonTransport): Set<string> {
  const names = new Set<string>();
  for (const m of dumpSync(fd, linkDumpRequest(), { op }, t)) {
    if (m.type !== RTM_NEWLINK || m.payload.length < IFINFOMSG_LEN) continue;
    const body = m.payload;
    let named = false;
    eachAttr(body, IFINFOMSG_LEN, body.length, (type, s, e) => {
      if ((type & NLA_TYPE_MASK) === IFLA_IFNAME && !named) {
        names.add(text(body, s, e));
        named = true;
      } else if ((type & NLA_TYPE_MASK) === IFLA_PROP_LIST) eachAttr(body, s, e, (t2, s2, e2) => (t2 & NLA_TYPE_MASK) === IFLA_ALT_IFNAME && names.add(text(body, s2, e2)));
    });
  }
  return names;
}

/**
 * A link's RTM_NEWLINK with only the attributes the helper decides on, decoded as the generic
 * tables decode them (the first of a repeated attribute counts; altnames are all kept): `ifname`,
 * `mtu`, `linkinfo.kind`, `propList.altIfname`. Enough for the helper's ACL names and for the tap
 * layer (`openTapSync`'s `bridgeLink`).
 */
export function decodeBrief(payload: Buffer): LinkMessage {
  if (payload.length < IFINFOMSG_LEN) throw new NetlinkDecodeError(`ifinfomsg: ${payload.length} bytes, expected ${IFINFOMSG_LEN}`);
  const v = le(payload);
  const attrs: LinkMessage['attrs'] = {};
  const altnames: string[] = [];
  eachAttr(payload, IFINFOMSG_LEN, payload.length, (rawType, start, end) => {
    const type = rawType & NLA_TYPE_MASK;
    if (type === IFLA_IFNAME && attrs.ifname === undefined) attrs.ifname = text(payload, start, end);
    else if (type === IFLA_MTU && attrs.mtu === undefined) {
      if (end - start < 4) throw new NetlinkDecodeError(`IFLA_MTU: ${end - start} bytes, expected 4`);
      attrs.mtu = v.getUint32(start, true);
    } else if (type === IFLA_LINKINFO && attrs.linkinfo === undefined) {
      const linkinfo: { kind?: string } = {};
      eachAttr(payload, start, end, (t, s, e) => {
        if ((t & NLA_TYPE_MASK) === IFLA_INFO_KIND && linkinfo.kind === undefined) linkinfo.kind = text(payload, s, e);
      });
      attrs.linkinfo = linkinfo;
    } else if (type === IFLA_PROP_LIST && attrs.propList === undefined) {
      eachAttr(payload, start, end, (t, s, e) => {
        if ((t & NLA_TYPE_MASK) === IFLA_ALT_IFNAME) altnames.push(text(payload, s, e));
      });
      attrs.propList = { altIfname: altnames };
    }
  });
  return { family: payload[0]!, type: v.getUint16(2, true), index: v.getInt32(4, true), flags: v.getUint32(8, true), change: v.getUint32(12, true), attrs };
}

/**
 * Looks one link up by name (or altname: the kernel resolves both) on the rtnetlink socket `fd`,
 * blocking, and returns its RTM_NEWLINK decoded as {@link decodeBrief} says. Throws a NetlinkError
 * (ENODEV: no such link) or a NetlinkDecodeError.
 *
 * Equivalent to `ip -d link show dev NAME`, reading four of its fields.
 */
export function lookupLinkSync(fd: number, name: string, ctx: NetlinkErrorContext, t: Transport = addonTransport): LinkMessage {
  const reply = exchangeSync(fd, getLinkRequest(name), ctx, t).replies.find((m) => m.type === RTM_NEWLINK);
  // The ACK ends the request: the link came before it, or there is none.
  if (!reply) throw new NetlinkError(ENODEV, ctx);
  return decodeBrief(reply.payload);
}
