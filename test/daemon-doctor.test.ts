// `qbh doctor` learns the daemon: socket present, reachable, version, and the bridges it would give
// the current user (a check request, which creates nothing). Run as uid 65534 without capabilities,
// as a user of an unprivileged QEMU would. Private netns, mount ns, /etc/qemu and /run/qbh.
import './harness.js';
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { privateEtcQemu, privateRunQbh, withTunNode } from './harness.js';
import { CLEAN, NOBODY, ROOT, logged, startDaemon, taps } from './daemon-lib.js';

execFileSync(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs')], { stdio: 'inherit' });
privateEtcQemu();
privateRunQbh();
writeFileSync('/etc/qemu/bridge.conf', 'allow br0\nallow-user 65534 br7\nallow-user 1001 br8\n', { mode: 0o644 });

function doctor(...args: string[]) {
  const r = spawnSync(CLEAN[0]!, [...CLEAN.slice(1), ...NOBODY, process.execPath, join(ROOT, 'dist', 'qbh.cjs'), 'doctor', ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, json: args.includes('--json') ? JSON.parse(r.stdout) : null };
}

t.test('a running daemon: reachable, its version, the bridges it gives this user', async (t) => {
  const d = await startDaemon();
  const r = doctor();
  t.match(r.stdout, '✓ qbh daemon at /run/qbh/qbhd.sock: reachable, qbh 0.1.0, protocol 1; gives nobody (uid 65534): br0, br7\n', 'br8 is uid 1001\'s');
  t.match(r.stdout, '✓ nobody lacks CAP_NET_ADMIN: the helper asks the qbh daemon for its taps');
  // The daemon path works whatever the node's mode: a 0600 /dev/net/tun is not this user's to open.
  for (const mode of [0o600, 0o666]) {
    await withTunNode(mode, () => {
      const w = doctor('--helper', join(ROOT, 'dist', 'qemu-bridge-helper.cjs'));
      t.equal(w.status, 0, `a working daemon set-up passes with /dev/net/tun 0${mode.toString(8)}:\n${w.stdout}`);
      t.match(w.stdout, /\nall checks passed\n$/);
      if (mode === 0o600) t.match(w.stdout, '✓ nobody cannot open /dev/net/tun (mode 0600, owner 0:0): not needed, the qbh daemon opens it for this user\'s helper\n');
    });
  }
  // An include only root reads (skipped for this user, as the C helper skips it): the daemon's
  // answer is what counts, so this user's own reading of the ACL is a warning.
  writeFileSync('/etc/qemu/secret.conf', 'allow br5\n', { mode: 0o600 });
  writeFileSync('/etc/qemu/bridge.conf', 'allow br0\nallow-user 65534 br7\nallow-user 1001 br8\ninclude /etc/qemu/secret.conf\n', { mode: 0o644 });
  const w = doctor('--helper', join(ROOT, 'dist', 'qemu-bridge-helper.cjs'));
  t.equal(w.status, 0, w.stdout);
  t.match(w.stdout, /\n! ACL file \/etc\/qemu\/bridge\.conf: \/etc\/qemu\/secret\.conf .*\(the qbh daemon decides for this user: see its line\)\n/);
  t.match(w.stdout, 'gives nobody (uid 65534): br0, br7\n');
  writeFileSync('/etc/qemu/bridge.conf', 'allow br0\nallow-user 65534 br7\nallow-user 1001 br8\n', { mode: 0o644 });
  const j = doctor('--json').json;
  t.match(j.checks.find((c: any) => c.check === 'daemon'), { ok: true });
  t.ok(await logged(d, / check uid=65534 /), 'the daemon logged the check');
  t.same(taps(), [], 'a check creates nothing');
  d.child.kill('SIGKILL');
  await d.exited;
  const dead = doctor();
  t.match(dead.stdout, /✗ qbh daemon: cannot reach the qbh daemon at \/run\/qbh\/qbhd\.sock \(connect: Connection refused\)/, 'a stale socket: unreachable');
  t.match(dead.stdout, /fix: sudo systemctl restart qbhd\.socket/);
  t.equal(dead.status, 1);
  execFileSync('rm', ['-f', '/run/qbh/qbhd.sock']);
});
