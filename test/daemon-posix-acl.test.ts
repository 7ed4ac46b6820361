// POSIX ACLs on ACL files, through the real daemon: what a peer may read is what the kernel lets it
// read (issue 20, finding 3). One include uid 4242 may not read by an ACL entry (mode bits say it
// may), one only 4242 may read by an ACL entry (mode bits say it may not). The daemon with
// CAP_SETUID/CAP_SETGID opens them with the peer's credentials; without them it evaluates the ACLs as
// the kernel does. Both must agree with the kernel, and with the C helper run by that user.
// Private netns, mount ns, /etc/qemu and /run/qbh (harness).
import './harness.js';
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { privateEtcQemu, privateRunQbh, sh } from './harness.js';
import { ROOT, handOff, logged, startDaemon, taps, type Daemon } from './daemon-lib.js';

execFileSync(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs')], { stdio: 'inherit' });
privateEtcQemu();
privateRunQbh();
writeFileSync('/etc/qemu/bridge.conf', 'allow br0\ninclude /etc/qemu/not-4242.conf\ninclude /etc/qemu/only-4242.conf\n', { mode: 0o644 });
// World-readable by its mode, but a named-user entry takes read away from 4242.
writeFileSync('/etc/qemu/not-4242.conf', 'allow br1\n', { mode: 0o644 });
sh('setfacl', '-m', 'u:4242:---', '/etc/qemu/not-4242.conf');
// Root's alone by its mode, but a named-user entry lets 4242 read it.
writeFileSync('/etc/qemu/only-4242.conf', 'deny br0\n', { mode: 0o600 });
sh('setfacl', '-m', 'u:4242:r', '/etc/qemu/only-4242.conf');
for (const br of ['br0', 'br1']) sh('ip', 'link', 'add', br, 'type', 'bridge');

const as = (uid: number) => ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all'];
const HOSTILE = as(4242);
const OTHER = as(4243);

function outcome(who: string[], bridge: string): string {
  const r = handOff(['--use-vnet', `--br=${bridge}`, '--fd=3'], who);
  return r.status === 0 && r.fds === 1 ? 'ok' : r.stderr;
}

/** What the kernel says, as the C helper would learn it: can `uid` open the file? */
function kernelReads(uid: number, file: string): boolean {
  try {
    execFileSync('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', 'cat', file], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

t.test('the kernel and this test agree on who reads what', async (t) => {
  t.equal(kernelReads(4242, '/etc/qemu/not-4242.conf'), false);
  t.equal(kernelReads(4242, '/etc/qemu/only-4242.conf'), true);
  t.equal(kernelReads(4243, '/etc/qemu/not-4242.conf'), true);
  t.equal(kernelReads(4243, '/etc/qemu/only-4242.conf'), false);
});

/** The same decisions with the daemon started behind `prefix`, which must report `mode` at start. */
function scenario(name: string, prefix: string[], mode: RegExp) {
  t.test(name, async (t) => {
    const daemon: Daemon = await startDaemon([], {}, prefix);
    t.teardown(() => daemon.stop());
    t.ok(await logged(daemon, mode), 'says how it decides');
    t.equal(outcome(HOSTILE, 'br1'), 'access denied by acl file\n', '4242 may not read the include that allows br1');
    t.equal(outcome(HOSTILE, 'br0'), 'access denied by acl file\n', '4242 reads the include that denies br0');
    t.ok(await logged(daemon, /tap uid=4242 .* bridge=br0 tap=- outcome=denied rule=\/etc\/qemu\/only-4242.conf:1/));
    t.equal(outcome(OTHER, 'br1'), 'ok', '4243 reads the include that allows br1 (others may, by the mode)');
    t.equal(outcome(OTHER, 'br0'), 'ok', '4243 may not read the deny');
    t.same(taps(), []);
  });
}

scenario('the daemon as root: the kernel decides', [], /the kernel decides what a peer may read/);
scenario(
  'without CAP_SETUID/CAP_SETGID: POSIX ACLs evaluated as the kernel does',
  ['setpriv', '--bounding-set=-setuid,-setgid', '--inh-caps=-setuid,-setgid'],
  /decided from owner, group, mode bits and POSIX ACLs/,
);

t.test('hardening: a named-user write entry shows as the group bits (the mask) and is refused', async (t) => {
  const daemon: Daemon = await startDaemon();
  t.teardown(() => daemon.stop());
  sh('setfacl', '-m', 'u:4243:rw', '/etc/qemu/not-4242.conf');
  t.teardown(() => sh('setfacl', '-x', 'u:4243', '/etc/qemu/not-4242.conf'));
  const refused = "acl file `/etc/qemu/not-4242.conf' is writable by group (mode 0664)\n";
  t.equal(outcome(OTHER, 'br1'), refused, '4243 could change it: nobody is served');
  t.equal(outcome(HOSTILE, 'br0'), refused);
  // A mask without write takes the entry's write away: the kernel lets 4243 only read, so it is root's alone again.
  sh('setfacl', '-m', 'm::r', '/etc/qemu/not-4242.conf');
  t.equal(outcome(OTHER, 'br1'), 'ok');
  chmodSync('/etc/qemu/not-4242.conf', 0o644);
  t.same(taps(), []);
});
