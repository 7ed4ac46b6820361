// qbh's qemu-bridge-helper as its users meet it: run by the real qemu-system-x86_64 in both -netdev
// forms, run directly as uid 65534 holding only an ambient CAP_NET_ADMIN, the message without the
// capability, the --ifname extension, and the argv grammar as a unit. Private netns + mount ns
// (harness), tmpfs over /etc/qemu.
import './harness.js';
import t from 'tap';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SANITIZER_ENV, ipj, linkNames, privateEtcQemu, privateRunQbh, sh } from './harness.js';
import { native } from '../src/native.js';
import { USAGE_MESSAGE, atoi, parseHelperArgs } from '../src/helper/argv.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const HELPER = join(ROOT, 'bin', 'qemu-bridge-helper');
const ALIAS = join(ROOT, 'bin', 'qbh-helper');
const QEMU = 'qemu-system-x86_64';
const TUNGETIFF = 0x800454d2;
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
// env -i: tap hooks every node child through NODE_OPTIONS; the helper must run as QEMU would run it.
const CLEAN = ['env', '-i', `PATH=${PATH}`, ...SANITIZER_ENV];

execFileSync(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs')], { stdio: 'inherit' });

privateEtcQemu(); // in this test's mount namespace only
privateRunQbh(); // an empty /run/qbh: a qbh daemon on the host must not serve the runs without a capability
// allow-ifname: the names the --ifname cases below choose (anything but tap…/vnet… needs a rule).
writeFileSync('/etc/qemu/bridge.conf', 'allow br0\nallow notbr\nallow-ifname vm\nallow-ifname taken\nallow-ifname a/\n', { mode: 0o644 });
sh('ip', 'link', 'add', 'br0', 'type', 'bridge');
sh('ip', 'link', 'set', 'br0', 'mtu', '1450');
sh('ip', 'link', 'add', 'br9', 'type', 'bridge'); // exists, but the ACL does not allow it
// A 0666 /dev/net/tun for the unprivileged runs, in this mount namespace only (the host's is 0600).
mkdirSync('/etc/qemu/.dev', { mode: 0o700 });
sh('mknod', '/etc/qemu/.dev/tun', 'c', '10', '200');
chmodSync('/etc/qemu/.dev/tun', 0o666);
sh('mount', '--bind', '/etc/qemu/.dev/tun', '/dev/net/tun');
const FIXTURES = new Set(linkNames());
const leftovers = () => linkNames().filter((n) => !FIXTURES.has(n));

/** Plays QEMU: socket at fd 3, runs the helper (through `prefix`), returns what came back. */
function handOff(args: string[], prefix: string[] = []) {
  const [qemuEnd, helperEnd] = native.socketpair(1);
  const cmd = [...CLEAN, ...prefix, ...args];
  const r = spawnSync(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe', helperEnd], timeout: 20000 });
  native.close(helperEnd);
  const got = native.recvFds(qemuEnd, 16, 4, 0);
  native.close(qemuEnd);
  let tap: { name: string; flags: number; link: any } | null = null;
  for (const fd of got?.fds ?? []) {
    const ifr = Buffer.alloc(40);
    native.ioctl(fd, TUNGETIFF, ifr);
    const name = ifr.toString('latin1', 0, 16).replace(/\0.*$/s, '');
    tap = { name, flags: ifr.readUInt16LE(16), link: ipj<any[]>('-d', 'link', 'show', 'dev', name)[0] };
  }
  for (const fd of got?.fds ?? []) native.close(fd);
  return { status: r.status, signal: r.signal, stdout: String(r.stdout), stderr: String(r.stderr), payload: got?.data.toString('hex') ?? null, fds: got?.fds.length ?? 0, tap };
}

// docs/qemu-bridge-helper.md, §1.1.
t.test('argv grammar', async (t) => {
  const b = (...a: string[]) => a.map((x) => Buffer.from(x));
  t.same(parseHelperArgs(b('--use-vnet', '--fd=8', '--br=br0')), { useVnet: true, bridge: Buffer.from('br0'), fd: 8, ifname: null });
  t.same(parseHelperArgs(b('--br=a', '--fd=1', '--br=b', '--fd=2')), { useVnet: false, bridge: Buffer.from('b'), fd: 2, ifname: null }, 'last one wins');
  t.equal(parseHelperArgs(b('--bogus', '--br=b', '--fd=2')), null, 'unknown → usage');
  t.equal(parseHelperArgs(b('--br=b', '--fd=-1')), null, '-1 is missing');
  t.equal(parseHelperArgs(b('--br=b')), null);
  t.equal(parseHelperArgs(b('--fd=3')), null);
  t.same(parseHelperArgs(b('--br=', '--fd=3'))?.bridge, Buffer.alloc(0), 'empty bridge is a bridge');
  t.same(parseHelperArgs(b('--br=b', '--fd=3', '--ifname=vm1'))?.ifname, Buffer.from('vm1'), 'extension');
  t.equal(parseHelperArgs(b('--br=b', '--fd=3', '--ifname='))?.ifname, null, 'empty --ifname: tap%d');
  const atoiCases: [string, number][] = [
    ['', 0], ['abc', 0], ['3x', 3], ['0x5', 0], ['-2', -2], [' \t\n+7', 7], ['+-1', 0], ['--1', 0],
    ['2147483647', 2147483647], ['2147483648', -2147483648], ['4294967299', 3],
    ['99999999999999999999', -1], ['-99999999999999999999', 0], ['9223372036854775807', -1], ['00012', 12],
  ];
  for (const [s, n] of atoiCases) t.equal(atoi(Buffer.from(s)), n, `atoi(${JSON.stringify(s)})`);
  t.equal(USAGE_MESSAGE, 'Usage: qemu-bridge-helper [--use-vnet] --br=bridge --fd=unixfd\n');
});

t.test('direct mode as uid 65534 with only an ambient CAP_NET_ADMIN', async (t) => {
  const setpriv = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=+net_admin', '--ambient-caps=+net_admin'];
  const r = handOff([HELPER, '--use-vnet', '--br=br0', '--fd=3'], setpriv);
  t.equal(r.stderr, '');
  t.equal(r.stdout, '', 'nothing on stdout');
  t.equal(r.status, 0);
  t.equal(r.payload, '00');
  t.equal(r.fds, 1);
  t.equal(r.tap?.flags, 0x5002, 'IFF_TAP|IFF_NO_PI|IFF_VNET_HDR');
  t.match(r.tap?.link, { mtu: 1450, master: 'br0', address: /^fe:/, flags: ['BROADCAST', 'MULTICAST', 'UP'] });
  t.match(r.tap?.link.linkinfo.info_data, { type: 'tap', pi: false, vnet_hdr: true, persist: false });
  t.same(leftovers(), [], 'gone once the fd is closed');

  const alias = handOff([ALIAS, '--br=br0', '--fd=3'], setpriv);
  t.equal(alias.status, 0, 'bin/qbh-helper is the same helper');
  t.equal(alias.tap?.flags, 0x1002, 'no --use-vnet: no IFF_VNET_HDR');
  t.same(leftovers(), []);
});

t.test('without CAP_NET_ADMIN: the C message, then one line saying what to do', async (t) => {
  const r = handOff([HELPER, '--use-vnet', '--br=br0', '--fd=3'], ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all']);
  t.equal(r.status, 1);
  t.equal(r.fds, 0);
  const lines = r.stderr.split('\n');
  t.equal(lines.length, 3, 'two lines');
  t.equal(lines[0], 'failed to create tun device: Operation not permitted');
  t.match(lines[1], /CAP_NET_ADMIN/);
  t.match(lines[1], /not setuid/);
  t.same(leftovers(), []);
  const denied = handOff([HELPER, '--br=br9', '--fd=3'], ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all']);
  t.equal(denied.stderr, 'access denied by acl file\n', 'the ACL still comes first, as in C');
});

t.test('--ifname extension', async (t) => {
  const r = handOff([HELPER, '--use-vnet', '--br=br0', '--fd=3', '--ifname=vm-web1']);
  t.equal(r.stderr, '');
  t.equal(r.status, 0);
  t.equal(r.tap?.name, 'vm-web1');
  t.match(r.tap?.link, { mtu: 1450, master: 'br0', address: /^fe:/ });
  t.equal(r.tap?.flags, 0x5002);
  t.same(leftovers(), []);

  const tmpl = handOff([HELPER, '--br=br0', '--fd=3', '--ifname=vm%d']);
  t.equal(tmpl.tap?.name, 'vm0', 'a %d template');

  sh('ip', 'tuntap', 'add', 'dev', 'taken0', 'mode', 'tap');
  const busy = handOff([HELPER, '--br=br0', '--fd=3', '--ifname=taken0']);
  t.equal(busy.status, 1, 'an existing device is never taken over');
  t.equal(busy.fds, 0);
  t.match(busy.stderr, /^failed to create tun device: Device or resource busy\n$/);
  t.same(ipj<any[]>('-d', 'link', 'show', 'dev', 'taken0')[0].master, undefined, 'the existing tap is untouched');
  sh('ip', 'link', 'del', 'taken0');

  const long = handOff([HELPER, '--br=br0', '--fd=3', '--ifname=0123456789abcdef']);
  t.equal(long.stderr, "name `0123456789abcdef' too long: 16\n");
  t.equal(long.status, 1);
  const bad = handOff([HELPER, '--br=br0', '--fd=3', '--ifname=a/b']);
  t.equal(bad.status, 1);
  t.equal(bad.stderr, 'invalid tap request: invalid tap name "a/b": "/", ":", whitespace, "." and ".." are not allowed\n', 'the library\'s words, not an internal error');
  t.equal(bad.fds, 0);
  t.same(leftovers(), []);
});

/** Starts QEMU with one netdev and waits until a tap is on `bridge` or QEMU exits. */
async function startQemu(netdev: string, bridge: string) {
  const child = spawn(CLEAN[0]!, [...CLEAN.slice(1), QEMU, '-machine', 'none', '-nodefaults', '-display', 'none', '-monitor', 'none', '-S', '-netdev', netdev], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let done: number | null | undefined;
  void exited.then((c) => (done = c));
  const deadline = Date.now() + 20000;
  for (;;) {
    const ports = ipj<any[]>('-d', 'link', 'show', 'master', bridge);
    if (ports.length > 0) return { child, exited, ports, stderr: () => stderr, code: undefined };
    if (done !== undefined) return { child, exited, ports, stderr: () => stderr, code: done };
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`QEMU did not attach a tap: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

for (const [form, netdev] of [
  ['-netdev bridge,helper=PATH', `bridge,id=n0,br=br0,helper=${HELPER}`],
  ['-netdev tap,helper="PATH --br=X"', `tap,id=n0,helper=${HELPER} --br=br0`],
] as const) {
  t.test(`QEMU ${form}: a tap on the bridge, gone when QEMU is`, async (t) => {
    const q = await startQemu(netdev, 'br0');
    t.equal(q.code, undefined, `QEMU runs (${q.stderr()})`);
    t.equal(q.ports.length, 1, 'one port on br0');
    const tap = q.ports[0];
    t.match(tap, { ifname: /^tap\d+$/, mtu: 1450, master: 'br0', address: /^fe:/ });
    t.ok((tap.flags as string[]).includes('UP'), 'UP');
    t.match(tap.linkinfo.info_data, { type: 'tap', pi: false, vnet_hdr: true, persist: false });
    q.child.kill('SIGKILL');
    await q.exited;
    t.same(leftovers(), [], 'the tap is gone with QEMU');
    t.notMatch(q.stderr(), /bridge helper failed/);
  });
}

t.test('QEMU with a denied bridge fails with the helper message', async (t) => {
  for (const netdev of [`bridge,id=n0,br=br9,helper=${HELPER}`, `tap,id=n0,helper=${HELPER} --br=br9`]) {
    const q = await startQemu(netdev, 'br9');
    t.not(q.code, undefined, 'QEMU exits');
    t.not(q.code, 0, 'with a failure');
    t.match(q.stderr(), /^access denied by acl file\n/m, 'the helper message on QEMU\'s stderr');
    t.match(q.stderr(), /bridge helper failed/);
    t.same(leftovers(), []);
  }
});
