// The port guard on the daemon and helper paths: an unprivileged user's tap through qbhd on a
// bridge with `guard br0 strict` is isolated, locked with MAC authentication bypass, filtered and
// labelled before its first frame; qbhd's pinner pins the MAC the "guest" (this test, writing to
// the tap's fd) sends from; whatever dies, no guard object outlives the tap. And the direct helper
// refuses a sticky guard when no qbhd answers: the tap is not handed out.
import './harness.js';
import t from 'tap';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { join } from 'node:path';
import { bridgej, ipj, privateEtcQemu, privateRunQbh, sh } from './harness.js';
import { NOBODY, ROOT, SOCKET, logged, startDaemon, taps, until, type Daemon } from './daemon-lib.js';
import { handOffAsync } from './helper-lib.js';
import { native } from '../src/native.js';
import { Rtnl } from '../src/netlink/rtnl.js';

execFileSync(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs')], { stdio: 'inherit' });
privateEtcQemu();
privateRunQbh();
const STRICT = 'isolated mac=sticky:1 server-guard bpdu-guard ethertypes=ipv4,arp,ipv6';
writeAcl('allow br0\nguard br0 strict\n');
sh('ip', 'link', 'add', 'br0', 'type', 'bridge');
sh('ip', 'link', 'set', 'br0', 'up');

function writeAcl(text: string): void {
  fs.writeFileSync('/etc/qemu/bridge.conf', text, { mode: 0o644 });
}

/** How long qbhd may take to pin a MAC after its first frame. */
const PIN_BOUND_MS = 3000;

/** An ARP request from `mac` (the guest asking for the gateway): an EtherType the strict guard allows. */
function arpFrom(mac: string): Buffer {
  const f = Buffer.alloc(60);
  f.fill(0xff, 0, 6);
  const m = Buffer.from(mac.replaceAll(':', ''), 'hex');
  m.copy(f, 6);
  f.writeUInt16BE(0x0806, 12);
  f.writeUInt16BE(1, 14); // Ethernet
  f.writeUInt16BE(0x0800, 16); // IPv4
  f[18] = 6;
  f[19] = 4;
  f.writeUInt16BE(1, 20); // request
  m.copy(f, 22);
  Buffer.from([10, 0, 0, 5]).copy(f, 28);
  Buffer.from([10, 0, 0, 1]).copy(f, 38);
  return f;
}

/** The bridge FDB's static sticky entries of `port`. */
const pins = (port: string): string[] =>
  bridgej<any[]>('fdb', 'show', 'br', 'br0', 'brport', port)
    .filter((e) => e.state === 'static' && (e.flags ?? []).includes('sticky'))
    .map((e) => e.mac as string);

/** Everything a guard leaves on a machine: clsact qdiscs, tc filters, pins and pending entries of the guest's MACs, taps. */
function guardObjects(macs: string[]): unknown[] {
  const qdiscs = ipjTc(['qdisc', 'show']).filter((q: any) => q.kind === 'clsact');
  const fdb = bridgej<any[]>('fdb', 'show', 'br', 'br0').filter((e) => macs.includes(e.mac));
  return [...qdiscs, ...fdb, ...taps()];
}

function ipjTc(args: string[]): any[] {
  const out = execFileSync('tc', ['-j', ...args], { encoding: 'utf8' });
  return out.trim() === '' ? [] : JSON.parse(out);
}

const HELPER_ARGS = ['--fd=3', '--br=br0'];
const X = '52:54:00:00:10:01';
const Y = '52:54:00:00:10:02';

let daemon: Daemon;
t.before(async () => {
  daemon = await startDaemon();
});
t.teardown(async () => {
  await daemon.stop();
});

t.test('through qbhd: a guarded port before its first frame, the MAC pinned, nothing left', async (t) => {
  const got = await handOffAsync(HELPER_ARGS, NOBODY);
  t.equal(got.status, 0, `the helper succeeds (${got.stderr})`);
  t.equal(got.fds.length, 1, 'QEMU gets one tap fd');
  let fd = got.fds[0]!;
  t.teardown(() => void (fd >= 0 && native.close(fd)));
  const name = taps()[0]!;

  const rtnl = Rtnl.openSync();
  const port = (await rtnl.listBridgePorts('br0')).find((p) => p.ifname === name);
  rtnl.close();
  t.match(port, { isolated: true, locked: true, mab: true, learning: true }, 'isolated, locked, MAC authentication bypass (learning stays on for it)');
  t.equal(ipj<any[]>('-d', 'link', 'show', 'dev', name)[0].ifalias, `qbh-guard: ${STRICT}`, "the guard is readable on the port (its alias)");
  t.ok(ipjTc(['filter', 'show', 'dev', name, 'ingress']).some((f: any) => f.kind === 'bpf'), "a bpf filter on the tap's ingress");
  t.ok(await logged(daemon, new RegExp(`tap uid=65534 gid=65534 groups=- .* bridge=br0 tap=${name} outcome=allowed rule=/etc/qemu/bridge.conf:1 guard="${STRICT}"`)), 'the audit line names the guard');
  t.same(pins(name), [], 'nothing pinned before the guest sends');

  const start = Date.now();
  const pinned = await until(() => {
    fs.writeSync(fd, arpFrom(X));
    return pins(name).includes(X);
  }, PIN_BOUND_MS);
  t.ok(pinned, `qbhd pinned ${X} (${Date.now() - start} ms, bound ${PIN_BOUND_MS} ms)`);
  t.ok(await logged(daemon, new RegExp(`qbhd: pinned bridge=br0 port=${name} mac=${X} macs=1/1`)), 'and said so');

  t.test('qbhd killed (-9) and started again: the pin stays, a second MAC is refused past the cap', async (t) => {
    daemon.child.kill('SIGKILL');
    await daemon.exited;
    t.same(pins(name), [X], 'the pin is the kernel\'s: it outlives qbhd');
    for (let i = 0; i < 5; i++) fs.writeSync(fd, arpFrom(Y));
    daemon = await startDaemon();
    t.ok(await logged(daemon, new RegExp(`qbhd: pin-refused bridge=br0 port=${name} mac=${Y} macs=1/1 outcome=dropped`)), `the restarted qbhd refuses ${Y} (cap 1, counted from the kernel)`);
    t.same(pins(name), [X], `only ${X} pinned`);
  });

  t.test('QEMU gone (its fd closed): no guard object is left', async (t) => {
    native.close(fd);
    fd = -1;
    t.ok(await until(() => guardObjects([X, Y]).length === 0, 3000), `nothing left: ${JSON.stringify(guardObjects([X, Y]))}`);
  });
});

t.test('the direct helper with a sticky guard and no qbhd: no tap, one line, exit 1', async (t) => {
  daemon.child.kill('SIGKILL'); // leaves its socket file behind: a socket nobody answers on
  await daemon.exited;
  t.ok(fs.existsSync(SOCKET), 'a stale socket is there');
  const r = await handOffAsync(HELPER_ARGS); // root: CAP_NET_ADMIN, the direct path
  t.equal(r.status, 1);
  t.equal(r.stderr, "failed to apply guard on br0: mac=sticky needs qbhd running (it pins the guest's MAC)\n");
  t.equal(r.fds.length, 0, 'QEMU gets no fd');
  t.same(taps(), [], 'no tap made');
  fs.rmSync(SOCKET);
  const r2 = await handOffAsync(HELPER_ARGS);
  t.equal(r2.stderr, "failed to apply guard on br0: mac=sticky needs qbhd running (it pins the guest's MAC)\n", 'the same with no socket at all');
  t.same(taps(), []);

  t.test('a guard without sticky needs no qbhd', async (t) => {
    writeAcl('allow br0\nguard br0 isolated\n');
    t.teardown(() => writeAcl('allow br0\nguard br0 strict\n'));
    const ok = await handOffAsync(HELPER_ARGS);
    t.equal(ok.status, 0, ok.stderr);
    t.equal(ok.fds.length, 1);
    const name = taps()[0]!;
    t.equal(bridgej<any[]>('-d', 'link', 'show', 'dev', name)[0].isolated, true, 'isolated');
    t.equal(ipj<any[]>('-d', 'link', 'show', 'dev', name)[0].ifalias, 'qbh-guard: isolated');
    for (const fd of ok.fds) native.close(fd);
    t.ok(await until(() => taps().length === 0, 2000));
  });
  daemon = await startDaemon();
});
