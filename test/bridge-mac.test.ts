// A bridge's MAC stays put: createBridge gives it a persistent MAC (machine id + name), so taps
// coming and going never change it; re-creating the bridge gives the same MAC again.
import './harness.js';
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ipj, linkNames, sh } from './harness.js';
import { qbh } from './cli-lib.js';
import { closeDefaultHandle, closeTap, createBridge, deleteBridge, openTap, persistentMac } from '../src/index.js';

t.teardown(closeDefaultHandle);

const macOf = (name: string): string => ipj('link', 'show', name)[0].address;

t.test('the MAC never changes across tap churn, and comes back on re-creation', async (t) => {
  const want = persistentMac('mb0');
  t.equal(want.source, 'machine-id');
  t.match(want.address, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
  const first = parseInt(want.address.slice(0, 2), 16);
  t.equal(first & 1, 0, 'unicast');
  t.equal(first & 2, 2, 'locally administered');
  t.not(persistentMac('mb1').address, want.address, 'another name, another MAC');

  await createBridge('mb0');
  t.equal(macOf('mb0'), want.address, 'ip shows the derived MAC');
  const seen = new Set([macOf('mb0')]);
  const taps = [];
  for (let i = 0; i < 4; i++) {
    taps.push(await openTap({ bridge: 'mb0' }));
    seen.add(macOf('mb0'));
  }
  for (const tap of taps.splice(0)) {
    closeTap(tap);
    seen.add(macOf('mb0'));
  }
  t.same([...seen], [want.address], 'one MAC while four taps joined and left');
  t.same(ipj('link', 'show', 'master', 'mb0'), [], 'no ports left');

  await deleteBridge('mb0');
  await createBridge('mb0');
  t.equal(macOf('mb0'), want.address, 'same name re-created: same MAC');
  await deleteBridge('mb0');

  await createBridge('mb0', { address: '02:00:00:00:00:01' });
  t.equal(macOf('mb0'), '02:00:00:00:00:01', 'an explicit address wins');
  await deleteBridge('mb0');
});

t.test('persistentMac: false leaves the MAC to the kernel (and it flaps)', async (t) => {
  await createBridge('mb0', { persistentMac: false });
  const before = macOf('mb0');
  const tap = await openTap({ bridge: 'mb0' });
  t.equal(macOf('mb0'), tap.address, 'the bridge took its only port’s MAC');
  t.not(tap.address, before);
  closeTap(tap);
  for (let i = 0; i < 50 && ipj('link', 'show', 'master', 'mb0').length > 0; i++) await new Promise((r) => setTimeout(r, 20));
  t.equal(macOf('mb0'), '00:00:00:00:00:00', 'and all zeros with no ports');
  await deleteBridge('mb0');
});

t.test('qbh bridge create: persistent by default, --no-persistent-mac opts out', async (t) => {
  t.match(await qbh('bridge', 'create', 'mb2'), { code: 0, stderr: '' });
  t.equal(macOf('mb2'), persistentMac('mb2').address);
  t.match(await qbh('bridge', 'delete', 'mb2'), { code: 0 });
  t.match(await qbh('bridge', 'create', 'mb2', '--no-persistent-mac'), { code: 0, stderr: '' });
  t.not(macOf('mb2'), persistentMac('mb2').address);
  t.match(await qbh('bridge', 'create', 'mb3', '--no-persistent-mac', '--mac', '02:00:00:00:00:02'), {
    code: 2,
    stderr: /--mac and --no-persistent-mac exclude each other/,
  });
  t.same(linkNames().sort(), ['lo', 'mb2']);
  sh('ip', 'link', 'del', 'mb2');
});

// Last: it hides the machine id for the rest of this file (in this test's own mount namespace).
t.test('no machine id: derived from the boot id, with a warning', async (t) => {
  const empty = join(process.env.QBH_TEST_SCRATCH!, 'empty-machine-id');
  writeFileSync(empty, '');
  for (const f of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
    try {
      execFileSync('mount', ['--bind', empty, f], { stdio: 'ignore' });
    } catch {
      // not there: nothing to hide
    }
  }
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  const a = persistentMac('mb0');
  const b = persistentMac('mb0');
  await new Promise((r) => setImmediate(r));
  process.off('warning', onWarning);
  t.equal(a.source, 'boot-id');
  t.equal(a.address, b.address, 'stable (until reboot)');
  t.equal(warnings.length, 1, 'warned once');
  t.match(warnings[0], { code: 'QBH_NO_MACHINE_ID', message: /change at reboot/ });
});
