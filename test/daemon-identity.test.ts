// Identity through the daemon: the kernel's uid, gid and supplementary groups (SO_PEERCRED,
// SO_PEERGROUPS) decide, with the qbh identity rules and include readability evaluated for that
// identity, hardened. No client obtains a bridge allowed only to another identity, and a client
// cannot claim one. Private netns, mount ns, /etc/qemu and /run/qbh (harness).
import './harness.js';
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { privateEtcQemu, privateRunQbh, sh } from './harness.js';
import { CLEAN, ROOT, SOCKET, handOff, logged, startDaemon, taps, type Daemon } from './daemon-lib.js';

execFileSync(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs')], { stdio: 'inherit' });
privateEtcQemu();
privateRunQbh();
// Numeric ids: the test's users need no /etc/passwd entries.
writeFileSync(
  '/etc/qemu/bridge.conf',
  ['allow br0', 'allow-user 1001 br1', 'allow-group 2001 br2', 'deny-group 2002 br0', 'include /etc/qemu/g3.conf', ''].join('\n'),
  { mode: 0o644 },
);
// Readable only by group 3003 (root:3003 0640): counts only for its members, as with the C helper.
writeFileSync('/etc/qemu/g3.conf', 'allow br3\n', { mode: 0o640 });
chownSync('/etc/qemu/g3.conf', 0, 3003);
for (const br of ['br0', 'br1', 'br2', 'br3']) sh('ip', 'link', 'add', br, 'type', 'bridge');

/** setpriv for a uid with its own primary gid (or `gid`) and supplementary `groups`, no capabilities. */
const as = (uid: number, groups: number[] = [], gid = uid) => [
  'setpriv', `--reuid=${uid}`, `--regid=${gid}`, groups.length ? `--groups=${groups.join(',')}` : '--clear-groups', '--inh-caps=-all', '--bounding-set=-all',
];
const A = as(1001); // allow-user 1001
const B = as(1002); // nobody special
const G = as(1003, [2001]); // member of 2001 (allow-group)
const D = as(1004, [2002]); // member of 2002 (deny-group … br0)
const Dp = as(1005, [], 2002); // 2002 as the primary gid
const R = as(1006, [3003]); // may read g3.conf

function outcome(who: string[], bridge: string): string {
  const r = handOff(['--use-vnet', `--br=${bridge}`, '--fd=3'], who);
  return r.status === 0 && r.fds === 1 ? 'ok' : r.stderr;
}

let daemon: Daemon;
t.before(async () => {
  daemon = await startDaemon();
});
t.teardown(async () => {
  await daemon.stop();
});

t.test('user rules: A gets br1, B does not', async (t) => {
  t.equal(outcome(A, 'br1'), 'ok');
  t.equal(outcome(B, 'br1'), 'access denied by acl file\n');
  t.equal(outcome(A, 'br0'), 'ok', 'plain rules still apply to everyone');
  t.equal(outcome(B, 'br0'), 'ok');
  t.ok(await logged(daemon, /tap uid=1002 gid=1002 groups=- .* bridge=br1 tap=- outcome=denied rule=default-deny/));
  t.ok(await logged(daemon, /tap uid=1001 gid=1001 groups=- .* bridge=br1 tap=tap\d+ outcome=allowed rule=\/etc\/qemu\/bridge.conf:2/));
  t.same(taps(), []);
});

t.test('group rules: supplementary and primary groups, deny wins', async (t) => {
  t.equal(outcome(G, 'br2'), 'ok', 'a member of 2001');
  t.equal(outcome(A, 'br2'), 'access denied by acl file\n', 'not a member');
  t.equal(outcome(D, 'br0'), 'access denied by acl file\n', 'deny-group 2002 beats allow br0 (supplementary)');
  t.equal(outcome(Dp, 'br0'), 'access denied by acl file\n', '… and as the primary gid');
  t.ok(await logged(daemon, /tap uid=1004 gid=1004 groups=2002 .* bridge=br0 tap=- outcome=denied rule=\/etc\/qemu\/bridge.conf:4/));
  t.same(taps(), []);
});

t.test('an include readable only by group 3003 counts only for its members', async (t) => {
  t.equal(outcome(R, 'br3'), 'ok');
  t.equal(outcome(A, 'br3'), 'access denied by acl file\n', 'unreadable for A: skipped, as the C helper does');
  t.equal(outcome(G, 'br3'), 'access denied by acl file\n');
  t.same(taps(), []);
});

/** A Python client: the protocol is one JSON line each way (docs/daemon.md). */
function pyAsk(who: string[], line: string): any {
  const py = `import socket,sys,json\ns=socket.socket(socket.AF_UNIX)\ns.connect(${JSON.stringify(SOCKET)})\ns.sendall(sys.argv[1].encode()+b"\\n")\nb=b""\nwhile not b.endswith(b"\\n"):\n  c=s.recv(65536)\n  if not c: break\n  b+=c\nprint(b.decode(),end="")`;
  const r = spawnSync(CLEAN[0]!, [...CLEAN.slice(1), ...who, 'python3', '-c', py, line], { encoding: 'utf8' });
  return JSON.parse(r.stdout);
}

t.test('check requests: what each identity may use, creating nothing', async (t) => {
  const r = pyAsk(R, '{"v":1,"op":"check"}');
  t.match(r, { v: 1, ok: true, op: 'check', uid: 1006, gid: 1006, groups: [3003], any: false });
  t.same(r.bridges.sort(), ['br0', 'br3']);
  t.same(pyAsk(A, '{"v":1,"op":"check"}').bridges.sort(), ['br0', 'br1']);
  t.same(pyAsk(D, '{"v":1,"op":"check"}').bridges.sort(), [], 'D: br0 denied by group, nothing else');
  const one = pyAsk(G, '{"v":1,"op":"check","bridge":"br2"}');
  t.match(one.bridge, { name: 'br2', allowed: true, reason: /allow-group 2001 br2/ });
  t.same(taps(), []);
});

t.test('a client cannot claim an identity', async (t) => {
  const r = pyAsk(B, '{"v":1,"op":"tap","bridge":"br1","vnet_hdr":true,"uid":1001}');
  t.match(r, { ok: false, errno: 22, message: 'qbhd: unknown field "uid" in a tap request\n' });
  t.same(taps(), []);
});

t.test('hardening: an ACL file others could change fails closed for everyone', async (t) => {
  chmodSync('/etc/qemu/g3.conf', 0o660);
  t.equal(outcome(B, 'br0'), "acl file `/etc/qemu/g3.conf' is writable by group (mode 0660)\n", 'B cannot even read it, yet is refused');
  t.equal(outcome(R, 'br3'), "acl file `/etc/qemu/g3.conf' is writable by group (mode 0660)\n");
  chmodSync('/etc/qemu/g3.conf', 0o640);
  chownSync('/etc/qemu/bridge.conf', 1001, 0);
  t.match(outcome(A, 'br1'), /^acl file `\/etc\/qemu\/bridge.conf' is not owned by root \(owner uid 1001\)\n$/, 'the main file owned by a user');
  chownSync('/etc/qemu/bridge.conf', 0, 0);
  t.equal(outcome(A, 'br1'), 'ok', 'read afresh: fixed files count at once');
  t.same(taps(), []);
});
