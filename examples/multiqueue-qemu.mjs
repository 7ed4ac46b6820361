// Start QEMU on a 4-queue tap attached to br0, with the tap's fds handed to QEMU directly: no
// helper, no script. Run as root (or with CAP_NET_ADMIN) after `npm run build`:
//   node examples/multiqueue-qemu.mjs [bridge]
// QEMU probes the fds itself: `vnet_hdr=` and `queues=` are refused beside `fds=`.
import { spawn } from 'node:child_process';
import { openTap, qemuNetdev, handOff } from '../dist/index.js';

const bridge = process.argv[2] ?? 'br0';
const tap = await openTap({ bridge, queues: 4 });

// args: ['-netdev', 'tap,id=n0,fds=3:4:5:6']; stdio puts the fds at those numbers in the child.
const net = qemuNetdev(tap, { id: 'n0' });
const qemu = spawn('qemu-system-x86_64', ['-machine', 'none', '-nodefaults', '-display', 'none', '-monitor', 'none', '-S', ...net.args], {
  stdio: net.stdio,
});
// Our copies of the fds are closed: the tap lives exactly as long as QEMU does.
await handOff(tap, qemu);
console.log(`QEMU pid ${qemu.pid} on ${tap.name} (${tap.address}, 4 queues, bridge ${bridge}); Ctrl-C to stop`);

process.on('SIGINT', () => qemu.kill('SIGTERM'));
qemu.on('exit', (code, signal) => {
  console.log(`QEMU exited (${signal ?? code}); ${tap.name} is gone with it`);
});
