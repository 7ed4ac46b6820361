// The examples run as a user would run them (against the built dist/: `npm test` builds first).
import './harness.js';
import t from 'tap';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { ipj, linkNames } from './harness.js';

const root = fileURLToPath(new URL('..', import.meta.url));
// A clean environment: tap's coverage hooks (NODE_OPTIONS) are not part of how a user runs these.
const env = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' };

for (const [example, expect] of [
  ['examples/api-tour.mjs', /✓ torn down/],
  ['examples/orchestrate.mjs', /ports tap\d+\(\w+\)[\s\S]*torn down/],
] as const) {
  t.test(example, async (t) => {
    const r = spawnSync(process.execPath, [example], { cwd: root, env, encoding: 'utf8', timeout: 60_000 });
    t.equal(r.status, 0, `${example} exits 0\n${r.stderr}`);
    t.match(r.stdout, expect);
    t.notMatch(r.stdout, /✗/, 'every step agrees with iproute2');
    t.same(linkNames(), ['lo'], 'nothing left behind');
  });
}

t.test('examples/multiqueue-qemu.mjs: QEMU holds a 4-queue tap on br0 until Ctrl-C', async (t) => {
  execFileSync('ip', ['link', 'add', 'br0', 'type', 'bridge']);
  const child = spawn(process.execPath, ['examples/multiqueue-qemu.mjs', 'br0'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  const deadline = Date.now() + 30_000;
  while (!out.includes('Ctrl-C to stop') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
  const name = /on (tap\d+)/.exec(out)?.[1];
  t.ok(name, `the example reports its tap: ${out.trim()}`);
  const [tap] = ipj('-d', 'link', 'show', String(name));
  t.match(tap, { master: 'br0', linkinfo: { info_kind: 'tun', info_data: { type: 'tap', multi_queue: true, numqueues: 4 } } });
  t.ok(tap.flags.includes('UP'));
  child.kill('SIGINT');
  await once(child, 'exit');
  t.match(out, /QEMU exited/);
  t.same(linkNames().sort(), ['br0', 'lo'], 'the tap went with QEMU');
});
