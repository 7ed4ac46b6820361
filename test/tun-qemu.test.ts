import './harness.js';
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { ipj, sh } from './harness.js';
import { openTap, closeTap } from '../src/tun/index.js';

const QEMU = 'qemu-system-x86_64';
const haveQemu = spawnSync(QEMU, ['--version']).status === 0;
sh('ip', 'link', 'add', 'br0', 'type', 'bridge');
sh('ip', 'link', 'set', 'br0', 'up');

// The flow of examples/multiqueue-qemu.mjs, from the sources.
t.test('QEMU accepts the fds of a 4-queue tap (-netdev tap,fds=A:B:C:D)', { skip: !haveQemu && `${QEMU} not installed` }, async (t) => {
  const tap = await openTap({ bridge: 'br0', queues: 4 });
  const fds = tap.fds.map((_, i) => 3 + i).join(':');
  const qemu = spawn(
    QEMU,
    ['-machine', 'none', '-nodefaults', '-display', 'none', '-monitor', 'none', '-S', '-netdev', `tap,id=n0,fds=${fds}`],
    { stdio: ['ignore', 'ignore', 'pipe', ...tap.fds] },
  );
  let stderr = '';
  qemu.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = once(qemu, 'exit');
  closeTap(tap); // from here on only QEMU holds the tap
  // Give QEMU time to parse -netdev and probe the fds; a refusal makes it exit at once.
  for (let i = 0; i < 40 && !stderr.includes('no peer'); i++) await sleep(50);
  t.equal(qemu.exitCode, null, `QEMU still running (stderr: ${stderr.trim()})`);
  t.match(stderr, /netdev n0 has no peer/, 'QEMU set the netdev up');
  const l = ipj('-d', 'link', 'show', tap.name)[0];
  t.match(l.linkinfo.info_data, { type: 'tap', vnet_hdr: true, multi_queue: true, numqueues: 4 }, 'all 4 queues attached, held by QEMU alone');
  t.equal(l.master, 'br0');
  t.ok(l.flags.includes('UP'));
  qemu.kill('SIGKILL');
  await exited;
  for (let i = 0; i < 100 && ipj('link', 'show', 'type', 'tun').length > 0; i++) await sleep(20);
  t.same(ipj('link', 'show', 'type', 'tun'), [], 'the tap is gone with QEMU');
});
