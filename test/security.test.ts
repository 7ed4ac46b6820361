// Issue 15: every path that failed open, each as the user meets it — the helper as QEMU runs it
// (and, where it has an answer, the C helper beside it) — plus the privileged helper's immunity to
// its caller's environment; issue 20: the ACL read behind a setuid or setgid wrapper (SIGUSR1:
// test/helper-sigusr1.test.ts). Each case failed on the code before the fix. Private netns + mount
// ns (harness), tmpfs over /etc/qemu.
import './harness.js';
import t from 'tap';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ipj, linkNames, privateEtcQemu, sh } from './harness.js';
import { native } from '../src/native.js';
import { ACL_MAX_FILE_BYTES, ACL_MAX_TOTAL_BYTES, checkAcl, evaluateAcl, loadAcl, memoryReader, UserDb, type AclReader } from '../src/acl/index.js';
import { monitor, type MonitorEvent } from '../src/netlink/monitor.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const OURS = join(ROOT, 'bin', 'qemu-bridge-helper');
const C_HELPER = '/usr/lib/qemu/qemu-bridge-helper';
const QBH = join(ROOT, 'dist', 'qbh.cjs');
const TUNGETIFF = 0x800454d2;
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const DENIED = 'access denied by acl file\n';
const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=+net_admin', '--ambient-caps=+net_admin'];

execFileSync(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs')], { stdio: 'inherit' });

privateEtcQemu();
sh('ip', 'link', 'add', 'br0', 'type', 'bridge');
sh('ip', 'link', 'set', 'br0', 'mtu', '1400');
sh('ip', 'link', 'add', 've0', 'type', 'veth', 'peer', 'name', 've1');
// A 0666 /dev/net/tun for the runs as uid 65534, in this mount namespace only.
mkdirSync('/etc/qemu/.dev', { mode: 0o700 });
sh('mknod', '/etc/qemu/.dev/tun', 'c', '10', '200');
chmodSync('/etc/qemu/.dev/tun', 0o666);
sh('mount', '--bind', '/etc/qemu/.dev/tun', '/dev/net/tun');
const FIXTURES = new Set(linkNames());
const leftovers = () => linkNames().filter((n) => !FIXTURES.has(n));

function acl(text: string, files: Record<string, string> = {}): void {
  writeFileSync('/etc/qemu/bridge.conf', text, { mode: 0o644 });
  for (const [p, data] of Object.entries(files)) writeFileSync(p, data, { mode: 0o644 });
}

interface Outcome {
  status: number | null;
  stderr: string;
  fds: number;
  tap: { name: string; master: string | undefined } | null;
  ms: number;
}

/** Plays QEMU: a socket at fd 3, the helper run with an empty environment unless `env` says otherwise. */
function handOff(helper: string, args: string[], opts: { env?: Record<string, string>; prefix?: string[]; timeout?: number; cwd?: string } = {}): Outcome {
  const [qemuEnd, helperEnd] = native.socketpair(1);
  const cmd = [...(opts.prefix ?? []), helper, ...args];
  const t0 = Date.now();
  const r = spawnSync(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe', helperEnd], env: opts.env ?? { PATH }, timeout: opts.timeout ?? 20000, cwd: opts.cwd });
  const ms = Date.now() - t0;
  native.close(helperEnd);
  const got = native.recvFds(qemuEnd, 16, 4, 0);
  native.close(qemuEnd);
  let tap: Outcome['tap'] = null;
  for (const fd of got?.fds ?? []) {
    const ifr = Buffer.alloc(40);
    native.ioctl(fd, TUNGETIFF, ifr);
    const name = ifr.toString('latin1', 0, 16).replace(/\0.*$/s, '');
    tap = { name, master: ipj<any[]>('link', 'show', 'dev', name)[0]?.master };
  }
  for (const fd of got?.fds ?? []) native.close(fd);
  return { status: r.status, stderr: String(r.stderr), fds: got?.fds.length ?? 0, tap, ms };
}

const LEASE_HOLDER = `
import fcntl, os, signal, sys, time
path, mode = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDONLY)
def on_sigio(sig, frame):
    if mode == 'release':
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        print('released', flush=True)
signal.signal(signal.SIGIO, on_sigio)
fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
print('ready', flush=True)
time.sleep(60)
`;

/** Takes a write lease on `path` in a python3 process; `release`: gives it up on SIGIO (as a holder should). */
async function holdLease(path: string, mode: 'release' | 'hold'): Promise<ChildProcess> {
  const child = spawn('python3', ['-c', LEASE_HOLDER, path, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => (String(d).startsWith('ready') ? resolve() : reject(new Error(String(d)))));
    child.once('exit', (c) => reject(new Error(`lease holder exited ${c}`)));
  });
  return child;
}

/** Runs the helper in the background (spawn), for cases that must act on it while it runs. */
function helperAsync(args: string[], env: Record<string, string>) {
  const [qemuEnd, helperEnd] = native.socketpair(1);
  const child = spawn(OURS, args, { stdio: ['ignore', 'pipe', 'pipe', helperEnd], env });
  native.close(helperEnd);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += String(d)));
  const done = new Promise<{ status: number | null; stderr: string }>((resolve) =>
    child.on('exit', (status) => {
      native.close(qemuEnd);
      resolve({ status, stderr });
    }),
  );
  return { child, done };
}

/** Whether a TCP connect to 127.0.0.1:port, made as uid 65534 (another local user), finds a listener. */
function listeningFor65534(port: number): boolean {
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'python3', '-c', `import socket; socket.create_connection(('127.0.0.1', ${port}), 1)`]);
  return r.status === 0;
}

t.test('1. a write lease on an included deny file: waited out, then denied (was: skipped, attached)', async (t) => {
  acl('allow all\ninclude /etc/qemu/deny.conf\n', { '/etc/qemu/deny.conf': 'deny br0\n' });
  const holder = await holdLease('/etc/qemu/deny.conf', 'release');
  const ours = handOff(OURS, ['--use-vnet', '--br=br0', '--fd=3']);
  holder.kill();
  t.equal(ours.stderr, DENIED, 'the deny in the leased include counts');
  t.equal(ours.status, 1);
  t.equal(ours.fds, 0);

  const holderC = await holdLease('/etc/qemu/deny.conf', 'release');
  const c = handOff(C_HELPER, ['--use-vnet', '--br=br0', '--fd=3']);
  holderC.kill();
  t.same([c.status, c.stderr], [1, DENIED], 'the C helper blocks until the lease is released, then denies: the same outcome');

  // A holder that never lets go: bounded wait, then an error (never a skip).
  const stubborn = await holdLease('/etc/qemu/deny.conf', 'hold');
  const stuck = handOff(OURS, ['--use-vnet', '--br=br0', '--fd=3']);
  stubborn.kill();
  t.equal(stuck.status, 1);
  t.equal(stuck.fds, 0);
  t.equal(stuck.stderr, "cannot open acl file `/etc/qemu/deny.conf': EAGAIN (a file lease on it was not released within 2000 ms)\n");
  t.ok(stuck.ms < 10000, `gave up after ${stuck.ms} ms, not the kernel's 45 s lease-break-time`);
  t.same(leftovers(), []);
});

t.test('1b. an include that cannot be opened for want of descriptors (EMFILE) is fatal, never skipped', async (t) => {
  acl('allow all\ninclude /etc/qemu/deny.conf\n', { '/etc/qemu/deny.conf': 'deny br0\n' });
  // The main file is read first; then every descriptor is taken, so only the include meets EMFILE.
  const script = `
    import { openSync } from 'node:fs';
    import { callerReader, evaluateAcl } from ${JSON.stringify(join(ROOT, 'dist', 'acl', 'index.js'))};
    const read = callerReader();
    const main = read('/etc/qemu/bridge.conf');
    try { for (;;) openSync('/dev/null', 'r'); } catch {}
    const v = evaluateAcl('br0', { reader: (p, max) => (p === '/etc/qemu/bridge.conf' ? main : read(p, max)) });
    process.stdout.write(JSON.stringify({ permitted: v.permitted, stderr: v.stderr.toString() }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { PATH } });
  t.same(JSON.parse(r.stdout), { permitted: false, stderr: "cannot open acl file `/etc/qemu/deny.conf': EMFILE\n" });
});

t.test('2. a --br that is not a bridge: refused before any tap exists, with the C helper message', async (t) => {
  acl('allow all\n');
  const ac = new AbortController();
  const events: MonitorEvent[] = [];
  const it = monitor({ signal: ac.signal, groups: ['link'] });
  const first = it.next(); // joins the groups before anything happens
  const collecting = (async () => {
    for (let r = await first; !r.done; r = await it.next()) events.push(r.value);
  })();
  await new Promise((r) => setTimeout(r, 100));
  const strace = '/etc/qemu/strace.out';
  const ours = handOff(OURS, ['--use-vnet', '--br=ve0', '--fd=3'], { prefix: ['strace', '-f', '-qq', '-e', 'trace=ioctl,sendto,sendmsg', '-o', strace, '--'] });
  await new Promise((r) => setTimeout(r, 300));
  ac.abort();
  await collecting.catch(() => undefined);
  const c = handOff(C_HELPER, ['--use-vnet', '--br=ve0', '--fd=3']);
  t.equal(ours.stderr, "failed to add interface `tap0' to bridge `ve0': Operation not supported\n");
  t.equal(ours.stderr, c.stderr, 'the C helper says exactly this (after making tap0 and failing SIOCBRADDIF)');
  t.equal(ours.status, 1);
  t.equal(ours.fds, 0);
  const taps = events.filter((e) => e.type === 'link' || e.type === 'dellink' || e.type === 'port');
  t.same(taps, [], 'the kernel announced no new link and no port: no tap was made, nothing was enslaved');
  const trace = readFileSync(strace, 'utf8');
  t.notMatch(trace, /TUNSETIFF/, 'no TUNSETIFF');
  t.notMatch(trace, /RTM_NEWLINK/, 'no RTM_NEWLINK at all (so none with IFLA_MASTER)');

  // The name in the message is the one the kernel would have given, as the C helper's is.
  sh('ip', 'tuntap', 'add', 'dev', 'tap0', 'mode', 'tap');
  const ours1 = handOff(OURS, ['--br=ve0', '--fd=3']);
  const c1 = handOff(C_HELPER, ['--br=ve0', '--fd=3']);
  sh('ip', 'link', 'del', 'tap0');
  t.equal(ours1.stderr, "failed to add interface `tap1' to bridge `ve0': Operation not supported\n");
  t.equal(ours1.stderr, c1.stderr);
  t.same(leftovers(), []);
});

t.test('3. an altname cannot get past a deny of the real name, nor the reverse', async (t) => {
  sh('ip', 'link', 'property', 'add', 'dev', 'br0', 'altname', 'lan0');
  t.teardown(() => sh('ip', 'link', 'property', 'del', 'dev', 'br0', 'altname', 'lan0'));
  acl('allow all\ndeny br0\n');
  const ours = handOff(OURS, ['--use-vnet', '--br=lan0', '--fd=3']);
  t.same([ours.status, ours.stderr, ours.fds], [1, DENIED, 0], 'deny br0 denies --br=lan0');
  const c = handOff(C_HELPER, ['--use-vnet', '--br=lan0', '--fd=3']);
  t.same([c.status, c.fds], [0, 1], 'the C helper attaches (a documented deviation)');
  const cli = spawnSync(process.execPath, [QBH, 'acl', 'check', '--bridge', 'lan0'], { encoding: 'utf8', env: { PATH } });
  t.equal(cli.status, 1, 'qbh acl check decides as the helper does');
  t.match(cli.stdout, /^denied: "deny br0" at \/etc\/qemu\/bridge.conf:2 \(br0 is another name of the device "lan0" names\)/);

  acl('allow all\ndeny lan0\n');
  const reverse = handOff(OURS, ['--br=br0', '--fd=3']);
  t.same([reverse.status, reverse.stderr], [1, DENIED], 'deny lan0 denies --br=br0');

  acl('allow br0\n');
  const allowOther = handOff(OURS, ['--br=lan0', '--fd=3']);
  t.same([allowOther.status, allowOther.stderr], [1, DENIED], 'an allow counts for the name asked for only, as in C');

  acl('allow lan0\n');
  const ok = handOff(OURS, ['--use-vnet', '--br=lan0', '--fd=3']);
  t.same([ok.status, ok.stderr, ok.tap?.master], [0, '', 'br0'], 'allowed by its altname: the tap joins br0');
  t.same(leftovers(), []);
});

t.test('4. an identity deny naming an unknown user or group denies everybody, and is reported', async (t) => {
  for (const rule of ['deny-user ghost all', 'deny-group ghosts all', 'deny-user ghost br0']) {
    acl(`allow all\n${rule}\n`);
    const r = handOff(OURS, ['--br=br0', '--fd=3']);
    t.same([r.status, r.stderr, r.fds], [1, DENIED, 0], `"${rule}" + allow all: denied`);
  }
  acl('allow-user ghost br0\n');
  t.same(handOff(OURS, ['--br=br0', '--fd=3']).stderr, DENIED, 'an allow naming nobody allows nobody');

  acl('allow all\ndeny-user ghost all\n');
  const db = new UserDb('root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n', 'root:x:0:\n');
  const check = checkAcl({ bridge: 'br0', uid: 65534, gid: 65534, userDb: db, harden: false });
  t.equal(check.allowed, false);
  t.match(check.reason, /no user "ghost" exists: a deny naming an unknown user denies every caller/);
  t.match(check.warnings.join('\n'), /no user "ghost" in \/etc\/passwd; "deny-user ghost all" denies every caller/);

  const cli = spawnSync(process.execPath, [QBH, 'acl', 'check', '--bridge', 'br0'], { encoding: 'utf8', env: { PATH } });
  t.equal(cli.status, 1);
  t.match(cli.stdout, /warning: .*"deny-user ghost all" denies every caller/);
  const doctor = spawnSync(process.execPath, [QBH, 'doctor', '--json'], { encoding: 'utf8', env: { PATH } });
  const principals = (JSON.parse(doctor.stdout) as { checks: any[] }).checks.find((r) => r.check === 'acl-principals');
  t.match(principals, { ok: false, summary: /deny-user ghost all.*denies every caller/ }, 'qbh doctor reports it');
});

t.test('5. --ifname cannot squat infrastructure names; allow-ifname decides per identity', async (t) => {
  acl('allow all\n');
  for (const name of ['eth%d', 'virbr0', 'br9', 'lo0', 'docker0']) {
    const r = handOff(OURS, ['--use-vnet', '--br=br0', '--fd=3', `--ifname=${name}`]);
    t.same([r.status, r.fds], [1, 0], `--ifname=${name} refused`);
    t.equal(r.stderr, `tap name \`${name}' not allowed by acl file (allowed prefixes: tap, vnet)\n`);
  }
  t.same(leftovers(), [], 'no device was made under any of those names');
  for (const name of ['tap%d', 'vnet7']) {
    const r = handOff(OURS, ['--br=br0', '--fd=3', `--ifname=${name}`]);
    t.same([r.status, r.stderr], [0, ''], `--ifname=${name}: a default prefix`);
  }

  acl('allow all\nallow-ifname-user 65534 web\nallow-ifname-group 4242 db\n');
  const asNobody = handOff(OURS, ['--br=br0', '--fd=3', '--ifname=web%d'], { prefix: NOBODY });
  t.same([asNobody.status, asNobody.stderr, asNobody.tap?.name], [0, '', 'web0'], 'uid 65534 may name taps web…');
  const asRoot = handOff(OURS, ['--br=br0', '--fd=3', '--ifname=web%d']);
  t.equal(asRoot.stderr, "tap name `web%d' not allowed by acl file (allowed prefixes: tap, vnet)\n", 'root is not uid 65534');
  // The daemon's view: the same decision for a peer's credentials.
  const peer = (uid: number, groups: number[], ifname: string) => evaluateAcl('br0', { credentials: { uid, gid: uid, groups }, ifname, harden: false }).permitted;
  t.equal(peer(65534, [65534], 'web1'), true);
  t.equal(peer(1000, [1000], 'web1'), false);
  t.equal(peer(1000, [1000, 4242], 'db1'), true, 'by supplementary group');
  t.equal(peer(1000, [1000, 4242], 'eth0'), false);

  acl('allow all\nallow-ifname all\n');
  t.equal(evaluateAcl('br0', { ifname: 'anything' }).permitted, true, 'allow-ifname all: the admin opts out');
  acl('allow all\nallow-ifname \n');
  t.match(evaluateAcl('br0', { ifname: 'eth0' }).stderr.toString(), /^Invalid config line:/, 'an empty prefix is not "everything"');
  acl('allow all\n');
  t.same(leftovers(), []);
});

t.test('6. reads are bounded while reading: a 0-size pseudo-file is not read whole', async (t) => {
  // A process whose /proc/PID/maps is ~90 MB (size 0 to stat): 30000 mappings of a file with a long path.
  let deep = '/etc/qemu/deep';
  while (deep.length < 3000) deep += `/${'d'.repeat(200)}`;
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, 'f'), Buffer.alloc(4096));
  const mapper = spawn(
    'python3',
    ['-c', `
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
fd = os.open(sys.argv[1], os.O_RDONLY)
for i in range(30000):
    libc.mmap(None, 4096, 1, 2, fd, 0)
print('ready', flush=True)
time.sleep(60)
`, join(deep, 'f')],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  t.teardown(() => mapper.kill());
  await new Promise((resolve) => mapper.stdout!.once('data', resolve));
  const maps = `/proc/${mapper.pid}/maps`;
  acl(`allow all\ninclude ${maps}\n`);
  const r = handOff('/usr/bin/time', ['-f', 'peak %M', OURS, '--br=br0', '--fd=3']);
  t.equal(r.status, 1);
  t.equal(r.stderr.split('\n')[0], `acl file \`${maps}' is larger than ${ACL_MAX_FILE_BYTES} bytes`);
  const peakKiB = Number(/peak (\d+)/.exec(r.stderr)?.[1]);
  t.ok(peakKiB < 160 * 1024, `peak RSS ${peakKiB} KiB (was ~405 MB reading it whole)`);
  t.comment(`include of a ${'~90 MB'} /proc/PID/maps: ${r.ms} ms, peak RSS ${(peakKiB / 1024).toFixed(0)} MiB`);

  // The total across includes is passed to each read: no include is read past what is left.
  const asked: number[] = [];
  const MiB10 = 10 * 1024 * 1024;
  const main = Buffer.from(Array.from({ length: 8 }, (_, i) => `include /i${i}\n`).join(''));
  const reader: AclReader = (p, maxBytes) => {
    asked.push(maxBytes ?? -1);
    if (p === 'main') return { status: 'read', data: main, key: 'main' };
    return { status: 'read', data: Buffer.alloc(Math.min(MiB10, (maxBytes ?? MiB10) + 1), 0x23), key: p }; // '#': comments
  };
  t.throws(() => loadAcl('main', reader), { code: 'limit' });
  const expected = [ACL_MAX_FILE_BYTES, ...Array.from({ length: 7 }, (_, i) => ACL_MAX_TOTAL_BYTES - main.length - i * MiB10)];
  t.same(asked, expected, 'the main file gets the per-file cap, each include what is left of the total');
  t.same(loadAcl('main', memoryReader({ main: 'allow all\n' })).rules.length, 1);
});

t.test("7. the caller's environment does not reach the helper", async (t) => {
  acl('allow all\n');
  // --inspect-brk would stop the helper before its first line, waiting for a debugger on the port.
  const inspect = handOff(OURS, [], { env: { PATH, NODE_OPTIONS: '--inspect-brk=127.0.0.1:9333' }, timeout: 5000 });
  t.equal(inspect.status, 1, 'NODE_OPTIONS=--inspect-brk has no effect: the usage error comes at once');
  t.equal(inspect.stderr, 'Usage: qemu-bridge-helper [--use-vnet] --br=bridge --fd=unixfd\n');

  // As uid 65534 with an ambient CAP_NET_ADMIN, as a real attach: no preload runs, and another user
  // finds no inspector while the helper runs (a stubborn lease keeps it in its ACL read for 2 s).
  const marker = '/etc/qemu/preloaded';
  writeFileSync('/etc/qemu/preload.cjs', `require('fs').writeFileSync(${JSON.stringify(marker)}, 'x')`, { mode: 0o644 });
  const env = { PATH, NODE_OPTIONS: '--inspect=127.0.0.1:9334 --require /etc/qemu/preload.cjs', NODE_EXTRA_CA_CERTS: '/etc/qemu/nonexistent.pem', OPENSSL_CONF: '/etc/qemu/nonexistent.cnf' };
  const attach = handOff(OURS, ['--use-vnet', '--br=br0', '--fd=3'], { env, prefix: NOBODY });
  t.same([attach.status, attach.stderr, attach.fds], [0, '', 1], 'the attach works, silently');
  t.notOk(existsSync(marker), 'NODE_OPTIONS=--require did not run');

  acl('allow all\ninclude /etc/qemu/slow.conf\n', { '/etc/qemu/slow.conf': 'deny br9\n' });
  const stubborn = await holdLease('/etc/qemu/slow.conf', 'hold');
  const run = helperAsync(['--use-vnet', '--br=br0', '--fd=3'], env);
  await new Promise((r) => setTimeout(r, 700));
  t.notOk(listeningFor65534(9334), 'nothing listens on the NODE_OPTIONS inspector port');
  process.kill(run.child.pid!, 'SIGUSR1'); // would open an inspector on 127.0.0.1:9229
  await new Promise((r) => setTimeout(r, 500));
  t.notOk(listeningFor65534(9229), 'SIGUSR1 opened no inspector either');
  const end = await run.done;
  stubborn.kill();
  t.equal(end.status, 1, 'the helper went on (and failed closed on the held lease)');
  t.notOk(existsSync(marker));

  // The interpreter is fixed: a node earlier in PATH is never the one that runs.
  mkdirSync('/etc/qemu/bin', { recursive: true });
  writeFileSync('/etc/qemu/bin/node', `#!/bin/sh\necho hijacked > ${marker}\nexit 0\n`, { mode: 0o755 });
  acl('allow all\n');
  const hijack = handOff(OURS, ['--br=br0', '--fd=3'], { env: { PATH: `/etc/qemu/bin:${PATH}` } });
  t.same([hijack.status, hijack.fds], [0, 1]);
  t.notOk(existsSync(marker), 'PATH is not consulted for node');
  t.match(readFileSync(join(ROOT, 'dist', 'qemu-bridge-helper.cjs'), 'latin1').split('\n')[0]!, /^#!\/usr\/bin\/env -S -i \/\S+ /);
  t.same(leftovers(), []);
});

t.test("7b. nothing is loaded from the caller's working directory", async (t) => {
  // A package.json in the working directory or any directory above it (a world-writable /tmp) is
  // what require() from `node -e` consults first; "exports" under the name "" matched the bundle's
  // absolute path and loaded this file instead, as uid 65534 with CAP_NET_ADMIN here (as root from root's QEMU).
  acl('allow all\n');
  const marker = '/etc/qemu/cwd-loaded';
  mkdirSync('/etc/qemu/cwd/vm', { recursive: true });
  writeFileSync('/etc/qemu/cwd/package.json', JSON.stringify({ name: '', exports: { './*': './evil.cjs' } }), { mode: 0o644 });
  writeFileSync('/etc/qemu/cwd/evil.cjs', `require('fs').writeFileSync(${JSON.stringify(marker)}, 'x')`, { mode: 0o644 });
  for (const cwd of ['/etc/qemu/cwd', '/etc/qemu/cwd/vm']) {
    const r = handOff(OURS, ['--use-vnet', '--br=br0', '--fd=3'], { cwd, prefix: NOBODY });
    t.same([r.status, r.stderr, r.fds], [0, '', 1], `attached from ${cwd}, silently`);
    t.notOk(existsSync(marker), `no file named by ${cwd}'s package.json ran`);
  }
  t.same(leftovers(), []);
});

t.test('8. at every fd limit from the lowest Node runs under: one clean line, exit 1 (or success)', async (t) => {
  acl('allow all\ninclude /etc/qemu/inc.conf\n', { '/etc/qemu/inc.conf': 'deny br9\n' });
  let lowest = 8;
  while (lowest < 64 && spawnSync('prlimit', [`--nofile=${lowest}:${lowest}`, '/usr/bin/env', '-i', process.execPath, '-e', '0']).status !== 0) lowest++;
  // The helper inherits one more descriptor (the socket at fd 3): its floor is one higher. Below
  // it Node itself crashes before running any code (docs/helper.md, "Deviations from the C
  // helper"), which no launcher can change.
  t.comment(`node -e 0 runs from RLIMIT_NOFILE ${lowest}; the helper, with its socket, from ${lowest + 1}`);
  for (let n = lowest + 1; n < lowest + 25; n++) {
    const r = handOff('prlimit', [`--nofile=${n}:${n}`, OURS, '--use-vnet', '--br=br0', '--fd=3']);
    const lines = r.stderr === '' ? [] : r.stderr.replace(/\n$/, '').split('\n');
    if (r.status === 0) {
      t.same([lines, r.fds], [[], 1], `limit ${n}: attached, silently`);
      continue;
    }
    t.equal(r.status, 1, `limit ${n}: exit 1 (not a signal: ${r.status})`);
    t.equal(lines.length, 1, `limit ${n}: one line: ${JSON.stringify(r.stderr)}`);
    t.notMatch(r.stderr, /^\s+at |node:internal|\^/m, `limit ${n}: no stack trace`);
  }
  t.same(leftovers(), []);
});

// Issue 20, finding 6. Behind a setuid-root wrapper the helper read the ACL as root: an include
// only group 5000 may read granted its bridge to uid 4242, not in that group. The wrapper is a
// setuid-root (and a setgid) copy of env, on this test's tmpfs; the C helper, run by the same
// wrapper, drops to the real ids before reading and is the reference.
t.test('issue 20 #6: behind a setuid or setgid wrapper the ACL is read with the caller\'s real ids', async (t) => {
  sh('ip', 'link', 'add', 'br1', 'type', 'bridge');
  t.teardown(() => sh('ip', 'link', 'del', 'br1'));
  FIXTURES.add('br1');
  mkdirSync('/etc/qemu/wrap', { mode: 0o755 });
  const suid = '/etc/qemu/wrap/suid-env';
  const sgid = '/etc/qemu/wrap/sgid-env';
  copyFileSync('/usr/bin/env', suid);
  chmodSync(suid, 0o4755);
  copyFileSync('/usr/bin/env', sgid);
  chownSync(sgid, 0, 5000);
  chmodSync(sgid, 0o2755);
  const as4242 = (groups: string) => ['setpriv', '--reuid=4242', '--regid=4242', groups];
  const group5000Only = (mode: number) => {
    acl('allow br0\ninclude /etc/qemu/g5000.conf\n', { '/etc/qemu/g5000.conf': 'allow br1\n' });
    chownSync('/etc/qemu/g5000.conf', 0, 5000);
    chmodSync('/etc/qemu/g5000.conf', mode);
  };

  group5000Only(0o640);
  const ours = handOff(OURS, ['--use-vnet', '--br=br1', '--fd=3'], { prefix: [...as4242('--clear-groups'), suid] });
  t.same([ours.status, ours.stderr, ours.fds], [1, DENIED, 0], 'setuid root, uid 4242 not in group 5000: the include is unreadable, br1 denied');
  const c = handOff(C_HELPER, ['--use-vnet', '--br=br1', '--fd=3'], { prefix: [...as4242('--clear-groups'), suid] });
  t.same([c.status, c.stderr, c.fds], [1, DENIED, 0], 'the C helper behind the same wrapper: denied too');
  const viaGid = handOff(OURS, ['--use-vnet', '--br=br1', '--fd=3'], { prefix: [...as4242('--clear-groups'), sgid] });
  t.same([viaGid.status, viaGid.stderr, viaGid.fds], [1, DENIED, 0], 'setgid 5000 (as root runs it): the wrapper\'s group does not read it either');
  const mainOk = handOff(OURS, ['--use-vnet', '--br=br0', '--fd=3'], { prefix: [...as4242('--clear-groups'), suid] });
  t.same([mainOk.status, mainOk.stderr, mainOk.tap?.master], [0, '', 'br0'], 'the main file, readable by all, still allows br0: the helper works behind the wrapper');

  const member = handOff(OURS, ['--use-vnet', '--br=br1', '--fd=3'], { prefix: [...as4242('--groups=5000'), suid] });
  t.same([member.status, member.stderr, member.tap?.master], [0, '', 'br1'], 'uid 4242 in group 5000 (supplementary): reads it, allowed');
  group5000Only(0o644);
  const open = handOff(OURS, ['--use-vnet', '--br=br1', '--fd=3'], { prefix: [...as4242('--clear-groups'), suid] });
  t.same([open.status, open.stderr, open.tap?.master], [0, '', 'br1'], 'the include made world-readable: allowed');

  // The main file unreadable by the caller: the C helper's parse failure, as the C helper says it.
  acl('allow br0\n');
  chownSync('/etc/qemu/bridge.conf', 0, 5000);
  chmodSync('/etc/qemu/bridge.conf', 0o640);
  const oursMain = handOff(OURS, ['--br=br0', '--fd=3'], { prefix: [...as4242('--clear-groups'), suid] });
  const cMain = handOff(C_HELPER, ['--br=br0', '--fd=3'], { prefix: [...as4242('--clear-groups'), suid] });
  t.same([oursMain.status, oursMain.fds], [1, 0], 'a main file uid 4242 may not read: refused');
  t.equal(oursMain.stderr, cMain.stderr, `the C helper's words: ${JSON.stringify(cMain.stderr)}`);
  t.same(leftovers(), []);
});
