// Start QEMU on a 4-queue tap attached to br0, with the tap's fds handed to QEMU directly: no
// helper, no script. Run as root (or with CAP_NET_ADMIN) after `npm run build`:
//   node examples/multiqueue-qemu.mjs [bridge]
// QEMU probes the fds itself: `vnet_hdr=` and `queues=` are refused beside `fds=`.
import { spawn } from 'node:child_process';
import { openTap, closeTap } from '../dist/index.js';

const bridge = process.argv[2] ?? 'br0';
const tap = await openTap({ bridge, queues: 4 });

// The child sees stdio[3], stdio[4], … as fds 3, 4, …: QEMU gets them under those numbers.
const fds = tap.fds.map((_, i) => 3 + i).join(':');
const qemu = spawn(
  'qemu-system-x86_64',
  ['-machine', 'none', '-nodefaults', '-display', 'none', '-monitor', 'none', '-S', '-netdev', `tap,id=n0,fds=${fds}`],
  { stdio: ['inherit', 'inherit', 'inherit', ...tap.fds] },
);
// spawn() has forked and exec'd: QEMU holds its own copies. Ours go, so the tap lives exactly as
// long as QEMU does.
closeTap(tap);
console.log(`QEMU pid ${qemu.pid} on ${tap.name} (${tap.address}, 4 queues, bridge ${bridge}); Ctrl-C to stop`);

process.on('SIGINT', () => qemu.kill('SIGTERM'));
qemu.on('exit', (code, signal) => {
  console.log(`QEMU exited (${signal ?? code}); ${tap.name} is gone with it`);
});
