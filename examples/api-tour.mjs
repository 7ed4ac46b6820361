#!/usr/bin/env node
// The qbh API, step by step, each step checked against iproute2: a bridge with an address, a veth
// enslaved to it, the bridge listed with its port, then torn down. Run as root in a scratch
// namespace (build first with `npm run prepare`):
//   unshare -n node examples/api-tour.mjs
import { execFileSync } from 'node:child_process';
import { addAddress, closeDefaultHandle, createBridge, deleteBridge, getBridge, listLinks, setLink } from '../dist/index.js';

const ipj = (...args) => JSON.parse(execFileSync('ip', ['-j', ...args], { encoding: 'utf8' }) || '[]');
const bridgej = (...args) => JSON.parse(execFileSync('bridge', ['-j', ...args], { encoding: 'utf8' }) || '[]');
function check(what, ours, theirs) {
  const ok = JSON.stringify(ours) === JSON.stringify(theirs);
  console.log(`${ok ? '✓' : '✗'} ${what}: ${JSON.stringify(ours)}${ok ? '' : ` (ip says ${JSON.stringify(theirs)})`}`);
  if (!ok) process.exitCode = 1;
}

const br = await createBridge('tour0', { mtu: 1400 });                       // ip link add tour0 mtu 1400 type bridge
check('bridge mtu', br.mtu, ipj('link', 'show', 'tour0')[0].mtu);
await addAddress('tour0', '192.0.2.1/24');                                    // ip addr add 192.0.2.1/24 dev tour0
check('address', (await getBridge('tour0')).addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`),
  ipj('addr', 'show', 'dev', 'tour0')[0].addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`));
execFileSync('ip', ['link', 'add', 'tourv0', 'type', 'veth', 'peer', 'name', 'tourv1']);
// The peer up too: a port whose veth has no carrier starts out forwarding and turns disabled when the
// kernel's linkwatch catches up (up to a second later), so two readings could differ.
execFileSync('ip', ['link', 'set', 'tourv1', 'up']);
await setLink('tourv0', { master: 'tour0', up: true });                       // ip link set tourv0 master tour0 up
const listed = await getBridge('tour0');
check('ports', listed.ports.map((p) => [p.ifname, p.state, p.priority, p.cost]),
  bridgej('link', 'show', 'master', 'tour0').map((p) => [p.ifname, p.state, p.priority, p.cost]));
check('port master', (await listLinks({ master: 'tour0' })).map((l) => l.ifname), ipj('link', 'show', 'master', 'tour0').map((l) => l.ifname));
await deleteBridge('tour0', { withPorts: true });                             // bridge and veth pair, one request
check('torn down', ipj('link', 'show').map((l) => l.ifname).filter((n) => n.startsWith('tour')), []);
closeDefaultHandle();
