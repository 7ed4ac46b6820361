// What a newcomer meets first: the README's first command shows something on a host without
// bridges (on a terminal; a pipe gets nothing, as from ip; --json gets []), and the help texts
// line up. Private netns (harness): no bridges here until the test makes one.
import './harness.js';
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sh } from './harness.js';
import { ROOT } from './helper-lib.js';

execFileSync(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs')], { stdio: 'inherit' });
const QBH = join(ROOT, 'bin', 'qbh');

/** The README's first code block: its command lines, comments dropped. */
function readmeFirstCommands(): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const block = /```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
  return block
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter((l) => l !== '');
}

/** Runs `cmd` (a shell line) on a pseudo-terminal, as a person at one would (util-linux script). */
function onTerminal(cmd: string): string {
  const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { cwd: ROOT, encoding: 'utf8', env: { PATH: process.env.PATH, TERM: 'dumb' } });
  return r.stdout.replace(/\r\n/g, '\n');
}

t.test("the README's first command: the fast bin/qbh, and it shows something on a host without bridges", async (t) => {
  const [first] = readmeFirstCommands();
  t.equal(first, 'npm ci && bin/qbh bridge list', 'npm ci, then the bin/qbh of the clone (npx costs a second per call)');
  const main = first!.split(' && ')[1]!;
  t.equal(onTerminal(main), 'no bridges\n', 'on a terminal: one line saying so');
  t.equal(execFileSync(QBH, ['bridge', 'list'], { encoding: 'utf8' }), '', 'on a pipe: nothing, as `ip link show type bridge`');
  t.equal(execFileSync(QBH, ['bridge', 'list', '--json'], { encoding: 'utf8' }), '[]\n');
  sh('ip', 'link', 'add', 'brn0', 'type', 'bridge');
  t.match(onTerminal(main), /^NAME +STATE .*\nbrn0 /, 'a bridge: the table');
  sh('ip', 'link', 'del', 'brn0');
});

t.test('qbh --help: every command line, help [COMMAND] included, starts its text in one column', async (t) => {
  const help = execFileSync(QBH, ['--help'], { encoding: 'utf8' });
  const rows = help.split('commands:\n')[1]!.split('\n\n')[0]!.split('\n');
  t.ok(rows.some((r) => r.startsWith('  help [COMMAND]  ')), 'help [COMMAND] is listed');
  const columns = new Set(rows.map((r) => /^ {2}\S+(?: \S+)? {2,}/.exec(r)?.[0].length));
  t.same([...columns], [rows[0]!.length - rows[0]!.trimStart().replace(/^\S+(?: \S+)? +/, '').length], 'one column');
});

t.test('qbh bridge --help: says what the group is first, and ends with a sentence, not a label', async (t) => {
  const help = execFileSync(QBH, ['bridge', '--help'], { encoding: 'utf8' });
  const lines = help.trimEnd().split('\n');
  t.equal(lines[0], 'qbh bridge: manage bridges (list, show, create, delete, attach, detach)');
  t.equal(lines.at(-1), '`qbh bridge COMMAND --help` shows the options of a command.');
  t.notMatch(help, /^bridges: /m);
});
