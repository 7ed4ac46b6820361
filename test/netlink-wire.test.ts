// The bytes qbh sends, against the bytes iproute2 sends for the same request. iproute2's requests
// are captured from the real `ip` under `strace -e write=all` (a hex dump of every sendmsg buffer);
// ours are recorded on the socket's transport (test/fake-kernel.ts) while the public API does the same thing. Both go to the
// kernel in this file's private network namespace (both must succeed). Normalised: nlmsg_seq and
// nlmsg_pid (per process), and the order of top-level attributes (iproute2 adds them in argv order);
// everything else — lengths, flags, the fixed ifinfomsg/ifaddrmsg, every attribute's bytes with its
// NUL and padding, nested ones whole — must be identical. A re-walk of received bytes cannot see an
// encoder bug such as a string without its NUL; this does.
import './harness.js';
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { ipj, sh } from './harness.js';
import { Rtnl } from '../src/netlink/rtnl.js';
import { RecordingTransport } from './fake-kernel.js';
import { persistentMac } from '../src/netlink/mac.js';

const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
const RTM_GETLINK = 18;
const RTM_NEWADDR = 20;
const IFLA_IFNAME = 3;
const NLM_F_CREATE = 0x400;

/** Splits a buffer into netlink messages (each nlmsg_len long, 4-aligned). */
function split(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off + 16 <= buf.length; ) {
    const len = buf.readUInt32LE(off);
    if (len < 16 || off + len > buf.length) throw new Error(`bad nlmsg_len ${len} at ${off}`);
    out.push(buf.subarray(off, off + len));
    off += (len + 3) & ~3;
  }
  return out;
}

/** Runs `ip ARGS` under strace; returns every netlink message it sent, in order. */
function ipSends(...args: string[]): Buffer[] {
  const r = spawnSync('strace', ['-qq', '-e', 'trace=sendmsg,sendto', '-e', 'write=all', 'ip', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')} failed: ${r.stderr}`);
  const bufs: Buffer[] = [];
  let cur: number[] | null = null;
  for (const line of r.stderr.split('\n')) {
    // " * 64 bytes in buffer 0" starts a buffer; " | 00000  40 00 00 00 …  ascii |" continues it.
    if (/^ \* \d+ bytes in buffer \d+/.test(line)) {
      cur = [];
      bufs.push(cur as unknown as Buffer);
      continue;
    }
    const m = /^ \| [0-9a-f]{5}  (.{48})/.exec(line);
    if (m && cur) for (const h of m[1]!.trim().split(/\s+/)) cur.push(parseInt(h, 16));
  }
  return bufs.flatMap((b) => split(Buffer.from(b as unknown as number[])));
}

const recorder = new RecordingTransport();

/** Runs `fn`, returning every netlink message our handle `h` sent meanwhile (recorded on its transport). */
async function ourSends(fn: () => Promise<unknown>): Promise<Buffer[]> {
  const from = recorder.sent.length;
  await fn();
  return recorder.sent.slice(from).flatMap(split);
}

type Tlv = { type: number; data: Buffer };
const NLA_F_NESTED = 0x8000;
const IFLA_LINKINFO = 18;
const IFLA_INFO_KIND = 1;

function tlvs(buf: Buffer): Tlv[] {
  const out: Tlv[] = [];
  for (let off = 0; off + 4 <= buf.length; ) {
    const len = buf.readUInt16LE(off);
    if (len < 4 || off + len > buf.length) throw new Error(`bad nla_len ${len} at ${off}`);
    out.push({ type: buf.readUInt16LE(off + 2), data: buf.subarray(off + 4, off + len) });
    off += (len + 3) & ~3;
  }
  return out;
}
function tlvBytes(a: Tlv): Buffer {
  const b = Buffer.alloc((4 + a.data.length + 3) & ~3);
  b.writeUInt16LE(4 + a.data.length, 0);
  b.writeUInt16LE(a.type, 2);
  a.data.copy(b, 4);
  return b;
}

/**
 * IFLA_LINKINFO, made comparable. Two documented differences, both accepted by the kernel
 * (ifla_info_policy: IFLA_INFO_KIND is NLA_STRING, nla_strscpy'd; nested attributes are parsed with
 * or without the flag): iproute2 6.1 sends IFLA_INFO_KIND without a NUL (`addattr_l(…, strlen(type))`)
 * and never sets NLA_F_NESTED; qbh NUL-terminates every string and flags its nests, as the kernel's
 * netlink docs ask. So iproute2's kind gets its NUL added (ours is not touched: a kind without its
 * NUL still differs) and NLA_F_NESTED is masked on both sides, inside IFLA_LINKINFO only.
 */
function linkinfo(a: Tlv, theirs: boolean): Tlv {
  const inner = tlvs(a.data).map((x) => {
    const type = x.type & ~NLA_F_NESTED;
    if (type === IFLA_INFO_KIND && theirs && x.data.at(-1) !== 0) return { type, data: Buffer.concat([x.data, Buffer.alloc(1)]) };
    return { type, data: x.type & NLA_F_NESTED ? Buffer.concat(tlvs(x.data).map((y) => tlvBytes({ type: y.type & ~NLA_F_NESTED, data: y.data }))) : x.data };
  });
  return { type: a.type & ~NLA_F_NESTED, data: Buffer.concat(inner.map(tlvBytes)) };
}

/** The parts compared: header without seq/pid, the fixed struct, the attributes (top level sorted). */
function normal(msg: Buffer, theirs = false) {
  const type = msg.readUInt16LE(4);
  const fixed = type >= RTM_NEWADDR && type <= RTM_NEWADDR + 2 ? 8 : 16;
  const attrs = tlvs(msg.subarray(16 + fixed)).map((a) => {
    // Each attribute with its length and padding: a string without its NUL changes both.
    const norm = fixed === 16 && (a.type & ~NLA_F_NESTED) === IFLA_LINKINFO ? linkinfo(a, theirs) : a;
    return tlvBytes(norm).toString('hex');
  });
  const attrLen = attrs.reduce((n, a) => n + a.length / 2, 0);
  return {
    nlmsg_len: 16 + fixed + attrLen,
    nlmsg_type: type,
    nlmsg_flags: `0x${msg.readUInt16LE(6).toString(16)}`,
    fixed: msg.subarray(16, 16 + fixed).toString('hex'),
    attrs: attrs.sort(),
  };
}

const one = (msgs: Buffer[], what: string, pred: (m: Buffer) => boolean): Buffer => {
  const found = msgs.filter(pred);
  if (found.length !== 1) throw new Error(`expected one ${what}, got ${found.length}`);
  return found[0]!;
};
const ofType = (type: number, flags = 0) => (m: Buffer) => m.readUInt16LE(4) === type && (m.readUInt16LE(6) & flags) === flags;

function same(t: Test, ours: Buffer, theirs: Buffer, what: string) {
  t.equal(ours.readUInt32LE(0), ours.length, `${what}: nlmsg_len is the message's length`);
  t.same(normal(ours), normal(theirs, true), `${what}: the bytes iproute2 sends (seq, pid and attribute order aside)`);
}

const h = Rtnl.over(recorder.socket());
t.teardown(() => h.close());
const index = (name: string) => ipj<{ ifindex: number }[]>('link', 'show', 'dev', name)[0]!.ifindex;

// createBridge gives a bridge its persistent MAC by default (machine-id + name, src/netlink/mac.ts):
// iproute2 is told the same address, so the IFLA_ADDRESS bytes are compared too.
t.test('RTM_NEWLINK: create a bridge with an MTU (ip link add NAME address MAC mtu N type bridge)', async (t) => {
  for (const name of ['qb0', 'abcdefghijklmno' /* 15 bytes: the longest name, its NUL fills the 16th */]) {
    const mac = persistentMac(name).address;
    const theirs = one(ipSends('link', 'add', name, 'address', mac, 'mtu', '1400', 'type', 'bridge'), 'RTM_NEWLINK', ofType(RTM_NEWLINK, NLM_F_CREATE));
    sh('ip', 'link', 'del', name);
    const ours = one(await ourSends(() => h.createBridge(name, { mtu: 1400, up: false })), 'RTM_NEWLINK', ofType(RTM_NEWLINK, NLM_F_CREATE));
    same(t, ours, theirs, name);
    t.equal(ipj<{ mtu: number }[]>('link', 'show', 'dev', name)[0]!.mtu, 1400, `${name}: the kernel took it`);
    sh('ip', 'link', 'del', name);
  }
});

t.test('RTM_NEWLINK with nested bridge data (ip link add NAME type bridge stp_state 1)', async (t) => {
  const theirs = one(ipSends('link', 'add', 'qb1', 'type', 'bridge', 'stp_state', '1'), 'RTM_NEWLINK', ofType(RTM_NEWLINK, NLM_F_CREATE));
  sh('ip', 'link', 'del', 'qb1');
  const ours = one(await ourSends(() => h.createBridge('qb1', { stp: true, up: false, persistentMac: false })), 'RTM_NEWLINK', ofType(RTM_NEWLINK, NLM_F_CREATE));
  same(t, ours, theirs, 'qb1 stp_state 1');
  sh('ip', 'link', 'del', 'qb1');
});

t.test('RTM_NEWLINK: enslave and bring up (ip link set DEV master BR up), and the name lookup', async (t) => {
  sh('ip', 'link', 'add', 'qb0', 'type', 'bridge');
  sh('ip', 'link', 'add', 'qv0', 'type', 'veth', 'peer', 'name', 'qv1');
  const ip = ipSends('link', 'set', 'qv0', 'master', 'qb0', 'up');
  const theirs = one(ip, 'RTM_NEWLINK', ofType(RTM_NEWLINK));
  sh('ip', 'link', 'set', 'qv0', 'nomaster', 'down');
  const sent = await ourSends(() => h.setLink(index('qv0'), { master: 'qb0', up: true }));
  same(t, one(sent, 'RTM_NEWLINK', ofType(RTM_NEWLINK)), theirs, 'set master up');
  t.equal(ipj<{ master?: string }[]>('link', 'show', 'dev', 'qv0')[0]!.master, 'qb0', 'the kernel took it');
  // Both look the bridge up by name first. The requests differ on purpose (we ask for an ACK, and
  // leave VFs out of IFLA_EXT_MASK), but the name attribute must be the same bytes.
  const name = (m: Buffer) => normal(m).attrs.filter((a) => parseInt(a.slice(4, 8).match(/../g)!.reverse().join(''), 16) === IFLA_IFNAME);
  const theirLookup = one(ip.filter(ofType(RTM_GETLINK)), 'RTM_GETLINK for qb0', (m) => m.includes(Buffer.from('qb0\0')));
  const ourLookup = one(sent, 'RTM_GETLINK', ofType(RTM_GETLINK));
  t.same(name(ourLookup), name(theirLookup), 'IFLA_IFNAME "qb0" in the lookup: the same bytes');
  t.equal(name(ourLookup).length, 1);
});

t.test('RTM_NEWLINK: set the MTU (ip link set DEV mtu N)', async (t) => {
  const theirs = one(ipSends('link', 'set', 'qb0', 'mtu', '9000'), 'RTM_NEWLINK', ofType(RTM_NEWLINK));
  sh('ip', 'link', 'set', 'qb0', 'mtu', '1500');
  const ours = one(await ourSends(() => h.setLink(index('qb0'), { mtu: 9000 })), 'RTM_NEWLINK', ofType(RTM_NEWLINK));
  same(t, ours, theirs, 'mtu 9000');
});

t.test('RTM_NEWADDR: add an IPv4 address (ip addr add A/N dev DEV)', async (t) => {
  const theirs = one(ipSends('addr', 'add', '10.1.2.3/24', 'dev', 'qb0'), 'RTM_NEWADDR', ofType(RTM_NEWADDR, NLM_F_CREATE));
  sh('ip', 'addr', 'del', '10.1.2.3/24', 'dev', 'qb0');
  const ours = one(await ourSends(() => h.addAddress('qb0', '10.1.2.3/24')), 'RTM_NEWADDR', ofType(RTM_NEWADDR, NLM_F_CREATE));
  same(t, ours, theirs, '10.1.2.3/24');
  t.equal(ipj<any[]>('addr', 'show', 'dev', 'qb0')[0].addr_info.filter((a: any) => a.local === '10.1.2.3').length, 1, 'the kernel took it');
});

t.test('RTM_DELLINK by index (ip link del DEV)', async (t) => {
  // The same ifindex both times, so that ifi_index compares.
  sh('ip', 'link', 'add', 'qb2', 'index', '4242', 'type', 'bridge');
  const theirs = one(ipSends('link', 'del', 'qb2'), 'RTM_DELLINK', ofType(RTM_DELLINK));
  sh('ip', 'link', 'add', 'qb2', 'index', '4242', 'type', 'bridge');
  const ours = one(await ourSends(() => h.deleteLink(index('qb2'))), 'RTM_DELLINK', ofType(RTM_DELLINK));
  same(t, ours, theirs, 'del');
  t.notOk(ipj<{ ifname: string }[]>('link', 'show').some((l) => l.ifname === 'qb2'), 'the kernel took it');
});
