import './harness.js';
import t from 'tap';
import { ipj, sh, linkNames } from './harness.js';
import { openTapSync, helperMessage, TapError, tapInfo } from '../src/tun/index.js';
import { Rtnl } from '../src/netlink/rtnl.js';
import { native } from '../src/native.js';

const rtnl = Rtnl.openSync();
t.teardown(() => rtnl.close());
// A bridge as it is in real life: it has a port (whose MAC is low) and an MTU set by the admin, so
// neither its MAC nor its MTU may move when a tap joins or leaves (docs/qemu-bridge-helper.md, §3).
sh('ip', 'link', 'add', 'br0', 'type', 'bridge');
sh('ip', 'link', 'add', 'v0', 'mtu', '1400', 'address', '02:00:00:00:00:01', 'type', 'veth', 'peer', 'name', 'v1');
sh('ip', 'link', 'set', 'v0', 'master', 'br0');
sh('ip', 'link', 'set', 'br0', 'mtu', '1400');
const brBefore = ipj('link', 'show', 'br0')[0];
const taps = () => linkNames().filter((n) => n.startsWith('tap'));

function failure(bridge: string, vnetHdr = true): TapError {
  try {
    const tap = openTapSync({ bridge, vnetHdr }, rtnl);
    native.close(tap.fd);
  } catch (e) {
    if (e instanceof TapError) return e;
    throw e;
  }
  throw new Error('openTapSync succeeded');
}

t.test('success: tap%d, bridge MTU, fe: MAC, enslaved, UP, vnet_hdr as asked', async (t) => {
  for (const vnetHdr of [true, false]) {
    const tap = openTapSync({ bridge: 'br0', vnetHdr }, rtnl);
    t.match(tap.name, /^tap\d+$/);
    t.equal(tap.vnetHdr, vnetHdr);
    const [l] = ipj('-d', 'link', 'show', tap.name);
    t.equal(l.ifindex, tap.ifindex);
    t.equal(l.mtu, 1400);
    t.match(l.address, /^fe:/);
    t.equal(l.master, 'br0');
    t.ok(l.flags.includes('UP'));
    t.equal(l.linkinfo.info_data.type, 'tap');
    t.equal(l.linkinfo.info_data.pi, false);
    t.equal(l.linkinfo.info_data.vnet_hdr, vnetHdr);
    t.equal(l.linkinfo.info_data.persist, false);
    t.equal(tapInfo(tap.fd).name, tap.name);
    const [br] = ipj('link', 'show', 'br0');
    t.equal(br.mtu, brBefore.mtu, 'bridge MTU unchanged');
    t.equal(br.address, brBefore.address, 'bridge MAC unchanged');
    native.close(tap.fd);
    t.same(taps(), [], 'tap gone once its fd is closed');
  }
});

t.test('missing bridge: bridge-mtu, ENODEV', async (t) => {
  const e = failure('nope');
  t.equal(e.step, 'bridge-mtu');
  t.equal(e.code, 'ENODEV');
  t.equal(helperMessage(e), "failed to get mtu of bridge `nope': No such device");
  t.same(taps(), []);
});

t.test('empty bridge name: bridge-mtu, ENODEV', async (t) => {
  t.equal(helperMessage(failure('')), "failed to get mtu of bridge `': No such device");
  t.same(taps(), []);
});

t.test('bridge=lo: MTU 65536 refused with EINVAL before anything else', async (t) => {
  const e = failure('lo');
  t.equal(e.step, 'set-mtu');
  t.equal(e.code, 'EINVAL');
  t.match(helperMessage(e), /^failed to set mtu of device `tap\d+' to 65536: Invalid argument$/);
  t.same(taps(), []);
});

t.test('non-bridge "bridge": MTU copied, enslave fails with EOPNOTSUPP', async (t) => {
  sh('ip', 'tuntap', 'add', 'notbr', 'mode', 'tap');
  t.teardown(() => sh('ip', 'link', 'del', 'notbr'));
  const e = failure('notbr');
  t.equal(e.step, 'enslave');
  t.equal(e.code, 'EOPNOTSUPP');
  t.match(helperMessage(e), /^failed to add interface `tap\d+' to bridge `notbr': Operation not supported$/);
  t.match(e.message, /^cannot add tap\d+ to bridge notbr: Operation not supported/);
  t.same(taps(), []);
});

t.test('/dev/net/tun missing: open step', async (t) => {
  sh('mount', '-t', 'tmpfs', 'none', '/dev/net');
  t.teardown(() => sh('umount', '/dev/net'));
  const e = failure('br0');
  t.equal(e.step, 'open');
  t.equal(helperMessage(e), 'failed to open /dev/net/tun: No such file or directory');
});

t.test('the kernel picks the lowest free tapN', async (t) => {
  const a = openTapSync({ bridge: 'br0', vnetHdr: true }, rtnl);
  const b = openTapSync({ bridge: 'br0', vnetHdr: true }, rtnl);
  t.not(a.name, b.name);
  native.close(a.fd);
  const c = openTapSync({ bridge: 'br0', vnetHdr: true }, rtnl);
  t.equal(c.name, a.name);
  native.close(b.fd);
  native.close(c.fd);
  t.same(taps(), []);
});
