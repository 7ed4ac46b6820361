// Identity rules as a user meets them: the shipped helper (bin/qemu-bridge-helper) run by uid 65534
// (nobody, primary group nogroup 65534, no supplementary groups) holding only an ambient
// CAP_NET_ADMIN, against allow-user/deny-user/allow-group/deny-group rules that name that user, and
// rules that name root. What is asserted is what QEMU sees: the exit status, the stderr bytes, and a
// tap fd on the bridge or none. A helper that judged itself as anyone else (root, say) fails here.
import './harness.js';
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { AS_NOBODY, bundle, handOff, privateTunNode } from './helper-lib.js';
import { linkNames, privateEtcQemu, sh } from './harness.js';

bundle();
privateEtcQemu(); // a tmpfs over /etc/qemu, in this test's mount namespace only
privateTunNode('/etc/qemu/.dev');
sh('ip', 'link', 'add', 'br0', 'type', 'bridge');
sh('ip', 'link', 'set', 'br0', 'mtu', '1450');
const FIXTURES = new Set(linkNames());
const leftovers = () => linkNames().filter((n) => !FIXTURES.has(n));
const DENIED = 'access denied by acl file\n';

/** [bridge.conf, permitted for uid 65534/gid 65534, why]. Each identity kind both ways, names and ids. */
const cases: [string, boolean, string][] = [
  ['allow-user nobody br0\n', true, 'allow-user names the caller'],
  ['allow-user 65534 br0\n', true, 'allow-user by uid'],
  ['allow-user root br0\n', false, 'allow-user for root does not let nobody in'],
  ['allow-user 0 all\n', false, 'allow-user 0 all does not let nobody in'],
  ['allow br0\ndeny-user nobody br0\n', false, 'deny-user names the caller: deny wins'],
  ['allow br0\ndeny-user root br0\n', true, 'deny-user for root does not deny nobody'],
  ['allow-group nogroup br0\n', true, 'allow-group: the caller\'s primary group'],
  ['allow-group 65534 br0\n', true, 'allow-group by gid'],
  ['allow-group root br0\n', false, 'allow-group for root\'s group does not let nobody in'],
  ['allow br0\ndeny-group nogroup br0\n', false, 'deny-group: the caller\'s primary group is denied'],
  ['allow br0\ndeny-group 0 br0\n', true, 'deny-group 0 does not deny a caller outside group 0'],
  ['allow-user nobody br0\ndeny-group nogroup all\n', false, 'a group deny beats a user allow'],
];

for (const [acl, permitted, why] of cases) {
  t.test(`as uid 65534: ${JSON.stringify(acl)} → ${permitted ? 'allowed' : 'denied'} (${why})`, async (t) => {
    writeFileSync('/etc/qemu/bridge.conf', acl, { mode: 0o644 });
    const r = handOff(['--use-vnet', '--br=br0', '--fd=3'], AS_NOBODY);
    if (permitted) {
      t.equal(r.stderr, '', 'nothing on stderr');
      t.equal(r.status, 0, 'exit 0');
      t.equal(r.fds, 1, 'one fd handed to QEMU');
      t.match(r.tap?.link, { master: 'br0', mtu: 1450 }, 'the tap is on br0');
    } else {
      t.equal(r.stderr, DENIED, 'the C helper\'s denial line');
      t.equal(r.status, 1, 'exit 1');
      t.equal(r.fds, 0, 'no fd');
    }
    t.same(leftovers(), [], 'no tap left behind');
  });
}

t.test('as uid 65534 with gid 100: user rules compare the uid, group rules the gid', async (t) => {
  const asOther = AS_NOBODY.map((a) => (a === '--regid=65534' ? '--regid=100' : a));
  for (const [acl, permitted] of [
    ['allow-user 100 br0\n', false],
    ['allow-user 65534 br0\n', true],
    ['allow-group 100 br0\n', true],
    ['allow-group 65534 br0\n', false],
    ['allow br0\ndeny-user 100 br0\n', true],
  ] as const) {
    writeFileSync('/etc/qemu/bridge.conf', acl, { mode: 0o644 });
    const r = handOff(['--br=br0', '--fd=3'], asOther);
    t.same({ status: r.status, fds: r.fds, stderr: r.stderr }, permitted ? { status: 0, fds: 1, stderr: '' } : { status: 1, fds: 0, stderr: DENIED }, `${JSON.stringify(acl)}: ${permitted ? 'allowed' : 'denied'}`);
  }
  t.same(leftovers(), []);
});

t.test('the same file judged for root: the rules follow the caller, not the file', async (t) => {
  // Root (no setpriv) is the caller root rules name: what nobody was refused above, root gets, and back.
  writeFileSync('/etc/qemu/bridge.conf', 'allow-user root br0\n', { mode: 0o644 });
  const root = handOff(['--br=br0', '--fd=3']);
  t.equal(root.status, 0);
  t.equal(root.fds, 1);
  writeFileSync('/etc/qemu/bridge.conf', 'allow br0\ndeny-user nobody br0\n', { mode: 0o644 });
  const rootToo = handOff(['--br=br0', '--fd=3']);
  t.equal(rootToo.status, 0, 'deny-user nobody does not deny root');
  t.same(leftovers(), []);
});
