// The port guard as a user sees it: `qbh bridge list -d` / `show` / `--json`, `qbh monitor`,
// `qbh doctor`, `qbh tap create --guard`, each compared with iproute2 where it shows the same thing.
import './harness.js';
import t from 'tap';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { bridgej, ipj, linkNames, sh } from './harness.js';
import { qbh } from './cli-lib.js';
import { run } from '../src/cli/run.js';
import { closeTap, openTap, type Tap } from '../src/tun/index.js';

const BR = 'gsbr0';
const GUEST_MAC = '52:54:00:12:34:56';
const FOREIGN_MAC = '52:54:00:99:99:99';

sh('ip', 'link', 'add', BR, 'type', 'bridge');
sh('ip', 'link', 'set', BR, 'up');

/** IEEE local experimental EtherType: outside the guard's allow-list, so its filter drops it. */
const ETHERTYPE = [0x88, 0xb5];

/** An Ethernet frame from `src` to the broadcast address, of the experimental EtherType. */
function frame(src: string): Buffer {
  const mac = (m: string) => Buffer.from(m.split(':').map((h) => parseInt(h, 16)));
  return Buffer.concat([Buffer.alloc(6, 0xff), mac(src), Buffer.from(ETHERTYPE), Buffer.alloc(46, 0x5a)]);
}

const taps: Tap[] = [];
t.teardown(() => {
  for (const tap of taps) closeTap(tap);
});

/** A guarded tap on BR whose fd the test writes (the guest transmitting), and an unguarded one. */
async function lab(): Promise<{ guarded: Tap; plain: Tap }> {
  const guarded = await openTap({ name: 'gsg0', bridge: BR, vnetHdr: false, nonBlocking: true, guard: { isolated: true, mac: [GUEST_MAC], serverGuard: true, etherTypes: [0x0800, 0x0806, 0x86dd] } });
  const plain = await openTap({ name: 'gsp0', bridge: BR, vnetHdr: false, nonBlocking: true });
  taps.push(guarded, plain);
  return { guarded, plain };
}

t.test('bridge show / list -d / --json: the guard of each guarded port, nothing on the others', async (t) => {
  const { guarded } = await lab();
  // Frames of an EtherType the guard does not allow: its filter drops (and counts) them.
  const DROPPED = 7;
  for (let i = 0; i < DROPPED; i++) fs.writeSync(guarded.fds[0]!, frame(GUEST_MAC));
  await sleep(100);

  const j = JSON.parse((await qbh('bridge', 'show', BR, '--json')).stdout);
  const g = j.ports.find((p: any) => p.ifname === 'gsg0');
  const p = j.ports.find((p: any) => p.ifname === 'gsp0');
  t.equal(p.qbh_guard, undefined, 'an unguarded port has no qbh_guard');
  t.same(g.qbh_guard, {
    words: `isolated mac=${GUEST_MAC} server-guard ethertypes=ipv4,arp,ipv6`,
    flags: { isolated: true, locked: true, mab: false, learning: false, bpdu_guard: false, root_block: false },
    pinned: [GUEST_MAC],
    pending: [],
    filter: true,
    drops: DROPPED,
  });

  // iproute2 agrees: the port flags, and the pinned MAC as a static sticky entry of the port.
  const [link] = bridgej('-d', 'link', 'show', 'dev', 'gsg0');
  t.equal(link.isolated, g.qbh_guard.flags.isolated, 'isolated as bridge -d -j link shows it');
  t.equal(link.locked, g.qbh_guard.flags.locked, 'locked as bridge -d -j link shows it');
  t.equal(link.learning, g.qbh_guard.flags.learning, 'learning as bridge -d -j link shows it');
  const fdb = bridgej('fdb', 'show', 'br', BR).filter((e: any) => e.ifname === 'gsg0' && e.state === 'static' && (e.flags ?? []).includes('sticky'));
  t.same(fdb.map((e: any) => e.mac), g.qbh_guard.pinned, 'pinned = the static sticky entries of bridge -j fdb');
  // and tc: the clsact qdisc's drops.
  const qdiscs = JSON.parse(sh('tc', '-s', '-j', 'qdisc', 'show', 'dev', 'gsg0')) as { kind: string; drops: number }[];
  t.equal(qdiscs.find((q) => q.kind === 'clsact')?.drops, DROPPED, 'drops as tc -s qdisc shows them');
  // iproute2's own keys are untouched.
  const { qbh_guard: _, ...rest } = g;
  void _;
  t.notOk(Object.keys(rest).some((k) => k.startsWith('qbh')), 'only qbh_guard is added');

  const show = (await qbh('bridge', 'show', BR)).stdout;
  t.match(show, new RegExp(`^    gsg0 .*\\n      guard: isolated mac=${GUEST_MAC} server-guard ethertypes=ipv4,arp,ipv6  flags isolated,locked  pinned ${GUEST_MAC}  filter bpf 0xb4d  drops ${DROPPED}$`, 'm'));
  t.notMatch(show, /gsp0 .*\n\s+guard:/, 'no guard line under the unguarded port');
  const details = (await qbh('bridge', 'list', '-d')).stdout;
  t.match(details, `      guard: isolated mac=${GUEST_MAC} server-guard`);
  const listed = JSON.parse((await qbh('bridge', 'list', '--json')).stdout);
  t.same(listed.find((b: any) => b.ifname === BR).ports.find((p: any) => p.ifname === 'gsg0').qbh_guard.pinned, [GUEST_MAC]);
  t.notMatch((await qbh('bridge', 'list')).stdout, /guard/, 'the short table is as before');

  // A guard that lost its filter is not a guard any more: the listing says so.
  const [clsact] = JSON.parse(sh('tc', '-j', 'qdisc', 'show', 'dev', 'gsg0', 'clsact')) as { ingress_block: number }[];
  sh('tc', 'filter', 'del', 'block', String(clsact!.ingress_block));
  const after = JSON.parse((await qbh('bridge', 'show', BR, '--json')).stdout).ports.find((p: any) => p.ifname === 'gsg0').qbh_guard;
  t.equal(after.filter, false);
  t.match((await qbh('bridge', 'show', BR)).stdout, /guard: isolated .* filter MISSING  drops \d+$/m);
});

t.test('qbh monitor --json: a MAC pinned on a guarded port', async (t) => {
  const ctl = new AbortController();
  const out: string[] = [];
  const err: string[] = [];
  const done = run(['monitor', '--json'], { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) }, stdoutIsTTY: false, stderrIsTTY: false, env: {}, signal: ctl.signal });
  const deadline = Date.now() + 10000;
  while (!out.join('').includes('"ready"') && Date.now() < deadline) await sleep(20);
  const tap = await openTap({ name: 'gsm0', bridge: BR, vnetHdr: false, guard: { mac: ['52:54:00:aa:bb:cc'] } });
  taps.push(tap);
  const pin = () => out.join('').split('\n').filter((l) => l.includes('guard-pin'));
  while (pin().length === 0 && Date.now() < deadline) await sleep(20);
  // A plain port's static entry is no pin worth reporting.
  sh('bridge', 'fdb', 'add', '52:54:00:dd:dd:dd', 'dev', 'gsp0', 'master', 'static', 'sticky');
  await sleep(200);
  ctl.abort();
  t.equal(await done, 0, err.join(''));
  t.same(pin().map((l) => JSON.parse(l)), [{ type: 'guard-pin', ifname: 'gsm0', master: BR, mac: '52:54:00:aa:bb:cc', guard: 'mac=52:54:00:aa:bb:cc' }]);
});

t.test('qbh monitor (text): a MAC refused on a sticky port whose cap is reached', async (t) => {
  const tap = await openTap({ name: 'gss0', bridge: BR, vnetHdr: false, nonBlocking: true, guard: { mac: 'sticky', macLimit: 1 } });
  taps.push(tap);
  // The pin qbhd's pinner would have made: the port holds its one MAC.
  sh('bridge', 'fdb', 'replace', GUEST_MAC, 'dev', 'gss0', 'master', 'static', 'sticky');
  const ctl = new AbortController();
  const out: string[] = [];
  const err: string[] = [];
  const done = run(['monitor'], { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) }, stdoutIsTTY: false, stderrIsTTY: false, env: {}, signal: ctl.signal });
  const deadline = Date.now() + 10000;
  while (!err.join('').includes('ready') && Date.now() < deadline) await sleep(20);
  fs.writeSync(tap.fds[0]!, frame(FOREIGN_MAC));
  while (!out.join('').includes('refused') && Date.now() < deadline) await sleep(20);
  ctl.abort();
  t.equal(await done, 0, err.join(''));
  t.match(out.join(''), `refused gss0 master ${BR} mac ${FOREIGN_MAC} (port holds 1 of 1: ${GUEST_MAC})\n`);
  // The listing shows the same: one MAC pinned, the refused one pending (locked), the sticky flags.
  const g = JSON.parse((await qbh('bridge', 'show', BR, '--json')).stdout).ports.find((p: any) => p.ifname === 'gss0').qbh_guard;
  t.same(g.pinned, [GUEST_MAC]);
  t.same(g.pending, [FOREIGN_MAC]);
  t.same(g.flags, { isolated: false, locked: true, mab: true, learning: true, bpdu_guard: false, root_block: false });
  t.equal(g.filter, true, 'the filter of its policy');
});

t.test('qbh doctor: the guard features, probed in a throwaway namespace', async (t) => {
  const before = linkNames().sort();
  const r = await qbh('doctor', '--for', 'api', '--json');
  const check = JSON.parse(r.stdout).checks.find((c: { check: string }) => c.check === 'guard-features');
  t.same(check, { check: 'guard-features', ok: true, summary: 'port guard features: isolated, locked, mab, sticky FDB, clsact, cls_bpf (probed in a throwaway network namespace)' });
  t.same(linkNames().sort(), before, 'nothing made in this namespace');
  t.match((await qbh('doctor', '--for', 'api')).stdout, /^✓ port guard features: isolated, locked, mab, sticky FDB, clsact, cls_bpf/m);
});

t.test('qbh tap create --guard', async (t) => {
  let r = await qbh('tap', 'create', 'gsc0', '--bridge', BR, '--guard', 'isolated', '--guard', 'ip=10.0.0.0/24 bpdu-guard');
  t.equal(r.code, 0, r.stderr);
  const [port] = bridgej('-d', 'link', 'show', 'dev', 'gsc0');
  t.equal(port.isolated, true);
  t.equal(port.guard, true, 'bpdu-guard sets the port flag guard');
  t.equal(ipj('link', 'show', 'gsc0')[0].ifalias, 'qbh-guard: isolated ip=10.0.0.0/24 bpdu-guard', 'the guard readable on the port');
  const j = JSON.parse((await qbh('bridge', 'show', BR, '--json')).stdout);
  t.equal(j.ports.find((p: any) => p.ifname === 'gsc0').qbh_guard.words, 'isolated ip=10.0.0.0/24 bpdu-guard');
  sh('ip', 'link', 'del', 'gsc0');

  // mac=sticky needs qbhd, which does not run here: one line, exit 1, no tap.
  r = await qbh('tap', 'create', 'gsc1', '--bridge', BR, '--guard', 'strict', '--daemon-socket', '/nonexistent/qbhd.sock');
  t.equal(r.code, 1);
  t.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
  t.match(r.stderr, /^qbh: cannot create tap gsc1: guard mac=sticky needs qbhd running/);
  t.notOk(linkNames().includes('gsc1'), 'nothing left');

  // A word that is not a guard word: a usage error naming it, before anything is made.
  r = await qbh('tap', 'create', 'gsc2', '--bridge', BR, '--guard', 'isolated mac=sticky:99');
  t.equal(r.code, 2);
  t.match(r.stderr, 'qbh: tap create: invalid guard word "mac=sticky:99"');
  r = await qbh('tap', 'create', 'gsc3', '--guard', 'isolated');
  t.equal(r.code, 2);
  t.match(r.stderr, '--guard needs --bridge');
  t.notOk(linkNames().some((n) => n.startsWith('gsc')), 'nothing left');
});
