// `npm run docs` builds the API reference with typedoc, warnings treated as errors: a public type
// that names something the reference leaves out, or a broken {@link}, fails the build a user runs.
// This builds it into a temporary folder and expects it to succeed with no warning.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './helper-lib.js';

t.test('the API reference builds without a warning (npm run docs)', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'qbh-api-docs-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typedoc', 'bin', 'typedoc'), '--out', out], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
  const text = `${r.stdout}${r.stderr}`;
  t.equal(r.status, 0, `typedoc exits 0\n${text}`);
  t.notMatch(text, /\[warning\]|\[error\]/, 'no warning or error');
  t.ok(existsSync(join(out, 'index.html')), 'index.html written');
  t.ok(existsSync(join(out, 'classes', 'NotABridgeError.html')), 'the new error kinds are in the reference');
});
