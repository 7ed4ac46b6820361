#!/usr/bin/env node
// `qbh bridge list --json` against `ip -j -d link show type bridge` + `bridge -j -d link show`, at
// 100, 1000 and 10 000 ports, in the same run, inside a fresh network namespace (re-executes itself
// under `unshare -n`). Ports are persistent taps created with one `ip -batch`, removed with
// `ip link delete group N` (one RTM_DELLINK). A bridge takes at most 1024 ports (BR_MAX_PORTS),
// so ports are spread over ceil(N / 1000) bridges. Needs root and a built dist/ (npm run prepare).
// Usage: node bench/cli.mjs [sizes...]   e.g. node bench/cli.mjs 100 1000
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

if (process.env.QBH_BENCH_NETNS !== '1') {
  const r = spawnSync('unshare', ['-n', process.execPath, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, QBH_BENCH_NETNS: '1' },
  });
  process.exit(r.status ?? 1);
}

const qbh = fileURLToPath(new URL('../bin/qbh', import.meta.url));
const sizes = process.argv.slice(2).map(Number);
const GROUP = 4242;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
function time(fn) {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}
const run = (cmd, args) => execFileSync(cmd, args, { maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'inherit'] });

execFileSync('ip', ['link', 'set', 'lo', 'up']);
console.log('ports   qbh bridge list --json   ip -j -d + bridge -j -d   ratio (qbh / iproute2)');
for (const n of sizes.length ? sizes : [100, 1000, 10000]) {
  const lines = [];
  const bridges = Math.ceil(n / 1000);
  for (let b = 0; b < bridges; b++) lines.push(`link add bb${b} group ${GROUP} type bridge`);
  for (let i = 0; i < n; i++) lines.push(`tuntap add bt${i} mode tap`, `link set bt${i} master bb${Math.floor(i / 1000)} group ${GROUP} up`);
  execFileSync('ip', ['-batch', '-'], { input: lines.join('\n') + '\n' });
  const runs = n >= 10000 ? 5 : 9;
  const ours = [];
  const theirs = [];
  let check;
  for (let i = 0; i < runs; i++) {
    ours.push(time(() => (check = run(process.execPath, [qbh, 'bridge', 'list', '--json']))));
    theirs.push(time(() => {
      run('ip', ['-j', '-d', 'link', 'show', 'type', 'bridge']);
      run('bridge', ['-j', '-d', 'link', 'show']);
    }));
  }
  const ports = JSON.parse(check.toString()).reduce((sum, b) => sum + b.ports.length, 0);
  if (ports !== n) throw new Error(`qbh listed ${ports} ports, expected ${n}`);
  const q = median(ours);
  const p = median(theirs);
  console.log(`${String(n).padStart(5)}   ${q.toFixed(1).padStart(20)} ms   ${p.toFixed(1).padStart(20)} ms   ${(q / p).toFixed(2).padStart(8)}x`);
  execFileSync('ip', ['link', 'delete', 'group', String(GROUP)]);
}
