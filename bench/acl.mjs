// Measures what the ACL step adds to the helper's start-up: loading the bundled src/acl code and one
// evaluateAcl() on a typical bridge.conf with an include, as the helper runs it (synchronous, as the
// caller). Run: node bench/acl.mjs
import { buildSync } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = mkdtempSync(join(tmpdir(), 'qbh-acl-bench-'));
try {
  const bundle = join(dir, 'acl.mjs');
  buildSync({ entryPoints: ['src/acl/index.ts'], bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile: bundle, logLevel: 'silent' });
  const conf = join(dir, 'bridge.conf');
  writeFileSync(conf, `# site policy\nallow virbr0\nallow br0\ndeny br9\ninclude ${dir}/team.conf\n`);
  writeFileSync(join(dir, 'team.conf'), 'allow br1\nallow br2\n');

  const empty = join(dir, 'empty.mjs');
  writeFileSync(empty, 'export {};\n');
  const probe = `
    const b0 = process.hrtime.bigint();
    await import(${JSON.stringify(empty)});
    const b1 = process.hrtime.bigint();
    const t0 = process.hrtime.bigint();
    const { evaluateAcl } = await import(${JSON.stringify(bundle)});
    const t1 = process.hrtime.bigint();
    const v = evaluateAcl('br1', { aclPath: ${JSON.stringify(conf)} });
    const t2 = process.hrtime.bigint();
    let n = 2000; const t3 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) evaluateAcl('br1', { aclPath: ${JSON.stringify(conf)} });
    const t4 = process.hrtime.bigint();
    if (!v.permitted) throw new Error('expected br1 to be allowed');
    console.log(JSON.stringify({ baselineMs: Number(b1 - b0) / 1e6, importMs: Number(t1 - t0) / 1e6, firstEvaluateMs: Number(t2 - t1) / 1e6, warmEvaluateUs: Number(t4 - t3) / 1e3 / n }));
  `;
  const runs = Array.from({ length: 5 }, () => JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', probe], { encoding: 'utf8', env: { PATH: process.env.PATH } })));
  const median = (k) => runs.map((r) => r[k]).sort((a, b) => a - b)[2];
  console.log(`import of an empty module:      ${median('baselineMs').toFixed(2)} ms (median of 5 processes)`);
  console.log(`import of the bundled ACL code: ${median('importMs').toFixed(2)} ms`);
  console.log(`first evaluateAcl (2 files):    ${median('firstEvaluateMs').toFixed(2)} ms`);
  console.log(`warm evaluateAcl (2 files):     ${median('warmEvaluateUs').toFixed(1)} µs`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
