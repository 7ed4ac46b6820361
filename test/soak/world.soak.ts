// The world changes underneath: the bridge deleted, set down, renamed, its MTU changed while
// attaches run; a port deleted while it is being detached; /dev/net/tun missing or 0600 for the
// caller; the ACL file replaced, truncated, made a symlink mid-run. Every call succeeds or fails with
// one clear, typed error; nothing leaks; nothing crashes. Private netns, mount ns, /etc/qemu (harness).
import '../harness.js';
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ipj, privateEtcQemu, sh } from '../harness.js';
import { taps, until } from '../daemon-lib.js';
import { AS_NOBODY, handOff } from '../helper-lib.js';
import { QbhError } from '../../src/errors.js';
import { Rtnl } from '../../src/netlink/rtnl.js';
import { TapError } from '../../src/tun/errors.js';
import { closeTap, deleteTap, openTap } from '../../src/tun/tap.js';
import { bounded, leftoverCount, leftovers, record } from './soak-lib.js';

privateEtcQemu();
writeFileSync('/etc/qemu/bridge.conf', 'allow br0\n', { mode: 0o644 });
sh('ip', 'link', 'add', 'br0', 'type', 'bridge');
sh('ip', 'link', 'set', 'br0', 'up');
const rtnl = Rtnl.openSync();
t.teardown(() => rtnl.close());

/** Runs a shell loop in the background (bounded by its own count); resolves when it ends. */
function background(script: string): { done: Promise<void>; kill(): void } {
  const p = spawn('sh', ['-c', script], { stdio: 'ignore' });
  return { done: new Promise((r) => p.on('exit', () => r())), kill: () => p.kill('SIGKILL') };
}

/** One line, no stack, no "undefined": what a user reads. */
const clearLine = (s: string) => /^[^\n]+\n?$/.test(s) && !/undefined|at .*\.(js|ts):\d/.test(s);

t.test('bridge deleted, down, renamed, MTU changed while openTap and the helper attach', async (t) => {
  // 400 changes: down/up, MTU 1400/9000/1500, rename away and back, delete and recreate.
  const mut = background(
    'for i in $(seq 100); do ip link set br0 down; ip link set br0 up; ip link set br0 mtu 1400; ip link set br0 mtu 1500; ' +
      'ip link set br0 name brx && ip link set brx name br0; ip link del br0; ip link add br0 type bridge; ip link set br0 up; done 2>/dev/null',
  );
  const errors = new Map<string, number>();
  let ok = 0;
  let bad: string[] = [];
  let helperOk = 0;
  let helperFail = 0;
  let running = true;
  void mut.done.then(() => (running = false));
  const trials = await bounded(2000, 20000, async (i) => {
    if (!running) return;
    if (i % 10 === 9) {
      const r = handOff(['--use-vnet', '--br=br0', '--fd=3']);
      if (r.status === 0 && r.fds === 1) helperOk++;
      else if (r.status === 1 && clearLine(r.stderr)) helperFail++;
      else bad.push(`helper: ${r.status} ${r.stderr}`);
      return;
    }
    try {
      const tap = await openTap({ bridge: 'br0' }, rtnl);
      ok++;
      closeTap(tap);
    } catch (e) {
      if (e instanceof TapError && clearLine(e.message)) errors.set(`${e.step}/${e.code}`, (errors.get(`${e.step}/${e.code}`) ?? 0) + 1);
      else bad.push(String(e));
    }
  });
  mut.kill();
  await mut.done;
  sh('sh', '-c', 'ip link del brx 2>/dev/null; ip link show br0 >/dev/null 2>&1 || { ip link add br0 type bridge; ip link set br0 up; }; ip link set br0 up mtu 1500');
  bad = bad.slice(0, 5);
  t.same(bad, [], 'every failure is one typed, one-line error');
  const left = leftoverCount(leftovers(['br0']));
  t.equal(left, 0, 'no tap left');
  const errs = [...errors].map(([k, v]) => `${k} ×${v}`).join(', ');
  record(t, { area: 'world changes', fault: 'bridge down/up, MTU 1400/1500, renamed, deleted and recreated (400 changes) while openTap and the helper attach', trials, outcome: `openTap: ${ok} ok, typed errors ${errs || 'none'}; helper: ${helperOk} ok, ${helperFail} one-line failures`, leftovers: left });
});

t.test('a port deleted while it is being detached', async (t) => {
  const outcomes = new Map<string, number>();
  let bad = 0;
  const trials = await bounded(100, 15000, async () => {
    const tap = await openTap({ bridge: 'br0', name: 'dt0', persist: true }, rtnl);
    closeTap(tap);
    const del = background('ip link del dt0 2>/dev/null');
    const res = await Promise.allSettled([rtnl.setLink('dt0', { master: null }), deleteTap('dt0', rtnl)]);
    await del.done;
    for (const r of res) {
      const k = r.status === 'fulfilled' ? 'ok' : r.reason instanceof QbhError ? String((r.reason as QbhError).code) : 'untyped';
      if (k === 'untyped') bad++;
      outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
    }
  });
  t.equal(bad, 0, 'only typed errors');
  const left = leftoverCount(leftovers(['br0']));
  t.equal(left, 0);
  record(t, { area: 'world changes', fault: 'a persistent port deleted (ip link del) while setLink(nomaster) and deleteTap run on it', trials, outcome: [...outcomes].map(([k, v]) => `${k} ×${v}`).join(', '), leftovers: left });
});

t.test('/dev/net/tun missing, or 0600 for the caller', async (t) => {
  const dir = mkdtempSync('/tmp/qbh-soak-tun-');
  // Missing: an empty tmpfs over /dev/net, in this mount namespace only.
  sh('mount', '-t', 'tmpfs', 'qbh-devnet', '/dev/net');
  let err: unknown;
  try {
    await openTap({ bridge: 'br0' }, rtnl);
  } catch (e) {
    err = e;
  }
  const r = handOff(['--use-vnet', '--br=br0', '--fd=3']);
  sh('umount', '/dev/net');
  t.ok(err instanceof TapError && err.code === 'ENOENT' && err.step === 'open', String(err));
  t.equal(r.status, 1);
  t.equal(r.stderr, 'failed to open /dev/net/tun: No such file or directory\n');
  // 0600 root (this machine's node): uid 65534 with CAP_NET_ADMIN cannot open it.
  sh('mknod', join(dir, 'tun'), 'c', '10', '200');
  sh('chmod', '0600', join(dir, 'tun'));
  sh('mount', '--bind', join(dir, 'tun'), '/dev/net/tun');
  const n = handOff(['--use-vnet', '--br=br0', '--fd=3'], AS_NOBODY);
  sh('umount', '/dev/net/tun');
  t.equal(n.status, 1);
  t.match(n.stderr, /^failed to open \/dev\/net\/tun: Permission denied\n/);
  const left = leftoverCount(leftovers(['br0']));
  t.equal(left, 0);
  record(t, { area: 'world changes', fault: '/dev/net/tun missing (API and helper); 0600 root for a uid-65534 helper with CAP_NET_ADMIN', trials: 3, outcome: `TapError open/ENOENT; helper exit 1 "${r.stderr.trim()}"; exit 1 "${n.stderr.split('\n')[0]}"`, leftovers: left });
});

t.test('the ACL file replaced, truncated, made a symlink mid-run', async (t) => {
  writeFileSync('/etc/qemu/allow.conf', 'allow br0\n', { mode: 0o644 });
  writeFileSync('/etc/qemu/deny.conf', 'deny br0\n', { mode: 0o644 });
  const mut = background(
    'cd /etc/qemu; for i in $(seq 3000); do printf "allow br0\\n" > n.conf; mv n.conf bridge.conf; : > bridge.conf; ' +
      'ln -sf allow.conf bridge.conf; ln -sf deny.conf bridge.conf; printf "allow br0\\n" > bridge.conf; done',
  );
  let ok = 0;
  const fails = new Map<string, number>();
  const bad: string[] = [];
  const trials = await bounded(150, 20000, async () => {
    const r = handOff(['--use-vnet', '--br=br0', '--fd=3']);
    if (r.status === 0 && r.fds === 1 && r.tap?.link.master === 'br0') ok++;
    else if (r.status === 1 && r.fds === 0 && /^[^\n]+\n$/.test(r.stderr)) fails.set(r.stderr.trim(), (fails.get(r.stderr.trim()) ?? 0) + 1);
    else bad.push(`${r.status} ${r.fds} ${r.stderr}`);
  });
  mut.kill();
  await mut.done;
  t.same(bad.slice(0, 5), [], 'each run: its tap, or exit 1 with one line and no fd');
  t.ok(await until(() => taps().length === 0), 'no tap left');
  const left = leftoverCount(leftovers(['br0']));
  t.equal(left, 0);
  t.ok(ipj<any[]>('link', 'show', 'master', 'br0').length === 0);
  record(t, { area: 'world changes', fault: 'bridge.conf replaced (rename), truncated, symlinked to an allow and a deny file, in a loop, while helpers run', trials, outcome: `${ok} allowed; refused: ${[...fails].map(([k, v]) => `"${k}" ×${v}`).join(', ') || 'none'}`, leftovers: left });
});
