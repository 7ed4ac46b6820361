// qbh daemon end to end: the real helper, run as uid 65534 with no capabilities at all, gets its tap
// through the real daemon (root, in this test's namespaces), and QEMU's side receives it exactly as
// in direct mode. Refusals carry the C helper's texts; nothing is ever left behind. Private netns,
// mount ns, tmpfs over /etc/qemu and /run/qbh (harness).
import './harness.js';
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { privateEtcQemu, privateRunQbh, sh, withTunNode } from './harness.js';
import { CLEAN, NOBODY, ROOT, SOCKET, handOff, logged, startDaemon, taps, until, type Daemon } from './daemon-lib.js';

execFileSync(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs')], { stdio: 'inherit' });
privateEtcQemu();
privateRunQbh();
writeFileSync('/etc/qemu/bridge.conf', 'allow br0\nallow brgone\n', { mode: 0o644 });
sh('ip', 'link', 'add', 'br0', 'type', 'bridge');
sh('ip', 'link', 'set', 'br0', 'mtu', '1450');
sh('ip', 'link', 'add', 'br9', 'type', 'bridge'); // exists, but the ACL does not allow it

let daemon: Daemon;
t.before(async () => {
  daemon = await startDaemon();
});
t.teardown(async () => {
  if (daemon.child.exitCode === null) await daemon.stop();
});

t.test('uid 65534 without capabilities gets a tap through the daemon', async (t) => {
  const r = handOff(['--use-vnet', '--br=br0', '--fd=3']);
  t.equal(r.stderr, '');
  t.equal(r.stdout, '');
  t.equal(r.status, 0);
  t.equal(r.payload, '00', '1 byte 0x00 …');
  t.equal(r.fds, 1, '… and one SCM_RIGHTS fd, as direct mode');
  t.equal(r.tap?.flags, 0x5002, 'IFF_TAP|IFF_NO_PI|IFF_VNET_HDR');
  t.match(r.tap?.link, { ifname: /^tap\d+$/, mtu: 1450, master: 'br0', address: /^fe:/ });
  t.ok((r.tap?.link.flags as string[]).includes('UP'), 'UP');
  t.match(r.tap?.link.linkinfo.info_data, { type: 'tap', pi: false, vnet_hdr: true, persist: false });
  t.same(taps(), [], 'gone once the receiver closed the fd: the daemon kept no copy');
  t.ok(await logged(daemon, new RegExp(`qbhd: tap uid=65534 gid=65534 groups=- pid=\\d+ comm="node" parent="\\w+" bridge=br0 tap=${r.tap?.name} outcome=allowed rule=/etc/qemu/bridge.conf:1\\n`)), 'one audit line');

  const plain = handOff(['--br=br0', '--fd=3']);
  t.equal(plain.status, 0);
  t.equal(plain.tap?.flags, 0x1002, 'no --use-vnet: no IFF_VNET_HDR');
  const named = handOff(['--br=br0', '--fd=3', '--ifname=vnet%d']);
  t.equal(named.tap?.name, 'vnet0', 'the --ifname extension goes through the daemon too');
  t.same(taps(), []);
});

t.test('the daemon enforces allow-ifname for the peer, as the direct helper does', async (t) => {
  const squat = handOff(['--br=br0', '--fd=3', '--ifname=eth%d']);
  t.equal(squat.status, 1);
  t.equal(squat.stderr, "tap name `eth%d' not allowed by acl file (allowed prefixes: tap, vnet)\n", 'the direct helper\'s words');
  t.equal(squat.fds, 0, 'no fd handed over');
  writeFileSync('/etc/qemu/bridge.conf', 'allow br0\nallow brgone\nallow-ifname-user nobody vm\n', { mode: 0o644 });
  t.teardown(() => writeFileSync('/etc/qemu/bridge.conf', 'allow br0\nallow brgone\n', { mode: 0o644 }));
  const named = handOff(['--br=br0', '--fd=3', '--ifname=vm%d']);
  t.equal(named.tap?.name, 'vm0', 'allow-ifname-user for the kernel-verified uid lets it through');
  t.same(taps(), []);
});

t.test('an altname does not get past a deny through the daemon', async (t) => {
  writeFileSync('/etc/qemu/bridge.conf', 'allow all\ndeny br9\n', { mode: 0o644 });
  t.teardown(() => writeFileSync('/etc/qemu/bridge.conf', 'allow br0\nallow brgone\n', { mode: 0o644 }));
  sh('ip', 'link', 'property', 'add', 'dev', 'br9', 'altname', 'lan9');
  t.teardown(() => sh('ip', 'link', 'property', 'del', 'dev', 'br9', 'altname', 'lan9'));
  const r = handOff(['--br=lan9', '--fd=3']);
  t.equal(r.status, 1);
  t.equal(r.stderr, 'access denied by acl file\n');
  t.same(taps(), [], 'no tap made');
});

t.test('the daemon path is lean: no ACL read and no netlink socket in the helper', async (t) => {
  const trace = join(process.env.QBH_TEST_SCRATCH!, 'helper.strace');
  const r = handOff(['--use-vnet', '--br=br0', '--fd=3'], ['strace', '-f', '-qq', '-o', trace, '-e', 'trace=socket,openat,connect', ...NOBODY]);
  t.equal(r.status, 0, r.stderr);
  const calls = readFileSync(trace, 'utf8');
  t.match(calls, /connect\(\d+, \{sa_family=AF_UNIX, sun_path="\/run\/qbh\/qbhd\.sock"\}/, 'it asked the daemon');
  t.notMatch(calls, /AF_NETLINK/, 'no netlink socket');
  t.notMatch(calls, /bridge\.conf/, 'no ACL read');
  t.notMatch(calls, /\/dev\/net\/tun/, 'no tun device opened');
  t.same(taps(), []);
});

t.test('refusals are the C helper texts, printed unchanged; nothing is left', async (t) => {
  const denied = handOff(['--use-vnet', '--br=br9', '--fd=3']);
  t.equal(denied.stderr, 'access denied by acl file\n');
  t.equal(denied.status, 1);
  t.equal(denied.fds, 0);
  t.ok(await logged(daemon, /tap uid=65534 .* bridge=br9 tap=- outcome=denied rule=default-deny\n/), 'audit: denied, default deny');

  const gone = handOff(['--use-vnet', '--br=brgone', '--fd=3']);
  t.equal(gone.stderr, "failed to get mtu of bridge `brgone': No such device\n");
  t.equal(gone.status, 1);
  t.ok(await logged(daemon, /bridge=brgone tap=- outcome=failed rule=\/etc\/qemu\/bridge.conf:2 error="failed to get mtu/), 'audit: allowed by line 2, then failed');

  const closed = handOff(['--br=br0', '--fd=99']);
  t.equal(closed.stderr, 'failed to write fd to unix socket: Bad file descriptor\n', 'a closed --fd: the C message, as in direct mode');
  t.equal(closed.status, 1);
  t.same(taps(), [], 'the tap made for it is gone');
});

t.test('the Python example of docs/daemon.md gets a tap fd', async (t) => {
  const py = [
    'import socket, json, fcntl, struct',
    's = socket.socket(socket.AF_UNIX); s.connect("/run/qbh/qbhd.sock")',
    's.sendall(b\'{"v":1,"op":"tap","bridge":"br0","vnet_hdr":true}\\n\')',
    'data, fds, _, _ = socket.recv_fds(s, 65536, 1)',
    'ifr = fcntl.ioctl(fds[0], 0x800454d2, bytes(40))  # TUNGETIFF',
    'print(json.dumps({"reply": json.loads(data), "fds": len(fds), "name": ifr[:16].rstrip(b"\\0").decode(), "flags": struct.unpack("H", ifr[16:18])[0]}))',
  ].join('\n');
  const out = JSON.parse(execFileSync(CLEAN[0]!, [...CLEAN.slice(1), ...NOBODY, 'python3', '-c', py], { encoding: 'utf8' }));
  t.match(out, { reply: { v: 1, ok: true, op: 'tap', tap: /^tap\d+$/ }, fds: 1, flags: 0x5002 });
  t.equal(out.name, out.reply.tap, 'the fd is the tap the reply names');
  t.same(taps(), [], 'gone with the Python process');
});

t.test('usage errors and the name check stay in the helper', async (t) => {
  const before = daemon.log().length;
  const usage = handOff(['--br=br0']);
  t.equal(usage.stderr, 'Usage: qemu-bridge-helper [--use-vnet] --br=bridge --fd=unixfd\n');
  t.equal(usage.status, 1);
  const long = handOff(['--br=0123456789abcdef', '--fd=3']);
  t.equal(long.stderr, "name `0123456789abcdef' too long: 16\n");
  t.equal(long.status, 1);
  t.equal(daemon.log().length, before, 'the daemon was not asked');
});

t.test('a helper holding CAP_NET_ADMIN does not ask the daemon', async (t) => {
  const before = daemon.log().length;
  const r = handOff(['--br=br0', '--fd=3'], []); // root
  t.equal(r.status, 0);
  t.equal(daemon.log().length, before);
});

t.test('SIGTERM: stop accepting, finish the request in flight, exit 0', async (t) => {
  const d = await startDaemon(['--socket', '/run/qbh/other.sock']);
  const sock = net.createConnection('/run/qbh/other.sock');
  await once(sock, 'connect');
  sock.write('{"v":1,"op":"tap","bridge":"br0",'); // half a request: in flight
  await new Promise((r) => setTimeout(r, 100));
  d.child.kill('SIGTERM');
  t.ok(await logged(d, /qbhd: stopping \(1 request in flight\)/), 'it says what it waits for');
  const refused = await new Promise<string>((resolve) => net.createConnection('/run/qbh/other.sock').on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? '')).on('connect', () => resolve('connected')));
  t.equal(refused, 'ENOENT', 'no new connections once stopping: the socket is gone at once');
  let reply = '';
  sock.setEncoding('utf8').on('data', (c: string) => (reply += c));
  sock.write('"vnet_hdr":true}\n');
  await once(sock, 'close');
  t.match(JSON.parse(reply), { v: 1, ok: true, op: 'tap', tap: /^tap\d+$/ }, 'the request in flight is served');
  t.equal(await d.exited, 0, 'then it exits 0');
  t.notOk(existsSync('/run/qbh/other.sock'), 'and removes its socket');
  t.ok(await until(() => taps().length === 0), 'the tap went with the dropped fd');
});

t.test('--socket-mode and --socket-group decide who may ask at all', async (t) => {
  await daemon.stop();
  const d = await startDaemon(['--socket-mode', '0660', '--socket-group', '3000']);
  const st = statSync(SOCKET);
  t.equal(st.mode & 0o7777, 0o660);
  t.equal(st.gid, 3000);
  const outsider = handOff(['--br=br0', '--fd=3']);
  t.equal(outsider.status, 1);
  t.match(outsider.stderr, /^qbh: the qbh daemon's socket \/run\/qbh\/qbhd\.sock does not let uid 65534 connect \(connect: Permission denied\): it is mode 0660, owner uid 0, group gid 3000, and connecting needs write permission; .*SocketMode=0666.*\n$/);
  const member = handOff(['--br=br0', '--fd=3'], ['setpriv', '--reuid=65534', '--regid=65534', '--groups=3000', '--inh-caps=-all', '--bounding-set=-all']);
  t.equal(member.status, 0, member.stderr);
  t.equal(await d.stop(), 0);
  daemon = await startDaemon();
  t.same(taps(), []);
});

t.test('no daemon and no capability: the C message and what to do', async (t) => {
  t.equal(await daemon.stop(), 0, 'SIGTERM: exit 0');
  t.match(daemon.log(), /qbhd: stopped\n$/);
  t.notOk(existsSync(SOCKET), 'the socket is removed');
  // The helper's first step without a capability depends on the node's mode: make each mode here.
  await withTunNode(0o600, () => {
    const r = handOff(['--br=br0', '--fd=3']);
    t.equal(r.status, 1);
    const lines = r.stderr.split('\n');
    t.equal(lines.length, 4, 'three lines');
    t.equal(lines[0], 'failed to open /dev/net/tun: Permission denied', 'the C helper message for a 0600 node');
    t.match(lines[1], /qbh daemon/);
    t.match(lines[1], /systemctl enable --now qbhd\.socket/);
    t.match(lines[1], /CAP_NET_ADMIN/);
    t.match(lines[2], /^qbh: \/dev\/net\/tun is mode 0600 \(owner 0:0\), which uid 65534 may not open; make it 0666/);
  });
  await withTunNode(0o666, () => {
    const r = handOff(['--br=br0', '--fd=3']);
    t.equal(r.status, 1);
    const lines = r.stderr.split('\n');
    t.equal(lines.length, 3, 'two lines');
    t.equal(lines[0], 'failed to create tun device: Operation not permitted', 'the C helper message for a 0666 node');
    t.match(lines[1], /qbh daemon/);
    t.match(lines[1], /systemctl enable --now qbhd\.socket/);
  });
  t.same(taps(), []);
});

t.test('a daemon that will not start says why in one line', async (t) => {
  const r = execFileSync('sh', ['-c', `${CLEAN.join(' ')} ${NOBODY.join(' ')} ${process.execPath} ${join(ROOT, 'dist', 'qbhd.cjs')} 2>&1; echo "rc=$?"`], { encoding: 'utf8' });
  t.match(r, /^qbh daemon: this process lacks CAP_NET_ADMIN; run it as root.*\nrc=1\n$/);
  const help = execFileSync(process.execPath, [join(ROOT, 'dist', 'qbh.cjs'), 'daemon', '--help'], { encoding: 'utf8' });
  t.match(help, /usage: qbh daemon \[--socket PATH\] \[--acl FILE\] \[--socket-mode MODE\] \[--socket-group GROUP\]/);
  t.match(help, /LISTEN_FDS/);
});

t.test('systemd socket activation: LISTEN_FDS/LISTEN_PID, fd 3', async (t) => {
  // systemd-socket-activate makes the socket, passes it as fd 3 and sets LISTEN_FDS=1, LISTEN_PID.
  const d = await startDaemonActivated();
  execFileSync('chmod', ['0666', SOCKET]); // the unit's SocketMode=0666
  const r = handOff(['--use-vnet', '--br=br0', '--fd=3']);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.fds, 1);
  t.ok(await logged(d, /listening on the socket systemd passed \(fd 3\)/), 'the daemon took fd 3');
  t.equal(await d.stop(), 0);
  t.ok(existsSync(SOCKET), 'a socket systemd made is left to systemd');
  execFileSync('rm', ['-f', SOCKET]);
  t.same(taps(), []);
});

async function startDaemonActivated(): Promise<Daemon> {
  const { spawn } = await import('node:child_process');
  const child = spawn(CLEAN[0]!, [...CLEAN.slice(1), 'systemd-socket-activate', '-l', SOCKET, process.execPath, join(ROOT, 'dist', 'qbhd.cjs')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.setEncoding('utf8');
  const exited = new Promise<number | string | null>((resolve) => child.on('exit', (code, sig) => resolve(code ?? sig)));
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d: string) => {
      log += d;
      if (/Listening on/i.test(log) && existsSync(SOCKET)) resolve();
    });
    void exited.then((c) => reject(new Error(`exited ${c}: ${log}`)));
  });
  // systemd-socket-activate starts the daemon on the first connection; the helper's is that one.
  return { child, pid: child.pid!, log: () => log, exited, stop: async () => (child.kill('SIGTERM'), exited) };
}
