// Tap benchmarks (not a test): create + attach N taps on one bridge with openTap() and openTaps() against
// `ip -batch` (`tuntap add … vnet_hdr` + `link set … mtu … master … up`), interleaved in one run;
// then teardown of persistent taps: one group RTM_DELLINK (deleteTaps) against one by one.
// Runs in a network namespace of its own (re-executes itself under `unshare -n`); needs root and a
// build (`npm run build`).
//   node bench/tun.mjs [--taps 1000] [--runs 5] [--one-by-one 200]
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

if (process.env.QBH_BENCH_NETNS !== '1') {
  const r = spawnSync('unshare', ['-n', process.execPath, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, QBH_BENCH_NETNS: '1' },
  });
  process.exit(r.status ?? 1);
}

const { values } = parseArgs({
  options: { taps: { type: 'string', default: '1000' }, runs: { type: 'string', default: '5' }, 'one-by-one': { type: 'string', default: '200' } },
});
const N = Number(values.taps);
const RUNS = Number(values.runs);
const ONE = Number(values['one-by-one']);

const { openTap, openTaps, closeTap, destroyTaps, deleteTaps, deleteTap } = await import('../dist/tun/index.js');

const sh = (...a) => execFileSync(a[0], a.slice(1), { stdio: ['ignore', 'ignore', 'inherit'] });
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const now = () => Number(process.hrtime.bigint()) / 1e6;
const dir = mkdtempSync(join(tmpdir(), 'qbh-bench-'));
const batch = (name, lines) => {
  const f = join(dir, name);
  writeFileSync(f, lines.join('\n') + '\n');
  return f;
};
const tunCount = () => JSON.parse(execFileSync('ip', ['-j', 'link', 'show', 'type', 'tun'], { encoding: 'utf8' }) || '[]').length;

sh('ip', 'link', 'set', 'lo', 'up');
sh('ip', 'link', 'add', 'br0', 'type', 'bridge');
sh('ip', 'link', 'set', 'br0', 'mtu', '1400', 'up');

const names = (p, n) => Array.from({ length: n }, (_, i) => `${p}${i}`);
// Explicit names, and kernel-chosen ones (`tap%d`: the kernel scans every device name for a free
// number, which grows with the number of links): the kernel picks tap0, tap1, … in order here.
const ipNamed = batch('named', names('iq', N).flatMap((n) => [`tuntap add ${n} mode tap vnet_hdr`, `link set ${n} mtu 1400 master br0 up`]));
const ipAuto = batch('auto', names('tap', N).flatMap((n) => ['tuntap add mode tap vnet_hdr', `link set ${n} mtu 1400 master br0 up`]));
const groupOf = (p) => batch(`group-${p}`, names(p, N).map((n) => `link set ${n} group 7`));
const ipGroup = { iq: groupOf('iq'), tap: groupOf('tap') };

const r = { ipNamed: [], ipAuto: [], qbhNamed: [], qbhAuto: [], batchNamed: [], batchAuto: [], destroy: [], groupDel: [], ipGroupDel: [] };
for (let run = 0; run < RUNS; run++) {
  for (const [key, file, prefix] of [['ipNamed', ipNamed, 'iq'], ['ipAuto', ipAuto, 'tap']]) {
    const t0 = now();
    sh('ip', '-batch', file);
    r[key].push(now() - t0);
    sh('ip', '-batch', ipGroup[prefix]);
    const t1 = now();
    sh('ip', 'link', 'delete', 'group', '7');
    r.ipGroupDel.push(now() - t1);
  }
  for (const key of ['qbhNamed', 'qbhAuto']) {
    // As QEMU uses them: non-persistent, fds held.
    const t0 = now();
    const held = [];
    for (let i = 0; i < N; i++) held.push(await openTap(key === 'qbhNamed' ? { bridge: 'br0', name: `q${i}` } : { bridge: 'br0' }));
    r[key].push(now() - t0);
    const t1 = now();
    await destroyTaps(held);
    r.destroy.push(now() - t1);
  }
  for (const key of ['batchNamed', 'batchAuto']) {
    // The same taps in one openTaps call: one bridge lookup, the RTM_NEWLINKs pipelined.
    const t0 = now();
    const held = await openTaps(key === 'batchNamed' ? names('q', N) : N, { bridge: 'br0' });
    r[key].push(now() - t0);
    await destroyTaps(held);
  }
  // Persistent taps (made by ip, untimed) deleted by name with one group RTM_DELLINK.
  sh('ip', '-batch', ipNamed);
  const t0 = now();
  await deleteTaps(names('iq', N));
  r.groupDel.push(now() - t0);
  if (tunCount() !== 0) throw new Error('taps left behind');
}

// Teardown one by one, on ONE taps (each costs a grace period, so N of them would take far too long).
const oneByOne = { ipDel: [], deleteTap: [] };
const ipCreateOne = batch('create1', names('iq', ONE).map((n) => `tuntap add ${n} mode tap vnet_hdr`));
const ipDelOne = batch('del1', names('iq', ONE).map((n) => `link del ${n}`));
for (let run = 0; run < Math.min(RUNS, 3); run++) {
  sh('ip', '-batch', ipCreateOne);
  let t0 = now();
  sh('ip', '-batch', ipDelOne);
  oneByOne.ipDel.push(now() - t0);
  sh('ip', '-batch', ipCreateOne);
  t0 = now();
  for (const n of names('iq', ONE)) await deleteTap(n);
  oneByOne.deleteTap.push(now() - t0);
}
rmSync(dir, { recursive: true, force: true });

const m = Object.fromEntries(Object.entries({ ...r, ...oneByOne }).map(([k, v]) => [k, median(v)]));
const f = (ms) => `${ms.toFixed(0)} ms (${((ms / N) * 1000).toFixed(0)} µs/tap)`;
console.log(`create + attach ${N} taps on one bridge, median of ${RUNS} interleaved runs:`);
console.log(`  ip -batch, named     (tuntap add NAME mode tap vnet_hdr + link set NAME mtu 1400 master br0 up): ${f(m.ipNamed)}`);
console.log(`  openTap, named       ({ bridge, name }, non-persistent, fds held):                        ${f(m.qbhNamed)}  ratio ${(m.qbhNamed / m.ipNamed).toFixed(2)}x`);
console.log(`  openTaps, named      (names, { bridge }): one call                                        ${f(m.batchNamed)}  ratio ${(m.batchNamed / m.ipNamed).toFixed(2)}x`);
console.log(`  ip -batch, tap%d     (tuntap add mode tap vnet_hdr + link set tapN …):                     ${f(m.ipAuto)}`);
console.log(`  openTap, tap%d       ({ bridge }, non-persistent, fds held):                              ${f(m.qbhAuto)}  ratio ${(m.qbhAuto / m.ipAuto).toFixed(2)}x`);
console.log(`  openTaps, tap%d      (N, { bridge }): one call                                            ${f(m.batchAuto)}  ratio ${(m.batchAuto / m.ipAuto).toFixed(2)}x`);
console.log(`teardown of ${N} taps:`);
console.log(`  ip link delete group (after ip -batch link set … group): ${f(m.ipGroupDel)}`);
console.log(`  deleteTaps(names) (persistent; one group RTM_DELLINK):   ${f(m.groupDel)}`);
console.log(`  destroyTaps(taps) (one group RTM_DELLINK + close fds):   ${f(m.destroy)}`);
const per = (ms) => ms / ONE;
console.log(`  one by one, measured on ${ONE} taps (median of ${Math.min(RUNS, 3)}), extrapolated linearly to ${N}:`);
console.log(`    ip -batch link del: ${m.ipDel.toFixed(0)} ms → ~${((per(m.ipDel) * N) / 1000).toFixed(1)} s`);
console.log(`    deleteTap:          ${m.deleteTap.toFixed(0)} ms → ~${((per(m.deleteTap) * N) / 1000).toFixed(1)} s`);
console.log(`    deleteTaps vs deleteTap one by one: ${((per(m.deleteTap) * N) / m.groupDel).toFixed(0)}x faster`);
