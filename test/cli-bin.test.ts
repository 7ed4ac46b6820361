// The shipped `qbh` as a user runs it: bin/qbh (a symlink to the esbuild bundle dist/qbh.cjs),
// spawned from another directory in a clean environment — not run() in-process as the other CLI
// tests do. A bundle that cannot find the addon, loses a command, or prints differently fails here.
import './harness.js';
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ipj, sh } from './harness.js';
import { ROOT } from './helper-lib.js';
import { persistentMac } from '../src/netlink/mac.js';

const QBH = join(ROOT, 'bin', 'qbh');
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

// The bundle under test, from the current sources (written beside and renamed: parallel files are safe).
execFileSync(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs')], { stdio: 'inherit' });

/** Runs bin/qbh ARGS from / with only PATH set (tap's NODE_OPTIONS hooks must not reach it). */
function qbh(...args: string[]) {
  const r = spawnSync('env', ['-i', `PATH=${PATH}`, QBH, ...args], { cwd: '/', encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

t.test('--version: the package version, one line', async (t) => {
  const r = qbh('--version');
  t.same(r, { code: 0, stdout: `qbh ${VERSION}\n`, stderr: '' });
});

t.test('stdout on /dev/null and /dev/full: written directly, a failed write still reported', async (t) => {
  // /dev/null is written with fs.writeSync (stdio.ts), not through Node's stream; /dev/full's
  // ENOSPC falls back to the stream, which throws it as before.
  const run = (dev: string) => spawnSync('sh', ['-c', `exec env -i PATH=${PATH} ${QBH} --version >${dev}`], { cwd: '/', encoding: 'utf8', timeout: 20_000 });
  t.same([run('/dev/null').status, run('/dev/null').stderr], [0, '']);
  const full = run('/dev/full');
  t.equal(full.status, 1);
  t.match(full.stderr, /ENOSPC/);
});

t.test('--help: usage and every command group on stdout, exit 0', async (t) => {
  const r = qbh('--help');
  t.equal(r.code, 0);
  t.equal(r.stderr, '');
  t.match(r.stdout, /^usage: qbh COMMAND /);
  for (const cmd of ['bridge list', 'bridge create', 'tap create', 'acl check', 'monitor', 'doctor']) t.match(r.stdout, new RegExp(`^  ${cmd} `, 'm'), cmd);
});

t.test('bridge list --json: the bridges ip -j -d lists, with the same values', async (t) => {
  sh('ip', 'link', 'add', 'sb0', 'type', 'bridge');
  sh('ip', 'link', 'add', 'sb1', 'mtu', '9000', 'type', 'bridge', 'stp_state', '1');
  sh('ip', 'link', 'add', 'sv0', 'type', 'veth', 'peer', 'name', 'sv1');
  sh('ip', 'link', 'set', 'sv0', 'master', 'sb0', 'up');
  sh('ip', 'addr', 'add', '10.7.0.1/24', 'dev', 'sb0');
  const r = qbh('bridge', 'list', '--json');
  t.equal(r.code, 0);
  t.equal(r.stderr, '');
  const got = JSON.parse(r.stdout) as any[];
  const ip = ipj<any[]>('-d', 'link', 'show', 'type', 'bridge');
  t.same(got.map((b) => b.ifname), ip.map((l) => l.ifname), 'the same bridges, in the same order');
  // Timers tick between the two dumps; everything else ip prints must be there with the same value.
  const TIMERS = new Set(['hello_timer', 'tcn_timer', 'topology_change_timer', 'gc_timer']);
  const differ: string[] = [];
  for (const want of ip) {
    const b = got.find((x) => x.ifname === want.ifname);
    for (const [k, v] of Object.entries(want)) if (k !== 'linkinfo' && JSON.stringify(b[k]) !== JSON.stringify(v)) differ.push(`${want.ifname}.${k}`);
    for (const [k, v] of Object.entries(want.linkinfo.info_data)) if (!TIMERS.has(k) && JSON.stringify(b.linkinfo.info_data[k]) !== JSON.stringify(v)) differ.push(`${want.ifname}.info_data.${k}`);
  }
  t.same(differ, [], 'every key ip -j -d prints, with its value');
  const sb0 = got.find((b) => b.ifname === 'sb0');
  t.same(sb0.ports.map((p: any) => p.ifname), ['sv0'], 'sb0 has its port');
  t.same(sb0.addr_info.map((a: any) => `${a.local}/${a.prefixlen}`), ['10.7.0.1/24'], 'and its address');
});

t.test('a usage error: exit 2, the message, the usage line, nothing else', async (t) => {
  for (const [args, message, usage] of [
    [['frobnicate'], 'qbh: no command "frobnicate"; `qbh help` lists them', 'usage: qbh COMMAND [ARGS...] [--help]'],
    [['bridge', 'list', '--bogus'], "qbh: bridge list: unknown option '--bogus'", 'usage: qbh bridge list [-j|--json] [-p|--pretty] [-d|--details]'],
    [['bridge', 'create'], 'qbh: bridge create: missing NAME', /^usage: qbh bridge create NAME /],
  ] as const) {
    const r = qbh(...args);
    t.equal(r.code, 2, `qbh ${args.join(' ')}: exit 2`);
    t.equal(r.stdout, '', 'nothing on stdout');
    const lines = r.stderr.split('\n');
    t.equal(lines.length, 3, 'two lines on stderr');
    t.equal(lines[0], message, 'first, what was wrong');
    t.match(lines[1], usage, 'then the usage');
  }
});

t.test('what the bundle loads on first need: ip-address, node:crypto, node:os', async (t) => {
  // The bundle stands in its own file URL for import.meta.url (scripts/bundle.mjs), and the modules
  // loaded on first use are found from it: an address to parse (ip-address), a bridge's persistent
  // MAC (node:crypto), an errno's name in a kernel error (node:os).
  const made = qbh('bridge', 'create', 'sbl0', '--address', '10.9.0.1/24');
  t.same(made, { code: 0, stdout: '', stderr: '' });
  t.equal(ipj<any[]>('link', 'show', 'sbl0')[0].address, persistentMac('sbl0').address, "the bridge's persistent MAC");
  t.same(ipj<any[]>('addr', 'show', 'dev', 'sbl0')[0].addr_info.filter((a: any) => a.family === 'inet').map((a: any) => a.local), ['10.9.0.1']);
  const again = qbh('bridge', 'create', 'sbl0');
  t.equal(again.code, 1);
  t.match(again.stderr, /^qbh: .*sbl0.*File exists.*\n$/);
  t.notMatch(again.stderr, /\n\s+at /, 'no stack trace');
  sh('ip', 'link', 'del', 'sbl0');
});

t.test("iproute2 habits through both bodies of dist/qbh: the bridge group's and the whole CLI's", async (t) => {
  sh('ip', 'link', 'add', 'hb9', 'type', 'bridge');
  // `qbh bridge …` runs the bridge group's body; `qbh br …` and `qbh -j …` the whole CLI's.
  const names = (r: { stdout: string }) => (JSON.parse(r.stdout) as { ifname: string }[]).map((b) => b.ifname);
  for (const argv of [['bridge', 'ls', '-j'], ['bridge', '-j'], ['br', 'li', '-j'], ['-j', 'bridge'], ['-j', 'b', 'sh']]) {
    const r = qbh(...argv);
    t.equal(r.code, 0, `qbh ${argv.join(' ')}: ${r.stderr}`);
    t.ok(names(r).includes('hb9'), `qbh ${argv.join(' ')}`);
    t.equal(r.stdout.split('\n').length, 2, 'one line of JSON');
  }
  t.match(qbh('bridge', 'de', 'hb9'), { code: 2, stderr: /^qbh: "de" is ambiguous: bridge delete, bridge detach\n/ });
  sh('ip', 'link', 'del', 'hb9');
});
