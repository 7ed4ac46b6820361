import './harness.js';
import t from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { ipj, sh } from './harness.js';
import { openTap, closeTap, qemuNetdev, handOff } from '../src/tun/index.js';

const QEMU = 'qemu-system-x86_64';
const haveQemu = spawnSync(QEMU, ['--version']).status === 0;
const skip = !haveQemu && `${QEMU} not installed`;
const BARE = ['-machine', 'none', '-nodefaults', '-display', 'none', '-monitor', 'none', '-S'];
sh('ip', 'link', 'add', 'br0', 'type', 'bridge');
sh('ip', 'link', 'set', 'br0', 'up');

/** Collects QEMU's stderr and waits until it has set the netdev up (or exited). */
async function started(qemu: ChildProcess): Promise<string> {
  let stderr = '';
  qemu.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  // A refusal makes QEMU exit at once; an accepted netdev without a device gets a warning.
  for (let i = 0; i < 100 && !stderr.includes('no peer') && qemu.exitCode === null; i++) await sleep(50);
  return stderr;
}

async function tapsGone(): Promise<unknown[]> {
  for (let i = 0; i < 100 && ipj('link', 'show', 'type', 'tun').length > 0; i++) await sleep(20);
  return ipj('link', 'show', 'type', 'tun');
}

// The flow of examples/multiqueue-qemu.mjs, from the sources.
t.test('qemuNetdev + handOff: QEMU holds a 4-queue tap alone; killing it removes the tap', { skip }, async (t) => {
  const tap = await openTap({ bridge: 'br0', queues: 4 });
  const net = qemuNetdev(tap, { id: 'n0', stdio: ['ignore', 'ignore', 'pipe'] });
  t.same(net.args, ['-netdev', 'tap,id=n0,fds=3:4:5:6']);
  t.same(net.stdio, ['ignore', 'ignore', 'pipe', ...tap.fds]);
  const qemu = spawn(QEMU, [...BARE, ...net.args], { stdio: net.stdio });
  const exited = once(qemu, 'exit');
  await handOff(tap, qemu);
  t.same(tap.fds, [], "the parent's copies are closed");
  const stderr = await started(qemu);
  t.equal(qemu.exitCode, null, `QEMU still running (stderr: ${stderr.trim()})`);
  t.match(stderr, /netdev n0 has no peer/, 'QEMU set the netdev up');
  const l = ipj('-d', 'link', 'show', tap.name)[0];
  t.match(l.linkinfo.info_data, { type: 'tap', vnet_hdr: true, multi_queue: true, numqueues: 4 }, 'all 4 queues attached, held by QEMU alone');
  t.equal(l.master, 'br0');
  t.ok(l.flags.includes('UP'));
  qemu.kill('SIGKILL');
  await exited;
  t.same(await tapsGone(), [], 'the tap is gone with QEMU');
  t.same(ipj('link', 'show', 'master', 'br0'), [], 'and off the bridge');
});

t.test('two taps for one QEMU: the second call continues the first one’s stdio', { skip }, async (t) => {
  const a = await openTap({ bridge: 'br0' });
  const b = await openTap({ bridge: 'br0', queues: 2 });
  const na = qemuNetdev(a, { id: 'n0', stdio: ['ignore', 'ignore', 'pipe'] });
  const nb = qemuNetdev(b, { id: 'n1', stdio: na.stdio });
  t.same([...na.args, ...nb.args], ['-netdev', 'tap,id=n0,fd=3', '-netdev', 'tap,id=n1,fds=4:5']);
  const qemu = spawn(QEMU, [...BARE, ...na.args, ...nb.args], { stdio: nb.stdio });
  const exited = once(qemu, 'exit');
  await handOff(a, qemu);
  await handOff(b, qemu);
  const stderr = await started(qemu);
  for (let i = 0; i < 40 && !/n1 has no peer/.test(stderr); i++) await sleep(50);
  t.equal(qemu.exitCode, null, `QEMU still running (stderr: ${stderr.trim()})`);
  t.equal(ipj('link', 'show', 'master', 'br0').length, 2, 'both taps on the bridge, held by QEMU');
  qemu.kill('SIGKILL');
  await exited;
  t.same(await tapsGone(), [], 'both gone with QEMU');
});

t.test('handOff rejects when the program cannot be started, and the tap is gone', async (t) => {
  const tap = await openTap({ bridge: 'br0' });
  const net = qemuNetdev(tap, { id: 'n0' });
  const child = spawn('/nonexistent/qemu', net.args, { stdio: net.stdio });
  await t.rejects(handOff(tap, child), { code: 'ENOENT' });
  t.same(await tapsGone(), []);
  t.throws(() => qemuNetdev(tap, { id: 'n0' }), /no open fds/);
  const again = await openTap({});
  t.throws(() => qemuNetdev(again, { id: '0bad' }), /invalid netdev id/);
  closeTap(again);
});
