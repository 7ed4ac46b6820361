// The port guard's kernel side (src/guard): what a guarded tap looks like to iproute2 (the oracle),
// the guard words and their errors, and a refusal part-way through leaving nothing behind.
// Private netns and mount ns (harness).
import './harness.js';
import t from 'tap';
import { ipj, sh } from './harness.js';
import { closeTap, openTap, openTaps, destroyTaps, type Tap } from '../src/tun/tap.js';
import { TapError } from '../src/tun/errors.js';
import { InvalidArgumentError } from '../src/errors.js';
import { checkGuard, formatGuard, parseGuard, readGuardWords } from '../src/guard/policy.js';
import { guardAlias, readGuardAlias } from '../src/guard/apply.js';
import { compileGuard } from '../src/guard/bpf.js';
import { fdbDumpSync } from '../src/guard/fdb.js';
import { guardDropsSync, hasGuardFilterSync } from '../src/guard/tc.js';
import { openRouteSocketSync } from '../src/netlink/wire.js';
import { readPortGuards } from '../src/guard/state.js';
import { native } from '../src/native.js';

sh('ip', 'link', 'add', 'gbr0', 'type', 'bridge');
sh('ip', 'link', 'set', 'gbr0', 'up');
const fd = openRouteSocketSync();
t.teardown(() => native.close(fd));

/** Every link but lo and the bridge. */
const others = () => ipj<{ ifname: string }[]>('link', 'show').map((l) => l.ifname).filter((n) => n !== 'lo' && n !== 'gbr0');
const brport = (name: string) => ipj<Record<string, unknown>[]>('-d', 'link', 'show', 'dev', name)[0]!;
const bridgeLink = (name: string) => JSON.parse(sh('bridge', '-d', '-j', 'link', 'show', 'dev', name)) as Record<string, unknown>[];
const fdb = (name: string) => JSON.parse(sh('bridge', '-j', 'fdb', 'show', 'dev', name)) as { mac: string; flags?: string[]; state?: string }[];
const filters = (name: string) => JSON.parse(sh('tc', '-j', 'filter', 'show', 'dev', name, 'ingress')) as { kind?: string; options?: { handle?: string; bpf_name?: string; 'direct-action'?: boolean; not_in_hw?: boolean } }[];

t.test('guard words: canonical form, strict, none, and one-line errors naming the word', async (t) => {
  t.equal(formatGuard(parseGuard('strict')), 'isolated mac=sticky:1 server-guard bpdu-guard ethertypes=ipv4,arp,ipv6');
  t.equal(formatGuard(parseGuard('strict mac=52:54:00:AB:cd:01 ip=10.0.0.0/24,2001:DB8:0::/64')), 'isolated mac=52:54:00:ab:cd:01 ip=10.0.0.0/24,2001:db8::/64 server-guard bpdu-guard ethertypes=ipv4,arp,ipv6', 'words after strict override it; canonical MACs and prefixes');
  t.equal(guardAlias(parseGuard(`strict ip=${Array.from({ length: 16 }, (_, i) => `2001:db8:${i}::/48`).join(',')}`)), 'qbh-guard: isolated mac=sticky:1 ip=… server-guard bpdu-guard ethertypes=ipv4,arp,ipv6', 'a list too long for the alias is elided');
  t.same(readGuardAlias('qbh-guard: isolated mac=sticky:1 ip=… server-guard'), { isolated: true, mac: 'sticky', macLimit: 1, serverGuard: true }, 'and read without it');
  t.same(parseGuard('none'), {});
  t.equal(formatGuard(parseGuard(formatGuard(parseGuard('strict ethertypes=ipv4,0x88cc')))), 'isolated mac=sticky:1 server-guard bpdu-guard ethertypes=ipv4,0x88cc', 'formatGuard reads back to the same guard');
  const bad: [string, RegExp][] = [
    ['isolatd', /invalid guard word "isolatd": unknown/],
    ['mac=sticky:17', /"mac=sticky:17": a port may hold 1-16 MACs/],
    ['mac=01:00:5e:00:00:01', /not a unicast MAC/],
    ['ip=10.0.0.1/24', /host bits set \(did you mean 10\.0\.0\.0\/24\?\)/],
    ['ip=10.0.0.0/33', /prefix length must be 0-32/],
    ['ethertypes=0x8100', /VLAN tags are always dropped/],
    ['ethertypes=bogus', /not an EtherType/],
    ['none isolated', /"none": stands alone/],
    ['isolated=yes', /takes no value/],
  ];
  for (const [words, re] of bad) {
    const r = readGuardWords(words.split(' '));
    t.ok('error' in r && re.test((r as { error: string }).error), `${words}: ${'error' in r ? r.error : 'accepted'}`);
    t.throws(() => parseGuard(words), InvalidArgumentError);
  }
  t.throws(() => checkGuard({ isolated: 'yes' }, 'openTap'), /invalid guard\.isolated: expected true or false/);
  t.throws(() => checkGuard({ macLimit: 2 }, 'openTap'), /only with mac: "sticky"/);
  t.throws(() => checkGuard({ etherTypes: [] }, 'openTap'), /empty allow-list would drop every frame/);
  t.throws(() => checkGuard({ bogus: true }, 'openTap'), /unknown field "bogus"/);
  t.same(checkGuard({ mac: 'sticky', macLimit: 2, isolated: true }, 'openTap'), { isolated: true, mac: 'sticky', macLimit: 2 });
});

t.test('the filter program is valid classic BPF the kernel takes, for every part alone and all together', async (t) => {
  const guards = ['bpdu-guard', 'server-guard', 'ip=10.0.0.0/24', 'ip=2001:db8::/64,fe80::/64', 'mac=52:54:00:00:00:01,52:54:00:00:00:02', 'ethertypes=ipv4', 'strict ip=0.0.0.0/0,::/0', `strict ip=${Array.from({ length: 16 }, (_, i) => `2001:db8:${i}::/48`).join(',')}`];
  for (const words of guards) {
    const ops = compileGuard(parseGuard(words));
    t.ok(ops.length > 0 && ops.length % 8 === 0 && ops.length / 8 <= 4096, `${words}: ${ops.length / 8} instructions`);
    const tap = await openTap({ bridge: 'gbr0', guard: parseGuard(words) });
    t.ok(hasGuardFilterSync(fd, tap.ifindex), `${words}: the kernel accepted the program`);
    closeTap(tap);
  }
});

t.test('a sticky guard: alias, isolated + locked + learning (MAB), BPDU guard, the filter — as iproute2 shows them', async (t) => {
  const tap = await openTap({ bridge: 'gbr0', guard: parseGuard('strict') });
  t.teardown(() => closeTap(tap));
  const l = brport(tap.name);
  t.equal(l['ifalias'], 'qbh-guard: isolated mac=sticky:1 server-guard bpdu-guard ethertypes=ipv4,arp,ipv6', 'the alias records the guard');
  t.same(readGuardAlias(l['ifalias'] as string), parseGuard('strict'), 'and reads back');
  t.ok((l['flags'] as string[]).includes('UP'), 'the tap is up');
  const [b] = bridgeLink(tap.name);
  t.match(b, { isolated: true, locked: true, learning: true, guard: true, root_block: true }, 'port flags');
  const [f] = filters(tap.name).filter((x) => x.options?.handle !== undefined);
  t.match(f, { kind: 'bpf', options: { handle: '0xb4d', 'direct-action': true } }, 'the classic BPF filter, direct-action, on ingress');
  t.equal(guardDropsSync(fd, tap.ifindex), 0, 'no drops yet');
  const read = readPortGuards('gbr0').get(tap.name);
  t.match(read, { words: 'isolated mac=sticky:1 server-guard bpdu-guard ethertypes=ipv4,arp,ipv6', flags: { isolated: true, locked: true, mab: true }, filter: true, drops: 0, pinned: [] }, 'readPortGuards reads it back by port name');
});

t.test('a MAC list: static sticky FDB entries, locked port without learning; a MAC another port holds is refused and nothing is left', async (t) => {
  const mac = '52:54:00:12:34:56';
  const a = await openTap({ bridge: 'gbr0', guard: { mac: [mac], isolated: true } });
  t.teardown(() => closeTap(a));
  const pinned = fdb(a.name).find((e) => e.mac === mac);
  t.ok(pinned, 'the MAC is in the FDB on the port');
  t.ok(pinned?.flags?.includes('sticky') && pinned.state === 'static', `static and sticky (${JSON.stringify(pinned)})`);
  t.match(bridgeLink(a.name)[0], { locked: true, learning: false, isolated: true });
  const ours = fdbDumpSync(fd, { port: a.ifindex }).find((e) => e.mac === mac);
  t.match(ours, { static: true, sticky: true, locked: false }, 'fdbDumpSync reads it the same');
  const before = others();
  const err = await openTap({ bridge: 'gbr0', name: 'second0', guard: { mac: [mac] } }).catch((e: unknown) => e);
  t.type(err, TapError);
  t.equal((err as TapError).step, 'guard');
  t.match((err as TapError).message, /^cannot add second0 to bridge gbr0: applying its port guard: pinning 52:54:00:12:34:56: File exists/);
  t.same(others(), before, 'the refused tap is gone, with everything the guard had made');
});

t.test('a listed MAC the bridge merely learned on another port (one frame, perhaps spoofed) is taken; a static one is not', async (t) => {
  const mac = '52:54:00:aa:bb:cc';
  const other = await openTap({ bridge: 'gbr0', name: 'up0' });
  t.teardown(() => closeTap(other));
  sh('bridge', 'fdb', 'add', mac, 'dev', 'up0', 'master', 'dynamic');
  const tap = await openTap({ bridge: 'gbr0', guard: { mac: [mac] } });
  t.teardown(() => closeTap(tap));
  t.ok(fdb(tap.name).some((e) => e.mac === mac && e.state === 'static'), 'pinned to the guarded tap');
  t.notOk(fdb('up0').some((e) => e.mac === mac), 'no longer on the other port');
  const mac2 = '52:54:00:aa:bb:cd';
  sh('bridge', 'fdb', 'add', mac2, 'dev', 'up0', 'master', 'static');
  await t.rejects(openTap({ bridge: 'gbr0', guard: { mac: [mac2] } }), { name: 'TapError', message: /pinning 52:54:00:aa:bb:cd: File exists/ }, 'a static entry elsewhere is someone else\'s');
});

t.test('openTaps with a guard: every tap guarded; a guard without a bridge is bad input', async (t) => {
  const taps: Tap[] = await openTaps(5, { bridge: 'gbr0', guard: parseGuard('isolated server-guard') });
  t.teardown(() => destroyTaps(taps));
  for (const tap of taps) {
    t.equal(brport(tap.name)['ifalias'], 'qbh-guard: isolated server-guard');
    t.ok(hasGuardFilterSync(fd, tap.ifindex), `${tap.name}: filtered`);
    t.ok((brport(tap.name)['flags'] as string[]).includes('UP'), `${tap.name}: up`);
  }
  await t.rejects(openTap({ guard: { isolated: true } }), { name: 'InvalidArgumentError', message: /a guard needs a bridge/ });
});

t.test('nothing of a guard outlives its tap', async (t) => {
  const tap = await openTap({ bridge: 'gbr0', guard: parseGuard('strict mac=52:54:00:00:00:09 ip=10.9.0.0/16') });
  const index = tap.ifindex;
  closeTap(tap);
  for (let i = 0; i < 50 && others().includes(tap.name); i++) await new Promise((r) => setTimeout(r, 20));
  t.notOk(others().includes(tap.name), 'the tap is gone');
  t.notOk(fdbDumpSync(fd).some((e) => e.ifindex === index || e.mac === '52:54:00:00:00:09'), 'no FDB entry left');
  t.equal(JSON.parse(sh('tc', '-j', 'qdisc', 'show')).filter((q: { dev?: string }) => q.dev === tap.name).length, 0, 'no qdisc left');
});
