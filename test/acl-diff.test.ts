/**
 * Differential test: every ACL file below is installed as /etc/qemu/bridge.conf (a tmpfs in this
 * test's private mount namespace) and run through the real C helper (Debian QEMU 7.2) and through
 * evaluateAcl. Outcome and stderr bytes must be the same, except for the documented deviations and
 * extensions (docs/acl.md), which are asserted separately.
 *
 * The C helper's ACL outcome is visible without bridges: allowed means it goes on to tap setup and
 * fails there (no such bridge, or no /dev/net/tun access for an unprivileged caller).
 */
import './harness.js';
import { privateEtcQemu } from './harness.js';
import t from 'tap';
import { spawnSync, execFileSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { evaluateAcl, type AclCredentials } from '../src/acl/index.js';
import { addonPath } from '../src/native.js';

const HELPER = '/usr/lib/qemu/qemu-bridge-helper';
const ETC = '/etc/qemu';
const FAILED = "failed to parse default acl file `/etc/qemu/bridge.conf'\n";

type FileSpec =
  | string
  | Buffer
  | { data?: string | Buffer; dir?: true; symlink?: string; mode?: number; uid?: number; gid?: number };

interface Case {
  name: string;
  files: Record<string, FileSpec>;
  bridges: string[];
  /** The helper's working directory (relative includes). */
  cwd?: string;
  /** Run the C helper as this unprivileged caller; evaluateAcl gets the same credentials. */
  as?: AclCredentials;
}

if (!existsSync(HELPER)) {
  t.fail(`${HELPER} is missing: install qemu-system-common (the CI script does)`);
  process.exit(1);
}

// A private, empty /etc/qemu in this test's mount namespace; the host's /etc is not touched.
privateEtcQemu();

function install(files: Record<string, FileSpec>): void {
  for (const e of readdirSync(ETC)) rmSync(join(ETC, e), { recursive: true, force: true });
  // Directories first so that files can go in them; ownership and modes last.
  const entries = Object.entries(files).sort(([a], [b]) => a.split('/').length - b.split('/').length);
  for (const [name, spec] of entries) {
    const p = join(ETC, name);
    if (typeof spec === 'string' || Buffer.isBuffer(spec)) {
      writeFileSync(p, spec);
      continue;
    }
    if (spec.dir) mkdirSync(p);
    else if (spec.symlink !== undefined) symlinkSync(spec.symlink, p);
    else writeFileSync(p, spec.data ?? '');
  }
  for (const [name, spec] of entries.reverse()) {
    if (typeof spec === 'string' || Buffer.isBuffer(spec) || spec.symlink !== undefined) continue;
    const p = join(ETC, name);
    if (spec.uid !== undefined || spec.gid !== undefined) chownSync(p, spec.uid ?? 0, spec.gid ?? 0);
    if (spec.mode !== undefined) chmodSync(p, spec.mode);
  }
}

/** Messages the C helper prints only after the ACL allowed the bridge. */
const AFTER_ACL = /^(failed to get mtu of bridge `|failed to open \/dev\/net\/tun: |failed to create tun device: )/;

interface Outcome {
  permitted: boolean;
  stderr: string;
}

function runC(bridge: string, c: { cwd?: string; as?: AclCredentials; ulimit?: number }): Outcome & { signal: string | null } {
  let argv = [HELPER, `--br=${bridge}`, '--fd=99'];
  if (c.as !== undefined) {
    const groups = c.as.groups.length > 0 ? [`--groups=${c.as.groups.join(',')}`] : ['--clear-groups'];
    argv = ['setpriv', `--reuid=${c.as.uid}`, `--regid=${c.as.gid}`, ...groups, ...argv];
  }
  if (c.ulimit !== undefined) argv = ['sh', '-c', `ulimit -n ${c.ulimit} && exec "$@"`, 'sh', ...argv];
  const r = spawnSync(argv[0] as string, argv.slice(1), { cwd: c.cwd ?? '/', encoding: 'buffer', env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  const stderr = r.stderr.toString('latin1');
  const lines = stderr.split('\n');
  const last = lines[lines.length - 2] ?? '';
  if (r.status === 1 && AFTER_ACL.test(last)) return { permitted: true, stderr: lines.slice(0, -2).join('\n') + (lines.length > 2 ? '\n' : ''), signal: null };
  return { permitted: false, stderr, signal: r.signal };
}

function runOurs(bridge: string, c: { cwd?: string; as?: AclCredentials; extensions?: boolean }): Outcome & { fatal: boolean; code?: string } {
  const v = evaluateAcl(bridge, {
    cwd: c.cwd ?? '/',
    ...(c.as === undefined ? {} : { credentials: c.as }),
    ...(c.extensions === undefined ? {} : { extensions: c.extensions }),
  });
  return { permitted: v.permitted, stderr: v.stderr.toString('latin1'), fatal: v.fatal, ...(v.error ? { code: v.error.code } : {}) };
}

const L = (s: string) => Buffer.from(s, 'latin1');
const longComment = '#' + ' word'.repeat(1000) + '\n';
const nobody = (...groups: number[]): AclCredentials => ({ uid: 65534, gid: 65534, groups });
const QEMU = 1100;
const ALICE = 1101;
const BOB = 1102;
const CHARLIE = 1103;
const perGroup: Record<string, FileSpec> = {
  'bridge.conf': { data: 'allow br0\ninclude /etc/qemu/alice.conf\ninclude /etc/qemu/bob.conf\ninclude /etc/qemu/charlie.conf\n', gid: QEMU, mode: 0o640 },
  'alice.conf': { data: 'allow br1\n', gid: ALICE, mode: 0o640 },
  'bob.conf': { data: 'allow br2\n', gid: BOB, mode: 0o640 },
  'charlie.conf': { data: 'deny all\n', gid: CHARLIE, mode: 0o640 },
};

const cases: Case[] = [
  { name: 'allow br0', files: { 'bridge.conf': 'allow br0\n' }, bridges: ['br0', 'br1', 'br00', 'BR0', ''] },
  { name: 'allow br1', files: { 'bridge.conf': 'allow br1\n' }, bridges: ['br0', 'br1'] },
  { name: 'empty', files: { 'bridge.conf': '' }, bridges: ['br0', ''] },
  { name: 'comments only', files: { 'bridge.conf': '# allow br0\n   # x\n\t#\n#\n' }, bridges: ['br0'] },
  { name: 'allow all', files: { 'bridge.conf': 'allow all\n' }, bridges: ['br0', 'all', 'ALL', '', '0123456789abcde'] },
  { name: 'allow all, deny br0', files: { 'bridge.conf': 'allow all\ndeny br0\n' }, bridges: ['br0', 'br1'] },
  { name: 'deny before allow', files: { 'bridge.conf': 'deny br0\nallow br0\nallow br1\n' }, bridges: ['br0', 'br1'] },
  { name: 'allow all, deny all', files: { 'bridge.conf': 'allow all\ndeny all\n' }, bridges: ['br0'] },
  { name: 'deny only', files: { 'bridge.conf': 'deny br1\n' }, bridges: ['br0', 'br1'] },
  { name: 'trailing comment is part of the name', files: { 'bridge.conf': 'allow br0 # c\n' }, bridges: ['br0', 'br0 # c'] },
  { name: 'tab separator', files: { 'bridge.conf': 'allow\tbr0\ndeny\tbr1\t\n' }, bridges: ['br0', 'br1'] },
  { name: 'tab then trailing space', files: { 'bridge.conf': 'allow\tbr0 \n' }, bridges: ['br0'] },
  { name: 'name of 16 bytes', files: { 'bridge.conf': 'allow 0123456789abcdef\n' }, bridges: ['br0', '0123456789abcde'] },
  { name: 'name of 15 bytes', files: { 'bridge.conf': 'allow 0123456789abcde\n' }, bridges: ['0123456789abcde', '0123456789abcd'] },
  { name: '--br of 16 bytes', files: { 'bridge.conf': 'allow all\n' }, bridges: ['0123456789abcdef', '0123456789abcdefXYZ'] },
  { name: 'missing include', files: { 'bridge.conf': 'include /nonexistent\nallow br0\n' }, bridges: ['br0'] },
  { name: 'ALL is a name', files: { 'bridge.conf': 'allow ALL\n' }, bridges: ['br0', 'ALL'] },
  { name: 'unknown keyword', files: { 'bridge.conf': 'allow br0\nfoo bar\nallow br1\n' }, bridges: ['br0'] },
  { name: 'command without argument', files: { 'bridge.conf': '  allow\n' }, bridges: ['br0'] },
  { name: 'last line without newline', files: { 'bridge.conf': 'allow br0\ndeny' }, bridges: ['br0'] },
  { name: 'tab and space', files: { 'bridge.conf': 'allow\t br0\n' }, bridges: ['br0'] },
  { name: 'empty name', files: { 'bridge.conf': 'allow \ndeny\t\n' }, bridges: ['', 'br0'] },
  { name: 'vertical tab as separator', files: { 'bridge.conf': 'allow\vbr0\n' }, bridges: ['br0'] },
  { name: 'vertical tab is not trimmed', files: { 'bridge.conf': 'allow br0\v\nallow \vbr1\n' }, bridges: ['br0', 'br0\v', 'br1', '\vbr1'] },
  { name: 'leading vertical tab', files: { 'bridge.conf': '\vallow br0\n' }, bridges: ['br0'] },
  { name: 'form feed and CR are whitespace', files: { 'bridge.conf': '\f\rallow br0\f\r\n' }, bridges: ['br0'] },
  { name: 'form feed inside', files: { 'bridge.conf': 'allow br0\fx\n' }, bridges: ['br0', 'br0\fx'] },
  { name: 'CRLF', files: { 'bridge.conf': 'allow br0\r\n\r\ndeny br1\r\n' }, bridges: ['br0', 'br1'] },
  { name: 'UTF-8 BOM', files: { 'bridge.conf': '\ufeffallow br0\n' }, bridges: ['br0'] },
  { name: 'too long before unknown', files: { 'bridge.conf': 'bogus 0123456789abcdef\n' }, bridges: ['br0'] },
  { name: 'case matters', files: { 'bridge.conf': 'Allow br0\n' }, bridges: ['br0'] },
  { name: 'NUL ends the line', files: { 'bridge.conf': L('allow br0\0 xyz\ndeny br1\0\n') }, bridges: ['br0', 'br1'] },
  { name: 'line starting with NUL', files: { 'bridge.conf': L('\0deny all\nallow br0\n') }, bridges: ['br0'] },
  { name: 'NUL before the separator', files: { 'bridge.conf': L('allow\0 br0\n') }, bridges: ['br0'] },
  { name: 'long comment line', files: { 'bridge.conf': longComment }, bridges: ['br0'] },
  { name: 'allow padded past 4095', files: { 'bridge.conf': 'allow' + ' '.repeat(4089) + 'br0\n' }, bridges: ['br0', 'b'] },
  { name: 'exactly 4095 bytes', files: { 'bridge.conf': 'allow br0'.padEnd(4095, ' ') + '\nallow br1\n' }, bridges: ['br0', 'br1'] },
  { name: 'third chunk', files: { 'bridge.conf': 'allow' + ' '.repeat(9000) + 'br0\n' }, bridges: [''] },
  { name: 'chunk boundary inside a name', files: { 'bridge.conf': 'allow all\n' + ' '.repeat(4090) + 'deny brX\n' }, bridges: ['brX', 'br', 'X'] },
  { name: 'NBSP is not whitespace', files: { 'bridge.conf': L('allow br0\xa0\nallow\xa0br1\n') }, bridges: ['br0'] },
  { name: 'UTF-8 names', files: { 'bridge.conf': 'allow brü\nallow 0123456789abcdü\n' }, bridges: ['brü', 'bru'] },
  { name: 'UTF-8 name of 15 bytes', files: { 'bridge.conf': 'allow 0123456789abcü\n' }, bridges: ['0123456789abcü', '0123456789abcdü'] },
  { name: 'whitespace everywhere', files: { 'bridge.conf': ' \t allow    br0   \t\n\v\f\n\t deny  br1  \n' }, bridges: ['br0', 'br1'] },
  { name: 'deny without argument', files: { 'bridge.conf': 'deny\n' }, bridges: ['br0'] },
  { name: 'include without argument', files: { 'bridge.conf': 'allow br0\ninclude\n' }, bridges: ['br0'] },
  { name: 'tab inside command', files: { 'bridge.conf': 'allow\tbr0 x\n' }, bridges: ['br0'] },
  {
    name: 'error inside an include',
    files: { 'bridge.conf': 'include /etc/qemu/a.conf\nallow br2\n', 'a.conf': 'allow br0\nbad x\nallow br1\n' },
    bridges: ['br0', 'br1', 'br2'],
  },
  { name: 'deny in an include', files: { 'bridge.conf': 'allow all\ninclude /etc/qemu/a.conf\n', 'a.conf': 'deny br0\n' }, bridges: ['br0', 'br1'] },
  { name: 'include of a directory', files: { 'bridge.conf': 'include /etc/qemu/d\nallow br0\n', d: { dir: true } }, bridges: ['br0'] },
  { name: 'main file is a directory', files: { 'bridge.conf': { dir: true } }, bridges: ['br0'] },
  { name: 'main file missing', files: {}, bridges: ['br0'] },
  { name: 'include path with spaces', files: { 'bridge.conf': 'include /etc/qemu/my file.conf  \n', 'my file.conf': 'allow br0\n' }, bridges: ['br0', 'br1'] },
  { name: 'include with empty path', files: { 'bridge.conf': 'include \nallow br0\n' }, bridges: ['br0'] },
  {
    name: 'messages in reading order',
    files: {
      'bridge.conf': 'include /etc/qemu/a.conf\ninclude /etc/qemu/b.conf\nallow\n',
      'a.conf': 'x y\n',
      'b.conf': 'include /etc/qemu/c.conf\n  z\n',
      'c.conf': 'deny 0123456789abcdef\n',
    },
    bridges: ['br0'],
  },
  {
    name: 'nested includes, all errors non-fatal',
    files: { 'bridge.conf': 'allow br0\ninclude /etc/qemu/a.conf\n', 'a.conf': 'include /etc/qemu/b.conf\nallow br1\n', 'b.conf': 'deny br1\nALLOW x\ndeny br0\n' },
    bridges: ['br0', 'br1'],
  },
  { name: 'the same include twice', files: { 'bridge.conf': 'include /etc/qemu/a.conf\ninclude /etc/qemu/a.conf\n', 'a.conf': 'allow br0\nx y\n' }, bridges: ['br0'] },
  { name: 'relative include from cwd', files: { 'bridge.conf': 'include rel.conf\n', 'rel.conf': 'allow br0\n' }, bridges: ['br0'], cwd: ETC },
  { name: 'relative include, other cwd', files: { 'bridge.conf': 'include rel.conf\nallow br1\n', 'rel.conf': 'allow br0\n' }, bridges: ['br0', 'br1'], cwd: '/' },
  {
    name: 'relative include with ..',
    files: { 'bridge.conf': 'include ../rel.conf\n', 'rel.conf': 'allow br0\n', sub: { dir: true } },
    bridges: ['br0'],
    cwd: `${ETC}/sub`,
  },
  { name: 'include through a symlink', files: { 'bridge.conf': 'include /etc/qemu/link.conf\n', 'real.conf': 'allow br0\n', 'link.conf': { symlink: 'real.conf' } }, bridges: ['br0'] },
  { name: 'include of a dangling symlink', files: { 'bridge.conf': 'include /etc/qemu/link.conf\nallow br1\n', 'link.conf': { symlink: 'nowhere' } }, bridges: ['br1'] },
  { name: 'include with trailing slash on a file', files: { 'bridge.conf': 'include /etc/qemu/a.conf/\nallow br1\n', 'a.conf': 'allow br0\n' }, bridges: ['br0', 'br1'] },

  // Unprivileged callers: what the caller may read decides (commit bdef79a299).
  { name: 'per-group files: qemu+alice', files: perGroup, bridges: ['br0', 'br1', 'br2'], as: nobody(QEMU, ALICE) },
  { name: 'per-group files: qemu+charlie', files: perGroup, bridges: ['br0', 'br1'], as: nobody(QEMU, CHARLIE) },
  { name: 'per-group files: qemu+bob, primary gid', files: perGroup, bridges: ['br1', 'br2'], as: { uid: 65534, gid: QEMU, groups: [BOB] } },
  { name: 'per-group files: not in qemu', files: perGroup, bridges: ['br0'], as: nobody(ALICE) },
  { name: 'main file 0600 root', files: { 'bridge.conf': { data: 'allow br0\n', mode: 0o600 } }, bridges: ['br0'], as: nobody() },
  {
    name: 'secret include 0600 root',
    files: { 'bridge.conf': 'allow br1\ninclude /etc/qemu/secret.conf\n', 'secret.conf': { data: 'allow br0\n', mode: 0o600 } },
    bridges: ['br0', 'br1'],
    as: nobody(),
  },
  {
    name: 'include in an unsearchable directory',
    files: { 'bridge.conf': 'allow br1\ninclude /etc/qemu/private/x.conf\ninclude /etc/qemu/link.conf\n', private: { dir: true, mode: 0o750, gid: QEMU }, 'private/x.conf': 'allow br0\n', 'link.conf': { symlink: 'private/x.conf' } },
    bridges: ['br0', 'br1'],
    as: nobody(),
  },
  {
    name: '.. through an unsearchable directory',
    files: { 'bridge.conf': 'allow br1\ninclude /etc/qemu/private/../pub.conf\ninclude /etc/qemu/open/../pub2.conf\n', private: { dir: true, mode: 0o700 }, open: { dir: true, mode: 0o711 }, 'pub.conf': 'allow br0\n', 'pub2.conf': 'allow br2\n' },
    bridges: ['br0', 'br1', 'br2'],
    as: nobody(),
  },
  {
    name: 'include in a directory searchable by group',
    files: { 'bridge.conf': 'include /etc/qemu/private/x.conf\n', private: { dir: true, mode: 0o710, gid: QEMU }, 'private/x.conf': 'allow br0\n' },
    bridges: ['br0'],
    as: nobody(QEMU),
  },
  {
    name: 'unreadable directory include',
    files: { 'bridge.conf': 'allow br0\ninclude /etc/qemu/d\n', d: { dir: true, mode: 0o711 } },
    bridges: ['br0'],
    as: nobody(),
  },
  {
    name: 'error in an include readable by group only',
    files: { 'bridge.conf': 'allow br0\ninclude /etc/qemu/g.conf\n', 'g.conf': { data: 'nonsense here\n', gid: QEMU, mode: 0o640 } },
    bridges: ['br0'],
    as: nobody(QEMU),
  },
  {
    name: 'relative include as nobody',
    files: { 'bridge.conf': 'include r.conf\n', sub: { dir: true }, 'sub/r.conf': 'allow br0\n' },
    bridges: ['br0'],
    as: nobody(),
    cwd: `${ETC}/sub`,
  },
];

// One bundle of the ACL code, so an unprivileged caller can run it without the TypeScript loader.
// Laid out as the package is (dist/ beside build/Release/), since the ACL code loads the addon.
const bundleDir = mkdtempSync('/tmp/qbh-acl-diff-');
chmodSync(bundleDir, 0o755);
mkdirSync(join(bundleDir, 'build', 'Release'), { recursive: true, mode: 0o755 });
copyFileSync(addonPath(), join(bundleDir, 'build', 'Release', 'qbh.node'));
const runner = join(bundleDir, 'dist', 'evaluate-as-caller.mjs');
buildSync({ entryPoints: ['test/fixtures/acl/evaluate-as-caller.ts'], bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile: runner, logLevel: 'silent' });
t.teardown(() => rmSync(bundleDir, { recursive: true, force: true }));

function runOursAsCaller(bridges: string[], c: Case): Outcome[] {
  const as = c.as as AclCredentials;
  const groups = as.groups.length > 0 ? [`--groups=${as.groups.join(',')}`] : ['--clear-groups'];
  // A clean environment: tap's NODE_OPTIONS would load its TypeScript and coverage hooks in the child.
  const out = execFileSync('setpriv', [`--reuid=${as.uid}`, `--regid=${as.gid}`, ...groups, process.execPath, runner, JSON.stringify(bridges)], {
    cwd: c.cwd ?? '/',
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  return JSON.parse(out) as Outcome[];
}

t.test('the C helper and evaluateAcl agree byte for byte', async (t) => {
  let pairs = 0;
  let allowedPairs = 0;
  for (const c of cases) {
    install(c.files);
    const asCaller = c.as === undefined ? null : runOursAsCaller(c.bridges, c);
    c.bridges.forEach((bridge, i) => {
      const opts = { ...(c.cwd ? { cwd: c.cwd } : {}), ...(c.as ? { as: c.as } : {}) };
      const cOut = runC(bridge, opts);
      const expected = { permitted: cOut.permitted, stderr: cOut.stderr };
      const ours = runOurs(bridge, opts);
      t.same({ permitted: ours.permitted, stderr: ours.stderr }, expected, `${c.name} --br=${JSON.stringify(bridge)}${c.as ? ' (credentials)' : ''}`);
      if (asCaller !== null) t.same(asCaller[i], expected, `${c.name} --br=${JSON.stringify(bridge)} (run as the caller)`);
      pairs++;
      if (cOut.permitted) allowedPairs++;
    });
  }
  t.ok(cases.length >= 40, `${cases.length} ACL files`);
  t.ok(allowedPairs > 30 && pairs - allowedPairs > 30, `${pairs} pairs, ${allowedPairs} allowed: both outcomes well covered`);
});

t.test('deviation: include cycles fail with one line instead of crashing', async (t) => {
  install({ 'bridge.conf': 'allow br0\ninclude /etc/qemu/bridge.conf\n' });
  const big = runC('br0', { ulimit: 20000 });
  t.equal(big.signal, 'SIGSEGV', 'C helper with a large fd limit: SIGSEGV');
  const small = runC('br0', { ulimit: 64 });
  t.equal(small.permitted, true, 'C helper with 64 fds: recursion ends at EMFILE, rules duplicated');
  const ours = runOurs('br0', {});
  t.same(ours, { permitted: false, fatal: true, code: 'cycle', stderr: "include cycle at `/etc/qemu/bridge.conf' line 2: `/etc/qemu/bridge.conf' is already being read\n" });

  install({ 'bridge.conf': 'allow br0\ninclude /etc/qemu/a.conf\n', 'a.conf': 'include /etc/qemu/link.conf\n', 'link.conf': { symlink: 'bridge.conf' } });
  t.equal(runC('br0', { ulimit: 20000 }).signal, 'SIGSEGV');
  t.same(runOurs('br0', {}).code, 'cycle', 'a cycle through a symlink is the same file');
});

t.test('extension: identity rules are refused loudly by the C helper', async (t) => {
  install({ 'bridge.conf': 'allow br1\nallow-user root br0\n' });
  const c = runC('br0', {});
  t.same(c, { permitted: false, stderr: "Unknown command `allow-user'\n" + FAILED, signal: null }, 'C: whole file refused');
  t.same(runOurs('br0', { extensions: false }), { permitted: false, fatal: true, code: 'parse', stderr: c.stderr }, 'extensions off: the same bytes');
  t.same(runOurs('br0', {}), { permitted: true, fatal: false, stderr: '' }, 'qbh: root may use br0');
  t.same(runOurs('br0', { as: nobody() }).permitted, false, 'qbh: nobody may not');

  for (const line of ['allow-user alice br0', 'deny-group kvm all', 'allow-group 100 br0', 'deny-user someone-with-a-long-name br0']) {
    install({ 'bridge.conf': `allow all\n${line}\n` });
    const out = runC('br0', {});
    t.equal(out.permitted, false, `C refuses "${line}"`);
    t.match(out.stderr, /^(Unknown command `(allow|deny)-(user|group)'|name `.*' too long: \d+)\nfailed to parse default acl file/, `C fails loudly on "${line}"`);
  }

  install({ 'bridge.conf': 'allow br0\ninclude /etc/qemu/users.conf\n', 'users.conf': 'allow br1\nallow-group 0 br2\nallow br3\n' });
  for (const [bridge, cAllows] of [['br0', true], ['br1', true], ['br2', false], ['br3', false]] as const) {
    const out = runC(bridge, {});
    t.same(out.permitted, cAllows, `C, identity rule in an include: ${bridge}`);
    t.match(out.stderr, /^Unknown command `allow-group'\n/, 'C prints the error and skips the rest of that file');
    t.same(runOurs(bridge, { extensions: false }), { permitted: cAllows, fatal: false, stderr: out.stderr });
    t.equal(runOurs(bridge, {}).permitted, true, `qbh reads the whole include: ${bridge}`);
  }
});

t.test('extension: guard lines are refused loudly by the C helper, never read as a rule', async (t) => {
  const lines: [string, string][] = [
    ['guard br0 strict', "Unknown command `guard'\n"],
    ['guard-user 0 all none', "Unknown command `guard-user'\n"],
    ['guard-group kvm br0 isolated', "name `kvm br0 isolated' too long: 16\n"],
    ['guard all isolated mac=sticky:1 server-guard', "name `all isolated mac=sticky:1 server-guard' too long: 38\n"],
  ];
  for (const [line, first] of lines) {
    install({ 'bridge.conf': `allow all\n${line}\n` });
    const r = spawnSync(HELPER, ['--br=br0', '--fd=99'], { cwd: '/', encoding: 'latin1', env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
    t.not(r.status, 0, `C exits non-zero on "${line}"`);
    t.equal(r.stderr, first + FAILED, `C fails loudly on "${line}"`);
    t.same(runOurs('br0', { extensions: false }), { permitted: false, fatal: true, code: 'parse', stderr: r.stderr }, 'extensions off: the same bytes');
    t.same(runOurs('br0', {}), { permitted: true, fatal: false, stderr: '' }, 'qbh reads it as a guard line');
  }
});
