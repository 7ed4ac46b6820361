#!/usr/bin/env node
// `npm run bench`: every benchmark of issue 10 in one command, each candidate interleaved with its
// baselines (A B A B …) in the same run, min / median / max, the ratio of medians and the goal beside
// it; writes bench/RESULTS.md (machine, kernel, Node, QEMU, iproute2, date, the table). Not a test:
// it asserts nothing. Needs root and a build (npm run build).
//
//   node bench/run.mjs [--quick] [--only helper,taps,list,guard,guard-helper] [--merge] [--out bench/RESULTS.md]
//
// Each suite runs in fresh network and mount namespaces of its own (this file re-executes itself
// under `unshare`); nothing touches the host's interfaces or its /etc. Every Node process it times
// (`node -e 0`, the helper, `qbh`, and the suite processes that time the library in-process) runs
// with an environment of PATH only: no NODE_EXTRA_CA_CERTS (this machine's CA bundle, parsed at each
// Node start, would hide a program's own cost inside the floor: docs/performance.md), no
// NODE_OPTIONS.
// The older single-purpose scripts (bench/helper.mjs, tun.mjs, netlink.mjs, cli.mjs, daemon.mjs,
// acl.mjs) remain for the details they print (launcher variants, teardown one by one, the daemon).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { privateEtcQemu, rawLinkDump, sh } from './lib.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const ENV = { PATH };
const C_HELPER = '/usr/lib/qemu/qemu-bridge-helper';
const PY = '/usr/bin/python3';
/**
 * pyroute2 is a peer baseline only (Debian: python3-pyroute2): without it its rows are left out, and
 * the run says so, rather than failing the suites it appears in.
 */
const HAVE_PYROUTE2 = spawnSync(PY, ['-c', 'import pyroute2'], { stdio: 'ignore' }).status === 0;
const NO_PYROUTE2 = 'pyroute2 rows left out: /usr/bin/python3 cannot import pyroute2 (apt-get install python3-pyroute2)';
const { values: opt } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    out: { type: 'string', default: join(ROOT, 'bench', 'RESULTS.md') },
    merge: { type: 'boolean', default: false },
    suite: { type: 'string' },
  },
});
const QUICK = opt.quick;

/** argv: runs, then JSON [[name, argv, sends], …]; prints {name: [[cpu ms, maxrss KiB], …]}. */
const RUSAGE_DRIVER = `
import array, json, os, socket, sys
n = int(sys.argv[1]); subjects = json.loads(sys.argv[2]); env = {'PATH': os.environ['PATH']}
def once(argv, sends):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        os.dup2(b.fileno(), 3)
        os.dup2(os.open('/dev/null', os.O_WRONLY), 1)
        os.execvpe(argv[0], argv, env)
    b.close()
    anc = a.recvmsg(1, socket.CMSG_LEN(4))[1] if sends else []
    _, st, ru = os.wait4(pid, 0)
    for _, _, data in anc:
        fds = array.array('i'); fds.frombytes(data); [os.close(f) for f in fds]
    a.close()
    if os.waitstatus_to_exitcode(st) != 0 or (sends and not anc): raise SystemExit(argv[0] + ' failed')
    return [(ru.ru_utime + ru.ru_stime) * 1000, ru.ru_maxrss]
out = {name: [] for name, _, _ in subjects}
for name, argv, sends in subjects: once(argv, sends)
for _ in range(n):
    for name, argv, sends in subjects: out[name].append(once(argv, sends))
print(json.dumps(out))
`;

/**
 * argv: runs, then JSON [[name, argv, sends], …]; prints {name: [M instructions, …]}: each run's
 * user-space instructions under callgrind, less V8's hash-seed set-up (HashSeed::InitializeRoots
 * searches a random prime at every start: 6–18 M instructions at random, the largest noise in a
 * short Node process's CPU time; without it runs agree within ±0.2 M). Subjects interleaved.
 */
const CALLGRIND_DRIVER = `
import array, json, os, re, socket, subprocess, sys, tempfile
n = int(sys.argv[1]); subjects = json.loads(sys.argv[2]); env = {'PATH': os.environ['PATH']}
out_file = os.path.join(tempfile.mkdtemp(), 'callgrind.out')
def once(argv, sends):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        os.dup2(b.fileno(), 3)
        null = os.open('/dev/null', os.O_WRONLY); os.dup2(null, 1); os.dup2(null, 2)
        os.execvpe('valgrind', ['valgrind', '--tool=callgrind', '--callgrind-out-file=' + out_file] + argv, env)
    b.close()
    anc = a.recvmsg(1, socket.CMSG_LEN(4))[1] if sends else []
    _, st = os.waitpid(pid, 0)
    for _, _, data in anc:
        fds = array.array('i'); fds.frombytes(data); [os.close(f) for f in fds]
    a.close()
    if os.waitstatus_to_exitcode(st) != 0 or (sends and not anc): raise SystemExit(argv[0] + ' failed under callgrind')
    ann = subprocess.run(['callgrind_annotate', '--inclusive=yes', '--threshold=100', out_file], capture_output=True, text=True).stdout
    total = int(re.search(r'([0-9,]+) \\([^)]*\\)\\s+PROGRAM TOTALS', ann).group(1).replace(',', ''))
    seed = re.search(r'([0-9,]+) \\([^)]*\\)\\s+\\S*HashSeed::InitializeRoots', ann)
    return (total - (int(seed.group(1).replace(',', '')) if seed else 0)) / 1e6
out = {name: [] for name, _, _ in subjects}
for _ in range(n):
    for name, argv, sends in subjects: out[name].append(once(argv, sends))
print(json.dumps(out))
`;

// ---------- statistics and output rows ----------
const sorted = (xs) => [...xs].sort((a, b) => a - b);
const median = (xs) => {
  const a = sorted(xs);
  return a.length % 2 ? a[(a.length - 1) / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
};
const stats = (xs) => ({ min: Math.min(...xs), med: median(xs), max: Math.max(...xs), n: xs.length });
const now = () => Number(process.hrtime.bigint()) / 1e6;

/** One result line: a candidate against its baseline, with the goal on the ratio of medians. */
function row(what, cand, candXs, base, baseXs, goal, unit = 'ms', note = '') {
  const c = stats(candXs);
  const b = stats(baseXs);
  const ratio = c.med / b.med;
  const met = goal === null ? null : ratio <= goal;
  process.stdout.write(`ROW ${JSON.stringify({ what, cand, base, c, b, ratio, goal, met, unit, note })}\n`);
}
/** A line without a baseline (throughput and the like). */
function info(what, text) {
  process.stdout.write(`ROW ${JSON.stringify({ what, info: text })}\n`);
}

// ---------- the orchestrator ----------
if (opt.suite === undefined) {
  const suites = (opt.only ?? 'helper,taps,list,guard,guard-helper').split(',');
  const all = [];
  const t0 = now();
  const loadBefore = loadavg()[0];
  console.log(`qbh bench${QUICK ? ' (--quick)' : ''}: suites ${suites.join(', ')}; every Node process runs with PATH only (NODE_EXTRA_CA_CERTS and NODE_OPTIONS removed)`);
  for (const s of suites) {
    const args = [process.execPath, fileURLToPath(import.meta.url), '--suite', s, ...(QUICK ? ['--quick'] : [])];
    const r = spawnSync('unshare', ['--net', '--mount', '--propagation', 'private', '--', ...args], {
      env: { ...ENV, QBH_BENCH_NETNS: '1' },
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 1 << 26,
      encoding: 'utf8',
    });
    for (const line of r.stdout.split('\n')) {
      if (line.startsWith('ROW ')) {
        const x = JSON.parse(line.slice(4));
        all.push({ suite: s, ...x });
        console.log(formatRow(x));
      } else if (line.trim()) console.log(`  ${line}`);
    }
    if (r.status !== 0) console.log(`suite ${s} failed (exit ${r.status})`);
  }
  const secs = (now() - t0) / 1000;
  console.log(`total ${secs.toFixed(0)} s`);
  writeResults(all, secs, [loadBefore, loadavg()[0]]);
  process.exit(0);
}

function formatRow(x) {
  if (x.info !== undefined) return `${x.what}: ${x.info}`;
  const f = (s) => `${s.min.toFixed(1)} / ${s.med.toFixed(1)} / ${s.max.toFixed(1)}`;
  const goal = x.goal === null ? 'report' : `≤ ${x.goal.toFixed(2)}× ${x.met ? 'met' : 'MISSED'}`;
  return `${x.what}: ${x.cand} ${f(x.c)} ${x.unit} | ${x.base} ${f(x.b)} ${x.unit} | ${x.ratio.toFixed(2)}× (${goal})${x.note ? ` — ${x.note}` : ''}`;
}

function version(cmd, args, re = /.*/) {
  try {
    const out = execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return (out.match(re)?.[0] ?? out).trim().split('\n')[0];
  } catch {
    return 'not found';
  }
}

/**
 * The rows to write and the runs they come from. Every run also writes its rows beside the table
 * (RESULTS.json); with `--merge` the suites run now replace their own rows there and the other
 * suites' rows of earlier runs stay, so one suite can be re-run without the others.
 */
function mergedRows(all, run) {
  const json = opt.out.replace(/\.md$/, '') + '.json';
  let rows = all;
  let runs = [run];
  if (opt.merge && existsSync(json)) {
    const prev = JSON.parse(readFileSync(json, 'utf8'));
    const order = [...new Set([...prev.rows.map((x) => x.suite), ...run.suites])];
    rows = order.flatMap((s) => (run.suites.includes(s) ? all : prev.rows).filter((x) => x.suite === s));
    runs = [...prev.runs.map((r) => ({ ...r, suites: r.suites.filter((s) => !run.suites.includes(s)) })).filter((r) => r.suites.length > 0), run];
  }
  writeFileSync(json, JSON.stringify({ runs, rows }, null, 1) + '\n');
  return { rows, runs };
}

function writeResults(all, secs, load) {
  const suites = [...new Set(all.map((x) => x.suite))];
  const kernel = version('uname', ['-r']);
  const { rows, runs } = mergedRows(all, { suites, ran: suites, date: new Date().toISOString(), secs, load, quick: QUICK, kernel });
  const esc = (s) => String(s).replace(/\|/g, '\\|');
  const f = (s, unit) => `${s.min.toFixed(unit === 'ms' ? 1 : 2)} / **${s.med.toFixed(unit === 'ms' ? 1 : 2)}** / ${s.max.toFixed(unit === 'ms' ? 1 : 2)}`;
  const lines = [
    '# Benchmark results',
    '',
    `Generated by \`npm run bench${QUICK ? ' -- --quick' : ''}\` (bench/run.mjs); the repository keeps the latest real run.`,
    '',
    ...runs.map((r) => `- ${runs.length > 1 ? `suites ${r.suites.join(', ')}: ` : ''}date ${r.date}${r.quick ? ' (--quick)' : ''}; ${runs.length > 1 ? `kernel ${r.kernel}; ` : ''}` +
      `run time ${r.secs.toFixed(0)} s (suites ${r.ran.join(', ')}); 1-minute load average ${r.load[0].toFixed(1)} at the start, ${r.load[1].toFixed(1)} at the end (2 cores)`),
    `- machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB; a shared machine (the load averages above say how busy it was) — compare the ratios (each measured interleaved, A B A B …, in one run)`,
    `- kernel: ${kernel}`,
    `- Node: ${process.version} (every timed Node process with PATH only: NODE_EXTRA_CA_CERTS and NODE_OPTIONS removed)`,
    `- QEMU: ${version('qemu-system-x86_64', ['--version'])}; C helper: ${C_HELPER}`,
    `- iproute2: ${version('ip', ['-V'])}`,
    `- pyroute2: ${version(PY, ['-c', 'import importlib.metadata as m; print(m.version("pyroute2"))'])} (${PY})`,
    '',
    'min / **median** / max of each; ratio = candidate median / baseline median.',
    '',
    '| benchmark | candidate | min / median / max | baseline | min / median / max | ratio | goal |',
    '|---|---|---|---|---|---|---|',
  ];
  const notes = [];
  for (const x of rows) {
    if (x.info !== undefined) {
      notes.push(`- ${esc(x.what)}: ${esc(x.info)}`);
      continue;
    }
    const goal = x.goal === null ? 'report' : `≤ ${x.goal.toFixed(2)}× — ${x.met ? 'met' : '**missed**'}`;
    lines.push(`| ${esc(x.what)} | ${esc(x.cand)} | ${f(x.c, x.unit)} ${x.unit} | ${esc(x.base)} | ${f(x.b, x.unit)} ${x.unit} | ${x.ratio.toFixed(2)}× | ${goal} |`);
    if (x.note) notes.push(`- ${esc(x.what)}: ${esc(x.note)}`);
  }
  if (notes.length) lines.push('', 'Notes and figures without a baseline:', '', ...notes);
  lines.push('', 'What was changed, tried and dropped, and where the remaining time goes: docs/performance.md.', '');
  writeFileSync(opt.out, lines.join('\n'));
  console.log(`wrote ${opt.out}`);
}

// ---------- inside a suite's namespaces ----------
if (process.env.QBH_BENCH_NETNS !== '1') throw new Error('a suite runs only under the orchestrator');
const shOut = (...a) => execFileSync(a[0], a.slice(1), { stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 30 });
const dir = mkdtempSync(join(tmpdir(), 'qbh-bench-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const batchFile = (name, lines) => {
  const f = join(dir, name);
  writeFileSync(f, lines.join('\n') + '\n');
  return f;
};
const names = (p, n, from = 0) => Array.from({ length: n }, (_, i) => `${p}${i + from}`);
const timeCmd = (cmd, args) => {
  const t0 = now();
  const r = spawnSync(cmd, args, { env: ENV, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}`);
  return now() - t0;
};
const timeAsync = async (fn) => {
  const t0 = now();
  await fn();
  return now() - t0;
};
/** Makes `n` persistent taps (untimed), optionally on a bridge, in interface group `group`. */
function makeTaps(prefix, n, { bridge, group = 7, chunk = 5000 } = {}) {
  for (let s = 0; s < n; s += chunk) {
    const lines = [];
    for (const t of names(prefix, Math.min(chunk, n - s), s)) {
      lines.push(`tuntap add ${t} mode tap`, `link set ${t} ${bridge ? `master ${bridge(t)} ` : ''}group ${group} up`);
    }
    sh('ip', '-batch', batchFile(`mk-${prefix}-${s}`, lines));
  }
}
sh('ip', 'link', 'set', 'lo', 'up');
// CPU time (user + sys, ms), which the other engineers' load on this machine does not inflate as it does
// wall time: this process's from process.cpuUsage(), a waited-for child's from the cutime + cstime of
// /proc/self/stat (clock ticks of 10 ms). Kernel work the calls leave to kworkers is in neither.
const cpuSelf = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const cpuChildren = () => {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return (Number(f[13]) + Number(f[14])) * 10;
};

// The port guard the guard suites measure (issue 23): every part but sticky pinning, whose cost is the same less one
// FDB message. A MAC list pins its MAC on one port of a bridge only (a second port claiming it is
// refused, EEXIST), so the many-taps rows use `mac=sticky:1` and the others a MAC of each tap's own.
const REST = 'ip=10.0.0.0/24,2001:db8::/64 server-guard bpdu-guard ethertypes=ipv4,arp,ipv6';
const wordsFor = (mac) => `isolated mac=${mac} ${REST}`;
const macOf = (i) => `52:54:00:${((i >> 16) & 0xff).toString(16).padStart(2, '0')}:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
/** Throws unless the tap `name` carries the guard (its alias, its ingress filter). */
const assertGuarded = (name) => {
  const alias = JSON.parse(String(shOut('ip', '-j', '-d', 'link', 'show', 'dev', name)))[0]?.ifalias ?? '';
  const filters = JSON.parse(String(shOut('tc', '-j', 'filter', 'show', 'dev', name, 'ingress')) || '[]');
  if (!alias.startsWith('qbh-guard: ') || !filters.some((f) => f.kind === 'bpf')) throw new Error(`${name} is not guarded (alias "${alias}", ${filters.length} filters)`);
};

const { native } = await import('../dist/native.js');
const suite = { helper: suiteHelper, taps: suiteTaps, list: suiteList, guard: suiteGuard, 'guard-helper': suiteGuardHelper }[opt.suite];
if (!suite) throw new Error(`no suite ${opt.suite}`);
await suite();
process.exit(0);

// ---------- helper start-up ----------
async function suiteHelper() {
  const ITER = QUICK ? 15 : 40;
  sh('ip', 'link', 'add', 'br0', 'type', 'bridge');
  sh('ip', 'link', 'set', 'br0', 'mtu', '1400');
  privateEtcQemu();
  const ARGS = ['--use-vnet', '--br=br0', '--fd=3'];
  const subjects = {
    floor: { cmd: ['node', '-e', '0'], sends: false },
    c: { cmd: [C_HELPER, ...ARGS], sends: true },
    qbh: { cmd: [join(ROOT, 'bin', 'qemu-bridge-helper'), ...ARGS], sends: true },
  };
  /** spawn → 1 byte + fd received → exit, timed from here (wall clock). */
  const once = (s) => {
    const [qemuEnd, helperEnd] = native.socketpair(1);
    const t0 = now();
    const r = spawnSync(s.cmd[0], s.cmd.slice(1), { stdio: ['ignore', 'ignore', 'pipe', helperEnd], env: ENV });
    const got = s.sends ? native.recvFds(qemuEnd, 1, 1, 1000) : null;
    const ms = now() - t0;
    native.close(helperEnd);
    native.close(qemuEnd);
    if (r.status !== 0) throw new Error(`${s.cmd[0]}: exit ${r.status} ${r.stderr}`);
    if (s.sends && got?.fds.length !== 1) throw new Error(`${s.cmd[0]}: no fd received`);
    for (const fd of got?.fds ?? []) native.close(fd);
    return ms;
  };
  const keys = Object.keys(subjects);
  const w = Object.fromEntries(keys.map((k) => [k, []]));
  for (const k of keys) once(subjects[k]);
  for (let i = 0; i < ITER; i++) for (const k of keys) w[k].push(once(subjects[k]));
  // CPU time and peak RSS of each child, from wait4's rusage (Node has no child rusage; a small
  // Python driver forks, passes the socket as fd 3, receives the fd and reaps): on a machine shared
  // with other work, CPU time is the steadier figure.
  const driver = join(dir, 'rusage.py');
  writeFileSync(driver, RUSAGE_DRIVER);
  const spec = keys.map((k) => [k, subjects[k].cmd, subjects[k].sends]);
  const ru = JSON.parse(String(shOut(PY, driver, String(ITER), JSON.stringify(spec))));
  const cpu = (k) => ru[k].map((x) => x[0]);
  const rss = (k) => ru[k].map((x) => x[1]);
  row('helper attach (spawn → fd → exit), wall', 'qbh bin/qemu-bridge-helper', w.qbh, '`node -e 0`', w.floor, 1.1);
  row('helper attach, CPU time (user + sys)', 'qbh bin/qemu-bridge-helper', cpu('qbh'), '`node -e 0`', cpu('floor'), 1.1);
  row('helper attach (spawn → fd → exit), wall', 'C qemu-bridge-helper', w.c, '`node -e 0`', w.floor, null, 'ms', 'the C helper for scale');
  row('helper peak RSS', 'qbh bin/qemu-bridge-helper', rss('qbh'), '`node -e 0`', rss('floor'), 1.1, 'KiB');
  // The same attach counted in instructions, where valgrind is installed: what the CPU rows measure
  // without the machine's load and without V8's random start-up cost (docs/performance.md).
  if (existsSync('/usr/bin/valgrind') && existsSync('/usr/bin/callgrind_annotate')) {
    const cg = join(dir, 'callgrind.py');
    writeFileSync(cg, CALLGRIND_DRIVER);
    // The helper's own #! line, run directly: valgrind does not follow `env -S` into node.
    const boot = readFileSync(join(ROOT, 'dist', 'qemu-bridge-helper.cjs'), 'utf8').split('\n')[0].split(" -e '")[1]?.replace(/'$/, '');
    const qbhArgv = boot === undefined ? [process.execPath, join(ROOT, 'dist', 'qemu-bridge-helper.cjs'), ...ARGS] : [process.execPath, '-e', boot, join(ROOT, 'dist', 'qemu-bridge-helper.cjs'), ...ARGS];
    const ir = JSON.parse(String(shOut(PY, cg, String(QUICK ? 3 : 5), JSON.stringify([['floor', [process.execPath, '-e', '0'], false], ['qbh', qbhArgv, true]]))));
    row('helper attach, user-space instructions (callgrind, without V8\'s hash-seed search)', 'qbh helper (node -e bootstrap, no env hop)', ir.qbh, '`node -e 0`', ir.floor, null, 'M',
      'a load-independent view of the CPU row (the kernel\'s share and the env hop are not counted)');
  }

  // Attach with many links present: the helper's work must not scale with them.
  const sizes = QUICK ? [1000] : [1000, 10000];
  let have = 0;
  for (const n of sizes) {
    // Persistent taps (no dummy module in every kernel), made with ip, in a group of their own.
    const lines = names('dm', n - have, have).map((d) => `tuntap add ${d} mode tap`);
    sh('ip', '-batch', batchFile(`extra-${n}`, lines));
    sh('ip', '-batch', batchFile(`extra-group-${n}`, names('dm', n - have, have).map((d) => `link set ${d} group 9`)));
    have = n;
    const at = JSON.parse(String(shOut(PY, driver, String(ITER), JSON.stringify([spec[0], spec[2]]))));
    const r0 = median(cpu('qbh')) / median(cpu('floor'));
    row(`helper attach with ${n} links present, CPU time`, 'qbh helper', at.qbh.map((x) => x[0]), '`node -e 0` (same run)', at.floor.map((x) => x[0]), 1.1 * r0, 'ms',
      `goal: flat — at most 1.1 × the CPU ratio with no links (${r0.toFixed(2)}×)`);
  }
  sh('ip', 'link', 'delete', 'group', '9');
}

// ---------- taps: create + attach, teardown ----------
async function suiteTaps() {
  const N = QUICK ? 300 : 1000;
  const RUNS = QUICK ? 3 : 5;
  const { openTap, openTaps, destroyTaps } = await import('../dist/tun/index.js');
  const { deleteBridge } = await import('../dist/index.js');
  sh('ip', 'link', 'add', 'br0', 'type', 'bridge');
  sh('ip', 'link', 'set', 'br0', 'mtu', '1400', 'up');
  const ipNamed = batchFile('named', names('iq', N).flatMap((n) => [`tuntap add ${n} mode tap vnet_hdr`, `link set ${n} mtu 1400 master br0 up`]));
  const ipAuto = batchFile('auto', names('tap', N).flatMap((n) => ['tuntap add mode tap vnet_hdr', `link set ${n} mtu 1400 master br0 up`]));
  const ipSet = batchFile('set', names('fq', N).map((n) => `link set ${n} mtu 1400 master br0 up`));
  const group = (p) => batchFile(`group-${p}`, names(p, N).map((n) => `link set ${n} group 7`));
  const groups = { iq: group('iq'), tap: group('tap'), fq: group('fq') };
  const cleanIp = (p) => {
    sh('ip', '-batch', groups[p]);
    sh('ip', 'link', 'delete', 'group', '7');
  };
  const py = join(dir, 'pyroute2-taps.py');
  writeFileSync(py, `
import sys, time
from pyroute2 import IPRoute
n, prefix = int(sys.argv[1]), sys.argv[2]
ip = IPRoute()
br = ip.link_lookup(ifname='br0')[0]
t0 = time.perf_counter()
for i in range(n):
    name = f'{prefix}{i}'
    ip.link('add', ifname=name, kind='tuntap', mode='tap')
    idx = ip.link_lookup(ifname=name)[0]
    ip.link('set', index=idx, mtu=1400, master=br, state='up')
print((time.perf_counter() - t0) * 1000)
`);
  const IFF_TAP = 0x0002;
  const IFF_NO_PI = 0x1000;
  const IFF_VNET_HDR = 0x4000;
  const TUNSETIFF = 0x400454ca;
  const r = { qNamed: [], bNamed: [], ipNamed: [], qAuto: [], bAuto: [], ipAuto: [], held: [], py: [], destroy: [], ipDel: [], heldDel: [], bNamedCpu: [], ipNamedCpu: [], bAutoCpu: [], ipAutoCpu: [], heldCpu: [] };
  for (let run = 0; run < RUNS; run++) {
    // openTap, named, as QEMU uses taps: non-persistent, fds held.
    let held = [];
    r.qNamed.push(await timeAsync(async () => {
      for (let i = 0; i < N; i++) held.push(await openTap({ bridge: 'br0', name: `q${i}` }));
    }));
    r.destroy.push(await timeAsync(() => destroyTaps(held)));
    // openTaps: the same taps in one call (one bridge lookup, the RTM_NEWLINKs pipelined).
    let c0 = cpuSelf();
    r.bNamed.push(await timeAsync(async () => {
      held = await openTaps(names('q', N), { bridge: 'br0' });
    }));
    r.bNamedCpu.push(cpuSelf() - c0);
    await destroyTaps(held);
    c0 = cpuChildren();
    r.ipNamed.push(timeCmd('ip', ['-batch', ipNamed]));
    r.ipNamedCpu.push(cpuChildren() - c0);
    let t0 = now();
    cleanIp('iq');
    r.ipDel.push(now() - t0);
    held = [];
    r.qAuto.push(await timeAsync(async () => {
      for (let i = 0; i < N; i++) held.push(await openTap({ bridge: 'br0' }));
    }));
    await destroyTaps(held);
    c0 = cpuSelf();
    r.bAuto.push(await timeAsync(async () => {
      held = await openTaps(N, { bridge: 'br0' });
    }));
    r.bAutoCpu.push(cpuSelf() - c0);
    await destroyTaps(held);
    c0 = cpuChildren();
    r.ipAuto.push(timeCmd('ip', ['-batch', ipAuto]));
    r.ipAutoCpu.push(cpuChildren() - c0);
    cleanIp('tap');
    // The same kernel work as openTap: taps with an fd attached (carrier on), then one ip -batch.
    const fds = [];
    t0 = now();
    c0 = cpuSelf() + cpuChildren();
    for (const n of names('fq', N)) {
      const fd = (await import('node:fs')).openSync('/dev/net/tun', 'r+');
      const ifr = Buffer.alloc(40);
      ifr.write(n);
      ifr.writeUInt16LE(IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, 16);
      native.ioctl(fd, TUNSETIFF, ifr);
      fds.push(fd);
    }
    sh('ip', '-batch', ipSet);
    r.held.push(now() - t0);
    r.heldCpu.push(cpuSelf() + cpuChildren() - c0);
    // Teardown of these fd-held taps by ip (the group moves and the delete), then their fds closed.
    t0 = now();
    sh('ip', '-batch', groups.fq);
    sh('ip', 'link', 'delete', 'group', '7');
    r.heldDel.push(now() - t0);
    for (const fd of fds) native.close(fd);
    if (HAVE_PYROUTE2 && run < (QUICK ? 1 : 2)) {
      const out = shOut(PY, py, String(N), 'pq');
      r.py.push(Number(String(out).trim()));
      sh('ip', '-batch', batchFile(`pq-group-${run}`, names('pq', N).map((n) => `link set ${n} group 7`)));
      sh('ip', 'link', 'delete', 'group', '7');
    }
  }
  const heldNote = 'the same kernel work as openTap: a tap with an fd attached has carrier, and enslaving + bringing it up costs the kernel more than for ip\'s fd-less taps (the `link set` batch alone: 0.98 s vs 0.26 s for 1000, docs/performance.md)';
  row(`create + attach ${N} named taps`, 'openTaps(names, { bridge })', r.bNamed, '`ip -batch` (tuntap add + link set)', r.ipNamed, 1.2);
  row(`create + attach ${N} named taps`, 'openTaps(names, { bridge })', r.bNamed, 'TUNSETIFF (fd held) + `ip -batch` link set', r.held, null, 'ms', heldNote);
  row(`create + attach ${N} taps`, 'openTaps(N, { bridge }) (tap%d)', r.bAuto, '`ip -batch` (tuntap add + link set)', r.ipAuto, 1.2);
  row(`create + attach ${N} named taps, CPU (user + sys)`, 'openTaps(names, { bridge })', r.bNamedCpu, '`ip -batch` (tuntap add + link set)', r.ipNamedCpu, null);
  row(`create + attach ${N} named taps, CPU (user + sys)`, 'openTaps(names, { bridge })', r.bNamedCpu, 'TUNSETIFF (fd held) + `ip -batch` link set', r.heldCpu, null);
  row(`create + attach ${N} taps, CPU (user + sys)`, 'openTaps(N, { bridge }) (tap%d)', r.bAutoCpu, '`ip -batch` (tuntap add + link set)', r.ipAutoCpu, null);
  row(`create + attach ${N} named taps`, 'openTap({ bridge, name }) × N', r.qNamed, '`ip -batch` (tuntap add + link set)', r.ipNamed, null);
  row(`create + attach ${N} named taps`, 'openTap({ bridge, name }) × N', r.qNamed, 'TUNSETIFF (fd held) + `ip -batch` link set', r.held, null);
  row(`create + attach ${N} taps`, 'openTap({ bridge }) (tap%d) × N', r.qAuto, '`ip -batch` (tuntap add + link set)', r.ipAuto, null);
  if (HAVE_PYROUTE2) row(`create + attach ${N} named taps`, 'openTap({ bridge, name }) × N', r.qNamed, 'pyroute2 (link add tuntap + lookup + link set)', r.py, null);
  else info('pyroute2', NO_PYROUTE2);
  row(`teardown of ${N} taps`, 'destroyTaps (moves to a group + one RTM_DELLINK)', r.destroy, '`ip -batch` link set group + `ip link delete group` (ip\'s fd-less taps)', r.ipDel, null, 'ms',
    'both time the group moves and the delete; ip\'s taps have no fd, hence no carrier, and cost the kernel less to delete');
  row(`teardown of ${N} taps`, 'destroyTaps (moves to a group + one RTM_DELLINK)', r.destroy, '`ip -batch` link set group + `ip link delete group` (fd-held taps)', r.heldDel, null, 'ms',
    'like for like: the same carrier-on taps on both sides');

  // One `ip` process per command, on a few taps (each costs two processes).
  const ONE = QUICK ? 20 : 50;
  const perCmd = [];
  const perQbh = [];
  for (let run = 0; run < 3; run++) {
    let t0 = now();
    for (const n of names('oq', ONE)) {
      sh('ip', 'tuntap', 'add', n, 'mode', 'tap', 'vnet_hdr');
      sh('ip', 'link', 'set', n, 'mtu', '1400', 'master', 'br0', 'up');
    }
    perCmd.push((now() - t0) / ONE);
    sh('ip', '-batch', batchFile(`oq-group-${run}`, names('oq', ONE).map((n) => `link set ${n} group 7`)));
    sh('ip', 'link', 'delete', 'group', '7');
    const held = [];
    t0 = now();
    for (const n of names('oq', ONE)) held.push(await openTap({ bridge: 'br0', name: n }));
    perQbh.push((now() - t0) / ONE);
    await destroyTaps(held);
  }
  row('create + attach, per tap', 'openTap', perQbh, 'one `ip` process per command', perCmd, null);

  // deleteBridge(withPorts) against `ip link delete group`.
  const dq = [];
  const dip = [];
  const dqCpu = [];
  const dipCpu = [];
  for (let run = 0; run < RUNS; run++) {
    sh('ip', 'link', 'add', 'bd', 'type', 'bridge');
    makeTaps('dq', N, { bridge: () => 'bd', group: 0 });
    let c0 = cpuSelf();
    dq.push(await timeAsync(() => deleteBridge('bd', { withPorts: true })));
    dqCpu.push(cpuSelf() - c0);
    sh('ip', 'link', 'add', 'bd', 'group', '7', 'type', 'bridge');
    makeTaps('dq', N, { bridge: () => 'bd', group: 7 });
    c0 = cpuChildren();
    dip.push(timeCmd('ip', ['link', 'delete', 'group', '7']));
    dipCpu.push(cpuChildren() - c0);
  }
  row(`delete a bridge with ${N} ports`, 'deleteBridge({ withPorts: true })', dq, '`ip link delete group N`', dip, 1.2, 'ms',
    'over half of the wall time is waiting in the kernel (RCU grace periods), which the machine\'s load stretches: the CPU row below is the steadier comparison');
  row(`delete a bridge with ${N} ports, CPU (user + sys)`, 'deleteBridge({ withPorts: true })', dqCpu, '`ip link delete group N`', dipCpu, null);
}

// ---------- listing ----------
async function suiteList() {
  const RUNS = QUICK ? 5 : 9;
  const ITER = QUICK ? 15 : 40;
  const QBH = join(ROOT, 'bin', 'qbh');
  // 1 bridge with 10 ports: the CLI's own start-up.
  sh('ip', 'link', 'add', 'bs0', 'group', '8', 'type', 'bridge');
  makeTaps('sp', 10, { bridge: () => 'bs0', group: 8 });
  const small = { qbh: [], floor: [], ip: [] };
  for (let i = 0; i < ITER; i++) {
    small.qbh.push(timeCmd(QBH, ['bridge', 'list']));
    small.floor.push(timeCmd('node', ['-e', '0']));
  }
  row('`qbh bridge list`, 1 bridge / 10 ports, wall', '`qbh bridge list`', small.qbh, '`node -e 0`', small.floor, 1.3);
  const driver = join(dir, 'rusage.py');
  writeFileSync(driver, RUSAGE_DRIVER);
  const ru = JSON.parse(String(shOut(PY, driver, String(ITER), JSON.stringify([['floor', ['node', '-e', '0'], false], ['qbh', [QBH, 'bridge', 'list'], false]]))));
  row('`qbh bridge list`, 1 bridge / 10 ports, CPU time', '`qbh bridge list`', ru.qbh.map((x) => x[0]), '`node -e 0`', ru.floor.map((x) => x[0]), 1.3);
  sh('ip', 'link', 'delete', 'group', '8');

  // --json at 10 000 ports (1000 in --quick) against the two iproute2 dumps.
  const PORTS = QUICK ? 1000 : 10000;
  const bridges = Math.ceil(PORTS / 1000); // BR_MAX_PORTS is 1024
  for (let b = 0; b < bridges; b++) sh('ip', 'link', 'add', `bb${b}`, 'group', '8', 'type', 'bridge');
  makeTaps('bt', PORTS, { bridge: (t) => `bb${Math.floor(Number(t.slice(2)) / 1000)}`, group: 8 });
  const big = { qbh: [], ip: [], py: [] };
  const py = join(dir, 'pyroute2-list.py');
  writeFileSync(py, `
import json, sys
from pyroute2 import IPRoute
ip = IPRoute()
links = ip.get_links()
def kind(l):
    li = l.get_attr('IFLA_LINKINFO')
    return li.get_attr('IFLA_INFO_KIND') if li else None
brs = [l for l in links if kind(l) == 'bridge']
idx = {l['index']: l.get_attr('IFLA_IFNAME') for l in brs}
out = [{'ifname': n, 'ports': [l.get_attr('IFLA_IFNAME') for l in links if l.get_attr('IFLA_MASTER') == i]} for i, n in idx.items()]
sys.stdout.write(json.dumps(out))
`);
  const run = (cmd, args) => execFileSync(cmd, args, { env: ENV, maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'inherit'] });
  let check;
  for (let i = 0; i < RUNS; i++) {
    let t0 = now();
    check = run(QBH, ['bridge', 'list', '--json']);
    big.qbh.push(now() - t0);
    t0 = now();
    run('ip', ['-j', '-d', 'link', 'show', 'type', 'bridge']);
    run('bridge', ['-j', '-d', 'link', 'show']);
    big.ip.push(now() - t0);
    if (HAVE_PYROUTE2 && i < 3) {
      t0 = now();
      run(PY, [py]);
      big.py.push(now() - t0);
    }
  }
  const listed = JSON.parse(String(check)).reduce((s, b) => s + b.ports.length, 0);
  if (listed !== PORTS) throw new Error(`qbh listed ${listed} ports, expected ${PORTS}`);
  row(`\`qbh bridge list --json\`, ${PORTS} ports`, '`qbh bridge list --json`', big.qbh, '`ip -j -d link show type bridge` + `bridge -j -d link show`', big.ip, 1.0);
  if (HAVE_PYROUTE2) row(`\`qbh bridge list --json\`, ${PORTS} ports`, '`qbh bridge list --json`', big.qbh, 'pyroute2 get_links() (bridges + port names only, as JSON)', big.py, null);
  else info('pyroute2', NO_PYROUTE2);

  // listLinks() in-process against `ip -j -d link show`, at the same number of links.
  const { Rtnl } = await import('../dist/index.js');
  const { decodeMessages, decodeLink, splitMessages } = await import('../dist/netlink/message.js');
  const { IFLA_SHOWN } = await import('../dist/netlink/present.js');
  const rtnl = await Rtnl.open();
  const ours = [];
  const theirs = [];
  await rtnl.listLinks();
  for (let i = 0; i < RUNS; i++) {
    ours.push(await timeAsync(() => rtnl.listLinks()));
    const t0 = now();
    run('ip', ['-j', '-d', 'link', 'show']);
    theirs.push(now() - t0);
  }
  const nLinks = PORTS + bridges + 1;
  row(`listLinks(), ${nLinks} links`, 'listLinks() in-process', ours, '`ip -j -d link show`', theirs, 1.0);

  // Decode throughput of one full dump's datagrams.
  const grams = await rawLinkDump();
  const bytes = grams.reduce((s, d) => s + d.length, 0);
  const dec = [];
  for (let i = 0; i < RUNS; i++) dec.push(await timeAsync(() => grams.forEach((d) => decodeMessages(d))));
  const d = median(dec);
  info(`decode of a ${nLinks}-link dump`, `${grams.length} datagrams, ${(bytes / 1e6).toFixed(1)} MB: median ${d.toFixed(1)} ms, ${Math.round(nLinks / (d / 1000))} links/s, ${(bytes / 1e6 / (d / 1000)).toFixed(0)} MB/s`);
  // What a listing decodes: the attributes it prints (IFLA_SHOWN), one link at a time.
  const shown = [];
  for (let i = 0; i < RUNS; i++) shown.push(await timeAsync(() => grams.forEach((g) => splitMessages(g).forEach((m) => m.type === 16 && decodeLink(m.payload, IFLA_SHOWN)))));
  const ds = median(shown);
  info(`listing decode of a ${nLinks}-link dump`, `the attributes listLinks() prints: median ${ds.toFixed(1)} ms, ${Math.round(nLinks / (ds / 1000))} links/s, ${(bytes / 1e6 / (ds / 1000)).toFixed(0)} MB/s`);
  rtnl.close();
  sh('ip', 'link', 'delete', 'group', '8');
}

// ---------- guard: the port guard's cost (issue 23), and the CNI bridge plugin beside it ----------
async function suiteGuard() {
  const N = QUICK ? 300 : 1000;
  const RUNS = QUICK ? 3 : 5;
  const ONE = QUICK ? 20 : 50;
  const CNI_N = QUICK ? 100 : 500;
  const CNI_K = QUICK ? 5 : 10;
  /** A pause after deleting a netns: the kernel tears it down in a workqueue, holding the RTNL lock. */
  const SETTLE_MS = 300;
  const { openTap, openTaps, destroyTaps, closeTap } = await import('../dist/tun/index.js');
  const { parseGuard } = await import('../dist/index.js');
  const guardOf = (i) => parseGuard(wordsFor(macOf(i)));
  const sticky = parseGuard(`isolated mac=sticky:1 ${REST}`);
  sh('mount', '-t', 'tmpfs', 'qbh-bench-run', '/run');
  for (const br of ['br0', 'br1']) {
    sh('ip', 'link', 'add', br, 'type', 'bridge');
    sh('ip', 'link', 'set', br, 'mtu', '1400', 'up');
  }

  // 1. openTaps(N) guarded against unguarded, interleaved.
  const bulk = { g: [], u: [], gCpu: [], uCpu: [] };
  for (let run = 0; run < RUNS; run++) {
    for (const guarded of [true, false]) {
      const c0 = cpuSelf();
      let taps;
      const ms = await timeAsync(async () => {
        taps = await openTaps(N, { bridge: 'br0', ...(guarded ? { guard: sticky } : {}) });
      });
      (guarded ? bulk.g : bulk.u).push(ms);
      (guarded ? bulk.gCpu : bulk.uCpu).push(cpuSelf() - c0);
      if (guarded && run === 0) assertGuarded(taps[N - 1].name);
      await destroyTaps(taps);
    }
  }
  row(`create + attach ${N} taps, guarded`, 'openTaps(N, { bridge, guard })', bulk.g, 'openTaps(N, { bridge })', bulk.u, 1.3, 'ms',
    `guard \`isolated mac=sticky:1 ${REST}\` (alias, port flags, clsact + BPF filter; the tap comes up after them)`);
  row(`create + attach ${N} taps, guarded, CPU (user + sys)`, 'openTaps(N, { bridge, guard })', bulk.gCpu, 'openTaps(N, { bridge })', bulk.uCpu, null);

  // 2. One guarded attach with 1 guarded port present, and with N: rounds alternate (the N − 1
  //    others are made and destroyed in each). The measured tap pins a MAC none of them has.
  const MEASURED = 0xffffff;
  const flat = { one: [], many: [], oneOpen: [], manyOpen: [], onePlain: [], manyPlain: [], amongPlain: [], plainAmongPlain: [], serialG: [], serialU: [] };
  /**
   * ONE attaches (openTap, then closeTap), guarded or not: ms per attach, open + close and open
   * alone. The guarded one pins a MAC none of the present ports has.
   */
  const attaches = async (guarded) => {
    let open = 0;
    const t0 = now();
    for (let i = 0; i < ONE; i++) {
      const t1 = now();
      const tap = await openTap({ bridge: 'br1', ...(guarded ? { guard: guardOf(MEASURED) } : {}) });
      open += now() - t1;
      closeTap(tap);
    }
    return [(now() - t0) / ONE, open / ONE];
  };
  await attaches(true);
  for (let run = 0; run < RUNS; run++) {
    const first = await openTap({ bridge: 'br1', name: 'gp0', guard: guardOf(0) });
    let [both, open] = await attaches(true);
    flat.one.push(both);
    flat.oneOpen.push(open);
    flat.onePlain.push((await attaches(false))[1]);
    const present = [];
    let t0 = now();
    for (let i = 1; i < N; i++) present.push(await openTap({ bridge: 'br1', name: `gp${i}`, guard: guardOf(i) }));
    flat.serialG.push(now() - t0);
    if (run === 0) assertGuarded(`gp${N - 1}`);
    [both, open] = await attaches(true);
    flat.many.push(both);
    flat.manyOpen.push(open);
    flat.manyPlain.push((await attaches(false))[1]);
    await destroyTaps([first, ...present]);
    const plain = [];
    t0 = now();
    for (let i = 1; i < N; i++) plain.push(await openTap({ bridge: 'br1', name: `gp${i}` }));
    flat.serialU.push(now() - t0);
    flat.amongPlain.push((await attaches(true))[1]);
    flat.plainAmongPlain.push((await attaches(false))[1]);
    await destroyTaps(plain);
  }
  row(`one guarded attach (openTap + closeTap), ${N} guarded ports present`, `${N} present`, flat.many, '1 present', flat.one, 1.2, 'ms',
    `per attach, averaged over ${ONE}; each pins its own MAC (\`isolated mac=MAC ${REST}\`); the close waits for the kernel's teardown`);
  row(`one guarded attach (openTap alone), ${N} guarded ports present`, `${N} present`, flat.manyOpen, '1 present', flat.oneOpen, 1.2);
  row(`one unguarded attach (openTap alone), ${N} guarded ports present`, `${N} present`, flat.manyPlain, '1 present', flat.onePlain, null, 'ms',
    'the bridge\'s own growth with its ports, for comparison with the row above');
  row(`one unguarded attach (openTap alone), ${N} unguarded ports present`, `${N} present`, flat.plainAmongPlain, '1 present', flat.onePlain, null, 'ms',
    'without any guard: what the bridge itself adds per port present');
  row(`one guarded attach (openTap alone), ${N} ports present: guarded against unguarded ones`, `${N} guarded present`, flat.manyOpen, `${N} unguarded present`, flat.amongPlain, null, 'ms',
    'what the guarded ports present add, beyond the bridge\'s own growth');
  row('one attach (openTap alone), guarded against unguarded', `guarded, 1 port present`, flat.oneOpen, 'unguarded, 1 port present', flat.onePlain, null);
  row(`create + attach ${N - 1} taps one by one, guarded`, 'openTap({ bridge, guard }) × N (a MAC list each)', flat.serialG, 'openTap({ bridge }) × N', flat.serialU, null);

  // 3. The anchor: the reference CNI `bridge` plugin with macspoofchk (one nft process per ADD),
  //    CNI_N containers ADDed one by one, interleaved with as many guarded qbh taps; then CNI_K
  //    ADDs (each DELed after, untimed) against CNI_K guarded taps, at CNI_N present.
  const CNI = '/usr/lib/cni/bridge';
  const missing = [CNI, '/usr/sbin/nft'].filter((f) => !existsSync(f));
  if (missing.length > 0) {
    info('the CNI anchor', `not measured: ${missing.join(' and ')} missing (apt-get install containernetworking-plugins nftables)`);
    return;
  }
  mkdirSync('/run/netns', { recursive: true });
  const conf = (spoof) => JSON.stringify({
    cniVersion: '1.0.0', name: 'anchor', type: 'bridge', bridge: 'cni0', isGateway: false, macspoofchk: spoof,
    ipam: { type: 'host-local', subnet: '10.88.0.0/16', dataDir: join(dir, 'cni-ipam') },
  });
  /** Runs the plugin; its wall ms (its CPU ms, with the nft processes it waits for, into `cpu`). */
  const cni = (command, id, spoof = true, cpu = []) => {
    const c0 = cpuChildren();
    const t0 = now();
    const r = spawnSync(CNI, [], {
      input: conf(spoof), encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'],
      env: { PATH, CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: `/run/netns/${id}`, CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni' },
    });
    const ms = now() - t0;
    cpu.push(cpuChildren() - c0);
    if (r.status !== 0) throw new Error(`CNI ${command} ${id}: exit ${r.status}: ${r.stdout}${r.stderr}`);
    return ms;
  };
  sh('ip', 'link', 'add', 'br2', 'type', 'bridge');
  sh('ip', 'link', 'set', 'br2', 'mtu', '1400', 'up');
  const anchor = { cni: [], qbh: [], cniOne: [], qbhOne: [], cniPlain: [], cniCpu: [], qbhCpu: [], cniOneCpu: [], qbhOneCpu: [] };
  const held = [];
  for (let i = 0; i < CNI_N; i++) {
    sh('ip', 'netns', 'add', `c${i}`);
    anchor.cni.push(cni('ADD', `c${i}`, true, anchor.cniCpu));
    const c0 = cpuSelf();
    const t0 = now();
    held.push(await openTap({ bridge: 'br2', name: `a${i}`, guard: guardOf(i) }));
    anchor.qbh.push(now() - t0);
    anchor.qbhCpu.push(cpuSelf() - c0);
  }
  const rules = JSON.parse(String(shOut('nft', '-j', 'list', 'ruleset'))).nftables.filter((o) => o.rule).length;
  for (let k = 0; k < CNI_K; k++) {
    // qbh first: a netns deleted just before would tear down (under the RTNL lock) while it runs.
    const c0 = cpuSelf();
    const t0 = now();
    const tap = await openTap({ bridge: 'br2', guard: guardOf(MEASURED) });
    anchor.qbhOne.push(now() - t0);
    anchor.qbhOneCpu.push(cpuSelf() - c0);
    closeTap(tap);
    for (const spoof of [true, false]) {
      const id = `x${k}${spoof ? 's' : 'p'}`;
      sh('ip', 'netns', 'add', id);
      (spoof ? anchor.cniOne : anchor.cniPlain).push(cni('ADD', id, spoof, spoof ? anchor.cniOneCpu : []));
      cni('DEL', id, spoof);
      sh('ip', 'netns', 'delete', id);
    }
    await new Promise((r) => setTimeout(r, SETTLE_MS));
  }
  const sum = (xs) => xs.reduce((a, b) => a + b, 0);
  row(`one guarded port with ${CNI_N} present: qbh against the CNI bridge plugin`, 'openTap({ bridge, guard })', anchor.qbhOne, 'CNI `bridge` ADD, macspoofchk (veth, netns, IPAM, nft)', anchor.cniOne, null, 'ms',
    `${CNI_K} of each at ${CNI_N} present (${rules} nft rules); the plugin does more than a guard (a veth pair into a netns, addresses), which the next row prices`);
  row(`one guarded port with ${CNI_N} present: qbh against the CNI bridge plugin, CPU (user + sys)`, 'openTap({ bridge, guard })', anchor.qbhOneCpu, 'CNI `bridge` ADD, macspoofchk (with its nft processes)', anchor.cniOneCpu, null, 'ms',
    'the plugin\'s from wait4 (10 ms ticks), qbh\'s from process.cpuUsage(); kernel work left to kworkers is in neither');
  row(`CNI bridge ADD with ${CNI_N} present: macspoofchk on against off`, 'ADD, macspoofchk: true', anchor.cniOne, 'ADD, macspoofchk: false', anchor.cniPlain, null);
  row(`${CNI_N} guarded ports made one by one, in total`, `openTap({ bridge, guard }) × ${CNI_N}`, [sum(anchor.qbh)], `CNI \`bridge\` ADD × ${CNI_N}, macspoofchk`, [sum(anchor.cni)], null, 'ms',
    `interleaved one by one; per port, median ${median(anchor.qbh).toFixed(2)} ms against ${median(anchor.cni).toFixed(1)} ms (last 50: ${median(anchor.qbh.slice(-50)).toFixed(2)} against ${median(anchor.cni.slice(-50)).toFixed(1)})`);
  row(`${CNI_N} guarded ports made one by one, in total, CPU (user + sys)`, `openTap({ bridge, guard }) × ${CNI_N}`, [sum(anchor.qbhCpu)], `CNI \`bridge\` ADD × ${CNI_N}, macspoofchk`, [sum(anchor.cniCpu)], null);
  await destroyTaps(held);
}

// ---------- guard-helper: the guarded helper attach, direct and through qbhd (issue 23) ----------
/**
 * The helper direct (root) and through qbhd (uid 65534, no capabilities), interleaved: br0
 * unguarded, br1 guarded by a `guard` line, both in one bridge.conf.
 */
async function suiteGuardHelper() {
  const ITER = QUICK ? 15 : 40;
  const { tapInfo } = await import('../dist/tun/index.js');
  sh('mount', '-t', 'tmpfs', 'qbh-bench-run', '/run');
  for (const br of ['br0', 'br1']) {
    sh('ip', 'link', 'add', br, 'type', 'bridge');
    sh('ip', 'link', 'set', br, 'mtu', '1400', 'up');
  }
  privateEtcQemu(`allow br0\nallow br1\nguard br1 ${wordsFor('52:54:00:00:00:01')}\n`, { runIsTmpfs: true });
  const HELPER = join(ROOT, 'bin', 'qemu-bridge-helper');
  const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all'];
  /** spawn → 1 byte + fd received → exit (wall ms); `check` is called with the tap's name. */
  const helperOnce = (cmd, check) => {
    const [qemuEnd, helperEnd] = native.socketpair(1);
    const t0 = now();
    const r = spawnSync(cmd[0], cmd.slice(1), { stdio: ['ignore', 'ignore', 'pipe', helperEnd], env: ENV, encoding: 'utf8' });
    const got = native.recvFds(qemuEnd, 1, 1, 1000);
    const ms = now() - t0;
    native.close(helperEnd);
    native.close(qemuEnd);
    if (r.status !== 0 || got?.fds.length !== 1) throw new Error(`${cmd.join(' ')}: exit ${r.status}: ${r.stderr.trim()}`);
    try {
      check?.(tapInfo(got.fds[0]).name);
    } finally {
      for (const fd of got.fds) native.close(fd);
    }
    return ms;
  };
  const helperArgs = (br) => [HELPER, '--use-vnet', `--br=${br}`, '--fd=3'];
  const paths = { direct: (br) => helperArgs(br), daemon: (br) => [...NOBODY, ...helperArgs(br)] };
  mkdirSync('/run/qbh', { mode: 0o755 });
  const daemon = spawn(join(ROOT, 'dist', 'qbhd.cjs'), [], { stdio: ['ignore', 'ignore', 'pipe'], env: ENV });
  let daemonLog = '';
  daemon.stderr.setEncoding('utf8');
  daemon.stderr.on('data', (d) => (daemonLog = (daemonLog + d).slice(-4096)));
  for (let i = 0; i < 200 && !existsSync('/run/qbh/qbhd.sock'); i++) await new Promise((r) => setTimeout(r, 25));
  /** qbhd's own CPU ms so far (utime + stime of /proc/PID/stat, 10 ms ticks). */
  const daemonCpu = () => {
    const f = readFileSync(`/proc/${daemon.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  };
  for (const [path, cmd] of Object.entries(paths)) {
    try {
      if (path === 'daemon' && !existsSync('/run/qbh/qbhd.sock')) throw new Error(`qbhd did not start: ${daemonLog.trim()}`);
      helperOnce(cmd('br0'));
      helperOnce(cmd('br1'), assertGuarded);
    } catch (e) {
      info(`guarded helper attach, ${path}`, `not measured: ${String(e.message).split('\n')[0]}`);
      continue;
    }
    const w = { g: [], u: [] };
    const qbhd = { g: 0, u: 0 };
    for (let i = 0; i < ITER; i++) {
      let d0 = daemonCpu();
      w.u.push(helperOnce(cmd('br0')));
      qbhd.u += daemonCpu() - d0;
      d0 = daemonCpu();
      w.g.push(helperOnce(cmd('br1')));
      qbhd.g += daemonCpu() - d0;
    }
    const via = path === 'direct' ? 'direct (root)' : 'through qbhd (uid 65534, no capabilities)';
    row(`helper attach ${via}, guarded, wall`, '`guard br1 …` (a MAC list)', w.g, 'no guard (`allow br0`)', w.u, 1.15, 'ms');
    const driver = join(dir, 'rusage.py');
    writeFileSync(driver, RUSAGE_DRIVER);
    const ru = JSON.parse(String(shOut(PY, driver, String(ITER), JSON.stringify([['u', cmd('br0'), true], ['g', cmd('br1'), true]]))));
    row(`helper attach ${via}, guarded, CPU time of the helper process`, '`guard br1 …` (a MAC list)', ru.g.map((x) => x[0]), 'no guard (`allow br0`)', ru.u.map((x) => x[0]), path === 'direct' ? 1.15 : null, 'ms',
      path === 'direct' ? '' : 'the tap and its guard are made by qbhd: see its CPU in the next row');
    if (path === 'daemon') {
      row(`helper attach ${via}, guarded, qbhd's CPU per attach`, '`guard br1 …` (a MAC list)', [qbhd.g / ITER], 'no guard (`allow br0`)', [qbhd.u / ITER], null, 'ms',
        `the daemon's utime + stime over the ${ITER} interleaved attaches of each, divided by ${ITER} (10 ms ticks)`);
    }
  }
  daemon.kill('SIGTERM');
  await new Promise((r) => daemon.on('exit', r));
}
