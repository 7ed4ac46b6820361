// The real QEMU proof of sticky pinning: QEMU 7.2 as uid 65534 with no capabilities and -sandbox
// on, its NIC's MAC set only in `-device … mac=`, gets a tap through qbhd on a bridge whose ACL says
// `guard br0 strict`. Its iPXE ROM sends DHCP DISCOVERs; dnsmasq on the bridge answers. The lease
// for that MAC appears without the admin writing the MAC anywhere, and the port holds exactly that
// MAC pinned. A second NIC on the same tap (a QEMU hub), booting next with another MAC, is the
// guest trying a new MAC: it gets nowhere (the cap is 1). The NIC is an e1000: SeaBIOS 1.16 does not run Debian's iPXE ROM for virtio-net-pci
// here (no boot entry is registered for it; measured), while the e1000's boots from the network.
import './harness.js';
import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import { join } from 'node:path';
import { bridgej, ipj, privateEtcQemu, privateRunQbh, sh } from './harness.js';
import { CLEAN, HELPER, NOBODY, ROOT, logged, startDaemon, taps, until, type Daemon } from './daemon-lib.js';

const ROM = '/usr/lib/ipxe/qemu/pxe-e1000.rom'; // Debian's ipxe-qemu
const GUEST_MAC = '52:54:00:23:00:17';
/** The second NIC's: the guest trying another MAC through the same tap. */
const OTHER_MAC = '52:54:00:23:00:18';
/** How long the second NIC's iPXE is given to get a lease it must not get (it retries DHCP for longer). */
const REFUSED_WATCH_MS = 8000;
/** iPXE under TCG (no KVM for uid 65534) reaches its first DISCOVER in seconds; a loaded machine is slower. */
const LEASE_BOUND_MS = 90_000;

execFileSync(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs')], { stdio: 'inherit' });
privateEtcQemu();
privateRunQbh();
fs.writeFileSync('/etc/qemu/bridge.conf', 'allow br0\nguard br0 strict\n', { mode: 0o644 });
sh('ip', 'link', 'add', 'br0', 'type', 'bridge');
sh('ip', 'addr', 'add', '10.0.23.1/24', 'dev', 'br0');
sh('ip', 'link', 'set', 'br0', 'up');

const work = fs.mkdtempSync('/tmp/qbh-guard-qemu-');
const leases = join(work, 'leases');
fs.writeFileSync(leases, '');

let daemon: Daemon;
t.before(async () => {
  daemon = await startDaemon();
});
t.teardown(async () => {
  await daemon.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

t.test('sandboxed, unprivileged QEMU on a `guard br0 strict` bridge: DHCP works, its MAC pinned, nothing written by the admin', { skip: fs.existsSync(ROM) ? false : `${ROM} missing (ipxe-qemu)` }, async (t) => {
  const dnsmasq = spawn('dnsmasq', ['--no-daemon', '--conf-file=/dev/null', '--port=0', '--interface=br0', '--bind-interfaces', '--dhcp-range=10.0.23.100,10.0.23.200,1h', `--dhcp-leasefile=${leases}`, '--pid-file=', '--log-dhcp'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let dlog = '';
  dnsmasq.stderr.on('data', (d: Buffer) => (dlog += d.toString()));
  t.teardown(() => void dnsmasq.kill('SIGKILL'));

  const args = [
    ...CLEAN.slice(1), ...NOBODY, 'qemu-system-x86_64', '-machine', 'pc', '-accel', 'tcg', '-m', '64', '-display', 'none', '-monitor', 'none', '-serial', 'none', '-parallel', 'none',
    '-sandbox', 'on', '-netdev', `bridge,id=n0,br=br0,helper=${HELPER}`,
    // One tap, two NICs on a hub: the first boots from the network, then (no boot file) the second.
    '-netdev', 'hubport,id=h0,hubid=0,netdev=n0', '-netdev', 'hubport,id=h1,hubid=0', '-netdev', 'hubport,id=h2,hubid=0',
    '-device', `e1000,netdev=h1,mac=${GUEST_MAC},romfile=${ROM},bootindex=1`, '-device', `e1000,netdev=h2,mac=${OTHER_MAC},romfile=${ROM},bootindex=2`, '-boot', 'n',
  ];
  const qemu = spawn(CLEAN[0]!, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let qlog = '';
  qemu.stderr.on('data', (d: Buffer) => (qlog += d.toString()));
  const exited = new Promise((resolve) => qemu.on('exit', resolve));
  t.teardown(() => void qemu.kill('SIGKILL'));

  t.ok(await until(() => taps().length === 1 || qemu.exitCode !== null, 30_000), `QEMU attached a tap (${qlog})`);
  const tap = taps()[0]!;
  t.equal(ipj<any[]>('-d', 'link', 'show', 'dev', tap)[0].ifalias, 'qbh-guard: isolated mac=sticky:1 server-guard bpdu-guard ethertypes=ipv4,arp,ipv6', 'the port is guarded');

  const start = Date.now();
  const leased = await until(() => fs.readFileSync(leases, 'utf8').includes(GUEST_MAC), LEASE_BOUND_MS);
  t.ok(leased, `dnsmasq leased an address to ${GUEST_MAC} (${Date.now() - start} ms): ${fs.readFileSync(leases, 'utf8').trim()}\n${dlog.split('\n').filter((l) => /DHCP(DISCOVER|OFFER|REQUEST|ACK)/.test(l)).join('\n')}`);
  const held = bridgej<any[]>('fdb', 'show', 'br', 'br0', 'brport', tap).filter((e) => e.state === 'static');
  t.same(held.map((e) => [e.mac, e.flags]), [[GUEST_MAC, ['sticky']]], 'the port holds exactly the guest\'s MAC, static and sticky');
  t.ok(await logged(daemon, new RegExp(`qbhd: pinned bridge=br0 port=${tap} mac=${GUEST_MAC} macs=1/1`)), 'qbhd logged the pin');

  t.ok(await logged(daemon, new RegExp(`qbhd: pin-refused bridge=br0 port=${tap} mac=${OTHER_MAC} macs=1/1 outcome=dropped`), LEASE_BOUND_MS), `the second NIC (${OTHER_MAC}) sent, and was refused past the cap`);
  await new Promise((r) => setTimeout(r, REFUSED_WATCH_MS));
  t.notOk(fs.readFileSync(leases, 'utf8').includes(OTHER_MAC), `no lease for ${OTHER_MAC}`);
  t.notOk(dlog.includes(`DHCPDISCOVER(br0) ${OTHER_MAC}`), 'dnsmasq never heard from it');
  t.same(bridgej<any[]>('fdb', 'show', 'br', 'br0', 'brport', tap).filter((e) => e.state === 'static').map((e) => e.mac), [GUEST_MAC], 'still exactly one MAC pinned');

  qemu.kill('SIGKILL');
  await exited;
  t.ok(await until(() => taps().length === 0, 3000), 'the tap is gone with QEMU (kill -9)');
  t.same(bridgej<any[]>('fdb', 'show', 'br', 'br0').filter((e) => e.mac === GUEST_MAC), [], 'and its pin with it');
  const qdiscs = JSON.parse(execFileSync('tc', ['-j', 'qdisc', 'show'], { encoding: 'utf8' }) || '[]') as any[];
  t.same(qdiscs.filter((q) => q.kind === 'clsact'), [], 'no clsact qdisc (and so no filter) left');
});
