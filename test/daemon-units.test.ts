/**
 * The systemd units in contrib/systemd: they lint clean with `systemd-analyze verify`, and the
 * service's hardening scores at most 2.0 ("OK") with `systemd-analyze security --offline=yes`.
 * Both tools come with Debian's systemd package and work without systemd running.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

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
