// The attach layer's seam (src/attach/tap.ts): a tap is made, joins its bridge while still down,
// the caller's policy runs, then it comes up; a policy that throws leaves no tap. Without a hook the
// helper still sends the one RTM_NEWLINK (MTU + MAC + master + up) it always sent.
// Private netns and mount ns (harness).
import './harness.js';
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ipj, privateEtcQemu, sh } from './harness.js';
import { bundle, handOff } from './helper-lib.js';
import { attachTap, type DownTap } from '../src/attach/tap.js';
import { resolveBridge } from '../src/attach/bridge.js';
import { TapError } from '../src/tun/errors.js';
import { Rtnl } from '../src/netlink/rtnl.js';
import { native } from '../src/native.js';

bundle();
// A bridge with a port and an MTU of its own (a portless bridge's MTU follows its first port's).
sh('ip', 'link', 'add', 'br0', 'type', 'bridge');
sh('ip', 'link', 'add', 'v0', 'mtu', '1400', 'type', 'veth', 'peer', 'name', 'v1');
sh('ip', 'link', 'set', 'v0', 'master', 'br0');
sh('ip', 'link', 'set', 'br0', 'mtu', '1400');
writeFileSync(join(privateEtcQemu(), 'bridge.conf'), 'allow br0\n', { mode: 0o644 });
const brIndex = ipj<{ ifindex: number }[]>('link', 'show', 'br0')[0]!.ifindex;
const rtnl = Rtnl.openSync();
t.teardown(() => rtnl.close());

/** The taps in the namespace, as `ip -j link show` lists them (any name but the fixtures'). */
const taps = () => ipj<{ ifname: string }[]>('link', 'show').map((l) => l.ifname).filter((n) => !['lo', 'br0', 'v0', 'v1'].includes(n));

/** The tap's state as `ip -j -d link show` gives it, while a hook runs. */
interface Seen {
  tap: DownTap;
  up: boolean;
  master: string | undefined;
  mtu: number;
  address: string;
}

const cases = [
  { what: 'tap%d (the C helper\'s steps)', ifname: null },
  { what: 'a chosen name (--ifname)', ifname: 'vm0' },
];

for (const { what, ifname } of cases) {
  t.test(`${what}: beforeUp sees the tap enslaved and down, and it comes up after`, async (t) => {
    let seen: Seen | null = null;
    const resolved = resolveBridge('br0', rtnl);
    const tap = attachTap({ bridge: 'br0', vnetHdr: true, ifname, resolved, rtnl }, {
      beforeUp: (down) => {
        const [l] = ipj<any[]>('-d', 'link', 'show', 'dev', down.name);
        seen = { tap: { ...down }, up: l.flags.includes('UP'), master: l.master, mtu: l.mtu, address: l.address };
      },
    });
    try {
      t.ok(seen, 'the hook ran');
      const s = seen as unknown as Seen;
      t.same(s.tap, { name: tap.name, ifindex: tap.ifindex, fd: tap.fd, bridge: { name: 'br0', ifindex: brIndex } }, 'the hook is given the tap and its bridge');
      t.equal(s.up, false, 'down while the hook runs');
      t.equal(s.master, 'br0', 'already a port of the bridge');
      t.equal(s.mtu, 1400, "with the bridge's MTU");
      t.match(s.address, /^fe:/, 'and its 0xFE MAC');
      if (ifname !== null) t.equal(tap.name, ifname);
      const [l] = ipj<any[]>('link', 'show', 'dev', tap.name);
      t.ok(l.flags.includes('UP'), 'up once the hook returned');
      t.equal(l.master, 'br0');
    } finally {
      native.close(tap.fd);
    }
    t.same(taps(), [], 'gone with its fd');
  });

  t.test(`${what}: a hook that throws leaves no tap behind`, async (t) => {
    const refusal = new Error('policy refused');
    let ran = false;
    t.throws(
      () =>
        attachTap({ bridge: 'br0', vnetHdr: false, ifname }, {
          beforeUp: () => {
            ran = true;
            throw refusal;
          },
        }),
      refusal,
      "the hook's own error, unchanged",
    );
    t.ok(ran, 'the hook ran');
    t.same(taps(), [], 'no tap in `ip -j link show`');
  });

  t.test(`${what}: a device that is no bridge is refused before the hook is called`, async (t) => {
    let ran = false;
    t.throws(() => attachTap({ bridge: 'v1', vnetHdr: false, ifname }, { beforeUp: () => void (ran = true) }), TapError);
    t.equal(ran, false);
    t.same(taps(), []);
  });
}

t.test('without a hook the helper sends one RTM_NEWLINK: MTU, MAC, master and up together', async (t) => {
  const trace = '/etc/qemu/.strace';
  const r = handOff(['--use-vnet', '--br=br0', '--fd=3'], ['strace', '-f', '-qq', '-e', 'trace=sendto,sendmsg', '-e', 'signal=none', '-o', trace]);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.tap?.link.master, 'br0');
  const sent = readFileSync(trace, 'utf8').split('\n').filter((l) => l.includes('RTM_NEWLINK'));
  t.equal(sent.length, 1, sent.join('\n'));
  t.match(sent[0], /IFF_UP/);
  t.match(sent[0], /IFLA_MASTER/);
  t.match(sent[0], /IFLA_MTU/);
  t.match(sent[0], /IFLA_ADDRESS/);
});
