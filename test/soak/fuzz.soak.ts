// Bad bytes at the helper's argv, fuzzed: 10 000 generated command lines through helperMain (the
// built dist/, in a child of its own so that no fd of the test runner can be a --fd target), and a
// sample run against both the C helper and ours: only exit 0/1 with a message, never a throw, and no
// command line ever permits a bridge the ACL does not allow. ACL files, netlink replies and daemon
// requests are fuzzed in test/acl-fuzz.test.ts, test/netlink-codec.test.ts, test/daemon-hostile.test.ts.
import '../harness.js';
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { privateEtcQemu, sh } from '../harness.js';
import { CLEAN, HELPER, ROOT, taps } from '../daemon-lib.js';
import { native } from '../../src/native.js';
import { leftoverCount, leftovers, record } from './soak-lib.js';

privateEtcQemu();
writeFileSync('/etc/qemu/bridge.conf', 'allow br0\ndeny br1\n', { mode: 0o644 });
sh('ip', 'link', 'add', 'br0', 'type', 'bridge');
sh('ip', 'link', 'add', 'br1', 'type', 'bridge');
sh('ip', 'link', 'set', 'br0', 'up');

const C_HELPER = '/usr/lib/qemu/qemu-bridge-helper';

/** A seeded generator of argv (as byte arrays); `utf8Only` keeps every argument printable text. */
function generator(seed: number, fdTokens: string[], utf8Only: boolean) {
  let s = seed >>> 0;
  const rnd = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = Math.imul(s ^ (s >>> 15), 1 | s);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  const pick = <T>(a: T[]) => a[Math.floor(rnd() * a.length)]!;
  const bytes = (n: number) => (utf8Only ? Buffer.from(Array.from({ length: n }, () => 0x21 + Math.floor(rnd() * 94))) : Buffer.from(Array.from({ length: n }, () => 1 + Math.floor(rnd() * 255))));
  const name = () => pick([Buffer.from('br0'), Buffer.from('br1'), Buffer.from('br2'), Buffer.alloc(0), Buffer.from('a'.repeat(15)), Buffer.from('a'.repeat(16)), Buffer.from('br0 '), Buffer.from('br%d'), bytes(Math.floor(rnd() * 20)), ...(utf8Only ? [] : [Buffer.from([0x62, 0x72, 0x30, 0xff]), Buffer.from('bré0')])]);
  const token = (): Buffer =>
    pick([
      () => Buffer.from('--use-vnet'),
      () => Buffer.concat([Buffer.from('--br='), name()]),
      () => Buffer.concat([Buffer.from('--br='), name()]),
      () => Buffer.from(`--fd=${pick(fdTokens)}`),
      () => Buffer.from(`--fd=${pick(fdTokens)}`),
      () => (utf8Only ? Buffer.from('--use-vnet') : Buffer.concat([Buffer.from('--ifname='), name()])),
      () => Buffer.from(pick(['--br', '--fd', '-', '--', '--help', '--use-vnet=1', '--BR=br0', '--br==br0'])),
      () => bytes(Math.floor(rnd() * 40)),
    ])();
  return () => Array.from({ length: Math.floor(rnd() * 6) }, token);
}

/** The bridge a command line would be permitted on: the last --br= (the scan is last-wins). */
const lastBridge = (argv: Buffer[]) => [...argv].reverse().find((a) => a.subarray(0, 5).toString('latin1') === '--br=')?.subarray(5).toString('latin1');

t.test('10 000 generated command lines through helperMain', async (t) => {
  const CASES = 10000;
  const src = `import fs from 'node:fs'; import { syncBuiltinESMExports } from 'node:module';
const { native } = await import(${JSON.stringify(join(ROOT, 'dist', 'native.js'))});
const [qemu, helper] = native.socketpair(1);
let err = ''; const write = fs.writeSync;
fs.writeSync = (fd, b, ...r) => { if (fd === 2) { err += Buffer.from(b).toString('latin1'); return b.length; } return write(fd, b, ...r); };
syncBuiltinESMExports();
const { helperMain } = await import(${JSON.stringify(join(ROOT, 'dist', 'helper', 'main.js'))});
const cases = JSON.parse(fs.readFileSync(0, 'utf8').replaceAll('@FD@', String(helper)));
const out = [];
const fds0 = fs.readdirSync('/proc/self/fd').length;
for (const c of cases) {
  err = '';
  let status;
  try { status = await helperMain(c.map((h) => Buffer.from(h, 'hex'))); } catch (e) { status = 'threw ' + e.name + ': ' + e.message; }
  const got = native.recvFds(qemu, 16, 4, 0);
  for (const fd of got?.fds ?? []) native.close(fd);
  out.push([status, err, got?.fds.length ?? 0]);
}
write(1, JSON.stringify({ out, fds0, fds1: fs.readdirSync('/proc/self/fd').length }));`;
  const gen = generator(11, ['@FD@', '@FD@', '0', '-1', '1000', '99999999999999999999', ' @FD@', '+@FD@', 'x', ''], false);
  const cases = Array.from({ length: CASES }, gen);
  const started = Date.now();
  const r = spawnSync('env', ['-i', `PATH=${process.env.PATH}`, process.execPath, '--input-type=module', '-e', src], { input: JSON.stringify(cases.map((c) => c.map((b) => b.toString('hex')))), maxBuffer: 64 << 20, encoding: 'utf8' });
  const ms = Date.now() - started;
  t.equal(r.status, 0, r.stderr.slice(0, 2000));
  const res = JSON.parse(r.stdout) as { out: [number | string, string, number][]; fds0: number; fds1: number };
  const threw = res.out.filter(([s]) => typeof s === 'string');
  const wrongPermit = res.out.filter(([s], i) => s === 0 && lastBridge(cases[i]!) !== 'br0');
  const silentFail = res.out.filter(([s, e]) => s === 1 && e === '');
  const messages = new Map<string, number>();
  for (const [s, e] of res.out) if (s === 1) messages.set(e.split(/[`:]/)[0]!.trim(), (messages.get(e.split(/[`:]/)[0]!.trim()) ?? 0) + 1);
  t.same(threw.slice(0, 3), [], 'never a throw');
  t.same(wrongPermit.length, 0, 'never permitted on anything but br0');
  t.same(silentFail.length, 0, 'every failure says why');
  t.same(taps(), [], 'no tap left');
  t.equal(res.fds1, res.fds0, 'helperMain leaves no fd open, run after run (it once kept its netlink handle)');
  const permitted = res.out.filter(([s]) => s === 0).length;
  const left = leftoverCount(leftovers(['br0', 'br1']));
  const top = [...messages].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([k, v]) => `"${k}" ×${v}`).join(', ');
  record(t, {
    area: 'fuzz',
    fault: 'helper argv: 10 000 generated command lines (random bytes, names, --fd values) through helperMain, in-process',
    trials: CASES,
    outcome: `${permitted} permitted (all on br0), ${CASES - permitted} refused with a message (${top}, …), 0 throws; fds ${res.fds0} → ${res.fds1}`,
    leftovers: left,
    figures: `${Math.round((CASES * 1000) / ms)} cases/s`,
  });
});

t.test('a sample against the C helper: same exit status, and never a permit the C helper refuses', async (t) => {
  const gen = generator(23, ['3', '3', '0', '-1', '99999999999999999999', ' 3', '+3', 'x', ''], true);
  let same = 0;
  const differ: string[] = [];
  let permitsMore = 0;
  const CASES = 100;
  const run = (cmd: string[], args: string[]) => {
    const [qemu, helper] = native.socketpair(1);
    const r = spawnSync(cmd[0]!, [...cmd.slice(1), ...args], { stdio: ['ignore', 'ignore', 'pipe', helper], timeout: 20000 });
    native.close(helper);
    const got = native.recvFds(qemu, 16, 4, 0);
    for (const fd of got?.fds ?? []) native.close(fd);
    native.close(qemu);
    return r.status;
  };
  for (let i = 0; i < CASES; i++) {
    const args = gen().map((b) => b.toString('utf8'));
    const c = run([...CLEAN, C_HELPER], args);
    const ours = run([...CLEAN, HELPER], args);
    if (c === ours) same++;
    else differ.push(`${JSON.stringify(args)}: C ${c}, qbh ${ours}`);
    if (ours === 0 && c !== 0) permitsMore++;
  }
  t.equal(permitsMore, 0, `qbh never permits what the C helper refuses: ${differ.slice(0, 3).join('; ')}`);
  const left = leftoverCount(leftovers(['br0', 'br1']));
  t.equal(left, 0);
  record(t, { area: 'fuzz', fault: 'helper argv: a sample of printable command lines run by the C helper and by qbh (both as root)', trials: CASES, outcome: `same exit status ${same}/${CASES}; qbh permits where C refuses: ${permitsMore}${differ.length ? `; differ: ${differ.slice(0, 2).join('; ')}` : ''}`, leftovers: left });
});
