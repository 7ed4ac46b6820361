import './harness.js';
import t from 'tap';
import { ipj, sh, linkNames } from './harness.js';
import {
  openTap,
  closeTap,
  deleteTap,
  deleteTaps,
  tunFeatures,
  tapInfo,
  sendFds,
  recvFds,
  FdMessageTruncatedError,
  RECV_MAX_BYTES,
  SCM_MAX_FD,
  TapError,
  MAX_TAP_QUEUES,
  type Tap,
} from '../src/tun/index.js';
import { InvalidArgumentError } from '../src/errors.js';
import { helperPath, NotABridgeError } from '../src/index.js';
import { spawnSync } from 'node:child_process';
import { isAbsolute, join } from 'node:path';
import { ROOT } from './helper-lib.js';
import { native } from '../src/native.js';
import type { SetLinkOptions } from '../src/netlink/rtnl.js';

const SOCK_STREAM = 1;
sh('ip', 'link', 'add', 'br0', 'type', 'bridge');
sh('ip', 'link', 'add', 'v0', 'mtu', '1400', 'address', '02:00:00:00:00:01', 'type', 'veth', 'peer', 'name', 'v1');
sh('ip', 'link', 'set', 'v0', 'master', 'br0');
sh('ip', 'link', 'set', 'br0', 'mtu', '1400', 'up');
const brBefore = ipj('link', 'show', 'br0')[0];
const taps = (): string[] => ipj<{ ifname: string }[]>('link', 'show', 'type', 'tun').map((l) => l.ifname);
const show = (name: string) => ipj('-d', 'link', 'show', name)[0];

t.test('tunFeatures decodes TUNGETFEATURES', async (t) => {
  const f = tunFeatures();
  t.ok(f.tap && f.noPi && f.vnetHdr && f.multiQueue);
  t.equal(f.raw & 0x5102, 0x5102);
});

t.test('openTap on a bridge: ip -d link show agrees', async (t) => {
  const tap = await openTap({ bridge: 'br0', queues: 4 });
  t.match(tap, { vnetHdr: true, persist: false, multiQueue: true, bridge: 'br0' });
  t.equal(tap.fds.length, 4);
  const l = show(tap.name);
  t.equal(l.ifindex, tap.ifindex);
  t.equal(l.linkinfo.info_kind, 'tun');
  t.match(l.linkinfo.info_data, { type: 'tap', pi: false, vnet_hdr: true, multi_queue: true, numqueues: 4, persist: false });
  t.equal(l.master, 'br0');
  t.equal(l.mtu, 1400);
  t.match(l.address, /^fe:/);
  t.equal(l.address, tap.address);
  t.ok(l.flags.includes('UP'));
  const br = show('br0');
  t.equal(br.address, brBefore.address, 'bridge MAC unchanged');
  t.equal(br.mtu, 1400, 'bridge MTU unchanged');
  for (const fd of tap.fds) t.equal(tapInfo(fd).name, tap.name, 'every queue fd is the same tap');
  closeTap(tap);
  t.same(tap.fds, []);
  closeTap(tap); // idempotent
  t.same(taps(), []);
});

t.test('options: name, vnetHdr off, mtu, macPrefix, owner, group, no bridge', async (t) => {
  const tap = await openTap({ bridge: 'br0', name: 'vm1-net0', vnetHdr: false, mtu: 1300, macPrefix: 'fa:16' });
  t.equal(tap.name, 'vm1-net0');
  const l = show('vm1-net0');
  t.match(l.linkinfo.info_data, { vnet_hdr: false, multi_queue: false });
  t.equal(l.mtu, 1300);
  t.match(l.address, /^fa:16:/);
  t.equal(show('br0').mtu, 1300, 'an explicit smaller MTU lowers the bridge (it follows its smallest port)');
  closeTap(tap);
  t.equal(show('br0').mtu, 1400, 'and the bridge MTU comes back once the tap is gone');

  const free = await openTap({ owner: 65534, group: 65534, up: false });
  const f = show(free.name);
  t.notOk(f.master);
  t.notOk(f.flags.includes('UP'));
  t.equal(f.mtu, 1500);
  // Without a bridge the kernel's random MAC stays: its first octet is any locally administered unicast
  // one, fe included (1 in 64), so look at several taps — all of them starting fe: would be the prefix.
  const more = await Promise.all(Array.from({ length: 5 }, () => openTap({ up: false })));
  const macs = [f.address, ...more.map((m) => show(m.name).address)];
  for (const m of more) closeTap(m);
  t.ok(macs.some((m) => !m.startsWith('fe:')), `no fe: prefix forced without a bridge (${macs.join(' ')})`);
  t.equal(f.linkinfo.info_data.user, sh('id', '-nu', '65534').trim(), 'owner (iproute2 prints the name)');
  t.equal(f.linkinfo.info_data.group, sh('getent', 'group', '65534').split(':')[0], 'group');
  closeTap(free);
  // By name, as ip tuntap add's user and group: resolved from /etc/passwd and /etc/group.
  const user = sh('id', '-nu', '65534').trim();
  const group = sh('getent', 'group', '65534').split(':')[0]!;
  const named = await openTap({ owner: user, group, up: false });
  t.match(show(named.name).linkinfo.info_data, { user, group });
  closeTap(named);
  const digits = await openTap({ owner: '65534', up: false });
  t.match(show(digits.name).linkinfo.info_data, { user }, 'a name of digits is the number');
  closeTap(digits);
  t.same(taps(), []);
});

t.test("helperPath(): the package's own helper, for QEMU's helper=", async (t) => {
  const path = helperPath();
  t.ok(isAbsolute(path), path);
  t.equal(path, join(ROOT, 'dist', 'qemu-bridge-helper.cjs'));
  // It is the helper: run with no arguments it prints the C helper's usage.
  const r = spawnSync(path, [], { encoding: 'utf8' });
  t.match(r.stderr, /^Usage: qemu-bridge-helper /);
});

t.test('persistent taps outlive their fds; deleteTap / deleteTaps remove them', async (t) => {
  const a = await openTap({ bridge: 'br0', persist: true });
  closeTap(a);
  const l = show(a.name);
  t.equal(l.linkinfo.info_data.persist, true);
  t.equal(l.master, 'br0');
  await deleteTap(a.name);
  t.same(taps(), []);

  const many: Tap[] = [];
  for (let i = 0; i < 5; i++) many.push(await openTap({ bridge: 'br0', persist: true }));
  many.forEach((x) => closeTap(x));
  await deleteTaps(many.map((x) => x.name));
  t.same(taps(), []);

  await t.rejects(deleteTap('br0'), { step: 'validate', message: /br0 is a bridge, not a tap/ });
  await t.rejects(deleteTaps(['v0']), { code: 'ENODEV' });
  t.ok(linkNames().includes('br0') && linkNames().includes('v0'), 'non-taps left alone');
});

t.test('bad input: clear errors, nothing left behind', async (t) => {
  const cases: [string, Parameters<typeof openTap>[0], object][] = [
    ['empty name', { name: '' }, { code: 'EINVAL', op: 'openTap', message: 'openTap: invalid tap name "": empty' }],
    ['16-byte name', { name: 'a'.repeat(16) }, { code: 'EINVAL', message: `openTap: invalid tap name "${'a'.repeat(16)}": longer than 15 bytes` }],
    ['slash', { name: 'a/b' }, { code: 'EINVAL', message: /"\/", ":", whitespace/ }],
    ['two templates', { name: 'x%d%d' }, { code: 'EINVAL', message: /only one %d template/ }],
    ['queues 0', { queues: 0 }, { code: 'EINVAL', op: 'openTap', problem: 'invalid number of queues 0: expected a whole number from 1 to 256' }],
    ['queues 257', { queues: MAX_TAP_QUEUES + 1 }, { code: 'EINVAL', problem: /number of queues 257/ }],
    ['queues 1.5', { queues: 1.5 }, { code: 'EINVAL', problem: /number of queues 1\.5/ }],
    ['mtu too big', { mtu: 65522 }, { code: 'EINVAL', message: 'openTap: invalid MTU 65522: expected a whole number from 68 to 65521' }],
    ['mtu too small', { bridge: 'br0', mtu: 10 }, { code: 'EINVAL', problem: /invalid MTU 10/ }],
    ['multicast prefix', { macPrefix: 0x01 }, { code: 'EINVAL', problem: /multicast/ }],
    ['bad prefix', { macPrefix: 'zz' }, { code: 'EINVAL', problem: /macPrefix "zz"/ }],
    ['unknown bridge', { bridge: 'nope' }, { step: 'bridge-mtu', code: 'ENODEV', message: 'cannot create tap%d: bridge nope does not exist' }],
    ['unknown bridge, a named tap', { name: 't0', bridge: 'nope' }, { step: 'bridge-mtu', code: 'ENODEV', op: 'openTap', message: 'cannot create t0: bridge nope does not exist' }],
    ['unknown owner', { owner: 'qbh-no-such-user' }, { code: 'EINVAL', message: 'openTap: invalid owner "qbh-no-such-user": no such user in /etc/passwd' }],
    ['unknown group', { group: 'qbh-no-such-group' }, { code: 'EINVAL', message: 'openTap: invalid group "qbh-no-such-group": no such group in /etc/group' }],
    ['non-bridge', { bridge: 'v1' }, { code: 'EOPNOTSUPP', device: 'v1', kind: 'veth', kernelMessage: undefined, message: 'openTap: v1 is a veth, not a bridge' }],
    ['lo as bridge', { bridge: 'lo' }, { code: 'EOPNOTSUPP', device: 'lo', kind: undefined, problem: 'lo is a device, not a bridge' }],
    ['existing name', { name: 'v0' }, { step: 'create', code: 'EBUSY', message: 'cannot create v0: name v0 is taken by a veth device' }],
  ];
  for (const [what, opts, want] of cases) {
    const e = await openTap(opts).then(
      () => undefined,
      (err: unknown) => err,
    );
    t.type(e, 'step' in want ? TapError : 'device' in want ? NotABridgeError : InvalidArgumentError, what);
    t.match(e, want, what);
    t.same(taps(), [], `${what}: nothing left`);
  }
});

t.test('a bridge MTU above the tap maximum is refused before a tap exists', async (t) => {
  sh('ip', 'link', 'add', 'jumbo', 'type', 'bridge');
  sh('ip', 'link', 'set', 'jumbo', 'mtu', '65535');
  t.teardown(() => sh('ip', 'link', 'del', 'jumbo'));
  await t.rejects(openTap({ bridge: 'jumbo' }), { step: 'set-mtu', code: 'EINVAL', message: /65535 is above a tap's maximum 65521/ });
  t.same(taps(), []);
});

t.test('a jumbo bridge MTU is copied; persistent taps are deleted by name', async (t) => {
  sh('ip', 'link', 'add', 'br1', 'type', 'bridge');
  sh('ip', 'link', 'set', 'br1', 'mtu', '9000');
  t.teardown(() => sh('ip', 'link', 'del', 'br1'));
  const tap = await openTap({ bridge: 'br1', persist: true });
  t.equal(show(tap.name).mtu, 9000, 'jumbo MTU copied');
  t.equal(show('br1').mtu, 9000);
  closeTap(tap);
  await deleteTap(tap.name);
  t.same(taps(), []);
});

t.test('a kernel refusal of the RTM_NEWLINK: the step is found by replay, everything rolled back', async (t) => {
  // The kernel's errno for the combined request does not say which change it refused; openTap
  // replays them one by one. A handle whose enslave is refused stands in for a kernel that does.
  const real = (await import('../src/netlink/rtnl.js')).Rtnl.openSync();
  t.teardown(() => real.close());
  const { NetlinkError } = await import('../src/netlink/errors.js');
  const refusing = Object.create(real, {
    setLink: {
      value: async (ref: number, opts: SetLinkOptions) => {
        if (opts.master !== undefined) throw new NetlinkError(95, { op: 'setLink', target: String(ref) });
        return real.setLink(ref, opts);
      },
    },
  });
  const e = await openTap({ bridge: 'br0', queues: 2, persist: true }, refusing).catch((err: unknown) => err);
  t.type(e, TapError);
  t.match(e, { step: 'enslave', code: 'EOPNOTSUPP', bridge: 'br0', message: /^cannot add tap\d+ to bridge br0: Operation not supported$/ });
  t.same(taps(), [], 'no tap left (the fds were closed before persistence was ever set)');
});

t.test('closeTap closes every queue even when one of its fds was closed already, and reports that one', async (t) => {
  const tap = await openTap({ bridge: 'br0', queues: 3 });
  native.close(tap.fds[0]!); // the caller closed one queue itself
  t.throws(() => closeTap(tap), { code: 'EBADF' }, 'the failed close is reported');
  t.same(tap.fds, []);
  t.same(taps(), [], 'the other two queues were closed: the tap is gone');
});

t.test('fd passing: a tap fd sent over a socketpair is the same tap on arrival', async (t) => {
  const tap = await openTap({ bridge: 'br0', queues: 2 });
  const [a, b] = native.socketpair(SOCK_STREAM);
  t.equal(sendFds(a, tap.fds), 1);
  const got = recvFds(b, 2, { timeoutMs: 1000 });
  t.ok(got);
  t.same([...got!.data], [0]);
  t.equal(got!.fds.length, 2);
  for (const fd of got!.fds) t.equal(tapInfo(fd).name, tap.name);
  closeTap(tap);
  t.ok(linkNames().includes(tap.name), 'the received fds keep the tap alive');
  for (const fd of got!.fds) native.close(fd);
  t.same(taps(), []);

  t.equal(recvFds(b, 1, { timeoutMs: 10 }), null, 'timeout gives null');
  t.throws(() => sendFds(a, []), InvalidArgumentError);
  t.throws(() => sendFds(a, [-1]), { name: 'InvalidArgumentError', code: 'EINVAL', op: 'sendFds' });
  t.throws(() => sendFds(a, [0], Buffer.alloc(0)), InvalidArgumentError);
  t.throws(() => recvFds(b, 0), { name: 'InvalidArgumentError', code: 'EINVAL', op: 'recvFds' });
  t.throws(() => recvFds(b, 1, { maxBytes: RECV_MAX_BYTES + 1 }), { name: 'InvalidArgumentError', code: 'EINVAL' });
  t.throws(() => recvFds(b, 1, { timeoutMs: NaN }), { name: 'InvalidArgumentError', code: 'EINVAL' });
  t.throws(() => sendFds(a, new Array<number>(SCM_MAX_FD + 1).fill(a)), { name: 'InvalidArgumentError', code: 'EINVAL' });
  // More fds than the receiver makes room for: truncated, and the fds that did arrive are closed.
  const three = await openTap({ queues: 3 });
  sendFds(a, three.fds);
  // (The padded cmsg buffer holds 2 of the 3: the kernel closes the third, recvFds the two.)
  t.throws(() => recvFds(b, 1, { timeoutMs: 1000 }), new FdMessageTruncatedError(2, 1, 1));
  // An odd maxFds leaves room in the padded cmsg buffer for one fd more: still truncation.
  sendFds(a, three.fds.slice(0, 2));
  t.throws(() => recvFds(b, 1, { timeoutMs: 1000 }), { name: 'FdMessageTruncatedError', code: 'EMSGSIZE', fdsClosed: 2 });
  closeTap(three);
  t.same(taps(), []);
  native.close(a);
  native.close(b);
});
