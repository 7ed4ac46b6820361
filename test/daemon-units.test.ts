/**
 * The systemd units in contrib/systemd: they lint clean with `systemd-analyze verify`, and the
 * service's hardening scores at most 2.0 ("OK") with `systemd-analyze security --offline=yes`.
 * Both tools come with Debian's systemd package and work without systemd running. And Node with the
 * addon runs under the service's sandbox as systemd would build it (test/fixtures/unit-sandbox.py:
 * the unit's SystemCallFilter= lines through libseccomp, the bounding set, NoNewPrivileges).
 */
import './harness.js';
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { sh } from './harness.js';

const units = join(import.meta.dirname, '..', 'contrib', 'systemd');
const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
const skip = analyze.status === 0 ? false : 'systemd-analyze not installed (Debian package systemd)';

t.test('systemd-analyze verify: both units lint clean', { skip }, async (t) => {
  const r = spawnSync('systemd-analyze', ['verify', join(units, 'qbhd.socket'), join(units, 'qbhd.service')], { encoding: 'utf8' });
  t.equal(r.stderr.trim(), '', 'no warnings');
  t.equal(r.status, 0, 'exit 0');
});

t.test('systemd-analyze security: qbhd.service exposure at most 2.0', { skip }, async (t) => {
  const r = spawnSync('systemd-analyze', ['security', '--offline=yes', join(units, 'qbhd.service')], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  const m = /Overall exposure level for qbhd\.service: ([0-9.]+) (\w+)/.exec(r.stdout);
  t.ok(m, 'the score is printed');
  t.ok(Number(m?.[1]) <= 2.0, `exposure ${m?.[1]} ${m?.[2]} (goal ≤ 2.0)`);
  // The capability it keeps is the one it needs, and only that one.
  t.match(r.stdout, /CapabilityBoundingSet=~CAP_NET_ADMIN\s+Service has network configuration privileges/);
  t.notMatch(r.stdout, /✗ CapabilityBoundingSet=~CAP_(SYS_ADMIN|DAC_OVERRIDE|SETUID|SYS_PTRACE)/, 'no other capability kept');
});

const root = join(import.meta.dirname, '..');
const seccomp = spawnSync('/usr/bin/python3', ['-c', 'import seccomp'], { encoding: 'utf8' });
const noSeccomp = seccomp.status === 0 ? false : 'python3-seccomp not installed (Debian package python3-seccomp)';

/** Runs `node ARGS` as qbhd.service would: CAP_NET_ADMIN alone in the bounding set, NoNewPrivileges, its filter. */
function underUnitSandbox(...args: string[]) {
  return spawnSync(
    'setpriv',
    ['--bounding-set=-all,+net_admin', '--no-new-privs', '/usr/bin/python3', join(import.meta.dirname, 'fixtures', 'unit-sandbox.py'),
      join(units, 'qbhd.service'), process.execPath, ...args],
    { encoding: 'utf8', cwd: root, env: { PATH: process.env.PATH } },
  );
}

t.test("Node, the addon and rtnetlink work under the service's system-call filter", { skip: skip || noSeccomp }, async (t) => {
  sh('ip', 'link', 'add', 'qbu0', 'type', 'bridge');
  t.teardown(() => sh('ip', 'link', 'del', 'qbu0'));
  const r = underUnitSandbox(join(root, 'dist', 'qbh.cjs'), 'bridge', 'list', '--json');
  t.equal(r.status, 0, r.stderr);
  t.same(JSON.parse(r.stdout).map((b: { ifname: string }) => b.ifname), ['qbu0'], 'the bridge is listed');
  // The filter really is in force: a call outside it (a privileged one) is refused with EPERM.
  const denied = underUnitSandbox('-e', "try { process.setuid(0); console.log('allowed') } catch (e) { console.log(e.code) }");
  t.equal(denied.stdout.trim(), 'EPERM', 'setuid() is filtered');
});
