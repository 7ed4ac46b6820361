// Helper start-up: wall time from spawn to "fd received and process exited", for qbh's helper, the
// C qemu-bridge-helper and `node -e 0` (the floor any Node program stands on), interleaved in one run,
// medians; then peak RSS (GNU time's %M) against `node -e 0`. Runs itself in fresh network and mount
// namespaces with a bridge and a tmpfs over /etc/qemu, as root.
//
//   node bench/helper.mjs [iterations=100]        (build first: npm run prepare / node scripts/bundle.mjs)
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { privateEtcQemu } from './lib.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const ITER = Number(process.argv[2] ?? 100);

if (process.env.QBH_BENCH_NETNS !== '1') {
  const r = spawnSync('unshare', ['--net', '--mount', '--propagation', 'private', '--', process.execPath, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, QBH_BENCH_NETNS: '1' },
  });
  process.exit(r.status ?? 1);
}

const native = createRequire(import.meta.url)(join(ROOT, 'build', 'Release', 'qbh.node'));
const run = (cmd, ...args) => spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
run('ip', 'link', 'set', 'lo', 'up');
run('ip', 'link', 'add', 'br0', 'type', 'bridge');
run('ip', 'link', 'set', 'br0', 'mtu', '1400');
privateEtcQemu();

// Every timed process gets this environment only: no NODE_EXTRA_CA_CERTS, no NODE_OPTIONS (this
// machine's CA bundle alone would be a large share of each Node start, a cost no user of qbh pays:
// docs/performance.md).
const ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };
const OURS = join(ROOT, 'bin', 'qemu-bridge-helper');
const BUNDLE = join(ROOT, 'dist', 'qemu-bridge-helper.cjs');
// Launchers compared with the shipped one (#!/usr/bin/env -S -i /abs/node -e bootstrap): small
// scripts beside it that require() the bundle's loader (it finds its body and cache from its own
// file name, so it cannot be copied under another), removed at exit. The require is one small
// module load more than the shipped line pays.
const body = `require(${JSON.stringify(BUNDLE)});\n`;
const variants = [
  { name: 'launcher before: #!/usr/bin/env node', file: '.bench-env-node.cjs', head: '#!/usr/bin/env node' },
  { name: 'no env hop: #!/abs/node (keeps the env)', file: '.bench-abs-node.cjs', head: `#!${process.execPath}` },
  { name: 'sh: exec env -i /abs/node bundle', file: '.bench-sh', head: null },
];
for (const v of variants) {
  const text = v.head === null ? `#!/bin/sh\nexec /usr/bin/env -i ${process.execPath} ${BUNDLE} "$@"\n` : `${v.head}\n${body}`;
  writeFileSync(join(ROOT, 'dist', v.file), text, { mode: 0o755 });
}
process.on('exit', () => variants.forEach((v) => rmSync(join(ROOT, 'dist', v.file), { force: true })));
const HELPER_ARGS = ['--use-vnet', '--br=br0', '--fd=3'];
const subjects = [
  { name: 'node -e 0', cmd: 'node', args: ['-e', '0'], sends: false },
  { name: 'C qemu-bridge-helper', cmd: '/usr/lib/qemu/qemu-bridge-helper', args: HELPER_ARGS, sends: true },
  { name: 'qbh bin/qemu-bridge-helper (env -S -i, -e bootstrap)', cmd: OURS, args: HELPER_ARGS, sends: true },
  ...variants.map((v) => ({ name: v.name, cmd: join(ROOT, 'dist', v.file), args: HELPER_ARGS, sends: true })),
  { name: '(node dist/qemu-bridge-helper.cjs, no launcher)', cmd: 'node', args: [BUNDLE, ...HELPER_ARGS], sends: true },
];

/** One spawn → exit, with the socket at fd 3; checks the 1-byte + fd hand-off for the helpers. */
function once(s, prefix = []) {
  const [qemuEnd, helperEnd] = native.socketpair(1);
  const cmd = [...prefix, s.cmd];
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd[0], [...cmd.slice(1), ...s.args], { stdio: ['ignore', 'ignore', 'pipe', helperEnd], env: ENV });
  const got = s.sends ? native.recvFds(qemuEnd, 1, 1, 1000) : null;
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  native.close(helperEnd);
  native.close(qemuEnd);
  if (r.status !== 0 && !prefix.length) throw new Error(`${s.name}: exit ${r.status} ${r.stderr}`);
  if (s.sends && (!got || got.fds.length !== 1)) throw new Error(`${s.name}: no fd received`);
  for (const fd of got?.fds ?? []) native.close(fd);
  return { ms, stderr: String(r.stderr) };
}

const median = (xs) => {
  const a = [...xs].sort((x, y) => x - y);
  return a.length % 2 ? a[(a.length - 1) / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
};

for (const s of subjects) once(s); // warm the page cache
const wall = new Map(subjects.map((s) => [s.name, []]));
for (let i = 0; i < ITER; i++) for (const s of subjects) wall.get(s.name).push(once(s).ms);

const rssRuns = Math.max(10, Math.floor(ITER / 5));
const rss = new Map(subjects.map((s) => [s.name, []]));
for (let i = 0; i < rssRuns; i++) {
  for (const s of subjects) {
    const { stderr } = once(s, ['/usr/bin/time', '-f', '%M']);
    rss.get(s.name).push(Number(stderr.trim().split('\n').pop()));
  }
}

const floorWall = median(wall.get('node -e 0'));
const floorRss = median(rss.get('node -e 0'));
console.log(`helper start-up, ${ITER} interleaved runs each (wall) and ${rssRuns} (peak RSS), medians; Node ${process.version}; every process run with PATH only (no NODE_EXTRA_CA_CERTS, no NODE_OPTIONS)`);
console.log('subject'.padEnd(56), 'wall ms'.padStart(9), '× node', 'RSS KiB'.padStart(9), '× node');
for (const s of subjects) {
  const w = median(wall.get(s.name));
  const m = median(rss.get(s.name));
  console.log(s.name.padEnd(56), w.toFixed(2).padStart(9), (w / floorWall).toFixed(3).padStart(6), String(m).padStart(9), (m / floorRss).toFixed(3).padStart(6));
}
