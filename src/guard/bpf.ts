/**
 * A port guard's frame filter as a classic BPF program, run by `cls_bpf` in direct-action mode on
 * the tap's ingress, i.e. on every frame the guest sends, before the bridge sees it. Classic BPF
 * because the kernel takes it in one rtnetlink message (no bpf() syscall, no verifier log, no
 * pinned objects) and converts it to eBPF itself; it lives on the tap and dies with it.
 *
 * Loads are relative to the Ethernet header (cls_bpf pushes it back at ingress). A VLAN tag has
 * been taken off the frame by then (`skb_vlan_untag`) and is seen through the `vlan_avail`
 * ancillary load. A load past the frame's end ends a classic program with 0, which is TC_ACT_OK
 * (pass): so every load the verdict depends on is preceded by a length check that drops a frame
 * too short to hold it. Frames a filter section does not judge fall through to the end, which
 * returns TC_ACT_UNSPEC: the next filter on the hook (a rate limit) still runs.
 * @module
 */
import { addressBytes, type PortGuard } from './policy.js';

/** TC_ACT_SHOT: the frame is dropped (and counted in the clsact qdisc's drops). */
export const VERDICT_DROP = 2;
/** TC_ACT_UNSPEC (-1): no verdict; the next filter runs, and the frame passes if none judges it. */
export const VERDICT_PASS = 0xffffffff;

// Classic BPF opcodes (include/uapi/linux/filter.h, bpf_common.h).
const LD_W_ABS = 0x20;
const LD_H_ABS = 0x28;
const LD_B_ABS = 0x30;
const LD_W_IND = 0x40;
const LD_H_IND = 0x48;
const LD_B_IND = 0x50;
const LD_W_LEN = 0x80;
const LDX_B_MSH = 0xb1;
const LDX_IMM = 0x01;
const ALU_AND_K = 0x54;
const ALU_ADD_K = 0x04;
const ALU_SUB_K = 0x14;
const ALU_LSH_K = 0x64;
const ALU_ADD_X = 0x0c;
/** M[k] = A, and A = M[k] (the scratch memory). */
const MEM_ST = 0x02;
const LD_MEM = 0x60;
const JMP_JA = 0x05;
const JMP_JEQ_K = 0x15;
const JMP_JGE_K = 0x35;
const JMP_JGT_X = 0x3d;
const JMP_JEQ_X = 0x1d;
const JMP_JSET_K = 0x45;
const RET_K = 0x06;
const MISC_TAX = 0x07;
const MISC_TXA = 0x87;
/** SKF_AD_OFF + SKF_AD_VLAN_TAG_PRESENT: 1 when the frame carried a VLAN tag. */
const AD_VLAN_TAG_PRESENT = (0xfffff000 + 48) >>> 0;

const ETH_HLEN = 14;
const ETH_P_IP = 0x0800;
const ETH_P_ARP = 0x0806;
const ETH_P_IPV6 = 0x86dd;
/** EtherTypes that start a VLAN tag: 802.1Q, 802.1ad, the old QinQ 0x9100. */
const VLAN_TYPES = [0x8100, 0x88a8, 0x9100];
const IPPROTO_ICMP = 1;
const IPPROTO_UDP = 17;
const IPPROTO_ICMPV6 = 58;
/** IPv6 extension headers: hop-by-hop, routing, fragment, destination options. */
const IPV6_HOPOPTS = 0;
const IPV6_ROUTING = 43;
const IPV6_FRAGMENT = 44;
const IPV6_DSTOPTS = 60;
/** How many IPv6 extension headers the filter walks before the upper-layer header; more are dropped. */
const IPV6_MAX_EXT = 4;
const DHCP_SERVER_PORT = 67;
const DHCP_CLIENT_PORT = 68;
const DHCPV6_SERVER_PORT = 547;
const ICMP_REDIRECT = 5;
const ICMP_ROUTER_ADVERT = 9;
const ND_ROUTER_ADVERT = 134;
const ND_NEIGHBOR_ADVERT = 136;
const ND_REDIRECT = 137;
/** Offsets in an IPv4 frame: protocol, flags+fragment offset, source. */
const IP_PROTO = ETH_HLEN + 9;
const IP_FRAG = ETH_HLEN + 6;
const IP_SRC = ETH_HLEN + 12;
/** Offsets in an IPv6 frame: next header, source, first header after the fixed one. */
const IP6_NEXT = ETH_HLEN + 6;
const IP6_SRC = ETH_HLEN + 8;
const IP6_PAYLOAD = ETH_HLEN + 40;

/** One instruction; a jump names labels (null: the next instruction). */
interface Insn {
  code: number;
  k: number;
  jt: string | null;
  jf: string | null;
  /** For JA: the label. */
  to?: string;
}

/** A little assembler with labels: conditional jumps stay short (≤ 255), far ones go through `ja`. */
class Program {
  readonly insns: Insn[] = [];
  readonly labels = new Map<string, number>();
  private next = 0;

  fresh(name: string): string {
    return `${name}#${this.next++}`;
  }
  label(name: string): this {
    this.labels.set(name, this.insns.length);
    return this;
  }
  op(code: number, k = 0, jt: string | null = null, jf: string | null = null): this {
    this.insns.push({ code, k: k >>> 0, jt, jf });
    return this;
  }
  ja(to: string): this {
    this.insns.push({ code: JMP_JA, k: 0, jt: null, jf: null, to });
    return this;
  }
  ret(verdict: number): this {
    return this.op(RET_K, verdict);
  }
  /** If A `cond` k, go to `to` (far jumps allowed). */
  goIf(cond: number, k: number, to: string): this {
    const skip = this.fresh('skip');
    return this.op(cond, k, null, skip).ja(to).label(skip);
  }
  /** Unless A `cond` k, go to `to`. */
  goUnless(cond: number, k: number, to: string): this {
    const skip = this.fresh('skip');
    return this.op(cond, k, skip, null).ja(to).label(skip);
  }
  /** Drop unless the frame has at least `n` bytes. */
  need(n: number, drop: string): this {
    return this.op(LD_W_LEN).goUnless(JMP_JGE_K, n, drop);
  }

  assemble(): Uint8Array {
    const out = new Uint8Array(this.insns.length * 8);
    const v = new DataView(out.buffer);
    const where = (label: string | null, i: number): number => {
      if (label === null) return 0;
      const at = this.labels.get(label);
      if (at === undefined) throw new Error(`guard filter: no label ${label}`);
      const off = at - i - 1;
      if (off < 0) throw new Error(`guard filter: backward jump to ${label}`);
      return off;
    };
    this.insns.forEach((ins, i) => {
      let k = ins.k;
      let jt = 0;
      let jf = 0;
      if (ins.to !== undefined) k = where(ins.to, i);
      else {
        jt = where(ins.jt, i);
        jf = where(ins.jf, i);
        if (jt > 255 || jf > 255) throw new Error('guard filter: conditional jump too far');
      }
      v.setUint16(i * 8, ins.code, true);
      out[i * 8 + 2] = jt;
      out[i * 8 + 3] = jf;
      v.setUint32(i * 8 + 4, k >>> 0, true);
    });
    return out;
  }
}

/** A prefix as 32-bit words to compare under masks. */
interface PrefixWords {
  words: { value: number; mask: number }[];
}

function prefixWords(prefix: string): PrefixWords & { v6: boolean } {
  const [addr, len] = prefix.split('/') as [string, string];
  const bytes = addressBytes(addr);
  if (bytes === null) throw new Error(`guard filter: bad prefix ${prefix}`);
  const bits = Number(len);
  const words: { value: number; mask: number }[] = [];
  for (let w = 0; w * 32 < bits; w++) {
    const n = Math.min(32, bits - w * 32);
    const mask = n === 32 ? 0xffffffff : (0xffffffff << (32 - n)) >>> 0;
    const value = new DataView(bytes.buffer, bytes.byteOffset).getUint32(w * 4, false);
    words.push({ value: (value & mask) >>> 0, mask });
  }
  return { words, v6: bytes.length === 16 };
}

/**
 * Goes to `ok` if the address at `offset` (relative to X when `indexed`) lies in one of `prefixes`;
 * falls through otherwise.
 */
function matchPrefixes(p: Program, prefixes: readonly PrefixWords[], offset: number, indexed: boolean, ok: string): void {
  const load = indexed ? LD_W_IND : LD_W_ABS;
  for (const pre of prefixes) {
    if (pre.words.length === 0) {
      p.ja(ok); // /0: every address
      return;
    }
    const nextPrefix = p.fresh('prefix');
    pre.words.forEach((w, i) => {
      p.op(load, offset + 4 * i);
      if (w.mask !== 0xffffffff) p.op(ALU_AND_K, w.mask);
      p.op(JMP_JEQ_K, w.value, null, nextPrefix);
    });
    p.ja(ok).label(nextPrefix);
  }
}

const LINK_LOCAL: PrefixWords = { words: [{ value: 0xfe800000, mask: 0xffc00000 }] };

/**
 * Compiles a guard's frame filter (see {@link needsFilter} for when a guard has one) into classic
 * BPF: an array of 8-byte `struct sock_filter`s, as TCA_BPF_OPS carries them. MAC pinning is not
 * in it: the locked port and its static entries enforce that in the bridge, so every tap with the
 * same policy has the same program, which the kernel then builds once (tc.ts, shared blocks). The program:
 * - drops every VLAN-tagged frame (802.1Q, 802.1ad, also a tag left in the frame);
 * - `bpduGuard`: drops frames to 01:80:c2:00:00:00–0f (STP, pause, LACP, 802.1X, LLDP) and Cisco's 01:00:0c:cc:cc:cd;
 * - `etherTypes`: drops every other EtherType;
 * - `ips`: drops IPv4 sources outside the IPv4 prefixes (0.0.0.0 only as a DHCP client, UDP 68→67),
 *   ARP whose sender is outside them (0.0.0.0: a probe) or whose sender MAC is not the frame's source,
 *   IPv6 sources outside the IPv6 prefixes (link-local unless a link-local prefix is listed; `::` for
 *   ICMPv6 only), and neighbour advertisements for a target outside them; `options.exclude` (the
 *   bridge's own addresses) is refused in each of these places even inside the prefixes;
 * - `serverGuard`: drops DHCPv4 server messages (UDP from port 67), DHCPv6 server and relay messages
 *   (UDP from 547), router advertisements and redirects (ICMPv6 134, 137; ICMPv4 5, 9), also behind
 *   up to four IPv6 extension headers (hop-by-hop, routing, destination options, fragment) or in a
 *   first fragment; a longer chain is dropped, as is a first fragment too short to show its
 *   upper-layer header (RA guard evasion, RFC 7113).
 */
/** Options of {@link compileGuard}. */
export interface CompileOptions {
  /**
   * Addresses (4 or 16 bytes) the guest may never claim even inside its prefixes: the bridge's own
   * (the gateway's), as IPv4/IPv6 source, ARP sender or neighbour-advertisement target.
   */
  exclude?: readonly Uint8Array[];
}

/** Goes to `drop` if the address at `offset` (relative to X when `indexed`) is one of `addrs`. */
function dropAddresses(p: Program, addrs: readonly Uint8Array[], offset: number, indexed: boolean, drop: string): void {
  const load = indexed ? LD_W_IND : LD_W_ABS;
  for (const a of addrs) {
    const other = p.fresh('other');
    const words = a.length / 4;
    for (let i = 0; i < words; i++) {
      p.op(load, offset + 4 * i).op(JMP_JEQ_K, new DataView(a.buffer, a.byteOffset).getUint32(4 * i, false), null, other);
    }
    p.ja(drop).label(other);
  }
}

export function compileGuard(g: PortGuard, options: CompileOptions = {}): Uint8Array {
  const own4 = (options.exclude ?? []).filter((a) => a.length === 4);
  const own6 = (options.exclude ?? []).filter((a) => a.length === 16);
  const p = new Program();
  const DROP = 'drop';
  const PASS = 'pass';
  const v4: PrefixWords[] = [];
  const v6: PrefixWords[] = [];
  for (const prefix of g.ips ?? []) {
    const w = prefixWords(prefix);
    (w.v6 ? v6 : v4).push(w);
  }
  const ipGuard = (g.ips?.length ?? 0) > 0;
  const linkLocalListed = (g.ips ?? []).some((x) => x.startsWith('fe8') || x.startsWith('fe9') || x.startsWith('fea') || x.startsWith('feb'));
  const v6Allowed = linkLocalListed ? v6 : [...v6, LINK_LOCAL];
  const server = g.serverGuard === true;

  // Every frame: at least an Ethernet header, no VLAN tag.
  p.need(ETH_HLEN, DROP);
  p.op(LD_W_ABS, AD_VLAN_TAG_PRESENT).goUnless(JMP_JEQ_K, 0, DROP);
  p.op(LD_H_ABS, 12);
  for (const t of VLAN_TYPES) p.goIf(JMP_JEQ_K, t, DROP);

  if (g.bpduGuard) {
    const notReserved = p.fresh('notReserved');
    p.op(LD_W_ABS, 0).op(JMP_JEQ_K, 0x0180c200, null, notReserved);
    p.op(LD_H_ABS, 4).op(ALU_AND_K, 0xfff0).goIf(JMP_JEQ_K, 0, DROP);
    p.label(notReserved);
    const notPvst = p.fresh('notPvst');
    p.op(LD_W_ABS, 0).op(JMP_JEQ_K, 0x01000ccc, null, notPvst);
    p.op(LD_H_ABS, 4).goIf(JMP_JEQ_K, 0xcccd, DROP);
    p.label(notPvst);
  }

  if (g.etherTypes !== undefined) {
    const typeOk = p.fresh('typeOk');
    p.op(LD_H_ABS, 12);
    for (const t of g.etherTypes) p.goIf(JMP_JEQ_K, t, typeOk);
    p.ja(DROP).label(typeOk);
  }

  // Dispatch on the EtherType to the sections that have something to check.
  const doV4 = ipGuard || server;
  const doArp = ipGuard || g.mac !== undefined;
  const doV6 = ipGuard || server;
  p.op(LD_H_ABS, 12);
  if (doV4) p.goIf(JMP_JEQ_K, ETH_P_IP, 'ipv4');
  if (doArp) p.goIf(JMP_JEQ_K, ETH_P_ARP, 'arp');
  if (doV6) p.goIf(JMP_JEQ_K, ETH_P_IPV6, 'ipv6');
  p.ja(PASS);

  if (doV4) {
    p.label('ipv4').need(ETH_HLEN + 20, DROP);
    p.op(LD_B_ABS, ETH_HLEN).op(ALU_AND_K, 0xf0).goUnless(JMP_JEQ_K, 0x40, DROP);
    // X = the IPv4 header's length; below 20 it is malformed.
    p.op(LDX_B_MSH, ETH_HLEN).op(MISC_TXA).goUnless(JMP_JGE_K, 20, DROP);
    if (ipGuard) {
      const srcOk = p.fresh('v4srcOk');
      dropAddresses(p, own4, IP_SRC, false, DROP);
      matchPrefixes(p, v4, IP_SRC, false, srcOk);
      // 0.0.0.0 only for a DHCP client: unfragmented UDP from 68 to 67.
      p.op(LD_W_ABS, IP_SRC).goUnless(JMP_JEQ_K, 0, DROP);
      p.op(LD_B_ABS, IP_PROTO).goUnless(JMP_JEQ_K, IPPROTO_UDP, DROP);
      p.op(LD_H_ABS, IP_FRAG).goIf(JMP_JSET_K, 0x3fff, DROP);
      p.op(LD_W_LEN).op(ALU_SUB_K, ETH_HLEN + 3).goUnless(JMP_JGT_X, 0, DROP);
      p.op(LD_H_IND, ETH_HLEN).goUnless(JMP_JEQ_K, DHCP_CLIENT_PORT, DROP);
      p.op(LD_H_IND, ETH_HLEN + 2).goUnless(JMP_JEQ_K, DHCP_SERVER_PORT, DROP);
      p.label(srcOk);
    }
    if (server) {
      // A later fragment carries no upper-layer header: it cannot be judged alone and passes (its
      // first fragment, which can, is dropped, so it never reassembles).
      p.op(LD_H_ABS, IP_FRAG).goIf(JMP_JSET_K, 0x1fff, PASS);
      p.op(LD_B_ABS, IP_PROTO);
      const udp = p.fresh('v4udp');
      const icmp = p.fresh('v4icmp');
      p.goIf(JMP_JEQ_K, IPPROTO_UDP, udp).goIf(JMP_JEQ_K, IPPROTO_ICMP, icmp).ja(PASS);
      // Both need 4 bytes of their header: drop a first fragment too short to show them.
      p.label(udp).op(LD_W_LEN).op(ALU_SUB_K, ETH_HLEN + 3).goUnless(JMP_JGT_X, 0, DROP);
      p.op(LD_H_IND, ETH_HLEN).goIf(JMP_JEQ_K, DHCP_SERVER_PORT, DROP).ja(PASS);
      p.label(icmp).op(LD_W_LEN).op(ALU_SUB_K, ETH_HLEN + 3).goUnless(JMP_JGT_X, 0, DROP);
      p.op(LD_B_IND, ETH_HLEN).goIf(JMP_JEQ_K, ICMP_REDIRECT, DROP).goIf(JMP_JEQ_K, ICMP_ROUTER_ADVERT, DROP);
    }
    p.ja(PASS);
  }

  if (doArp) {
    // Ethernet/IPv4 ARP only: hardware type 1, protocol 0x0800, lengths 6 and 4.
    p.label('arp').need(ETH_HLEN + 28, DROP);
    p.op(LD_W_ABS, ETH_HLEN).goUnless(JMP_JEQ_K, 0x00010800, DROP);
    p.op(LD_H_ABS, ETH_HLEN + 4).goUnless(JMP_JEQ_K, 0x0604, DROP);
    // The sender MAC is the frame's source MAC.
    p.op(LD_W_ABS, 6).op(MISC_TAX).op(LD_W_ABS, ETH_HLEN + 8).goUnless(JMP_JEQ_X, 0, DROP);
    p.op(LD_H_ABS, 10).op(MISC_TAX).op(LD_H_ABS, ETH_HLEN + 12).goUnless(JMP_JEQ_X, 0, DROP);
    if (ipGuard) {
      dropAddresses(p, own4, ETH_HLEN + 14, false, DROP);
      matchPrefixes(p, v4, ETH_HLEN + 14, false, PASS);
      p.op(LD_W_ABS, ETH_HLEN + 14).goUnless(JMP_JEQ_K, 0, DROP); // 0.0.0.0: an ARP probe
    }
    p.ja(PASS);
  }

  if (doV6) {
    p.label('ipv6').need(IP6_PAYLOAD, DROP);
    p.op(LD_B_ABS, ETH_HLEN).op(ALU_AND_K, 0xf0).goUnless(JMP_JEQ_K, 0x60, DROP);
    if (ipGuard) {
      const srcOk = p.fresh('v6srcOk');
      dropAddresses(p, own6, IP6_SRC, false, DROP);
      matchPrefixes(p, v6Allowed, IP6_SRC, false, srcOk);
      // `::` only for ICMPv6 (DAD's neighbour solicitation, MLD behind a hop-by-hop header).
      for (let i = 0; i < 4; i++) p.op(LD_W_ABS, IP6_SRC + 4 * i).goUnless(JMP_JEQ_K, 0, DROP);
      p.op(LD_B_ABS, IP6_NEXT).goIf(JMP_JEQ_K, IPPROTO_ICMPV6, srcOk).goUnless(JMP_JEQ_K, IPV6_HOPOPTS, DROP);
      p.label(srcOk);
    }
    // Find the upper-layer header: X = its offset, A = its protocol. Up to IPV6_MAX_EXT extension
    // headers are walked (classic BPF has no loops: unrolled); a longer chain is dropped.
    const l4 = p.fresh('l4');
    p.op(LDX_IMM, IP6_PAYLOAD).op(LD_B_ABS, IP6_NEXT);
    for (let i = 0; i < IPV6_MAX_EXT; i++) {
      const ext = p.fresh('ext');
      const frag = p.fresh('frag');
      p.goIf(JMP_JEQ_K, IPV6_HOPOPTS, ext).goIf(JMP_JEQ_K, IPV6_ROUTING, ext).goIf(JMP_JEQ_K, IPV6_DSTOPTS, ext);
      p.goIf(JMP_JEQ_K, IPV6_FRAGMENT, frag).ja(l4);
      // Hop-by-hop, routing, destination options: next header at +0, 8 × (1 + the byte at +1) long.
      const next = p.fresh('next');
      p.label(ext).op(LD_W_LEN).op(ALU_SUB_K, 1).goUnless(JMP_JGT_X, 0, DROP);
      p.op(LD_B_IND, 0).op(MEM_ST, 0);
      p.op(LD_B_IND, 1).op(ALU_ADD_K, 1).op(ALU_LSH_K, 3).op(ALU_ADD_X).op(MISC_TAX).op(LD_MEM, 0).ja(next);
      // Fragment: 8 bytes; a later fragment passes (see IPv4), the first is judged by what it carries.
      p.label(frag).op(LD_W_LEN).op(ALU_SUB_K, 7).goUnless(JMP_JGT_X, 0, DROP);
      p.op(LD_H_IND, 2).goIf(JMP_JSET_K, 0xfff8, PASS);
      p.op(LD_B_IND, 0).op(MEM_ST, 0).op(MISC_TXA).op(ALU_ADD_K, 8).op(MISC_TAX).op(LD_MEM, 0);
      p.label(next);
    }
    for (const t of [IPV6_HOPOPTS, IPV6_ROUTING, IPV6_FRAGMENT, IPV6_DSTOPTS]) p.goIf(JMP_JEQ_K, t, DROP);
    p.label(l4);
    const icmp6 = p.fresh('icmp6');
    const udp6 = p.fresh('udp6');
    p.goIf(JMP_JEQ_K, IPPROTO_ICMPV6, icmp6);
    if (server) p.goIf(JMP_JEQ_K, IPPROTO_UDP, udp6);
    p.ja(PASS);
    // Both need 4 bytes of their header at X: len - 3 > X.
    if (server) {
      p.label(udp6).op(LD_W_LEN).op(ALU_SUB_K, 3).goUnless(JMP_JGT_X, 0, DROP);
      p.op(LD_H_IND, 0).goIf(JMP_JEQ_K, DHCPV6_SERVER_PORT, DROP).ja(PASS);
    }
    p.label(icmp6).op(LD_W_LEN).op(ALU_SUB_K, 3).goUnless(JMP_JGT_X, 0, DROP);
    p.op(LD_B_IND, 0);
    if (server) p.goIf(JMP_JEQ_K, ND_ROUTER_ADVERT, DROP).goIf(JMP_JEQ_K, ND_REDIRECT, DROP);
    if (ipGuard) {
      // A neighbour advertisement's target (8 bytes in, 16 long) must be one of the guest's.
      p.goUnless(JMP_JEQ_K, ND_NEIGHBOR_ADVERT, PASS);
      p.op(LD_W_LEN).op(ALU_SUB_K, 23).goUnless(JMP_JGT_X, 0, DROP);
      dropAddresses(p, own6, 8, true, DROP);
      matchPrefixes(p, v6Allowed, 8, true, PASS);
      p.ja(DROP);
    }
    p.ja(PASS);
  }

  p.label(PASS).ret(VERDICT_PASS);
  p.label(DROP).ret(VERDICT_DROP);
  return p.assemble();
}

