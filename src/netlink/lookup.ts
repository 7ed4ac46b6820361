/**
 * One link looked up by name, with only the attributes the helper decides on decoded: its name,
 * MTU, kind and altnames. The helper runs once per attach, and decoding a whole RTM_NEWLINK with
 * the generic tables (attr.ts, tables.ts) cost it 0.8 ms of its ≈2 ms budget (the tables' builders
 * are compiled on first use); this reads four attributes in one pass over the reply.
 * @internal
 * @module
 */
import { RTM_NEWLINK } from './constants.js';
import { NetlinkDecodeError, NetlinkError, type NetlinkErrorContext } from './errors.js';
import { IFINFOMSG_LEN, eachAttr, exchangeSync, getLinkRequest, le, text } from './lean.js';
import type { LinkMessage } from './message.js';

// include/uapi/linux/if_link.h
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_LINKINFO = 18;
const IFLA_PROP_LIST = 52;
const IFLA_ALT_IFNAME = 53;
const IFLA_INFO_KIND = 1;

/**
 * The link's RTM_NEWLINK with these attributes only, decoded as the generic tables decode them
 * (the first of a repeated attribute counts; altnames are all kept): `ifname`, `mtu`,
 * `linkinfo.kind`, `propList.altIfname`. Enough for the helper's ACL names and for the tap layer
 * (`openTapSync`'s `bridgeLink`).
 */
function decodeBrief(payload: Buffer): LinkMessage {
  if (payload.length < IFINFOMSG_LEN) throw new NetlinkDecodeError(`ifinfomsg: ${payload.length} bytes, expected ${IFINFOMSG_LEN}`);
  const v = le(payload);
  const attrs: LinkMessage['attrs'] = {};
  const altnames: string[] = [];
  eachAttr(payload, IFINFOMSG_LEN, payload.length, (type, start, end) => {
    if (type === IFLA_IFNAME && attrs.ifname === undefined) attrs.ifname = text(payload, start, end);
    else if (type === IFLA_MTU && attrs.mtu === undefined) {
      if (end - start < 4) throw new NetlinkDecodeError(`IFLA_MTU: ${end - start} bytes, expected 4`);
      attrs.mtu = v.getUint32(start, true);
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
  return { family: payload[0]!, type: v.getUint16(2, true), index: v.getInt32(4, true), flags: v.getUint32(8, true), change: v.getUint32(12, true), attrs };
}

/**
 * Looks one link up by name (or altname: the kernel resolves both) on the rtnetlink socket `fd`,
 * blocking, and returns its RTM_NEWLINK decoded as {@link decodeBrief} says. Throws a NetlinkError
 * (ENODEV: no such link) or a NetlinkDecodeError.
 *
 * Equivalent to `ip -d link show dev NAME`, reading four of its fields.
 */
export function lookupLinkSync(fd: number, name: string, ctx: NetlinkErrorContext): LinkMessage {
  let link: LinkMessage | undefined;
  exchangeSync(fd, getLinkRequest(name), ctx, (type, body) => {
    if (type === RTM_NEWLINK) link ??= decodeBrief(body);
  });
  // The ACK ends the request: the link came before it, or there is none.
  if (!link) throw new NetlinkError(19, ctx);
  return link;
}
