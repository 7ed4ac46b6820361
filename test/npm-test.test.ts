// `npm test` (scripts/test.mjs) ends with what a reader looks for — the skips with their reasons,
// the failed files, one result line — and keeps tap's `# { total … }` line, which .ci/run reads:
// its own parsing code, taken from .ci/run, is run here on the output. tap runs two fixtures.
import './harness.js';
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './helper-lib.js';

const FIXTURES = join('test', 'fixtures', 'summary');
// Not tap's hooks of this run: the wrapper starts a tap of its own, as `npm test` does.
const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };

const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'test.mjs'), '--disable-coverage', join(FIXTURES, 'pass.mjs'), join(FIXTURES, 'fail.mjs')], {
  cwd: ROOT,
  env,
  encoding: 'utf8',
  timeout: 300_000,
});
const lines = r.stdout.trimEnd().split('\n');

t.test('the output ends with the skips and their reasons, the failures, and one result line', async (t) => {
  t.equal(r.status, 1, 'a failure: exit 1');
  t.same(lines.slice(-5), [
    'skipped (1):',
    `  ${join(FIXTURES, 'pass.mjs')}: needs a program — frobctl is not installed`,
    'failed files (1):',
    `  ${join(FIXTURES, 'fail.mjs')}`,
    'npm test: FAILED — 1 passed, 1 failed, 1 skipped (of 3)',
  ]);
  t.match(r.stdout, /\n {4}ok 1 - passes( # time=[\d.]+ms)?\n/, "tap's own output is passed on");
  t.match(r.stdout, /\n# \{ total: 3, pass: 1, fail: 1, skip: 1 \}\n/, "and tap's closing line");
});

t.test(".ci/run's parsing still finds tap's closing line", async (t) => {
  const ci = readFileSync(join(ROOT, '.ci', 'run'), 'utf8');
  const start = ci.indexOf('summary=$(');
  const end = ci.indexOf('\n', ci.indexOf('then failed=1; fi', start));
  t.ok(start > 0 && end > start, ".ci/run's parsing block is where this test looks");
  const out = join(process.env.QBH_TEST_SCRATCH!, 'npm-test.out');
  writeFileSync(out, r.stdout);
  const parsed = spawnSync('bash', ['-c', `out=${out}; rc=1\n${ci.slice(start, end)}\necho "$total $pass $skip $failed"`], { encoding: 'utf8' });
  t.equal(parsed.stdout, '3 1 1 1\n', 'total, pass, skip, failed as .ci/run computes them');
});
