// Shell completion as a user gets it: `qbh completion bash` sourced into a real bash, which is asked
// for completions the way bash-completion asks (COMP_WORDS, COMP_CWORD, the _qbh function), with
// the shipped bin/qbh first in PATH; names come from this test's own network namespace.
import './harness.js';
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { sh } from './harness.js';
import { ROOT } from './helper-lib.js';

const PATH = `${join(ROOT, 'bin')}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;

// The bundle under test, from the current sources (written beside and renamed: parallel files are safe).
execFileSync(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs')], { stdio: 'inherit' });

/** What bash's _qbh offers for the command line `words` (the last word is the one being completed). */
function complete(...words: string[]): string[] {
  const array = ['qbh', ...words].map((w) => `'${w}'`).join(' ');
  const script = `source <(qbh completion bash) || exit 9; COMP_WORDS=(${array}); COMP_CWORD=${words.length}; _qbh; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = spawnSync('bash', ['-c', script], { env: { PATH }, cwd: '/', encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) throw new Error(`bash exited ${r.status}: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l !== '');
}

t.test('commands, subcommands, help topics and completion shells', async (t) => {
  t.same(complete('br'), ['bridge']);
  t.same(complete(''), ['bridge', 'tap', 'acl', 'monitor', 'doctor', 'daemon', 'completion', 'help', '--version', '--help']);
  t.same(complete('bridge', ''), ['list', 'show', 'create', 'delete', 'attach', 'detach']);
  t.same(complete('bridge', 'de'), ['delete', 'detach']);
  t.same(complete('help', 'ta'), ['tap']);
  t.same(complete('completion', ''), ['bash', 'zsh']);
  t.same(complete('tap', ''), ['list', 'show', 'create', 'delete']);
});

t.test("the dispatcher's forms: prefixes, ls, options before the command", async (t) => {
  t.same(complete('-'), ['-j', '--json', '-p', '--pretty', '-d', '--details', '--version', '--help'], 'options before the command');
  t.same(complete('-j', ''), ['bridge', 'tap', 'acl', 'monitor', 'doctor', 'daemon', 'completion', 'help', '--version', '--help']);
  t.same(complete('-j', '-p', 'bridge', 'd'), ['delete', 'detach']);
  t.same(complete('br', ''), ['list', 'show', 'create', 'delete', 'attach', 'detach'], 'a unique prefix of the group');
  t.same(complete('br', 'li', '--j'), ['--json'], "a prefix of both words: the command's options");
  t.same(complete('bridge', 'ls', '--d'), ['--details'], 'ls');
  t.same(complete('help', 'br', 'cr'), ['create']);
  t.same(complete('comp', ''), ['bash', 'zsh']);
});

t.test("options from each command's usage line", async (t) => {
  t.same(complete('bridge', 'list', '-'), ['-j', '--json', '-p', '--pretty', '-d', '--details', '--help']);
  t.same(complete('bridge', 'create', 'br9', '--m'), ['--mtu', '--mac']);
  t.same(complete('doctor', '--d'), ['--daemon-socket']);
});

t.test("live names from this namespace: bridges, taps, links; files for a file option", async (t) => {
  sh('ip', 'link', 'add', 'cbr0', 'type', 'bridge');
  sh('ip', 'link', 'add', 'cbr1', 'type', 'bridge');
  sh('ip', 'tuntap', 'add', 'ctap0', 'mode', 'tap');
  sh('ip', 'link', 'add', 'cveth0', 'type', 'veth', 'peer', 'name', 'cveth1');
  t.same(complete('bridge', 'delete', ''), ['cbr0', 'cbr1']);
  t.same(complete('bridge', 'show', 'cbr1'), ['cbr1']);
  t.same(complete('bridge', 'attach', 'cbr0', 'cv'), ['cveth0', 'cveth1'], 'the port: any link');
  t.same(complete('tap', 'delete', ''), ['ctap0']);
  t.same(complete('tap', 'show', ''), ['ctap0']);
  t.same(complete('ta', 'sh', 'c'), ['ctap0']);
  t.same(complete('b', 'sh', ''), ['cbr0', 'cbr1']);
  t.same(complete('acl', 'check', ''), ['cbr0', 'cbr1'], 'acl check BRIDGE');
  t.same(complete('tap', 'create', 'tapx', '--bridge', 'c'), ['cbr0', 'cbr1']);
  t.same(complete('acl', 'check', '--bridge', ''), ['cbr0', 'cbr1']);
  // --acl takes a file: qbh offers nothing and bash's default (-o default) completes the file name.
  const r = spawnSync('bash', ['-c', 'source <(qbh completion bash); complete -p qbh'], { env: { PATH }, encoding: 'utf8' });
  t.equal(r.stdout.trim(), 'complete -o default -F _qbh qbh');
  t.same(complete('doctor', '--acl', '/etc/hostn'), []);
});

t.test('usage errors: no shell, an unknown shell', async (t) => {
  const run = (...args: string[]) => spawnSync('qbh', args, { env: { PATH }, encoding: 'utf8' });
  let r = run('completion');
  t.equal(r.status, 2);
  t.match(r.stderr, 'qbh: completion: which shell? bash or zsh\nusage: qbh completion bash|zsh\n');
  r = run('completion', 'fish');
  t.equal(r.status, 2);
  t.match(r.stderr, 'no completion for "fish": bash or zsh');
});

const zsh = spawnSync('zsh', ['-c', 'true']);
t.test('zsh: the script parses (zsh -n) and defines _qbh for compdef', { skip: zsh.error ? 'zsh is not installed' : false }, async (t) => {
  const script = execFileSync('qbh', ['completion', 'zsh'], { env: { PATH }, encoding: 'utf8' });
  t.match(script, /^#compdef qbh\n/);
  const r = spawnSync('zsh', ['-n'], { input: script, encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  // Loaded the way compinit loads it: compdef registers _qbh for qbh.
  const z = spawnSync('zsh', ['-f', '-c', 'autoload -U compinit && compinit -u -D && source <(qbh completion zsh) && print -r -- ${_comps[qbh]}'], {
    env: { PATH, HOME: '/nonexistent' },
    encoding: 'utf8',
  });
  t.equal(z.stdout.trim(), '_qbh', z.stderr);
});
