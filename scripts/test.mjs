#!/usr/bin/env node
// `npm test`: runs tap (arguments passed on) with its TAP output, shown as it comes, and ends with
// what a reader looks for: the skipped tests with their reasons, the failed ones, and one result
// line. tap's own closing line, `# { total: N, pass: N, fail: N, skip: N }`, stays in the output
// (.ci/run reads it); the result line is printed after it and after the coverage report.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const tapBin = join(dirname(fileURLToPath(import.meta.url)), '..', 'node_modules', '.bin', 'tap');

/** What the TAP stream said, gathered line by line. */
export function summarize(lines) {
  const skips = [];
  const failures = [];
  let file = null;
  let totals = null;
  for (const line of lines) {
    let m;
    if ((m = /^# Subtest: (.*)$/.exec(line))) file = m[1];
    else if ((m = /^(\s*)ok \d+ - (.*?) # SKIP(?:\s+(.*))?$/i.exec(line))) skips.push(`${file ?? '?'}: ${m[2]} — ${m[3] ?? 'no reason given'}`);
    else if ((m = /^\s*1\.\.0 # SKIP(?:\s+(.*))?$/i.exec(line))) skips.push(`${file ?? '?'}: the whole file — ${m[1] ?? 'no reason given'}`);
    else if ((m = /^not ok \d+ - (\S+)/.exec(line))) failures.push(m[1]);
    else if ((m = /^# \{ total: (\d+)(.*)\}$/.exec(line))) {
      const n = (k) => Number(new RegExp(`${k}: (\\d+)`).exec(m[2])?.[1] ?? 0);
      totals = { total: Number(m[1]), pass: n('pass'), fail: n('fail'), skip: n('skip'), todo: n('todo') };
    }
  }
  return { skips, failures, totals };
}

/** The closing lines: skips with reasons, failed files, one result line. */
export function closing({ skips, failures, totals }, status) {
  const out = [''];
  if (skips.length > 0) out.push(`skipped (${skips.length}):`, ...skips.map((s) => `  ${s}`));
  if (failures.length > 0) out.push(`failed files (${failures.length}):`, ...failures.map((f) => `  ${f}`));
  if (totals === null) out.push(`npm test: FAILED — tap printed no result (exit status ${status})`);
  else {
    const verdict = status === 0 && totals.fail === 0 ? 'ok' : 'FAILED';
    out.push(`npm test: ${verdict} — ${totals.pass} passed, ${totals.fail} failed, ${totals.skip} skipped${totals.todo ? `, ${totals.todo} todo` : ''} (of ${totals.total})`);
  }
  return `${out.join('\n')}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const child = spawn(tapBin, ['--reporter=tap', ...process.argv.slice(2)], { stdio: ['inherit', 'pipe', 'inherit'] });
  const lines = [];
  let partial = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    process.stdout.write(chunk);
    const parts = (partial + chunk).split('\n');
    partial = parts.pop();
    lines.push(...parts);
  });
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
  child.on('close', (code, signal) => {
    if (partial) lines.push(partial);
    const status = code ?? 128 + (signal ? 15 : 0);
    process.stdout.write(closing(summarize(lines), status));
    process.exitCode = status;
  });
}
