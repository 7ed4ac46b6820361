// Concurrency: 200 helpers at once on one bridge in direct mode (as root; through the daemon it is
// test/daemon-load.test.ts), 50 concurrent openTap/closeTap loops in one process and in several,
// concurrent createBridge of one name. Private netns and /etc/qemu (harness).
import '../harness.js';
import t from 'tap';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ipj, privateEtcQemu, sh } from '../harness.js';
import { ROOT, taps, until } from '../daemon-lib.js';
import { handOffAsync } from '../helper-lib.js';
import { native } from '../../src/native.js';
import { NetlinkError } from '../../src/netlink/errors.js';
import { Rtnl } from '../../src/netlink/rtnl.js';
import { closeTap, openTap } from '../../src/tun/tap.js';
import { leftoverCount, leftovers, ownFds, record } from './soak-lib.js';

privateEtcQemu();
writeFileSync('/etc/qemu/bridge.conf', 'allow br0\n', { mode: 0o644 });
sh('ip', 'link', 'add', 'br0', 'type', 'bridge');
sh('ip', 'link', 'set', 'br0', 'up');

const helper = (args: string[]): ReturnType<typeof handOffAsync> => handOffAsync(args);

t.test('200 helpers at once on one bridge, direct mode as root', async (t) => {
  const started = Date.now();
  const runs = await Promise.all(Array.from({ length: 200 }, () => helper(['--use-vnet', '--br=br0', '--fd=3'])));
  const ms = Date.now() - started;
  const failed = runs.filter((r) => r.status !== 0 || r.fds.length !== 1);
  t.same(failed.map((r) => r.stderr), [], 'every helper succeeded');
  const ports = ipj<any[]>('link', 'show', 'master', 'br0');
  t.equal(ports.length, 200, '200 ports on br0');
  t.equal(new Set(ports.map((p) => p.ifname)).size, 200, 'all distinct');
  t.ok(ports.every((p) => /^fe:/.test(p.address) && (p.flags as string[]).includes('UP')), 'all UP with an fe: MAC');
  for (const r of runs) for (const fd of r.fds) native.close(fd);
  t.ok(await until(() => taps().length === 0, 30000), 'none left once the fds are closed');
  const left = leftoverCount(leftovers(['br0']));
  record(t, { area: 'concurrency', fault: '200 helpers at once on one bridge, direct mode (root); via the daemon: test/daemon-load.test.ts', trials: 200, outcome: `${200 - failed.length} succeeded, ${ports.length} distinct taps UP on br0`, leftovers: left, figures: `${ms} ms for all 200` });
});

t.test('50 concurrent openTap/closeTap loops in one process', async (t) => {
  const fds0 = ownFds();
  const rtnl = Rtnl.openSync();
  const CYCLES = 20;
  let bad = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      for (let i = 0; i < CYCLES; i++) {
        const tap = await openTap({ bridge: 'br0' }, rtnl);
        if (tap.fds.length !== 1 || !/^tap\d+$/.test(tap.name)) bad++;
        closeTap(tap);
      }
    }),
  );
  const ms = Date.now() - started;
  rtnl.close();
  t.equal(bad, 0);
  const left = leftoverCount(leftovers(['br0']));
  t.equal(left, 0, 'no tap left');
  t.equal(ownFds(), fds0, 'no fd left');
  record(t, { area: 'concurrency', fault: `50 concurrent openTap/closeTap loops in one process (one handle), ${CYCLES} cycles each`, trials: 50 * CYCLES, outcome: `all succeeded; fds ${fds0} before, ${ownFds()} after`, leftovers: left, figures: `${Math.round((50 * CYCLES * 1000) / ms)} cycles/s` });
});

t.test('50 concurrent openTap/closeTap loops across 5 processes', async (t) => {
  const src = `import * as q from ${JSON.stringify(join(ROOT, 'dist', 'index.js'))};
let n = 0;
await Promise.all(Array.from({ length: 10 }, async () => { for (let i = 0; i < 20; i++) { q.closeTap(await q.openTap({ bridge: 'br0' })); n++; } }));
process.stdout.write(String(n));`;
  const runs = await Promise.all(
    Array.from({ length: 5 }, () => {
      const c = spawn('env', ['-i', `PATH=${process.env.PATH}`, process.execPath, '--input-type=module', '-e', src], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      c.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      return new Promise<{ code: number | null; out: string }>((r) => c.on('close', (code) => r({ code, out })));
    }),
  );
  t.same(runs.map((r) => [r.code, r.out]), Array(5).fill([0, '200']), 'every process did its 200 cycles');
  const left = leftoverCount(leftovers(['br0']));
  t.equal(left, 0);
  record(t, { area: 'concurrency', fault: '50 concurrent openTap/closeTap loops across 5 processes (10 each), 20 cycles each', trials: 1000, outcome: `${runs.filter((r) => r.code === 0).length}/5 processes exited 0 with 200 cycles`, leftovers: left });
});

t.test('concurrent createBridge of one name: exactly one wins', async (t) => {
  const handles = Array.from({ length: 16 }, () => Rtnl.openSync());
  let wins = 0;
  let eexist = 0;
  let other = 0;
  let existOkSame = 0;
  const ROUNDS = 10;
  for (let round = 0; round < ROUNDS; round++) {
    const res = await Promise.allSettled(handles.map((h) => h.createBridge('cb0')));
    wins += res.filter((r) => r.status === 'fulfilled').length === 1 ? 1 : 0;
    for (const r of res) {
      if (r.status === 'rejected') {
        if (r.reason instanceof NetlinkError && r.reason.code === 'EEXIST') eexist++;
        else other++;
      }
    }
    const ok = await Promise.allSettled(handles.map((h) => h.createBridge('cb1', { existOk: true })));
    const idx = new Set(ok.map((r) => (r.status === 'fulfilled' ? r.value.ifindex : -1)));
    if (idx.size === 1 && !idx.has(-1)) existOkSame++;
    await handles[0]!.deleteBridge('cb0');
    await handles[0]!.deleteBridge('cb1');
  }
  for (const h of handles) h.close();
  t.equal(wins, ROUNDS, 'one winner every round');
  t.equal(eexist, ROUNDS * 15, 'the others get EEXIST');
  t.equal(other, 0);
  t.equal(existOkSame, ROUNDS, 'with existOk all 16 get the same bridge');
  const left = leftoverCount(leftovers(['br0']));
  t.equal(left, 0);
  record(t, { area: 'concurrency', fault: 'createBridge of one name from 16 handles at once (and 16 with existOk)', trials: ROUNDS * 32, outcome: `one winner in ${wins}/${ROUNDS} rounds, ${eexist} EEXIST, ${other} other errors; existOk: same bridge for all in ${existOkSame}/${ROUNDS}`, leftovers: left });
});
