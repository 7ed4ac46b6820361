#!/usr/bin/env node
// Orchestration with the qbh API: a bridge with an address, a multiqueue tap opened with openTap,
// QEMU started on the tap's fds (handed off, so the tap dies with QEMU), a listing, then tear-down.
// Run as root in a scratch namespace:
//   unshare -n node examples/orchestrate.mjs
import { spawn } from 'node:child_process';
import { addAddress, closeDefaultHandle, createBridge, deleteBridge, handOff, listBridges, openTap, qemuNetdev } from '../dist/index.js';

const QUEUES = 2;
await createBridge('qbr0', { mtu: 1500 });
await addAddress('qbr0', '10.42.0.1/24');
const tap = await openTap({ bridge: 'qbr0', queues: QUEUES, vnetHdr: true });
console.log(`tap ${tap.name}: ${tap.fds.length} queues on qbr0, mac ${tap.address}`);

// -netdev tap,id=n0,fds=3:4 with the fds placed at 3 and 4 in QEMU (no queues=/vnet_hdr= beside it).
const net = qemuNetdev(tap, { id: 'n0', stdio: ['ignore', 'inherit', 'inherit'] });
const qemu = spawn('qemu-system-x86_64', ['-machine', 'none', '-nodefaults', '-display', 'none', '-monitor', 'none', '-S', ...net.args], {
  stdio: net.stdio,
});
await handOff(tap, qemu); // from here on only QEMU holds the tap
await new Promise((r) => setTimeout(r, 1000));
for (const b of await listBridges()) {
  console.log(`${b.ifname}: ${b.addr_info.map((a) => `${a.local}/${a.prefixlen}`).join(' ')}; ports ${b.ports.map((p) => `${p.ifname}(${p.state})`).join(' ')}`);
}
qemu.kill('SIGTERM');
await new Promise((r) => qemu.on('exit', r));
// The tap went with QEMU, so the bridge has no ports left and deleteBridge needs no force.
await deleteBridge('qbr0');
closeDefaultHandle();
console.log('torn down');
