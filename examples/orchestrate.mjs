#!/usr/bin/env node
// Orchestration with the qbh API: a bridge with an address, a multiqueue tap opened with openTap,
// QEMU started on the tap's fds, a listing, then tear-down. Run as root in a scratch namespace:
//   unshare -n node examples/orchestrate.mjs
import { spawn } from 'node:child_process';
import { addAddress, closeDefaultHandle, closeTap, createBridge, deleteBridge, listBridges, openTap } from '../dist/index.js';

const QUEUES = 2;
await createBridge('qbr0', { mtu: 1500 });
await addAddress('qbr0', '10.42.0.1/24');
const tap = await openTap({ bridge: 'qbr0', queues: QUEUES, vnetHdr: true });
console.log(`tap ${tap.name}: ${tap.fds.length} queues on qbr0, mac ${tap.address}`);

// QEMU inherits the fds as 3, 4, …; -netdev tap,fds= takes them (no queues=/vnet_hdr= beside it).
const fdList = tap.fds.map((_, i) => 3 + i);
const qemu = spawn(
  'qemu-system-x86_64',
  ['-machine', 'none', '-nodefaults', '-display', 'none', '-monitor', 'none', '-S', '-netdev', `tap,id=n0,fds=${fdList.join(':')}`],
  { stdio: ['ignore', 'inherit', 'inherit', ...tap.fds] },
);
await new Promise((r) => setTimeout(r, 1000));
for (const b of await listBridges()) {
  console.log(`${b.ifname}: ${b.addr_info.map((a) => `${a.local}/${a.prefixlen}`).join(' ')}; ports ${b.ports.map((p) => `${p.ifname}(${p.state})`).join(' ')}`);
}
qemu.kill('SIGTERM');
await new Promise((r) => qemu.on('exit', r));
closeTap(tap); // a non-persistent tap disappears with its last fd
await deleteBridge('qbr0');
closeDefaultHandle();
console.log('torn down');
