// The codec: captured kernel bytes parsed into spelled-out objects and re-emitted byte for byte,
// a round-trip property over generated messages, and a decoder fuzz.
import './harness.js';
import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { decodeAttrs, encodeAttrs, type AttrKind, type AttrSet, type AttrTable } from '../src/netlink/attr.js';
import { NetlinkDecodeError } from '../src/netlink/errors.js';
import { decodeLink, decodeMessages, encodeTyped, splitMessages, type Message } from '../src/netlink/message.js';
import { IFA, IFLA, IFLA_INFO, infoData } from '../src/netlink/tables.js';
import { formatMac, parseMac } from '../src/netlink/mac.js';
import { IFLA_PORT_SHOWN, IFLA_REFS, IFLA_SHOWN, kernelAttributes, toAddress, toBridgePort, toLink } from '../src/netlink/present.js';

const fixture = (name: string): Buffer[] =>
  readFileSync(new URL(`fixtures/netlink/${name}.hex`, import.meta.url), 'utf8')
    .trim()
    .split('\n')
    .map((l) => Buffer.from(l, 'hex'));

/** Re-encodes every link/addr message of a datagram and checks the bytes are the kernel's. */
function reencodes(t: Test, datagram: Buffer, name: string): Message[] {
  const msgs = decodeMessages(datagram);
  const again = Buffer.concat(msgs.map((m) => (m.kind === 'link' || m.kind === 'addr' ? encodeTyped(m) : datagram.subarray(0, 0))));
  const original = Buffer.concat(
    msgs.flatMap((m, i) => {
      if (m.kind !== 'link' && m.kind !== 'addr') return [];
      let off = 0;
      for (let j = 0; j < i; j++) off += (datagram.readUInt32LE(off) + 3) & ~3;
      return [datagram.subarray(off, off + datagram.readUInt32LE(off))];
    }),
  );
  t.ok(again.equals(original), `${name}: re-encoded byte for byte (${original.length} bytes)`);
  return msgs;
}

t.test('RTM_NEWADDR from the kernel, spelled out', async (t) => {
  const [datagram, done] = fixture('dump-addr-inet');
  const [m] = reencodes(t, datagram!, 'addr');
  t.same(m, {
    type: 20, // RTM_NEWADDR
    flags: 2, // NLM_F_MULTI
    seq: 42,
    pid: m!.pid,
    kind: 'addr',
    addr: {
      family: 2,
      prefixlen: 24,
      flags: 0x80, // IFA_F_PERMANENT
      scope: 0,
      index: 2,
      attrs: {
        address: Buffer.from([10, 1, 2, 3]),
        local: Buffer.from([10, 1, 2, 3]),
        label: 'br0',
        flags: 0x80,
        cacheinfo: { preferred: 0xffffffff, valid: 0xffffffff, cstamp: (m as any).addr.attrs.cacheinfo.cstamp, tstamp: (m as any).addr.attrs.cacheinfo.tstamp },
      },
    },
  });
  const a = toAddress((m as any).addr, () => ({ ifname: 'br0', flags: 0 }));
  t.same(a, { ifindex: 2, ifname: 'br0', family: 'inet', local: '10.1.2.3', prefixlen: 24, scope: 'global', label: 'br0', valid_life_time: 4294967295, preferred_life_time: 4294967295 });
  t.same(decodeMessages(done!), [{ type: 3, flags: 2, seq: 42, pid: m!.pid, kind: 'done', error: { errno: 0 } }]);
});

t.test('AF_BRIDGE port message from the kernel, spelled out', async (t) => {
  const [datagram] = fixture('dump-af-bridge');
  const [m] = reencodes(t, datagram!, 'port');
  t.match(m, {
    type: 16,
    kind: 'link',
    link: {
      family: 7,
      type: 1,
      index: 4,
      flags: 0x1002,
      attrs: {
        ifname: 'v0',
        master: 2,
        mtu: 1500,
        operstate: 2,
        address: '02:00:00:00:00:02',
        link: 3,
        protinfo: {
          state: 0, priority: 32, cost: 2, hairpin: 0, guard: 0, rootBlock: 0, fastLeave: 0, mcastToUnicast: 0,
          learning: 1, flood: 1, mcastFlood: 1, bcastFlood: 1, proxyArp: 0, proxyArpWifi: 0,
          rootId: { priority: 32768, address: '02:00:00:00:00:01' },
          bridgeId: { priority: 32768, address: '02:00:00:00:00:01' },
          designatedPort: 32769, designatedCost: 0, id: 32769, no: 1, topologyChangeAck: 0, configPending: 0,
          vlanTunnel: 0, groupFwdMask: 0, neighSuppress: 0, isolated: 0, locked: 0,
          messageAgeTimer: 0, forwardDelayTimer: 0, holdTimer: 0, multicastRouter: 1,
        },
      },
    },
  });
  const names = new Map([[2, { ifname: 'br0', flags: 0x1003 }], [3, { ifname: 'v1', flags: 0x1002 }]]);
  t.same(toBridgePort((m as any).link, (i) => names.get(i)), {
    ifindex: 4, link: 'v1', ifname: 'v0', flags: ['BROADCAST', 'MULTICAST', 'M-DOWN'], mtu: 1500, master: 'br0',
    state: 'disabled', priority: 32, cost: 2, hairpin: false, guard: false, root_block: false, fastleave: false,
    learning: true, flood: true, mcast_flood: true, bcast_flood: true, mcast_router: 1, mcast_to_unicast: false,
    neigh_suppress: false, neigh_vlan_suppress: false, vlan_tunnel: false, isolated: false, locked: false, mab: false,
  });
});

t.test('RTM_NEWLINK for a bridge: unknown attributes and a grown struct survive', async (t) => {
  const [datagram, ack] = fixture('getlink-bridge');
  const [m] = reencodes(t, datagram!, 'bridge');
  const a = (m as any).link.attrs as AttrSet;
  // Created with mtu 1400; enslaving a 1500-byte veth moved it to 1500 (the kernel's auto-adjust).
  t.match(a, { ifname: 'br0', mtu: 1500, address: '02:00:00:00:00:01', broadcast: 'ff:ff:ff:ff:ff:ff', linkinfo: { kind: 'bridge' } });
  t.match((a.linkinfo as any).data, { forwardDelay: 1500, helloTime: 200, maxAge: 2000, ageingTime: 30000, stpState: 0, priority: 32768, vlanFiltering: 0, groupAddr: '01:80:c2:00:00:00', bridgeId: { priority: 32768, address: '02:00:00:00:00:01' } });
  t.ok((a.unknown ?? []).length > 0, 'attributes newer than our tables are kept as unknown');
  // IFLA_STATS64 has grown past the 23 counters we name: it is read by its minimum length and the
  // extra counters are re-emitted untouched.
  t.equal(Object.keys(a.stats64 as object).length, 23);
  // Changing one field re-encodes that attribute only.
  (a as any).mtu = 9000;
  const changed = decodeMessages(encodeTyped(m!))[0] as any;
  t.equal(changed.link.attrs.mtu, 9000);
  t.same(changed.link.attrs.unknown, a.unknown);
  t.same(decodeMessages(ack!)[0], { type: 2, flags: 0x100, seq: 42, pid: m!.pid, kind: 'error', error: { errno: 0 } }, 'ACK (capped)');
});

t.test('a listing reads only what it prints (IFLA_SHOWN), and prints the same as from a full decode', async (t) => {
  const names = new Map([[2, { ifname: 'br0', flags: 0x1003 }], [3, { ifname: 'v1', flags: 0x1002 }], [4, { ifname: 'v0', flags: 0x1002 }]]);
  const lookup = (i: number) => names.get(i);
  let n = 0;
  for (const name of ['getlink-bridge', 'getlink-veth-port', 'dump-af-bridge']) {
    for (const raw of fixture(name).flatMap(splitMessages)) {
      if (raw.type !== 16) continue; // RTM_NEWLINK
      const full = decodeLink(raw.payload);
      const shown = decodeLink(raw.payload, IFLA_SHOWN);
      const convert = full.family === 7 ? toBridgePort : toLink; // AF_BRIDGE: a port
      const fromShown = convert(shown, lookup);
      t.same(fromShown, convert(full, lookup), `${name} ${full.attrs.ifname}: the same object`);
      t.same(kernelAttributes(fromShown), full.attrs, `${name} ${full.attrs.ifname}: kernelAttributes() decodes everything`);
      if (full.family === 7) {
        const port = toBridgePort(decodeLink(raw.payload, IFLA_PORT_SHOWN), lookup);
        t.same(port, fromShown, `${name} ${full.attrs.ifname}: the same port from IFLA_PORT_SHOWN`);
        t.same(kernelAttributes(port), full.attrs, `${name} ${full.attrs.ifname}: kernelAttributes() of the port`);
      }
      const head = decodeLink(raw.payload, IFLA_REFS);
      const refs = Object.fromEntries((['ifname', 'link', 'master', 'linkNetnsid'] as const).flatMap((k) => (full.attrs[k] === undefined ? [] : [[k, full.attrs[k]]])));
      t.strictSame({ ...head.attrs }, refs, 'the head: name, lower link, master');
      n++;
    }
  }
  t.ok(n >= 3, `${n} link messages compared`);
});

t.test('decoded sets are typed by their tables: nests by key, IFLA_INFO_DATA by kind', async (t) => {
  const raw = fixture('getlink-bridge').flatMap(splitMessages).find((m) => m.type === 16)!;
  const link = decodeLink(raw.payload);
  const info = link.attrs.linkinfo;
  t.equal(info?.kind, 'bridge', 'linkinfo.kind, a string, no cast');
  t.type(link.attrs.mtu, 'number');
  t.type(infoData(info, 'bridge')?.stpState, 'number', "the bridge's IFLA_BR_* set");
  t.equal(infoData(info, 'tun'), undefined, 'no tun data on a bridge');
  t.match(infoData(info, 'bridge')?.bridgeId, { priority: Number, address: /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/ }, 'a struct: its fields typed');
  // What the compiler refuses (npm run lint type-checks this file): a key no table lists, a value of another kind.
  const typos = () => {
    // @ts-expect-error: IFLA has no `mtuu`
    encodeAttrs(IFLA, { mtuu: 1500 });
    // @ts-expect-error: IFLA_INFO_KIND is a string
    encodeAttrs(IFLA_INFO, { kind: 1 });
  };
  t.type(typos, 'function');
});

t.test('one MAC parser: the codec and the tap layer read MAC text the same way', async (t) => {
  t.same([...parseMac('fe:54:00:0A:bc:01', 6)], [0xfe, 0x54, 0x00, 0x0a, 0xbc, 0x01]);
  t.same([...parseMac('fe:54')], [0xfe, 0x54], 'a prefix: any number of octets when none is asked for');
  t.same([...parseMac('')], [], 'no octets (a device without a hardware address)');
  for (const bad of ['fe:54:00:0a:bc', 'fe:54:00:0a:bc:1', 'fe-54-00-0a-bc-01', 'gg:54:00:0a:bc:01', 'fe:54:00:0a:bc:01:']) {
    t.throws(() => parseMac(bad, 6), TypeError, `refuses "${bad}"`);
  }
  t.throws(() => encodeAttrs(IFLA, { address: 'fe:54:zz:0a:bc:01' }), TypeError, 'the encoder refuses bad MAC text rather than writing zeros');
  const ib = Array.from({ length: 20 }, (_, i) => i.toString(16).padStart(2, '0')).join(':');
  t.equal(decodeAttrs(IFLA, encodeAttrs(IFLA, { address: ib })).address, ib, 'a 20-octet (infiniband) address round-trips');
  t.equal(formatMac(parseMac('FE:54:00:0A:BC:01', 6)), 'fe:54:00:0a:bc:01');
});

t.test('kernel errors: NLMSG_ERROR with ext-ack text, and a dump error inside NLMSG_DONE', async (t) => {
  t.same(decodeMessages(fixture('error-mtu')[0]!)[0], { type: 2, flags: 0x200, seq: 42, pid: (decodeMessages(fixture('error-mtu')[0]!)[0] as any).pid, kind: 'error', error: { errno: 22, message: 'mtu less than device minimum' } });
  t.match(decodeMessages(fixture('error-eexist')[0]!)[0], { kind: 'error', error: { errno: 17 } });
  t.match(decodeMessages(fixture('done-strict-index')[0]!)[0], { kind: 'done', flags: 0x202, error: { errno: 22, message: 'Filter by device index not supported for link dumps' } });
});

// ---- generated messages ----------------------------------------------------------------------

let seed = 0x5eed1234;
function rand(n: number): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
}
const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => rand(256)));
const hex2 = () => rand(256).toString(16).padStart(2, '0');

function genValue(kind: AttrKind, parent: AttrSet, depth: number): unknown {
  if (typeof kind === 'string') {
    switch (kind) {
      case 'u8': return rand(256);
      case 'u16': case 'be16': return rand(65536);
      case 'u32': return rand(2 ** 31) * 2 + rand(2);
      case 's32': return rand(2 ** 31) - 2 ** 30;
      case 'u64': return rand(2 ** 31) * 2 ** 21 + rand(2 ** 21);
      case 'string': return Array.from({ length: rand(20) }, () => String.fromCharCode(32 + rand(95))).join('') + (rand(4) === 0 ? 'é€' : '');
      case 'binary': return bytes(rand(24));
      case 'mac': return Array.from({ length: 6 }, hex2).join(':');
      case 'flag': return true;
    }
  }
  if ('nested' in kind) return genSet(kind.nested, depth + 1);
  if ('nestedBy' in kind) {
    const table = kind.tables[String(parent[kind.nestedBy])];
    return table ? genSet(table, depth + 1) : bytes(rand(16));
  }
  if ('byType' in kind) {
    const out: Record<number, AttrSet> = {};
    for (const [k, table] of Object.entries(kind.byType)) if (rand(2)) out[Number(k)] = genSet(table, depth + 1);
    return out;
  }
  return Object.fromEntries(kind.struct.map(([name, k]) => [name, genValue(k, {}, depth)]));
}

function genSet(table: AttrTable, depth = 0): AttrSet {
  const out: AttrSet = {};
  for (const row of table.rows) {
    if (rand(3) !== 0 || (depth > 3 && typeof row.kind !== 'string')) continue;
    out[row.key] = row.multi ? Array.from({ length: 1 + rand(3) }, () => genValue(row.kind, out, depth)) : genValue(row.kind, out, depth);
  }
  if (rand(3) === 0) {
    out.unknown = Array.from({ length: 1 + rand(3) }, () => ({ type: 900 + rand(100), data: bytes(rand(12)) }));
  }
  return out;
}

t.test('round trip: decode(encode(x)) equals x for generated attribute sets', async (t) => {
  let ok = 0;
  const N = 3000;
  for (let i = 0; i < N; i++) {
    const table: AttrTable = rand(4) === 0 ? IFA : IFLA;
    const x = genSet(table);
    const wire = encodeAttrs(table, x);
    const back = decodeAttrs(table, wire);
    // Only a failing case is reported, with its diff; the count below says how many passed. Strict:
    // a value that comes back as another type (1 for true, '5' for 5) is a failure, not "equivalent".
    if (!isDeepStrictEqual({ ...back }, { ...x })) {
      t.strictSame({ ...back }, { ...x }, `case ${i}`);
      break;
    }
    if (!encodeAttrs(table, back).equals(wire) && !t.fail(`case ${i}: bytes not stable`)) break;
    ok++;
  }
  t.equal(ok, N, `${N} generated messages round-trip`);
});

t.test('fuzz: 100 000 mutated kernel messages give values or NetlinkDecodeError, nothing else', async (t) => {
  const seeds = ['getlink-bridge', 'getlink-veth-port', 'dump-af-bridge', 'dump-addr-inet', 'error-mtu', 'done-strict-index'].flatMap(fixture);
  const N = 100_000;
  let decoded = 0;
  let rejected = 0;
  const start = Date.now();
  for (let i = 0; i < N; i++) {
    const base = seeds[rand(seeds.length)]!;
    let b = Buffer.from(base);
    switch (rand(5)) {
      case 0: // flip bytes
        for (let k = 0; k <= rand(8); k++) b[rand(b.length)] = rand(256);
        break;
      case 1: // truncate
        b = b.subarray(0, rand(b.length + 1));
        break;
      case 2: { // corrupt a length field (message or attribute)
        const off = rand(Math.max(1, b.length - 2)) & ~1;
        b.writeUInt16LE(rand(65536), off);
        break;
      }
      case 3: // splice random bytes in
        b = Buffer.concat([b.subarray(0, rand(b.length)), bytes(rand(32)), b.subarray(rand(b.length))]);
        break;
      default: // random garbage with a plausible header
        b = bytes(16 + rand(200));
        b.writeUInt32LE(b.length, 0);
        b.writeUInt16LE([16, 20, 2, 3][rand(4)]!, 4);
    }
    try {
      decodeMessages(b);
      // The partial readers of a listing, over the same bytes (what decodes must also pick).
      for (const m of splitMessages(b)) if (m.type === 16) decodeLink(m.payload, IFLA_SHOWN);
      decoded++;
    } catch (e) {
      if (!(e instanceof NetlinkDecodeError)) {
        t.fail(`input ${b.toString('hex')} threw ${String(e)}`);
        return;
      }
      rejected++;
    }
  }
  // Mutations must reach both outcomes, or the fuzz is not exercising the decoder.
  t.ok(decoded > N / 10 && rejected > N / 10, `both outcomes reached: ${decoded} decoded, ${rejected} rejected`);
  t.comment(`${decoded} decoded, ${rejected} rejected with NetlinkDecodeError, in ${Date.now() - start} ms`);
});
