// The daemon path against direct mode and the Node floor, in one run:
//  1. helper attach, spawn → fd received → exit, interleaved: qbh's helper through the daemon (uid
//     65534, no capabilities), qbh's helper in direct mode (uid 65534 with an ambient CAP_NET_ADMIN),
//     and `node -e 0`, all three behind the same `setpriv` hop; medians and p90.
//  2. daemon latency with 200 concurrent clients (connect → reply), p50/p99: check requests (ACL
//     evaluation, no tap) and tap requests (the tap is made and sent; each client holds its fd until
//     the round ends, as QEMU would); clients retry EAGAIN (busy) like the helper does.
//  3. daemon RSS before/after 10 000 requests (after a warm-up of 10 000).
// Every Node process runs with NODE_EXTRA_CA_CERTS and NODE_OPTIONS removed from its environment
// (a clean env: PATH only). Runs itself in fresh network and mount namespaces, as root.
//
//   node bench/daemon.mjs [iterations=60]        (build first: npm run prepare)
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeSync } from 'node:fs';
import net from 'node:net';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { privateEtcQemu } from './lib.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const ITER = Number(process.argv[2] ?? 60);

if (process.env.QBH_BENCH_NETNS !== '1') {
  const r = spawnSync('unshare', ['--net', '--mount', '--propagation', 'private', '--', process.execPath, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, QBH_BENCH_NETNS: '1' },
  });
  process.exit(r.status ?? 1);
}

const native = createRequire(import.meta.url)(join(ROOT, 'build', 'Release', 'qbh.node'));
const run = (cmd, ...args) => spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
run('ip', 'link', 'set', 'lo', 'up');
run('ip', 'link', 'add', 'br0', 'type', 'bridge');
run('ip', 'link', 'set', 'br0', 'mtu', '1400');
// /run is a tmpfs of this mount namespace (the bench uses nothing else there): /run/qbh for the
// daemon, the upper layer of an /etc overlay if /etc/qemu must be made, a 0666 tun node for direct mode.
run('mount', '-t', 'tmpfs', 'qbh-bench-run', '/run');
privateEtcQemu('allow br0\n', { runIsTmpfs: true });
mkdirSync('/run/qbh', { mode: 0o755 });
run('mknod', '/run/tun', 'c', '10', '200');
chmodSync('/run/tun', 0o666);
run('mount', '--bind', '/run/tun', '/dev/net/tun');

const ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };
const HELPER = join(ROOT, 'bin', 'qemu-bridge-helper');
const SOCKET = '/run/qbh/qbhd.sock';
const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
const subjects = [
  { name: 'node -e 0', cmd: [...NOBODY, '--inh-caps=-all', 'node', '-e', '0'], sends: false },
  { name: 'helper, direct mode (ambient CAP_NET_ADMIN)', cmd: [...NOBODY, '--inh-caps=+net_admin', '--ambient-caps=+net_admin', HELPER, '--use-vnet', '--br=br0', '--fd=3'], sends: true },
  { name: 'helper through the daemon (no capabilities)', cmd: [...NOBODY, '--inh-caps=-all', HELPER, '--use-vnet', '--br=br0', '--fd=3'], sends: true },
];

const daemon = spawn(join(ROOT, 'dist', 'qbhd.cjs'), [], { stdio: ['ignore', 'ignore', 'pipe'], env: ENV });
let daemonLog = '';
daemon.stderr.setEncoding('utf8');
daemon.stderr.on('data', (d) => (daemonLog = (daemonLog + d).slice(-4096)));
for (let i = 0; i < 200 && !existsSync(SOCKET); i++) await new Promise((r) => setTimeout(r, 25));
if (!existsSync(SOCKET)) throw new Error(`the daemon did not start: ${daemonLog}`);
const rssIdle = () => Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${daemon.pid}/status`, 'utf8'))[1]);
const idle = rssIdle();

/** One spawn → exit with the socket at fd 3; checks the 1-byte + fd hand-off. */
function once(s) {
  const [qemuEnd, helperEnd] = native.socketpair(1);
  const t0 = process.hrtime.bigint();
  const r = spawnSync(s.cmd[0], s.cmd.slice(1), { stdio: ['ignore', 'ignore', 'pipe', helperEnd], env: ENV });
  const got = s.sends ? native.recvFds(qemuEnd, 1, 1, 1000) : null;
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  native.close(helperEnd);
  native.close(qemuEnd);
  if (r.status !== 0) throw new Error(`${s.name}: exit ${r.status} ${r.stderr}`);
  if (s.sends && (!got || got.fds.length !== 1)) throw new Error(`${s.name}: no fd received`);
  for (const fd of got?.fds ?? []) native.close(fd);
  return ms;
}

const quantile = (xs, q) => {
  const a = [...xs].sort((x, y) => x - y);
  return a[Math.min(a.length - 1, Math.max(0, Math.ceil(q * a.length) - 1))];
};
const rss = () => Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${daemon.pid}/status`, 'utf8'))[1]);

// 1. Attach, interleaved.
for (const s of subjects) once(s);
const wall = new Map(subjects.map((s) => [s.name, []]));
for (let i = 0; i < ITER; i++) for (const s of subjects) wall.get(s.name).push(once(s));
const floor = quantile(wall.get('node -e 0'), 0.5);
console.log(`helper attach, ${ITER} interleaved runs each, clean env (no NODE_EXTRA_CA_CERTS/NODE_OPTIONS); Node ${process.version}`);
console.log('subject'.padEnd(46), 'p50 ms'.padStart(8), 'p90 ms'.padStart(8), '× node -e 0');
for (const s of subjects) {
  const xs = wall.get(s.name);
  console.log(s.name.padEnd(46), quantile(xs, 0.5).toFixed(2).padStart(8), quantile(xs, 0.9).toFixed(2).padStart(8), (quantile(xs, 0.5) / floor).toFixed(3).padStart(8));
}

// 2. Latency with 200 concurrent clients.
const line = { check: '{"v":1,"op":"check"}\n', tap: '{"v":1,"op":"tap","bridge":"br0","vnet_hdr":true}\n' };
function request(kind) {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(SOCKET);
    let got = '';
    s.setEncoding('utf8');
    s.on('connect', () => s.write(line[kind]));
    // Node's stream drops the SCM_RIGHTS fd of a tap reply: the kernel closes it, the tap goes away.
    s.on('data', (d) => (got += d));
    s.on('close', () => resolve(got === '' ? { ok: false, errno: 11 } : JSON.parse(got)));
    // A busy reply can come (and the daemon close) before the request is written: EPIPE, then
    // Node stops reading; treated as the busy reply it was.
    s.on('error', (e) => (e.code === 'EPIPE' || e.code === 'ECONNRESET' ? resolve({ ok: false, errno: 11 }) : reject(e)));
  });
}
/**
 * A tap request that keeps the fd, as QEMU would: read with the addon's recvmsg on a libuv watch
 * (a Node stream would drop the fd, and the kernel's teardown of each dropped tap, which waits
 * under the RTNL lock (docs/performance.md), would then be what the bench measures).
 */
const held = [];
function tapRequest() {
  return new Promise((resolve, reject) => {
    let fd;
    try {
      fd = native.unixConnect(SOCKET, 10000);
    } catch (e) {
      return reject(e);
    }
    try {
      writeSync(fd, line.tap);
    } catch {
      // busy and closed before the write: the reply is still readable
    }
    let got = '';
    const stop = native.watch(fd, () => {
      const r = native.recvFds(fd, 65536, 4, 0);
      if (r === null) return;
      held.push(...r.fds);
      got += r.data.toString();
      if (r.data.length > 0 && !got.endsWith('\n')) return;
      stop();
      native.close(fd);
      resolve(got === '' ? { ok: false, errno: 11 } : JSON.parse(got));
    });
  });
}
async function client(kind) {
  const t0 = process.hrtime.bigint();
  for (let attempt = 0; ; attempt++) {
    const r = kind === 'tap' ? await tapRequest() : await request(kind);
    if (r.ok) return Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.errno !== 11) throw new Error(JSON.stringify(r));
    await new Promise((res) => setTimeout(res, Math.min(200, 5 << Math.min(attempt, 6)) * (0.5 + Math.random())));
  }
}
for (const kind of ['check', 'tap']) {
  const all = [];
  const rounds = 5;
  let busy = 0;
  for (let r = 0; r < rounds; r++) {
    const t1 = Date.now();
    all.push(...(await Promise.all(Array.from({ length: 200 }, () => client(kind)))));
    busy += Date.now() - t1;
    // The taps live until their fds close, as with QEMU; the kernel's teardown is not timed.
    for (const fd of held.splice(0)) native.close(fd);
    while (spawnSync('ip', ['-o', 'link', 'show', 'type', 'tun'], { encoding: 'utf8' }).stdout.trim() !== '') await new Promise((res) => setTimeout(res, 50));
  }
  console.log(
    `daemon latency, ${kind} requests, 200 concurrent clients × ${rounds} rounds (one uid: 64 at a time, the rest retry EAGAIN): ` +
      `p50 ${quantile(all, 0.5).toFixed(2)} ms, p99 ${quantile(all, 0.99).toFixed(2)} ms, ${((rounds * 200) / (busy / 1000)).toFixed(0)} requests/s`,
  );
  await new Promise((res) => setTimeout(res, 500));
}

// 3. RSS over 10 000 requests.
async function many(n, kind) {
  let i = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (i++ < n) await client(kind);
  }));
}
const start = rss();
await many(10000, 'check');
const warm = rss();
await many(10000, 'check');
const after = rss();
console.log(`daemon RSS: ${idle} KiB idle after start, ${start} KiB after the runs above, ${warm} KiB after a 10 000-request warm-up, ${after} KiB after 10 000 more check requests (${after - warm >= 0 ? '+' : ''}${after - warm} KiB)`);

daemon.kill('SIGTERM');
await new Promise((r) => daemon.on('exit', r));
