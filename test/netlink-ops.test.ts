// Link, bridge and address operations against the real kernel, with iproute2 as the oracle.
import './harness.js';
import t, { type Test } from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync, readlinkSync } from 'node:fs';
import { bridgej, ipj, linkNames, sh } from './harness.js';
import {
  Rtnl,
  NetlinkError,
  DumpInterruptedError,
  BridgeNotEmptyError,
  QbhError,
  InvalidArgumentError,
  NEED_NET_ADMIN,
  TapError,
  AclError,
  helperMessage,
  openTap,
  kernelAttributes,
  addAddress,
  closeDefaultHandle,
  createBridge,
  deleteAddress,
  deleteBridge,
  deleteLink,
  deleteLinks,
  getBridge,
  getLink,
  listAddresses,
  listBridgePorts,
  listBridges,
  listLinks,
  setLink,
} from '../src/index.js';
import { DUMP_RETRIES } from '../src/netlink/socket.js';
import { HAS_NET_ADMIN } from '../src/errors.js';
import { describeCause } from '../src/cli/errors.js';
import { qbh } from './cli-lib.js';

t.teardown(closeDefaultHandle);

// Timers tick between our dump and ip's; everything else must match exactly.
const VOLATILE = new Set(['hello_timer', 'tcn_timer', 'topology_change_timer', 'gc_timer', 'hold_timer', 'message_age_timer', 'forward_delay_timer']);

/** Every key iproute2 prints is in ours with the same value (ours may carry newer keys ip does not know). */
function agrees(t: Test, ours: any, theirs: any, path = ''): void {
  for (const [k, v] of Object.entries(theirs)) {
    if (VOLATILE.has(k)) continue;
    const p = path ? `${path}.${k}` : k;
    if (v && typeof v === 'object' && !Array.isArray(v)) agrees(t, ours?.[k], v, p);
    else t.same(ours?.[k], v, p);
  }
}

/** Deletes every link but lo, in one kernel request (a group delete), however many there are. */
function cleanup(): void {
  const rest = linkNames().filter((n) => n !== 'lo');
  if (rest.length === 0) return;
  execFileSync('ip', ['-batch', '-'], { input: rest.map((n) => `link set dev ${n} group 77`).join('\n') });
  sh('ip', 'link', 'delete', 'group', '77');
}

t.afterEach(cleanup);

t.test('createBridge makes the bridge ip shows, field by field', async (t) => {
  const br = await createBridge('qb0', { mtu: 1400, address: '02:11:22:33:44:55', stp: true });
  const [ip] = ipj('-d', 'link', 'show', 'qb0');
  t.equal(ip.mtu, 1400);
  t.equal(ip.address, '02:11:22:33:44:55');
  t.equal(ip.linkinfo.info_kind, 'bridge');
  t.equal(ip.linkinfo.info_data.stp_state, 1);
  t.ok(ip.flags.includes('UP'), 'up by default');
  agrees(t, br, ip);
  t.same(br.ports, []);
});

t.test('createBridge with up: false leaves it down; existOk returns the existing bridge', async (t) => {
  await createBridge('qb1', { up: false });
  t.notOk(ipj('link', 'show', 'qb1')[0].flags.includes('UP'));
  const again = await createBridge('qb1', { existOk: true });
  t.equal(again.ifname, 'qb1');
  await t.rejects(createBridge('qb1'), { code: 'EEXIST', op: 'createBridge', target: 'qb1' });
  sh('ip', 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1');
  await t.rejects(createBridge('v0', { existOk: true }), { code: 'EEXIST', message: /v0 exists and is a veth, not a bridge/ });
});

t.test('createBridge existOk: the settings given must match; others are not compared', async (t) => {
  await createBridge('qx0', { mtu: 1400, stp: true, address: '02:00:00:00:00:aa' });
  t.equal((await createBridge('qx0', { existOk: true, mtu: 1400, stp: true, address: '02:00:00:00:00:AA' })).mtu, 1400);
  t.equal((await createBridge('qx0', { existOk: true, up: false })).ifname, 'qx0', 'up is not compared');
  await t.rejects(createBridge('qx0', { existOk: true, mtu: 1500, stp: false, addresses: ['10.3.0.1/24'] }), {
    constructor: NetlinkError,
    code: 'EEXIST',
    op: 'createBridge',
    target: 'qx0',
    message: 'createBridge qx0: File exists (qx0 exists with other settings: mtu 1400 not 1500, stp on not off)',
  });
  t.equal(ipj('link', 'show', 'qx0')[0].mtu, 1400, 'left as it was');
  t.same(ipj('addr', 'show', 'dev', 'qx0')[0].addr_info.filter((a: any) => a.family === 'inet'), [], 'no address added');
});

t.test('createBridge addresses: added with the bridge; on a failure nothing is left half-made', async (t) => {
  const b = await createBridge('qa0', { addresses: ['10.4.0.1/24', 'fd00:4::1/64'] });
  t.same(b.addr_info.filter((a) => a.scope === 'global').map((a) => `${a.local}/${a.prefixlen}`), ['10.4.0.1/24', 'fd00:4::1/64']);
  t.same(ipj('addr', 'show', 'dev', 'qa0')[0].addr_info.filter((a: any) => a.scope === 'global').map((a: any) => a.local), ['10.4.0.1', 'fd00:4::1'], 'as ip shows them');
  // A CIDR that does not parse: refused before anything is made.
  await t.rejects(createBridge('qa1', { addresses: ['10.4.1.1/24', '10.4.1.1/33'] }), { name: 'InvalidArgumentError', op: 'createBridge' });
  t.notOk(linkNames().includes('qa1'));
  // An address the kernel refuses (a multicast one): the bridge this call made is deleted again.
  const e = await createBridge('qa1', { addresses: ['10.4.1.1/24', 'ff02::1/64'] }).catch((x: unknown) => x);
  t.type(e, NetlinkError);
  t.match(e, { op: 'addAddress', target: 'ff02::1/64 on qa1', message: /^addAddress ff02::1\/64 on qa1: .*; bridge qa1 was removed again$/, cleanupError: undefined });
  t.notOk(linkNames().includes('qa1'), 'the bridge is gone');
  // On an existing bridge (existOk): one it has is fine; the ones this call added are removed again.
  t.equal((await createBridge('qa0', { existOk: true, addresses: ['10.4.0.1/24', '10.4.2.1/24'] })).addr_info.filter((a) => a.family === 'inet').length, 2);
  const again = await createBridge('qa0', { existOk: true, addresses: ['10.4.3.1/24', 'ff02::1/64'] }).catch((x: unknown) => x);
  t.match(again, { message: /; the address added \(10\.4\.3\.1\/24\) was removed again$/ });
  t.same(ipj('addr', 'show', 'dev', 'qa0')[0].addr_info.filter((a: any) => a.family === 'inet').map((a: any) => a.local), ['10.4.0.1', '10.4.2.1']);
});

t.test('Rtnl.open({ netns }): a handle acting in another network namespace; the shared one stays here', async (t) => {
  // A namespace of this test's own, held by a child: /proc/PID/ns/net names it (as /run/netns/NAME would).
  const holder = spawn('unshare', ['--net', 'sleep', '600'], { stdio: 'ignore' });
  t.teardown(() => void holder.kill('SIGKILL'));
  const path = `/proc/${holder.pid}/ns/net`;
  const inNs = (...args: string[]) => JSON.parse(execFileSync('nsenter', [`--net=${path}`, 'ip', '-j', ...args], { encoding: 'utf8' }) || '[]');
  for (let i = 0; i < 100 && readlinkSync(path) === readlinkSync('/proc/self/ns/net'); i++) await new Promise((r) => setTimeout(r, 20));
  t.not(readlinkSync(path), readlinkSync('/proc/self/ns/net'), 'the child has a namespace of its own');
  const before = linkNames().sort();
  const other = await Rtnl.open({ netns: path });
  await other.createBridge('nsbr0', { mtu: 1400, addresses: ['10.6.0.1/24'] });
  const [link] = inNs('-d', 'link', 'show', 'nsbr0');
  t.match(link, { ifname: 'nsbr0', mtu: 1400, linkinfo: { info_kind: 'bridge' } }, 'ip in that namespace sees the bridge');
  t.same(inNs('addr', 'show', 'dev', 'nsbr0')[0].addr_info.filter((a: any) => a.family === 'inet').map((a: any) => a.local), ['10.6.0.1']);
  t.same((await other.listLinks()).map((l) => l.ifname).sort(), ['lo', 'nsbr0'], "the handle lists that namespace's links");
  // The shared handle, and this process's namespace, are untouched.
  t.same(linkNames().sort(), before, 'nothing new here');
  t.notOk((await listLinks()).some((l) => l.ifname === 'nsbr0'), 'the shared handle does not see it');
  await createBridge('herebr0');
  t.same(inNs('link', 'show').map((l: any) => l.ifname).sort(), ['lo', 'nsbr0'], 'the shared handle acts here, not there');
  await deleteBridge('herebr0');
  // An open fd works the same; the caller keeps and closes it.
  const fd = openSync(path, 'r');
  const byFd = Rtnl.openSync({ netns: fd });
  closeSync(fd);
  await byFd.deleteBridge('nsbr0');
  t.same(inNs('link', 'show').map((l: any) => l.ifname), ['lo']);
  byFd.close();
  other.close();
  // What is not a network namespace, or is not there: one line naming it.
  await t.rejects(Rtnl.open({ netns: '/proc/self/ns/mnt' }), { constructor: QbhError, code: 'EINVAL', op: 'Rtnl.open', message: 'Rtnl.open: cannot enter network namespace /proc/self/ns/mnt: not a network namespace' });
  await t.rejects(Rtnl.open({ netns: 'qbh-nosuch' }), { code: 'ENOENT', message: 'Rtnl.open: cannot open network namespace /run/netns/qbh-nosuch: No such file or directory' });
  await t.rejects(Rtnl.open({ netns: 1 << 30 }), { code: 'EBADF' });
  await t.rejects(Rtnl.open({ netns: -1 }), { name: 'InvalidArgumentError' });
  await t.rejects(Rtnl.open({ netns: '' }), { name: 'InvalidArgumentError' });
});

t.test('getLink and listLinks agree with ip -j -d for bridges, veths and their ports', async (t) => {
  sh('ip', 'link', 'add', 'br0', 'type', 'bridge');
  sh('ip', 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1');
  sh('ip', 'link', 'set', 'v0', 'master', 'br0');
  sh('ip', 'link', 'set', 'br0', 'up');
  sh('ip', 'link', 'set', 'v0', 'up');
  const theirs = ipj('-d', 'link', 'show');
  const ours = await listLinks();
  t.same(ours.map((l) => l.ifname), theirs.map((l: any) => l.ifname));
  for (const ip of theirs) {
    agrees(t, ours.find((l) => l.ifname === ip.ifname), ip, `listLinks ${ip.ifname}`);
    agrees(t, await getLink(ip.ifname), ip, `getLink ${ip.ifname}`);
    agrees(t, await getLink(ip.ifindex), ip, `getLink ${ip.ifindex}`);
  }
});

t.test('kernel-side filters: kind and master, as ip link show type/master', async (t) => {
  sh('ip', 'link', 'add', 'br0', 'type', 'bridge');
  sh('ip', 'link', 'add', 'br1', 'type', 'bridge');
  sh('ip', 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1');
  sh('ip', 'link', 'add', 'v2', 'type', 'veth', 'peer', 'name', 'v3');
  sh('ip', 'link', 'set', 'v0', 'master', 'br0');
  sh('ip', 'link', 'set', 'v2', 'master', 'br1');
  t.same((await listLinks({ kind: 'bridge' })).map((l) => l.ifname), ipj('link', 'show', 'type', 'bridge').map((l: any) => l.ifname));
  t.same((await listLinks({ kind: 'veth' })).map((l) => l.ifname).sort(), ['v0', 'v1', 'v2', 'v3']);
  t.same((await listLinks({ master: 'br1' })).map((l) => l.ifname), ipj('link', 'show', 'master', 'br1').map((l: any) => l.ifname));
  t.same((await listBridgePorts('br0')).map((p) => p.ifname), ['v0']);
  await t.rejects(listLinks({ master: 'nope' }), { code: 'ENODEV' });
});

t.test('setLink: up, mtu, address, master, nomaster, group in one request each', async (t) => {
  sh('ip', 'link', 'add', 'br0', 'type', 'bridge');
  sh('ip', 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1');
  await setLink('v0', { mtu: 1300, address: 'fe:00:00:00:00:01', master: 'br0', up: true, group: 7 });
  let [ip] = ipj('-d', 'link', 'show', 'v0');
  t.equal(ip.mtu, 1300);
  t.equal(ip.address, 'fe:00:00:00:00:01');
  t.equal(ip.master, 'br0');
  t.equal(ip.group, '7');
  t.ok(ip.flags.includes('UP'));
  await setLink('v0', { master: null, up: false });
  [ip] = ipj('-d', 'link', 'show', 'v0');
  t.equal(ip.master, undefined);
  t.notOk(ip.flags.includes('UP'));
});

t.test('listBridges: ports from the AF_BRIDGE dump agree with bridge -j -d link', async (t) => {
  await createBridge('br0');
  sh('ip', 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1');
  sh('ip', 'link', 'add', 'v2', 'type', 'veth', 'peer', 'name', 'v3');
  await setLink('v0', { master: 'br0', up: true });
  await setLink('v2', { master: 'br0' });
  sh('bridge', 'link', 'set', 'dev', 'v2', 'cost', '7', 'priority', '9', 'hairpin', 'on');
  await addAddress('br0', '10.7.0.1/24');
  const [br] = await listBridges();
  t.equal(br!.ifname, 'br0');
  const theirs = bridgej('-d', 'link', 'show');
  t.equal(br!.ports.length, theirs.length);
  for (const p of theirs) agrees(t, br!.ports.find((q) => q.ifname === p.ifname), p, p.ifname);
  const v2 = br!.ports.find((p) => p.ifname === 'v2')!;
  t.equal(v2.cost, 7);
  t.equal(v2.priority, 9);
  t.equal(v2.hairpin, true);
  t.same(br!.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`), ['10.7.0.1/24']);
  const one = await getBridge('br0');
  agrees(t, one, ipj('-d', 'link', 'show', 'br0')[0]);
  // addr_info is ip's own, key for key: no ifindex/ifname inside (they are the enclosing object's).
  t.strictSame(one.addr_info, ipj('addr', 'show', 'dev', 'br0')[0].addr_info, 'addr_info as ip -j addr show');
  // Attributes without a key stay reachable through the escape hatch, by qbh's table names.
  t.equal(kernelAttributes(one)?.mtu, one.mtu);
  t.equal(kernelAttributes(one.ports[0]!)?.ifname, one.ports[0]!.ifname);
  t.equal(kernelAttributes({ ...one }), undefined, 'copies are not remembered');
});

t.test('addresses: IPv4 and IPv6 add, list and delete agree with ip -j addr', async (t) => {
  await createBridge('br0');
  await addAddress('br0', '192.0.2.1/24');
  await addAddress('br0', '2001:db8::1/64');
  await addAddress('br0', '2001:db8:0:1:0:0:0:2/128');
  const ours = await listAddresses('br0');
  const theirs = ipj('addr', 'show', 'dev', 'br0')[0].addr_info;
  t.same(ours.map((a) => `${a.local}/${a.prefixlen}`).sort(), theirs.map((a: any) => `${a.local}/${a.prefixlen}`).sort());
  for (const a of theirs) {
    const mine = ours.find((o) => o.local === a.local)!;
    for (const k of ['family', 'prefixlen', 'scope', 'label', 'valid_life_time', 'preferred_life_time', 'broadcast'] as const) {
      t.same(mine[k], a[k], `${a.local} ${k}`);
    }
  }
  await t.rejects(addAddress('br0', '192.0.2.1/24'), { code: 'EEXIST' });
  await deleteAddress('br0', '192.0.2.1/24');
  await deleteAddress('br0', '2001:db8::1/64');
  const left = ipj('addr', 'show', 'dev', 'br0')[0].addr_info.map((a: any) => a.local);
  t.notOk(left.includes('192.0.2.1'));
  t.notOk(left.includes('2001:db8::1'));
  await t.rejects(deleteAddress('br0', '192.0.2.1/24'), { code: 'EADDRNOTAVAIL' });
  t.ok((await listAddresses()).some((a) => a.ifname === 'lo' && a.local === '127.0.0.1'));
});

t.test('bad CIDRs are refused before anything is sent', async (t) => {
  await createBridge('br0');
  for (const bad of ['10.0.0.1/33', '10.0.0/24', '2001:db8::1/129', 'fe80::1%eth0/64', 'banana', '10.0.0.1/24/1', '10.0.0.1/-1', '']) {
    await t.rejects(addAddress('br0', bad), { name: 'InvalidArgumentError', code: 'EINVAL', op: 'addAddress', target: `${bad} on br0` }, bad);
  }
  const e = await addAddress('br0', '10.0.0.1/33').catch((x: unknown) => x);
  t.type(e, QbhError);
  t.equal((e as Error).message, 'addAddress: invalid address "10.0.0.1/33": prefix length must be 0-32');
  t.same(ipj('addr', 'show', 'dev', 'br0')[0].addr_info.filter((a: any) => a.family === 'inet'), []);
});

t.test('kernel errors come back as NetlinkError with code and the kernel’s words', async (t) => {
  await createBridge('br0');
  const cases: [string, () => Promise<unknown>, object][] = [
    ['EEXIST', () => createBridge('br0'), { code: 'EEXIST', errno: 17, target: 'br0' }],
    ['ENODEV', () => setLink('nosuch', { up: true }), { code: 'ENODEV', errno: 19, target: 'nosuch' }],
    ['ELOOP', () => setLink('br0', { master: 'br0' }), { code: 'ELOOP', errno: 40, kernelMessage: 'Can not enslave a bridge to a bridge' }],
    ['EINVAL', () => setLink('br0', { mtu: 10 }), { code: 'EINVAL', errno: 22, kernelMessage: 'mtu less than device minimum' }],
  ];
  for (const [name, fn, want] of cases) {
    const err = await fn().then(
      () => undefined,
      (e: unknown) => e,
    );
    t.type(err, NetlinkError, name);
    t.match(err, want, name);
  }
  const e = await setLink('br0', { mtu: 10 }).catch((x: NetlinkError) => x);
  t.equal(e && e.message, 'setLink br0: Invalid argument (mtu less than device minimum)');
  t.same(linkNames().sort(), ['br0', 'lo'], 'nothing half-made');
});

t.test('one error family: input refused before the kernel, in the CLI’s words; the master is the cause, not the target', async (t) => {
  await createBridge('br0');
  const cases: [() => Promise<unknown>, object][] = [
    [() => createBridge('0123456789abcdef'), { op: 'createBridge', target: '0123456789abcdef', problem: 'invalid bridge name "0123456789abcdef": longer than 15 bytes' }],
    [() => createBridge('a/b'), { problem: 'invalid bridge name "a/b": "/", ":", whitespace, "." and ".." are not allowed' }],
    [() => createBridge('br9', { mtu: 10 }), { problem: 'invalid MTU 10: expected a whole number from 68 to 65535' }],
    [() => createBridge('br9', { mtu: 70000 }), { problem: 'invalid MTU 70000: expected a whole number from 68 to 65535' }],
    [() => createBridge('br9', { address: 'xx' }), { problem: 'invalid MAC address "xx": expected aa:bb:cc:dd:ee:ff' }],
    [() => setLink('br0', { mtu: 1.5 }), { op: 'setLink', target: 'br0', problem: 'invalid MTU 1.5: expected a whole number from 0 to 4294967295' }],
    [() => setLink('', { up: true }), { problem: 'invalid interface name "": empty' }],
    [() => setLink(0, { up: true }), { problem: 'invalid ifindex 0: expected a whole number from 1 to 2147483647' }],
    [() => deleteBridge('averyverylongname0'), { op: 'deleteBridge', problem: 'invalid bridge name "averyverylongname0": longer than 15 bytes' }],
  ];
  for (const [fn, want] of cases) {
    const err = await fn().then(() => undefined, (e: unknown) => e);
    t.type(err, InvalidArgumentError, JSON.stringify(want));
    t.type(err, QbhError);
    t.match(err, { code: 'EINVAL', ...want });
  }
  // The CLI prints the very same words as its usage error.
  const cli = await qbh('bridge', 'create', 'averyverylongname0');
  t.match(cli.stderr, /^qbh: bridge create: invalid bridge name "averyverylongname0": longer than 15 bytes\n/);
  t.same(linkNames().sort(), ['br0', 'lo'], 'nothing reached the kernel');

  sh('ip', 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1');
  const nomaster = await setLink('v0', { master: 'nope' }).catch((x: unknown) => x);
  t.type(nomaster, NetlinkError);
  t.match(nomaster, { code: 'ENODEV', op: 'setLink', target: 'v0', message: 'setLink v0: master nope does not exist' });

  // Every layer's error shares the base: one instanceof for the caller.
  const tapErr = await openTap({ bridge: 'nosuchbr' }).catch((x: unknown) => x);
  t.type(tapErr, TapError);
  t.type(tapErr, QbhError);
  t.match(tapErr, { code: 'ENODEV', op: 'openTap' });
  t.type(new AclError('parse', 'x'), QbhError);
});

t.test('EPERM says what to do, in the API and the CLI alike, true of this process', async (t) => {
  // This test runs as root, with CAP_NET_ADMIN: the hint says the capability is not what is missing.
  // (test/hints.test.ts runs the other situations: no capability, a 0600 /dev/net/tun.)
  const e = new NetlinkError(1, { op: 'createBridge', target: 'br0' });
  t.equal(e.message, `createBridge br0: Operation not permitted; ${HAS_NET_ADMIN}`);
  t.equal(e.hint, HAS_NET_ADMIN);
  t.equal(describeCause(e), `Operation not permitted; ${HAS_NET_ADMIN}`);
  const te = new TapError({ step: 'create', errno: 1, tap: 'tap0' });
  t.equal(te.message, `cannot create tap0: Operation not permitted; ${HAS_NET_ADMIN}`);
  t.equal(helperMessage(te), 'failed to create tun device: Operation not permitted', 'the helper keeps the C text');
  t.equal(new NetlinkError(17, { op: 'createBridge', target: 'br0' }).hint, undefined);
  t.not(NEED_NET_ADMIN, HAS_NET_ADMIN);
});

t.test('deleteBridge: refused with ports, released with force, deleted with withPorts', async (t) => {
  await createBridge('br0');
  sh('ip', 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1');
  await setLink('v0', { master: 'br0' });
  const refused = await deleteBridge('br0').catch((e: unknown) => e);
  t.type(refused, BridgeNotEmptyError);
  t.type(refused, QbhError, 'one base class');
  t.match(refused, {
    code: 'ENOTEMPTY',
    op: 'deleteBridge',
    target: 'br0',
    ports: ['v0'],
    message: 'cannot delete bridge br0: it still has 1 port (v0); { force: true } releases them, { withPorts: true } deletes them too',
  });
  t.same(linkNames().sort(), ['br0', 'lo', 'v0', 'v1'], 'nothing changed');
  t.equal(ipj('link', 'show', 'v0')[0].master, 'br0');
  await deleteBridge('br0', { force: true });
  t.same(linkNames().sort(), ['lo', 'v0', 'v1']);
  t.equal(ipj('link', 'show', 'v0')[0].master, undefined);

  await createBridge('br0');
  sh('ip', 'link', 'set', 'v0', 'group', '3');
  await setLink('v0', { master: 'br0' });
  sh('ip', 'tuntap', 'add', 'tp0', 'mode', 'tap');
  await setLink('tp0', { master: 'br0' });
  await deleteBridge('br0', { withPorts: true });
  t.same(linkNames(), ['lo'], 'bridge, veth pair and tap gone');

  sh('ip', 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1');
  await t.rejects(deleteBridge('v0'), { code: 'EINVAL', message: /v0 is a veth, not a bridge/ });
  await t.rejects(deleteBridge('nosuch'), { code: 'ENODEV' });
});

t.test('deleteLinks removes many links in one request, and restores groups when it cannot', async (t) => {
  const n = 200;
  const batch = Array.from({ length: n }, (_, i) => `tuntap add qt${i} mode tap`).join('\n');
  execFileSync('ip', ['-batch', '-'], { input: batch });
  const start = process.hrtime.bigint();
  await deleteLinks(Array.from({ length: n }, (_, i) => `qt${i}`));
  t.comment(`deleted ${n} taps in ${Number(process.hrtime.bigint() - start) / 1e6} ms`);
  t.same(linkNames(), ['lo']);
  // lo cannot be deleted: the whole request fails and the tap keeps its group and its life.
  sh('ip', 'tuntap', 'add', 'qt0', 'mode', 'tap');
  sh('ip', 'link', 'set', 'qt0', 'group', '5');
  await t.rejects(deleteLinks(['qt0', 'lo']), NetlinkError);
  t.same(linkNames(), ['lo', 'qt0']);
  t.equal(ipj('link', 'show', 'qt0')[0].group, '5');
  await deleteLink('qt0');
  await t.rejects(deleteLink('qt0'), { code: 'ENODEV' });
});

t.test('an explicit handle works like the shared one and closes cleanly', async (t) => {
  const h = await Rtnl.open();
  await h.createBridge('hb0', { mtu: 1280 });
  t.equal((await h.getLink('hb0')).mtu, 1280);
  t.same((await h.listBridges()).map((b) => b.ifname), ['hb0']);
  await h.deleteBridge('hb0');
  h.close();
  h.close();
  await t.rejects(h.getLink('lo'), /closed/);
});

t.test('features this kernel may lack are detected and skipped with a reason', async (t) => {
  try {
    sh('ip', 'link', 'add', 'd0', 'type', 'dummy');
  } catch (e) {
    t.pass('dummy links', { skip: `not supported by this kernel (${String((e as { stderr?: string }).stderr).trim()})` });
    return;
  }
  t.same((await listLinks({ kind: 'dummy' })).map((l) => l.ifname), ['d0']);
});

t.test('bridge VLAN filtering, where the kernel has it', async (t) => {
  await createBridge('br0');
  try {
    sh('ip', 'link', 'set', 'br0', 'type', 'bridge', 'vlan_filtering', '1');
  } catch (e) {
    t.pass('bridge VLAN filtering', { skip: `not supported by this kernel (${String((e as { stderr?: string }).stderr).trim()})` });
    return;
  }
  t.equal((await getBridge('br0')).linkinfo?.info_data?.vlan_filtering, 1);
});

t.test('a dump interrupted by concurrent changes is retried, then reported as DumpInterruptedError', async (t) => {
  // 1000 links make the dump span many datagrams; a shell loop adding and deleting a bridge
  // meanwhile changes the link list between them, so the kernel flags NLM_F_DUMP_INTR.
  execFileSync('ip', ['-batch', '-'], { input: Array.from({ length: 1000 }, (_, i) => `tuntap add di${i} mode tap`).join('\n') });
  const churn = spawn('sh', ['-c', 'while :; do ip link add churn0 type bridge; ip link del churn0; done'], { stdio: 'ignore' });
  const h = await Rtnl.open();
  let complete = 0;
  let gaveUp = 0;
  try {
    // At least 6 listings, and on until the kernel has flagged one (a fast listing leaves the
    // churn a narrow window: netlink-dump-retry.test.ts bounds its tries the same way).
    for (let i = 0; i < 6 || (h.socket.interruptedDumps === 0 && i < 60); i++) {
      try {
        const names = (await h.listLinks()).map((l) => l.ifname);
        t.equal(new Set(names).size, names.length, 'a completed dump lists each link once');
        t.ok(names.filter((n) => n.startsWith('di')).length === 1000, 'and every tap');
        complete++;
      } catch (e) {
        t.type(e, DumpInterruptedError);
        t.match(e, { code: 'EINTR', op: 'listLinks', attempts: DUMP_RETRIES });
        t.ok((e as DumpInterruptedError).partial.length > 0, 'the last, inconsistent result is attached');
        gaveUp++;
      }
    }
  } finally {
    churn.kill();
    h.close();
  }
  t.ok(h.socket.interruptedDumps > 0, `the kernel flagged ${h.socket.interruptedDumps} dumps as interrupted`);
  t.comment(`${complete} dumps completed (after retries where needed), ${gaveUp} gave up after ${DUMP_RETRIES} tries`);
  if (churn.exitCode === null && churn.signalCode === null) await new Promise((r) => churn.once('exit', r));
  // Once the churn stops, the same handle lists everything again.
  t.equal((await listLinks()).filter((l) => l.ifname.startsWith('di')).length, 1000);
});
