// Shared by the port-guard tests (test/guard-*.test.ts): frame builders with correct checksums, a
// receiver that drains a non-blocking tap fd and counts the frames it sees by the tag each crafted
// frame carries, and the lab: a bridge gbr0 (10.0.0.1/24, 2001:db8:1::1/64) with dnsmasq serving
// DHCPv4 on it, a TCP listener on 10.0.0.1 and one unguarded RECEIVER tap, the uplink, whose fd
// shows everything the bridge forwards to it. Writing a frame to a guest tap's fd is the guest
// transmitting; what the receiver reads is what arrived.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readSync, rmSync, writeSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sh } from './harness.js';
import { addressBytes } from '../src/guard/policy.js';
import { closeTap, openTap, type Tap } from '../src/tun/index.js';

// ---------------------------------------------------------------- addresses and constants

export const ETH_IPV4 = 0x0800;
export const ETH_ARP = 0x0806;
export const ETH_IPV6 = 0x86dd;
export const ETH_8021Q = 0x8100;
export const ETH_8021AD = 0x88a8;
export const ETH_LLDP = 0x88cc;
const IPPROTO_HOPOPTS = 0;
const IPPROTO_ICMP = 1;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const IPPROTO_FRAGMENT = 44;
const IPPROTO_DSTOPTS = 60;
const IPPROTO_ICMPV6 = 58;
/** The shortest Ethernet frame without its FCS: shorter frames are padded with zeros. */
const ETH_MIN_FRAME = 60;
/** ND option type 253 (RFC 4727, experimental): receivers skip it; it carries the tag. */
const ND_OPT_EXPERIMENT = 253;

export const BROADCAST = 'ff:ff:ff:ff:ff:ff';
/** A unicast MAC no port has: the bridge floods frames to it to every port (and never delivers them locally). */
export const SINK_MAC = '02:00:00:00:ee:ee';
export const STP_MAC = '01:80:c2:00:00:00';
export const LLDP_MAC = '01:80:c2:00:00:0e';
export const ALL_NODES_MAC = '33:33:00:00:00:01';
export const ALL_NODES = 'ff02::1';
export const ALL_ROUTERS = 'ff02::2';
export const DHCP6_SERVERS = 'ff02::1:2';

/** The lab's bridge, its (fixed) MAC and addresses. */
export const BRIDGE = 'gbr0';
export const GW_MAC = '02:00:00:00:01:01';
export const GW4 = '10.0.0.1';
export const GW6 = '2001:db8:1::1';
/** gbr0's IPv6 link-local address (EUI-64 of GW_MAC): the next hop of IPv6 default routes. */
export const GW_LL6 = 'fe80::ff:fe00:101';
export const PREFIX4 = '10.0.0.0/24';
export const PREFIX6 = '2001:db8:1::/64';
export const TCP_PORT = 7777;

/** A guest: the MAC it sends from and its addresses (in the guarded prefixes). */
export interface Guest {
  mac: string;
  ip4: string;
  ip6: string;
  /** Its IPv6 link-local address (EUI-64 of `mac`). */
  ll6: string;
}

/** A guest with the MAC 52:54:00:00:00:NN (QEMU's prefix) and addresses .NN / ::NN. */
export function guest(n: number): Guest {
  const hex = n.toString(16).padStart(2, '0');
  return { mac: `52:54:00:00:00:${hex}`, ip4: `10.0.0.${n}`, ip6: `2001:db8:1::${n.toString(16)}`, ll6: `fe80::5054:ff:fe00:${n.toString(16)}` };
}

/** The six bytes of a MAC in text. */
export function macBytes(mac: string): Buffer {
  return Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
}

/** The 4 or 16 bytes of an address in text (throws on a typo: a test's constant is wrong). */
export function ip(text: string): Buffer {
  const b = addressBytes(text);
  if (b === null) throw new Error(`not an address: ${text}`);
  return Buffer.from(b);
}

/** The IPv6 solicited-node multicast address of `addr` and its MAC. */
export function solicitedNode(addr: string): { ip: string; mac: string } {
  const b = ip(addr);
  const tail = [...b.subarray(13)].map((x) => x.toString(16).padStart(2, '0'));
  return { ip: `ff02::1:ff${tail[0]}:${tail[1]}${tail[2]}`, mac: `33:33:ff:${tail.join(':')}` };
}

// ---------------------------------------------------------------- the tag

/** Every crafted frame carries "qbhLAB" and a 32-bit sequence number: the receiver counts by it. */
const TAG_MAGIC = Buffer.from('qbhLAB');
export const TAG_LEN = TAG_MAGIC.length + 4;

/** The tag of frame `seq`. */
export function tag(seq: number): Buffer {
  const b = Buffer.alloc(TAG_LEN);
  TAG_MAGIC.copy(b);
  b.writeUInt32BE(seq >>> 0, TAG_MAGIC.length);
  return b;
}

/** The sequence numbers of the tags in one frame. */
export function tagsIn(frame: Buffer): number[] {
  const out: number[] = [];
  for (let at = frame.indexOf(TAG_MAGIC); at >= 0 && at + TAG_LEN <= frame.length; at = frame.indexOf(TAG_MAGIC, at + 1)) {
    out.push(frame.readUInt32BE(at + TAG_MAGIC.length));
  }
  return out;
}

// ---------------------------------------------------------------- checksums

/** The Internet checksum (RFC 1071) of the concatenated buffers. */
export function inetChecksum(...parts: Buffer[]): number {
  let sum = 0;
  let odd: number | null = null;
  for (const p of parts) {
    for (const byte of p) {
      if (odd === null) odd = byte;
      else {
        sum += (odd << 8) | byte;
        odd = null;
      }
    }
  }
  if (odd !== null) sum += odd << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** The IPv6 pseudo-header (RFC 8200 §8.1) for an upper-layer packet of `len` bytes. */
function pseudo6(src: string, dst: string, nh: number, len: number): Buffer {
  return Buffer.concat([ip(src), ip(dst), u32(len), u32(nh)]);
}

function pseudo4(src: string, dst: string, proto: number, len: number): Buffer {
  return Buffer.concat([ip(src), ip(dst), Buffer.from([0, proto]), u16(len)]);
}

// ---------------------------------------------------------------- layer 2

/** An Ethernet II frame (or 802.3 when `type` < 0x0600 is the length), padded to 60 bytes. */
export function ether(dst: string, src: string, type: number, payload: Buffer): Buffer {
  const f = Buffer.concat([macBytes(dst), macBytes(src), u16(type), payload]);
  return f.length >= ETH_MIN_FRAME ? f : Buffer.concat([f, Buffer.alloc(ETH_MIN_FRAME - f.length)]);
}

/** A frame with VLAN tags (outermost first: `[[0x88a8, 100], [0x8100, 10]]`) before `type`. */
export function tagged(dst: string, src: string, tags: [tpid: number, vid: number][], type: number, payload: Buffer): Buffer {
  const heads = tags.map(([tpid, vid]) => Buffer.concat([u16(tpid), u16(vid & 0x0fff)]));
  const f = Buffer.concat([macBytes(dst), macBytes(src), ...heads, u16(type), payload]);
  return f.length >= ETH_MIN_FRAME ? f : Buffer.concat([f, Buffer.alloc(ETH_MIN_FRAME - f.length)]);
}

/** An ARP packet (Ethernet/IPv4). `op` 1 request, 2 reply. `tail` goes after it (the tag, in the frame's padding). */
export function arp(op: 1 | 2, sha: string, spa: string, tha: string, tpa: string, tail: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([u16(1), u16(ETH_IPV4), Buffer.from([6, 4]), u16(op), macBytes(sha), ip(spa), macBytes(tha), ip(tpa), tail]);
}

/** A configuration BPDU (802.1D) in an LLC frame to 01:80:c2:00:00:00, claiming root with priority 0. */
export function bpdu(src: string, tail: Buffer): Buffer {
  const body = Buffer.alloc(35);
  // Protocol 0, version 0, type 0 (configuration), flags 0, root id = priority 0 + our MAC.
  macBytes(src).copy(body, 7);
  macBytes(src).copy(body, 19);
  body.writeUInt16BE(0x8001, 25); // port id
  body.writeUInt16BE(20 * 256, 29); // max age 20 s
  body.writeUInt16BE(2 * 256, 31); // hello 2 s
  body.writeUInt16BE(15 * 256, 33); // forward delay 15 s
  const llc = Buffer.concat([Buffer.from([0x42, 0x42, 0x03]), body, tail]);
  return ether(STP_MAC, src, llc.length, llc);
}

/** An LLDPDU (chassis id, port id, TTL, end) to 01:80:c2:00:00:0e; `tail` after the end TLV. */
export function lldp(src: string, tail: Buffer): Buffer {
  const tlv = (type: number, value: Buffer) => Buffer.concat([u16((type << 9) | value.length), value]);
  const body = Buffer.concat([
    tlv(1, Buffer.concat([Buffer.from([4]), macBytes(src)])), // chassis id: MAC
    tlv(2, Buffer.concat([Buffer.from([5]), Buffer.from('eth0')])), // port id: interface name
    tlv(3, u16(120)),
    tlv(0, Buffer.alloc(0)),
    tail,
  ]);
  return ether(LLDP_MAC, src, ETH_LLDP, body);
}

/** An 802.3 frame with an LLC/SNAP header (a length, not an EtherType, at offset 12). */
export function llcSnap(dst: string, src: string, tail: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from([0xaa, 0xaa, 0x03, 0, 0, 0]), u16(0x88b5), tail]);
  return ether(dst, src, body.length, body);
}

// ---------------------------------------------------------------- IPv4

/** IPv4 header fields a builder may set; `options` (a multiple of 4 bytes) makes the header longer. */
export interface IPv4Options {
  id?: number;
  ttl?: number;
  tos?: number;
  options?: Buffer;
}

/** IPv4 options that do nothing: a router alert (RFC 2113), 4 bytes, so the header is 24 bytes. */
export const IPV4_ROUTER_ALERT = Buffer.from([0x94, 4, 0, 0]);

/** An IPv4 packet with a correct header checksum. */
export function ipv4(src: string, dst: string, proto: number, payload: Buffer, o: IPv4Options = {}): Buffer {
  const options = o.options ?? Buffer.alloc(0);
  const h = Buffer.concat([Buffer.alloc(20), options]);
  h[0] = 0x40 | (h.length / 4);
  h[1] = o.tos ?? 0;
  h.writeUInt16BE(h.length + payload.length, 2);
  h.writeUInt16BE((o.id ?? 0) & 0xffff, 4);
  h.writeUInt16BE(0x4000, 6); // DF
  h[8] = o.ttl ?? 64;
  h[9] = proto;
  ip(src).copy(h, 12);
  ip(dst).copy(h, 16);
  h.writeUInt16BE(inetChecksum(h), 10);
  return Buffer.concat([h, payload]);
}

/** A UDP datagram over IPv4, checksummed. */
export function udp4(src: string, dst: string, sport: number, dport: number, data: Buffer, o: IPv4Options = {}): Buffer {
  const u = Buffer.concat([u16(sport), u16(dport), u16(8 + data.length), u16(0), data]);
  const c = inetChecksum(pseudo4(src, dst, IPPROTO_UDP, u.length), u);
  u.writeUInt16BE(c === 0 ? 0xffff : c, 6);
  return ipv4(src, dst, IPPROTO_UDP, u, o);
}

/** An ICMPv4 message: type, code, the 4 bytes after the checksum and the data. */
export function icmp4(src: string, dst: string, type: number, code: number, rest: Buffer, data: Buffer): Buffer {
  const m = Buffer.concat([Buffer.from([type, code, 0, 0]), rest, data]);
  m.writeUInt16BE(inetChecksum(m), 2);
  return ipv4(src, dst, IPPROTO_ICMP, m);
}

/** An ICMPv4 echo request. */
export function echo4(src: string, dst: string, id: number, seq: number, data: Buffer): Buffer {
  return icmp4(src, dst, 8, 0, Buffer.concat([u16(id), u16(seq)]), data);
}

/** A TCP SYN (MSS 1460) over IPv4, checksummed. */
export function tcpSyn(src: string, dst: string, sport: number, dport: number, isn: number): Buffer {
  const t = Buffer.alloc(24);
  t.writeUInt16BE(sport, 0);
  t.writeUInt16BE(dport, 2);
  t.writeUInt32BE(isn >>> 0, 4);
  t[12] = 6 << 4; // data offset: 6 words (one option)
  t[13] = 0x02; // SYN
  t.writeUInt16BE(64240, 14);
  Buffer.from([2, 4, 0x05, 0xb4]).copy(t, 20); // MSS 1460
  t.writeUInt16BE(inetChecksum(pseudo4(src, dst, IPPROTO_TCP, t.length), t), 16);
  return ipv4(src, dst, IPPROTO_TCP, t);
}

/** DHCPv4 message types (option 53). */
export const DHCP = { DISCOVER: 1, OFFER: 2, REQUEST: 3, ACK: 5 } as const;

/**
 * A BOOTP/DHCPv4 message. A client message (DISCOVER, REQUEST) goes 0.0.0.0:68 -> 255.255.255.255:67
 * with the broadcast flag; a server message (OFFER, ACK) from `server`:67 to 255.255.255.255:68.
 * `tail` is written into the `sname` field (ignored by clients and servers alike).
 */
export function dhcp4(type: number, chaddr: string, xid: number, o: { server?: string; yiaddr?: string; tail?: Buffer; ip?: IPv4Options } = {}): Buffer {
  const client = type === DHCP.DISCOVER || type === DHCP.REQUEST;
  const b = Buffer.alloc(240);
  b[0] = client ? 1 : 2; // op: BOOTREQUEST / BOOTREPLY
  b[1] = 1; // htype Ethernet
  b[2] = 6;
  b.writeUInt32BE(xid >>> 0, 4);
  b.writeUInt16BE(0x8000, 10); // broadcast flag
  if (o.yiaddr) ip(o.yiaddr).copy(b, 16);
  if (o.server) ip(o.server).copy(b, 20);
  macBytes(chaddr).copy(b, 28);
  o.tail?.copy(b, 44);
  b.writeUInt32BE(0x63825363, 236); // magic cookie
  const opts: number[] = [53, 1, type];
  if (!client && o.server) opts.push(54, 4, ...ip(o.server), 51, 4, 0, 0, 0x0e, 0x10, 1, 4, 255, 255, 255, 0, 3, 4, ...ip(o.server));
  if (client) opts.push(55, 3, 1, 3, 6);
  opts.push(255);
  const msg = Buffer.concat([b, Buffer.from(opts)]);
  return client ? udp4('0.0.0.0', '255.255.255.255', 68, 67, msg, o.ip) : udp4(o.server ?? '0.0.0.0', '255.255.255.255', 67, 68, msg, o.ip);
}

/** The xid and message type of a DHCPv4 server message in an IPv4/UDP frame (from port 67), or null. */
export function dhcp4Reply(frame: Buffer): { xid: number; type: number } | null {
  if (frame.length < 14 + 20 + 8 + 240 || frame.readUInt16BE(12) !== ETH_IPV4) return null;
  const ihl = (frame[14]! & 0x0f) * 4;
  if (frame[14 + 9] !== IPPROTO_UDP) return null;
  const udp = 14 + ihl;
  if (frame.readUInt16BE(udp) !== 67 || frame.readUInt16BE(udp + 2) !== 68) return null;
  const bootp = udp + 8;
  let type = 0;
  for (let i = bootp + 240; i < frame.length && frame[i] !== 255; ) {
    if (frame[i] === 0) {
      i++;
      continue;
    }
    if (frame[i] === 53) type = frame[i + 2]!;
    i += 2 + frame[i + 1]!;
  }
  return { xid: frame.readUInt32BE(bootp + 4), type };
}

// ---------------------------------------------------------------- IPv6

/** An IPv6 header over `payload`, whose first header is `nh`. */
export function ipv6(src: string, dst: string, nh: number, payload: Buffer, hlim = 64): Buffer {
  const h = Buffer.alloc(40);
  h.writeUInt32BE(0x60000000, 0);
  h.writeUInt16BE(payload.length, 4);
  h[6] = nh;
  h[7] = hlim;
  ip(src).copy(h, 8);
  ip(dst).copy(h, 24);
  return Buffer.concat([h, payload]);
}

/** An ICMPv6 message (type, code, body after the checksum), checksummed over the pseudo-header. */
export function icmp6Message(src: string, dst: string, type: number, code: number, body: Buffer): Buffer {
  const m = Buffer.concat([Buffer.from([type, code, 0, 0]), body]);
  m.writeUInt16BE(inetChecksum(pseudo6(src, dst, IPPROTO_ICMPV6, m.length), m), 2);
  return m;
}

/** A bare ICMPv6 packet over IPv6 (ND messages use hop limit 255). */
export function icmp6(src: string, dst: string, type: number, code: number, body: Buffer, hlim = 255): Buffer {
  return ipv6(src, dst, IPPROTO_ICMPV6, icmp6Message(src, dst, type, code, body), hlim);
}

/** An ND option carrying the tag (type 253, 16 bytes), which every receiver skips. */
export function tagOption(seq: number): Buffer {
  const o = Buffer.alloc(16);
  o[0] = ND_OPT_EXPERIMENT;
  o[1] = 2;
  tag(seq).copy(o, 2);
  return o;
}

/** A source (1) or target (2) link-layer address option. */
export function llOption(type: 1 | 2, mac: string): Buffer {
  return Buffer.concat([Buffer.from([type, 1]), macBytes(mac)]);
}

/** ICMPv6 types. */
export const ICMP6 = { ECHO_REQUEST: 128, ECHO_REPLY: 129, MLD2_REPORT: 143, RS: 133, RA: 134, NS: 135, NA: 136, REDIRECT: 137 } as const;

/** A neighbour solicitation for `target` (to its solicited-node group); from `::` (DAD) it has no source option. */
export function ns(src: string, srcMac: string, target: string, tail: Buffer): Buffer {
  const dst = solicitedNode(target).ip;
  const opts = src === '::' ? tail : Buffer.concat([llOption(1, srcMac), tail]);
  return icmp6(src, dst, ICMP6.NS, 0, Buffer.concat([u32(0), ip(target), opts]));
}

/** A neighbour advertisement for `target`: flags R(outer), S(olicited), O(verride). */
export function na(src: string, dst: string, mac: string, target: string, flags: NaFlags, tail: Buffer): Buffer {
  return icmp6(src, dst, ICMP6.NA, 0, naBody(mac, target, flags, tail));
}

/** The flags of a neighbour advertisement. */
export interface NaFlags {
  router?: boolean;
  solicited?: boolean;
  override?: boolean;
}

/** The ICMPv6 body of a neighbour advertisement (with a target link-layer address option, then `tail`). */
export function naBody(mac: string, target: string, flags: NaFlags, tail: Buffer): Buffer {
  const f = (flags.router ? 0x80 : 0) | (flags.solicited ? 0x40 : 0) | (flags.override ? 0x20 : 0);
  return Buffer.concat([Buffer.from([f, 0, 0, 0]), ip(target), llOption(2, mac), tail]);
}

/** A router solicitation to ff02::2. */
export function rs(src: string, mac: string, tail: Buffer): Buffer {
  return icmp6(src, ALL_ROUTERS, ICMP6.RS, 0, Buffer.concat([u32(0), llOption(1, mac), tail]));
}

/** The ICMPv6 body of a router advertisement: a default router for 30 min, a /64 prefix to autoconfigure; `tail` must be ND options. */
export function raBody(mac: string, prefix: string, tail: Buffer): Buffer {
  const pi = Buffer.alloc(32);
  pi[0] = 3; // prefix information
  pi[1] = 4;
  pi[2] = 64;
  pi[3] = 0xc0; // on-link, autonomous
  pi.writeUInt32BE(86400, 4);
  pi.writeUInt32BE(14400, 8);
  ip(prefix).copy(pi, 16);
  return Buffer.concat([Buffer.from([64, 0]), u16(1800), u32(0), u32(0), llOption(1, mac), pi, tail]);
}

/** A router advertisement from `src` to all nodes. */
export function ra(src: string, mac: string, prefix: string, tail: Buffer): Buffer {
  return icmp6(src, ALL_NODES, ICMP6.RA, 0, raBody(mac, prefix, tail));
}

/** An ICMPv6 redirect: `dst` is better reached through `target`. */
export function redirect6(src: string, to: string, target: string, dst: string, tail: Buffer): Buffer {
  return icmp6(src, to, ICMP6.REDIRECT, 0, Buffer.concat([u32(0), ip(target), ip(dst), tail]));
}

/** An ICMPv6 echo request (hop limit 64). */
export function echo6(src: string, dst: string, id: number, seq: number, data: Buffer): Buffer {
  return icmp6(src, dst, ICMP6.ECHO_REQUEST, 0, Buffer.concat([u16(id), u16(seq), data]), 64);
}

/**
 * A packet whose ICMPv6 message sits behind a hop-by-hop options header (PadN only, or a router
 * alert for MLD): the filter must walk extension headers to see what it carries.
 */
export function behindHopByHop(src: string, dst: string, type: number, body: Buffer, routerAlert = false): Buffer {
  return behindExtension(src, dst, IPPROTO_HOPOPTS, IPPROTO_ICMPV6, icmp6Message(src, dst, type, 0, body), routerAlert, routerAlert ? 1 : 255);
}

/**
 * An upper-layer packet (`nh`: its protocol) behind one 8-byte hop-by-hop (0) or destination
 * options (60) header holding PadN, or a router alert.
 */
export function behindExtension(src: string, dst: string, ext: ExtensionHeader, nh: number, upper: Buffer, routerAlert = false, hlim = 255): Buffer {
  return behindExtensions(src, dst, [ext], nh, upper, routerAlert, hlim);
}

/** Hop-by-hop (0) or destination options (60): the extension headers the builders write. */
export type ExtensionHeader = typeof IPPROTO_HOPOPTS | typeof IPPROTO_DSTOPTS;

/** An upper-layer packet behind a chain of 8-byte extension headers (`exts`, first first). */
export function behindExtensions(src: string, dst: string, exts: readonly ExtensionHeader[], nh: number, upper: Buffer, routerAlert = false, hlim = 255): Buffer {
  const opts = routerAlert ? Buffer.from([5, 2, 0, 0, 1, 0]) : Buffer.from([1, 4, 0, 0, 0, 0]);
  const headers = exts.map((_, i) => Buffer.concat([Buffer.from([exts[i + 1] ?? nh, 0]), opts]));
  return ipv6(src, dst, exts[0]!, Buffer.concat([...headers, upper]), hlim);
}

/** An MLDv2 report (behind a hop-by-hop router alert, hop limit 1) joining `group`. */
export function mld2Report(src: string, group: string, tail: Buffer): Buffer {
  // One record: CHANGE_TO_EXCLUDE_MODE (4), no sources; the tag travels as auxiliary data (32-bit words).
  const aux = Buffer.concat([tail, Buffer.alloc((4 - (tail.length % 4)) % 4)]);
  const record = Buffer.concat([Buffer.from([4, aux.length / 4, 0, 0]), ip(group), aux]);
  return behindHopByHop(src, 'ff02::16', ICMP6.MLD2_REPORT, Buffer.concat([u16(0), u16(1), record]), true);
}

/**
 * The first fragment (offset 0, more fragments) of an ICMPv6 message: its type is in this
 * fragment, the rest follows in one that is never sent.
 */
export function firstFragment(src: string, dst: string, type: number, body: Buffer, id: number, firstBytes = 48, more = true): Buffer {
  const whole = icmp6Message(src, dst, type, 0, body);
  // Offset 0; M=1, or M=0 for an "atomic fragment" (RFC 6946: the whole message in one fragment).
  const frag = Buffer.concat([Buffer.from([IPPROTO_ICMPV6, 0]), u16(more ? 1 : 0), u32(id)]);
  return ipv6(src, dst, IPPROTO_FRAGMENT, Buffer.concat([frag, more ? whole.subarray(0, firstBytes) : whole]), 255);
}

/** A UDP datagram over IPv6, checksummed. */
export function udp6(src: string, dst: string, sport: number, dport: number, data: Buffer, hlim = 64): Buffer {
  return ipv6(src, dst, IPPROTO_UDP, udp6Datagram(src, dst, sport, dport, data), hlim);
}

/** The UDP datagram alone (header and data), checksummed for an IPv6 `src` -> `dst`. */
export function udp6Datagram(src: string, dst: string, sport: number, dport: number, data: Buffer): Buffer {
  const u = Buffer.concat([u16(sport), u16(dport), u16(8 + data.length), u16(0), data]);
  const c = inetChecksum(pseudo6(src, dst, IPPROTO_UDP, u.length), u);
  u.writeUInt16BE(c === 0 ? 0xffff : c, 6);
  return u;
}

/** DHCPv6 message types. */
export const DHCP6 = { SOLICIT: 1, ADVERTISE: 2, REPLY: 7 } as const;

/** A DHCPv6 message with a client identifier (DUID-LL of `mac`); `tail` as a vendor option. Client 546->547, server 547->546. */
export function dhcp6(type: number, src: string, dst: string, mac: string, xid: number, tail: Buffer): Buffer {
  return ipv6(src, dst, IPPROTO_UDP, dhcp6Datagram(type, src, dst, mac, xid, tail), 1);
}

/** The UDP datagram of {@link dhcp6}, to put behind extension headers. */
export function dhcp6Datagram(type: number, src: string, dst: string, mac: string, xid: number, tail: Buffer): Buffer {
  const duid = Buffer.concat([u16(3), u16(1), macBytes(mac)]);
  const opt = (code: number, v: Buffer) => Buffer.concat([u16(code), u16(v.length), v]);
  const msg = Buffer.concat([Buffer.from([type, (xid >> 16) & 0xff, (xid >> 8) & 0xff, xid & 0xff]), opt(1, duid), opt(17, Buffer.concat([u32(32473), tail]))]);
  const server = type !== DHCP6.SOLICIT;
  return udp6Datagram(src, dst, server ? 547 : 546, server ? 546 : 547, msg);
}

/** What kind of frame a received one is, for replies the tests count on a guest's fd. */
export function icmp6Type(frame: Buffer): number | null {
  if (frame.length < 14 + 40 + 4 || frame.readUInt16BE(12) !== ETH_IPV6 || frame[14 + 6] !== IPPROTO_ICMPV6) return null;
  return frame[14 + 40]!;
}

// ---------------------------------------------------------------- taps: write and drain

/** Writes one frame to a tap fd (the guest transmitting). Returns the errno code on failure. */
export function send(fd: number, frame: Buffer): string | null {
  try {
    writeSync(fd, frame);
    return null;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? 'error';
  }
}

/** Reads every frame queued on a non-blocking tap fd. */
export function drain(fd: number, onFrame: (f: Buffer) => void): number {
  const buf = Buffer.alloc(65536);
  let n = 0;
  for (;;) {
    let len: number;
    try {
      len = readSync(fd, buf);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return n;
      throw e;
    }
    n++;
    onFrame(Buffer.from(buf.subarray(0, len)));
  }
}

/** Drains `fd` until `done()` holds or `ms` pass without it; returns whether it held. */
export async function drainUntil(fd: number, onFrame: (f: Buffer) => void, done: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    drain(fd, onFrame);
    if (done()) return true;
    if (Date.now() > deadline) return false;
    await sleep(5);
  }
}

/** Counts the tagged frames arriving on a non-blocking tap fd: a set of sequence numbers. */
export class TagCounter {
  readonly seen = new Set<number>();
  constructor(readonly fd: number) {}
  /** Reads what is queued; returns how many tagged frames were new. */
  poll(): number {
    const before = this.seen.size;
    drain(this.fd, (f) => {
      for (const s of tagsIn(f)) this.seen.add(s);
    });
    return this.seen.size - before;
  }
  /** Drains for `ms` more milliseconds (frames in flight land). */
  async settle(ms = 100): Promise<void> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      this.poll();
      await sleep(5);
    }
    this.poll();
  }
  /** Forgets what was seen so far (after reading what is queued). */
  reset(): void {
    this.poll();
    this.seen.clear();
  }
}

/** How many frames to write before draining the receiver: below a tap's queue of 500. */
const BATCH = 100;

/**
 * Writes `frames` to `fd` in batches, draining the counters between batches so no queue overflows.
 * Returns the write errors by errno (a guarded tap accepts every write: the filter drops later).
 */
export function sendAll(fd: number, frames: readonly Buffer[], counters: readonly TagCounter[]): Map<string, number> {
  const errors = new Map<string, number>();
  for (let i = 0; i < frames.length; i++) {
    const err = send(fd, frames[i]!);
    if (err !== null) errors.set(err, (errors.get(err) ?? 0) + 1);
    if (i % BATCH === BATCH - 1) for (const c of counters) c.poll();
  }
  for (const c of counters) c.poll();
  return errors;
}

// ---------------------------------------------------------------- the lab

/** The lab: gbr0 with its addresses, dnsmasq, the TCP listener and the receiver tap. */
export interface Lab {
  receiver: Tap;
  dnsmasq: ChildProcess;
  listener: Server;
  /** Adds permanent neighbour entries for a guest on gbr0, so the host answers it at once. */
  neighbours(g: Guest): void;
  /** Everything dnsmasq logged. */
  dnsmasqLog(): string;
  stop(): Promise<void>;
}

function sysctl(path: string, value: string | number): void {
  sh('sysctl', '-q', '-w', `${path}=${value}`);
}

/** Why the guard tests cannot run here (dnsmasq or nft missing), or false. */
export function labMissing(): string | false {
  if (!existsSync('/usr/sbin/dnsmasq')) return 'dnsmasq (dnsmasq-base) is not installed';
  if (!existsSync('/usr/sbin/nft')) return 'nft (nftables) is not installed';
  return false;
}

/**
 * Makes the lab in the test's namespace: gbr0 (MAC 02:00:00:00:01:01, STP off, multicast snooping
 * off so every multicast frame floods, LLDP forwarded), 10.0.0.1/24 and 2001:db8:1::1/64 (nodad; the
 * host takes no RA or redirect from the guests), dnsmasq serving 10.0.0.100-199, a TCP listener on
 * 10.0.0.1:7777 and the receiver tap. Taps made after this have IPv6 off, so the kernel's own
 * IPv6 frames on them do not mix with the guests'.
 */
export async function startLab(): Promise<Lab> {
  sh('ip', 'link', 'add', BRIDGE, 'address', GW_MAC, 'type', 'bridge', 'stp_state', '0', 'mcast_snooping', '0', 'group_fwd_mask', '0x4000');
  sysctl(`net.ipv6.conf.${BRIDGE}.disable_ipv6`, 0);
  sysctl(`net.ipv6.conf.${BRIDGE}.accept_ra`, 0);
  sysctl(`net.ipv6.conf.${BRIDGE}.accept_redirects`, 0);
  sysctl(`net.ipv6.conf.${BRIDGE}.accept_dad`, 0);
  sysctl(`net.ipv4.conf.${BRIDGE}.accept_redirects`, 0);
  sysctl('net.ipv6.conf.default.disable_ipv6', 1);
  sh('ip', 'addr', 'add', `${GW4}/24`, 'dev', BRIDGE);
  sh('ip', 'addr', 'add', `${GW6}/64`, 'dev', BRIDGE, 'nodad');
  sh('ip', 'link', 'set', BRIDGE, 'up');
  const receiver = await openTap({ bridge: BRIDGE, name: 'recv0', vnetHdr: false, nonBlocking: true });

  const dir = mkdtempSync(join(process.env.QBH_TEST_SCRATCH ?? tmpdir(), 'dnsmasq-'));
  const dnsmasq = spawn('/usr/sbin/dnsmasq', [
    '--keep-in-foreground',
    '--conf-file=/dev/null',
    '--port=0',
    `--interface=${BRIDGE}`,
    '--bind-interfaces',
    '--dhcp-range=10.0.0.100,10.0.0.199,255.255.255.0,1h',
    '--dhcp-authoritative',
    '--no-ping',
    `--dhcp-leasefile=${join(dir, 'leases')}`,
    `--pid-file=${join(dir, 'pid')}`,
    '--user=root',
    '--group=root',
    '--log-facility=-',
    '--log-dhcp',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  dnsmasq.stderr!.setEncoding('utf8').on('data', (d: string) => (log += d));
  const exited = new Promise<void>((resolve) => dnsmasq.on('exit', () => resolve()));
  const deadline = Date.now() + 10_000;
  while (!/DHCP, IP range/.test(log)) {
    if (dnsmasq.exitCode !== null || Date.now() > deadline) throw new Error(`dnsmasq did not start: ${log}`);
    await sleep(20);
  }
  const listener = createServer((s) => s.destroy());
  await new Promise<void>((resolve) => listener.listen(TCP_PORT, GW4, resolve));
  return {
    receiver,
    dnsmasq,
    listener,
    neighbours(g) {
      sh('ip', 'neigh', 'replace', g.ip4, 'lladdr', g.mac, 'dev', BRIDGE, 'nud', 'permanent');
      sh('ip', 'neigh', 'replace', g.ip6, 'lladdr', g.mac, 'dev', BRIDGE, 'nud', 'permanent');
      sh('ip', 'neigh', 'replace', g.ll6, 'lladdr', g.mac, 'dev', BRIDGE, 'nud', 'permanent');
    },
    dnsmasqLog: () => log,
    async stop() {
      await new Promise<void>((resolve) => listener.close(() => resolve()));
      dnsmasq.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
      closeTap(receiver);
    },
  };
}

/** The clsact qdisc's drop counter on `dev` (`tc -s -j qdisc show dev DEV`), or null without one. */
export function clsactDrops(dev: string): number | null {
  const qd = JSON.parse(sh('tc', '-s', '-j', 'qdisc', 'show', 'dev', dev)) as { kind: string; drops?: number }[];
  const c = qd.find((q) => q.kind === 'clsact');
  return c ? (c.drops ?? 0) : null;
}

// ---------------------------------------------------------------- the attack matrix

/** How a guard variant pins MACs: listed (a static entry from the start) or sticky (learned, then pinned). */
export type MacMode = 'list' | 'sticky';

/** One class of the matrix: its frames for `g` (the guest), `other` (a second tenant). */
export interface FrameClass {
  name: string;
  /**
   * Who drops it on a guarded port: the tap's filter (counted in the clsact qdisc's drops), or the
   * bridge's locked port (a source MAC the port does not hold, listed or sticky; not in those drops).
   */
  droppedBy: 'filter' | 'bridge';
  /** Frame number `i` of the class, carrying tag `seq`. */
  make(g: Guest, other: Guest, i: number, seq: number): Buffer;
}


/** Foreign MACs: locally administered, 64 of them. */
function foreignMac(i: number): string {
  return `02:66:00:00:00:${(i % 64).toString(16).padStart(2, '0')}`;
}

/** EtherTypes no guard allows: local experimental, loopback, PPPoE discovery, Wake-on-LAN, MACsec, MPLS, 802.1X, the old QinQ tag, a random one. */
export const UNKNOWN_ETHERTYPES: readonly number[] = [0x88b5, 0x9000, 0x8863, 0x0842, 0x88e5, 0x8847, 0x888e, 0x9100, 0x1234];

/** Every attack class: each frame must be dropped on a guarded port (and arrive on an unguarded one). */
export const ATTACKS: readonly FrameClass[] = [
  {
    name: 'foreign source MAC',
    droppedBy: 'bridge',
    make: (g, _o, i, seq) => ether(SINK_MAC, foreignMac(i), ETH_IPV4, udp4(g.ip4, '10.0.0.250', 40000, 9, tag(seq))),
  },
  {
    name: "second tenant's MAC (and IP)",
    droppedBy: 'bridge',
    make: (_g, o, _i, seq) => ether(SINK_MAC, o.mac, ETH_IPV4, udp4(o.ip4, '10.0.0.250', 40000, 9, tag(seq))),
  },
  {
    name: 'foreign source IPv4',
    droppedBy: 'filter',
    make: (g, _o, i, seq) => ether(SINK_MAC, g.mac, ETH_IPV4, udp4(i % 2 ? `10.0.1.${(i % 250) + 1}` : `192.168.${i % 256}.7`, '10.0.0.250', 40000, 9, tag(seq))),
  },
  {
    name: 'foreign source IPv6',
    droppedBy: 'filter',
    make: (g, _o, i, seq) => ether(SINK_MAC, g.mac, ETH_IPV6, udp6(i % 2 ? `2001:db8:2::${(i % 0xfff).toString(16)}` : `fd00::${(i % 0xfff).toString(16)}`, '2001:db8:1::fa', 40000, 9, tag(seq))),
  },
  {
    // Inside the guarded prefixes, but the bridge's own: a guest may never speak as the gateway.
    name: "the gateway's address as source",
    droppedBy: 'filter',
    make: (g, _o, i, seq) => (i % 2 ? ether(SINK_MAC, g.mac, ETH_IPV4, udp4(GW4, '10.0.0.250', 40000, 9, tag(seq))) : ether(SINK_MAC, g.mac, ETH_IPV6, udp6(GW6, '2001:db8:1::fa', 40000, 9, tag(seq)))),
  },
  {
    name: 'ARP with a foreign sender IP',
    droppedBy: 'filter',
    make: (g, _o, i, seq) => ether(BROADCAST, g.mac, ETH_ARP, arp(1, g.mac, `10.0.1.${(i % 250) + 1}`, '00:00:00:00:00:00', GW4, tag(seq))),
  },
  {
    name: 'ARP reply claiming the gateway',
    droppedBy: 'filter',
    // A reply to everyone, and (every other frame) the gratuitous request form of the same claim.
    make: (g, _o, i, seq) => ether(BROADCAST, g.mac, ETH_ARP, i % 2 ? arp(2, g.mac, GW4, BROADCAST, GW4, tag(seq)) : arp(1, g.mac, GW4, '00:00:00:00:00:00', GW4, tag(seq))),
  },
  {
    name: 'unsolicited NA for the gateway',
    droppedBy: 'filter',
    // Its global address and (every third frame) its link-local one, the next hop of IPv6 default routes.
    make: (g, _o, i, seq) => ether(ALL_NODES_MAC, g.mac, ETH_IPV6, na(i % 2 ? g.ll6 : g.ip6, ALL_NODES, g.mac, i % 3 === 2 ? GW_LL6 : GW6, { override: true, router: i % 4 < 2 }, tagOption(seq))),
  },
  {
    name: 'NA for the gateway behind extension headers',
    droppedBy: 'filter',
    make: (g, _o, i, seq) => ether(ALL_NODES_MAC, g.mac, ETH_IPV6, behindExtension(g.ll6, ALL_NODES, i % 2 ? IPPROTO_HOPOPTS : IPPROTO_DSTOPTS, IPPROTO_ICMPV6, icmp6Message(g.ll6, ALL_NODES, ICMP6.NA, 0, naBody(g.mac, i % 4 < 2 ? GW6 : GW_LL6, { override: true }, tagOption(seq))))),
  },
  {
    name: 'NA for an address outside the prefixes',
    droppedBy: 'filter',
    make: (g, _o, i, seq) => ether(ALL_NODES_MAC, g.mac, ETH_IPV6, na(g.ll6, ALL_NODES, g.mac, `2001:db8:99::${(i % 0xfff).toString(16)}`, { override: true }, tagOption(seq))),
  },
  {
    name: 'DHCPOFFER / DHCPACK',
    droppedBy: 'filter',
    make: (g, _o, i, seq) => ether(BROADCAST, g.mac, ETH_IPV4, dhcp4(i % 2 ? DHCP.ACK : DHCP.OFFER, '52:54:00:aa:bb:cc', seq, { server: g.ip4, yiaddr: '10.0.0.123', tail: tag(seq) })),
  },
  {
    name: 'DHCPOFFER / DHCPACK with IPv4 options',
    droppedBy: 'filter',
    make: (g, _o, i, seq) => ether(BROADCAST, g.mac, ETH_IPV4, dhcp4(i % 2 ? DHCP.ACK : DHCP.OFFER, '52:54:00:aa:bb:cc', seq, { server: g.ip4, yiaddr: '10.0.0.123', tail: tag(seq), ip: { options: IPV4_ROUTER_ALERT } })),
  },
  {
    name: 'DHCPv6 ADVERTISE behind extension headers',
    droppedBy: 'filter',
    make: (g, _o, i, seq) => ether(ALL_NODES_MAC, g.mac, ETH_IPV6, behindExtension(g.ll6, ALL_NODES, i % 2 ? IPPROTO_HOPOPTS : IPPROTO_DSTOPTS, IPPROTO_UDP, dhcp6Datagram(DHCP6.ADVERTISE, g.ll6, ALL_NODES, g.mac, seq, tag(seq)), false, 1)),
  },
  {
    name: 'DHCPv6 ADVERTISE / REPLY',
    droppedBy: 'filter',
    make: (g, _o, i, seq) => ether(ALL_NODES_MAC, g.mac, ETH_IPV6, dhcp6(i % 2 ? DHCP6.REPLY : DHCP6.ADVERTISE, g.ll6, ALL_NODES, g.mac, seq, tag(seq))),
  },
  {
    name: 'router advertisement',
    droppedBy: 'filter',
    make: (g, _o, i, seq) => ether(ALL_NODES_MAC, g.mac, ETH_IPV6, ra(g.ll6, g.mac, i % 2 ? '2001:db8:1::' : '2001:db8:66::', tagOption(seq))),
  },
  {
    name: 'RA behind a hop-by-hop header',
    droppedBy: 'filter',
    make: (g, _o, _i, seq) => ether(ALL_NODES_MAC, g.mac, ETH_IPV6, behindHopByHop(g.ll6, ALL_NODES, ICMP6.RA, raBody(g.mac, '2001:db8:66::', tagOption(seq)))),
  },
  {
    name: 'RA in a first fragment',
    droppedBy: 'filter',
    // The first 48 bytes of the RA: its type, the router lifetime, the tag option first, part of the SLLA.
    make: (g, _o, _i, seq) => ether(ALL_NODES_MAC, g.mac, ETH_IPV6, firstFragment(g.ll6, ALL_NODES, ICMP6.RA, Buffer.concat([raBody(g.mac, '2001:db8:66::', Buffer.alloc(0)).subarray(0, 12), tagOption(seq), raBody(g.mac, '2001:db8:66::', Buffer.alloc(0)).subarray(12)]), seq, 48)),
  },
  {
    name: 'RA behind a destination-options header',
    droppedBy: 'filter',
    make: (g, _o, _i, seq) => ether(ALL_NODES_MAC, g.mac, ETH_IPV6, behindExtension(g.ll6, ALL_NODES, IPPROTO_DSTOPTS, IPPROTO_ICMPV6, icmp6Message(g.ll6, ALL_NODES, ICMP6.RA, 0, raBody(g.mac, '2001:db8:66::', tagOption(seq))))),
  },
  {
    name: 'RA behind hop-by-hop and destination options',
    droppedBy: 'filter',
    make: (g, _o, _i, seq) => ether(ALL_NODES_MAC, g.mac, ETH_IPV6, behindExtensions(g.ll6, ALL_NODES, [IPPROTO_HOPOPTS, IPPROTO_DSTOPTS], IPPROTO_ICMPV6, icmp6Message(g.ll6, ALL_NODES, ICMP6.RA, 0, raBody(g.mac, '2001:db8:66::', tagOption(seq))))),
  },
  {
    name: 'RA as an atomic fragment',
    droppedBy: 'filter',
    make: (g, _o, _i, seq) => ether(ALL_NODES_MAC, g.mac, ETH_IPV6, firstFragment(g.ll6, ALL_NODES, ICMP6.RA, raBody(g.mac, '2001:db8:66::', tagOption(seq)), seq, 0, false)),
  },
  {
    name: 'ICMPv6 redirect',
    droppedBy: 'filter',
    make: (g, _o, i, seq) => ether(SINK_MAC, g.mac, ETH_IPV6, redirect6(g.ll6, 'fe80::fa', g.ll6, `2001:db8:77::${(i % 0xfff).toString(16)}`, tagOption(seq))),
  },
  {
    name: 'ICMPv4 redirect / router advertisement',
    droppedBy: 'filter',
    make: (g, _o, i, seq) =>
      i % 2
        ? ether(SINK_MAC, g.mac, ETH_IPV4, icmp4(g.ip4, '10.0.0.250', 5, 1, ip(g.ip4), Buffer.concat([ipv4('10.0.0.250', '198.51.100.1', IPPROTO_UDP, Buffer.alloc(8)), tag(seq)])))
        : ether('01:00:5e:00:00:01', g.mac, ETH_IPV4, icmp4(g.ip4, '224.0.0.1', 9, 0, Buffer.from([1, 2, 0x07, 0x08]), Buffer.concat([ip(g.ip4), u32(0x7fffffff), tag(seq)]))),
  },
  {
    name: 'BPDU',
    droppedBy: 'filter',
    make: (g, _o, _i, seq) => bpdu(g.mac, tag(seq)),
  },
  {
    name: 'LLDP',
    droppedBy: 'filter',
    make: (g, _o, _i, seq) => lldp(g.mac, tag(seq)),
  },
  {
    name: '802.1Q tagged',
    droppedBy: 'filter',
    make: (g, _o, i, seq) => tagged(SINK_MAC, g.mac, [[ETH_8021Q, (i % 4094) + 1]], ETH_IPV4, udp4(g.ip4, '10.0.0.250', 40000, 9, tag(seq))),
  },
  {
    name: '802.1ad double tagged',
    droppedBy: 'filter',
    make: (g, _o, i, seq) => tagged(SINK_MAC, g.mac, [[ETH_8021AD, (i % 4094) + 1], [ETH_8021Q, 10]], ETH_IPV4, udp4(g.ip4, '10.0.0.250', 40000, 9, tag(seq))),
  },
  {
    name: 'unknown EtherType',
    droppedBy: 'filter',
    make: (g, _o, i, seq) => {
      const n = i % (UNKNOWN_ETHERTYPES.length + 1);
      return n === UNKNOWN_ETHERTYPES.length ? llcSnap(SINK_MAC, g.mac, tag(seq)) : ether(SINK_MAC, g.mac, UNKNOWN_ETHERTYPES[n]!, Buffer.concat([Buffer.alloc(8), tag(seq)]));
    },
  },
];

/** Legitimate frames a guest sends that the receiver (the uplink) sees: each must arrive on a guarded port. */
export const LEGIT_FLOODED: readonly Omit<FrameClass, 'droppedBy'>[] = [
  { name: 'ARP request from own IP', make: (g, _o, _i, seq) => ether(BROADCAST, g.mac, ETH_ARP, arp(1, g.mac, g.ip4, '00:00:00:00:00:00', '10.0.0.250', tag(seq))) },
  { name: 'ARP reply for own IP (announcement)', make: (g, _o, _i, seq) => ether(BROADCAST, g.mac, ETH_ARP, arp(2, g.mac, g.ip4, BROADCAST, g.ip4, tag(seq))) },
  { name: 'ARP probe from 0.0.0.0', make: (g, _o, _i, seq) => ether(BROADCAST, g.mac, ETH_ARP, arp(1, g.mac, '0.0.0.0', '00:00:00:00:00:00', g.ip4, tag(seq))) },
  { name: 'DHCP DISCOVER from 0.0.0.0', make: (g, _o, _i, seq) => ether(BROADCAST, g.mac, ETH_IPV4, dhcp4(DHCP.DISCOVER, g.mac, seq, { tail: tag(seq) })) },
  { name: 'UDP from own IPv4', make: (g, _o, _i, seq) => ether(SINK_MAC, g.mac, ETH_IPV4, udp4(g.ip4, '10.0.0.250', 40000, 9, tag(seq))) },
  { name: 'UDP from own IPv6', make: (g, _o, _i, seq) => ether(SINK_MAC, g.mac, ETH_IPV6, udp6(g.ip6, '2001:db8:1::fa', 40000, 9, tag(seq))) },
  { name: 'DAD NS from ::', make: (g, _o, _i, seq) => ether(solicitedNode(g.ip6).mac, g.mac, ETH_IPV6, ns('::', g.mac, g.ip6, tagOption(seq))) },
  { name: 'NS from own address', make: (g, _o, _i, seq) => ether(solicitedNode('2001:db8:1::fa').mac, g.mac, ETH_IPV6, ns(g.ip6, g.mac, '2001:db8:1::fa', tagOption(seq))) },
  { name: 'unsolicited NA for own address', make: (g, _o, _i, seq) => ether(ALL_NODES_MAC, g.mac, ETH_IPV6, na(g.ll6, ALL_NODES, g.mac, g.ip6, { override: true }, tagOption(seq))) },
  { name: 'router solicitation', make: (g, _o, _i, seq) => ether('33:33:00:00:00:02', g.mac, ETH_IPV6, rs(g.ll6, g.mac, tagOption(seq))) },
  { name: 'MLDv2 report', make: (g, _o, _i, seq) => ether('33:33:00:00:00:16', g.mac, ETH_IPV6, mld2Report(g.ll6, solicitedNode(g.ip6).ip, tag(seq))) },
  { name: 'DHCPv6 SOLICIT', make: (g, _o, _i, seq) => ether('33:33:00:01:00:02', g.mac, ETH_IPV6, dhcp6(DHCP6.SOLICIT, g.ll6, DHCP6_SERVERS, g.mac, seq, tag(seq))) },
];

/** A frame of the matrix: its class and tag. */
export interface Crafted {
  cls: string;
  seq: number;
  frame: Buffer;
}

/** `perClass` frames of each class, tags from `firstSeq` on. */
export function craft(classes: readonly Omit<FrameClass, 'droppedBy'>[], g: Guest, other: Guest, perClass: number, firstSeq: number): Crafted[] {
  const out: Crafted[] = [];
  let seq = firstSeq;
  for (const c of classes) for (let i = 0; i < perClass; i++, seq++) out.push({ cls: c.name, seq, frame: c.make(g, other, i, seq) });
  return out;
}

/** Per class: how many of `frames` the counter saw, as `class: seen/sent`. */
export function perClass(frames: readonly Crafted[], seen: ReadonlySet<number>): Map<string, { sent: number; seen: number }> {
  const m = new Map<string, { sent: number; seen: number }>();
  for (const f of frames) {
    const e = m.get(f.cls) ?? { sent: 0, seen: 0 };
    e.sent++;
    if (seen.has(f.seq)) e.seen++;
    m.set(f.cls, e);
  }
  return m;
}

// ---------------------------------------------------------------- legitimate exchanges

/** How many of each exchange the guest starts, and how many answers came back to its fd. */
export interface ExchangeResult {
  name: string;
  sent: number;
  answered: number;
}

/**
 * The guest's conversations with the host: ping 10.0.0.1, ping6 2001:db8:1::1, TCP SYN to the
 * listener (SYN-ACK back), DHCP DISCOVER from 0.0.0.0 (dnsmasq's OFFER back), NS for the gateway's
 * IPv6 address (NA back), ARP request for 10.0.0.1 (reply back). Counts the answers on `fd`.
 */
export async function exchanges(fd: number, g: Guest, n: number, firstSeq: number): Promise<ExchangeResult[]> {
  const echo4Seen = new Set<number>();
  const echo6Seen = new Set<number>();
  const synAcks = new Set<number>();
  const offers = new Set<number>();
  let nas = 0;
  let arpReplies = 0;
  const gwBytes = ip(GW4);
  const ownBytes = ip(g.ip4);
  const gw6Bytes = ip(GW6);
  const tcpBase = 20000 + (firstSeq % 20000);
  const onFrame = (f: Buffer) => {
    const type = f.readUInt16BE(12);
    if (type === ETH_ARP && f.readUInt16BE(20) === 2 && ip4At(f, 28).equals(gwBytes) && ip4At(f, 38).equals(ownBytes)) arpReplies++;
    if (type === ETH_IPV4 && f[14 + 9] === IPPROTO_ICMP && f[14 + 20] === 0) for (const s of tagsIn(f)) echo4Seen.add(s);
    if (type === ETH_IPV4 && f[14 + 9] === IPPROTO_TCP && f.readUInt16BE(14 + 20) === TCP_PORT && (f[14 + 20 + 13]! & 0x12) === 0x12) {
      // Only SYN-ACKs to this call's ports (the host retransmits those of earlier calls).
      const port = f.readUInt16BE(14 + 22);
      if (port >= tcpBase && port < tcpBase + n) synAcks.add(port);
    }
    const d = dhcp4Reply(f);
    if (d !== null && d.type === DHCP.OFFER && d.xid >= firstSeq && d.xid < firstSeq + n) offers.add(d.xid);
    const t6 = icmp6Type(f);
    if (t6 === ICMP6.ECHO_REPLY) for (const s of tagsIn(f)) echo6Seen.add(s);
    if (t6 === ICMP6.NA && f.subarray(14 + 40 + 8, 14 + 40 + 24).equals(gw6Bytes)) nas++;
  };
  drain(fd, () => {});
  for (let k = 0; k < n; k++) {
    const seq = firstSeq + k;
    send(fd, ether(GW_MAC, g.mac, ETH_IPV4, echo4(g.ip4, GW4, 0x4242, k, tag(seq))));
    send(fd, ether(GW_MAC, g.mac, ETH_IPV6, echo6(g.ip6, GW6, 0x4242, k, tag(seq))));
    send(fd, ether(GW_MAC, g.mac, ETH_IPV4, tcpSyn(g.ip4, GW4, tcpBase + k, TCP_PORT, seq)));
    send(fd, ether(BROADCAST, g.mac, ETH_IPV4, dhcp4(DHCP.DISCOVER, g.mac, seq)));
    send(fd, ether(solicitedNode(GW6).mac, g.mac, ETH_IPV6, ns(g.ip6, g.mac, GW6, Buffer.alloc(0))));
    send(fd, ether(BROADCAST, g.mac, ETH_ARP, arp(1, g.mac, g.ip4, '00:00:00:00:00:00', GW4)));
    drain(fd, onFrame);
    await sleep(2);
  }
  const results = () => [
    { name: 'ping 10.0.0.1 (echo replies)', sent: n, answered: echo4Seen.size },
    { name: 'ping6 2001:db8:1::1 (echo replies)', sent: n, answered: echo6Seen.size },
    { name: 'TCP SYN to 10.0.0.1:7777 (SYN-ACKs)', sent: n, answered: synAcks.size },
    { name: 'DHCP DISCOVER from 0.0.0.0 (OFFERs)', sent: n, answered: offers.size },
    { name: 'NS for 2001:db8:1::1 (NAs)', sent: n, answered: Math.min(nas, n) },
    { name: 'ARP request for 10.0.0.1 (replies)', sent: n, answered: Math.min(arpReplies, n) },
  ];
  await drainUntil(fd, onFrame, () => results().every((r) => r.answered === r.sent), 5000);
  return results();
}

function ip4At(f: Buffer, at: number): Buffer {
  return f.subarray(at, at + 4);
}
