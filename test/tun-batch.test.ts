// openTaps: many taps in one call (one bridge lookup, the RTM_NEWLINKs pipelined), all or nothing.
// The kernel in the test's own namespace is the system under test; `ip -j`/`bridge -j` the oracle.
import './harness.js';
import t from 'tap';
import { readdirSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bridgej, ipj, sh } from './harness.js';
import { openTap, openTaps, destroyTaps, closeTap, tapInfo, TapError, MAX_TAPS_PER_CALL } from '../src/tun/index.js';
import { InvalidArgumentError } from '../src/errors.js';

// A MAC of its own: a bridge without one takes its lowest port's, which would change as taps join.
sh('ip', 'link', 'add', 'br0', 'address', '02:00:00:00:00:01', 'type', 'bridge');
sh('ip', 'link', 'set', 'br0', 'mtu', '1400', 'up');
closeTap(await openTap()); // opens the shared rtnetlink socket: the fd counts below leave it out
const tunNames = (): string[] => ipj<{ ifname: string }[]>('link', 'show', 'type', 'tun').map((l) => l.ifname);
const fdCount = (): number => readdirSync('/proc/self/fd').length;
const brBefore = ipj('link', 'show', 'br0')[0];

/** What `ip -d`/`bridge` say of a tap, without what differs from tap to tap (name, index, MAC). */
function state(name: string) {
  const l = ipj('-d', 'link', 'show', name)[0];
  const port = bridgej<{ ifname: string; state: string }[]>('link', 'show', 'dev', name)[0];
  return {
    flags: [...l.flags].sort(),
    mtu: l.mtu,
    master: l.master,
    operstate: l.operstate,
    qdisc: l.qdisc,
    macFirst: l.address.slice(0, 3),
    info: l.linkinfo.info_data,
    portState: port?.state,
  };
}

t.test('openTaps(names, { bridge }): every tap as openTap makes it, in order', async (t) => {
  const fds = fdCount();
  const one = await openTap({ bridge: 'br0', name: 'ref0' });
  const reference = state('ref0');
  const names = Array.from({ length: 150 }, (_, i) => `vm${i}`); // more than one pipeline window
  const taps = await openTaps(names, { bridge: 'br0' });
  t.same(taps.map((x) => x.name), names);
  const links = new Map(ipj<{ ifname: string; ifindex: number; address: string }[]>('link', 'show', 'master', 'br0').map((l) => [l.ifname, l]));
  for (const tap of taps) {
    const l = links.get(tap.name);
    t.ok(l, `${tap.name} is on br0`);
    t.equal(l!.ifindex, tap.ifindex);
    t.equal(l!.address, tap.address);
    t.equal(tapInfo(tap.fds[0]!).name, tap.name);
    t.match(tap, { vnetHdr: true, persist: false, multiQueue: false, bridge: 'br0' });
  }
  for (const n of ['vm0', 'vm77', 'vm149']) t.same(state(n), reference, `${n}: the same final state as openTap's`);
  t.equal(new Set(taps.map((x) => x.address)).size, taps.length, 'every MAC differs');
  const br = ipj('link', 'show', 'br0')[0];
  t.equal(br.address, brBefore.address, 'bridge MAC unchanged');
  t.equal(br.mtu, 1400, 'bridge MTU unchanged');
  await destroyTaps([one, ...taps]);
  t.same(tunNames(), []);
  t.equal(fdCount(), fds, 'every fd closed');
});

t.test('openTaps(count): names from the template, options shared', async (t) => {
  const taps = await openTaps(3, { bridge: 'br0' });
  t.same(taps.map((x) => x.name), ['tap0', 'tap1', 'tap2']);
  const more = await openTaps(2, { name: 'q%d', mtu: 1300, queues: 2, persist: true });
  t.same(more.map((x) => x.name), ['q0', 'q1']);
  for (const x of more) {
    t.equal(x.fds.length, 2);
    const l = ipj('-d', 'link', 'show', x.name)[0];
    t.equal(l.mtu, 1300);
    t.equal(l.master, undefined);
    t.match(l.linkinfo.info_data, { persist: true, multi_queue: true, numqueues: 2 });
  }
  for (const x of more) closeTap(x);
  t.same(tunNames().sort(), ['q0', 'q1', 'tap0', 'tap1', 'tap2'], 'persistent taps outlive their fds');
  await destroyTaps([...taps, ...more]);
  t.same(tunNames(), []);
  t.same(await openTaps(0), []);
  t.same(await openTaps([]), []);
  t.equal(await openTaps(1, { name: 'solo' }).then(async ([x]) => (await destroyTaps([x!]), x!.name)), 'solo');
});

t.test('openTaps(count) picks the numbers the kernel would: the lowest names no device has, altnames included', async (t) => {
  sh('ip', 'link', 'add', 'tap1', 'type', 'veth', 'peer', 'name', 'xpeer');
  sh('ip', 'link', 'property', 'add', 'dev', 'xpeer', 'altname', 'tap2');
  sh('ip', 'tuntap', 'add', 'tap04', 'mode', 'tap'); // not "tap4": the kernel would not count it either
  const taps = await openTaps(4, { bridge: 'br0' });
  t.same(taps.map((x) => x.name), ['tap0', 'tap3', 'tap4', 'tap5']);
  // The kernel's own choice for the next one agrees.
  sh('ip', 'tuntap', 'add', 'mode', 'tap');
  t.ok(tunNames().includes('tap6'), 'ip tuntap add (the kernel resolving tap%d) made tap6');
  await destroyTaps(taps);
  sh('ip', 'link', 'del', 'tap1');
  sh('ip', 'link', 'del', 'tap04');
  sh('ip', 'link', 'del', 'tap6');
  t.same(tunNames(), []);
});

t.test('openTaps refuses bad requests before making anything', async (t) => {
  const fds = fdCount();
  await t.rejects(openTaps(['a0', 'a/1', 'a2'], { bridge: 'br0' }), InvalidArgumentError);
  await t.rejects(openTaps(['a0', 'a1', 'a0']), { name: 'InvalidArgumentError', message: /"a0" is given twice/ });
  await t.rejects(openTaps(2, { name: 'fixed' }), { message: /2 taps need a %d template/ });
  await t.rejects(openTaps(['a0'], { name: 'x%d' }), { message: /not both/ });
  await t.rejects(openTaps(-1), InvalidArgumentError);
  await t.rejects(openTaps(MAX_TAPS_PER_CALL + 1), InvalidArgumentError);
  await t.rejects(openTaps(1.5), InvalidArgumentError);
  await t.rejects(openTaps(3, { bridge: 'nobr' }), { name: 'TapError', step: 'bridge-mtu', message: 'cannot create tap%d: bridge nobr does not exist' });
  t.same(tunNames(), []);
  t.equal(fdCount(), fds);
});

t.test('a name taken midway: nothing is left, the error names that tap', async (t) => {
  sh('ip', 'link', 'add', 'taken', 'type', 'veth', 'peer', 'name', 'taken1');
  const fds = fdCount();
  const names = Array.from({ length: 20 }, (_, i) => (i === 12 ? 'taken' : `b${i}`));
  const e = await openTaps(names, { bridge: 'br0' }).catch((x: unknown) => x);
  t.type(e, TapError);
  t.match(e, { step: 'create', tap: 'taken', bridge: 'br0', code: 'EBUSY', message: 'cannot create taken: name taken is taken by a veth device' });
  t.same(tunNames(), [], 'the 12 taps made before it are gone');
  t.equal(fdCount(), fds, 'and their fds closed');
  t.equal(ipj('-d', 'link', 'show', 'taken')[0].linkinfo.info_kind, 'veth', 'the device of that name is untouched');
  sh('ip', 'link', 'del', 'taken');
});

t.test('a pipelined RTM_NEWLINK failing midway: attributed to its tap, the batch undone', async (t) => {
  // A bridge takes at most 1023 ports (BR_MAX_PORTS): with 1000 there, the 24th new tap cannot join.
  sh('ip', 'link', 'add', 'full', 'type', 'bridge');
  const dir = mkdtempSync(join(tmpdir(), 'qbh-batch-'));
  const lines = Array.from({ length: 1000 }, (_, i) => [`tuntap add p${i} mode tap`, `link set p${i} master full`]).flat();
  writeFileSync(join(dir, 'ports'), lines.join('\n') + '\n');
  sh('ip', '-batch', join(dir, 'ports'));
  const fds = fdCount();
  const e = await openTaps(100, { bridge: 'full', name: 'f%d', persist: true }).catch((x: unknown) => x);
  t.type(e, TapError);
  t.match(e, { step: 'enslave', tap: 'f23', bridge: 'full' });
  t.match((e as TapError).message, /^cannot add f23 to bridge full: /);
  t.equal(tunNames().filter((n) => n.startsWith('f')).length, 0, 'no f* tap left');
  t.equal(fdCount(), fds, 'every fd closed');
  t.equal(ipj('link', 'show', 'master', 'full').length, 1000, "the bridge's own ports stay");
  sh('ip', 'link', 'del', 'full');
});
