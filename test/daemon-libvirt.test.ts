// libvirt session mode (qemu:///session) as uid 65534: libvirtd runs qbh's helper through
// bridge_helper, the helper asks the qbh daemon, and the guest (TCG, 64 MiB, no disk) starts with its
// tap on the bridge; a denied bridge makes `virsh start` fail with the ACL text; `virsh destroy`
// leaves nothing. The session libvirtd is stopped by its pid. Private netns, mount ns, /etc/qemu,
// /run/qbh; HOME, XDG_RUNTIME_DIR and XDG_CONFIG_HOME in a scratch directory.
import './harness.js';
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ipj, privateEtcQemu, privateRunQbh, sh } from './harness.js';
import { HELPER, PATH, ROOT, logged, startDaemon, taps, until, type Daemon } from './daemon-lib.js';

execFileSync(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs')], { stdio: 'inherit' });
privateEtcQemu();
privateRunQbh();
writeFileSync('/etc/qemu/bridge.conf', 'allow br0\n', { mode: 0o644 });
sh('ip', 'link', 'add', 'br0', 'type', 'bridge');
sh('ip', 'link', 'set', 'br0', 'mtu', '1400');
sh('ip', 'link', 'add', 'br9', 'type', 'bridge');

const UID = 65534;
const home = mkdtempSync(join(tmpdir(), 'qbh-libvirt-'));
const runtime = join(home, 'run');
const config = join(home, 'config');
mkdirSync(runtime, { mode: 0o700 });
mkdirSync(join(config, 'libvirt'), { recursive: true });
writeFileSync(join(config, 'libvirt', 'qemu.conf'), `bridge_helper = "${HELPER}"\n`);
execFileSync('chown', ['-R', `${UID}:${UID}`, home]);
chownSync(home, UID, UID);

const ENV = [`PATH=${PATH}`, `HOME=${home}`, `XDG_RUNTIME_DIR=${runtime}`, `XDG_CONFIG_HOME=${config}`, `XDG_CACHE_HOME=${join(home, 'cache')}`, 'LC_ALL=C'];
const AS_USER = ['env', '-i', ...ENV, 'setpriv', `--reuid=${UID}`, `--regid=${UID}`, '--clear-groups', '--inh-caps=-all'];

function virsh(...args: string[]) {
  const r = spawnSync(AS_USER[0]!, [...AS_USER.slice(1), 'virsh', '-c', 'qemu:///session', ...args], { encoding: 'utf8', timeout: 120000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function domain(name: string, bridge: string): string {
  const xml = join(home, `${name}.xml`);
  writeFileSync(
    xml,
    `<domain type='qemu'>
  <name>${name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <interface type='bridge'><source bridge='${bridge}'/><model type='virtio'/></interface>
  </devices>
</domain>
`,
  );
  execFileSync('chown', [`${UID}:${UID}`, xml]);
  return xml;
}

let daemon: Daemon;
t.before(async () => {
  daemon = await startDaemon();
});
t.teardown(async () => {
  virsh('destroy', 'qbh-ok');
  virsh('destroy', 'qbh-denied');
  const pidFile = join(runtime, 'libvirt', 'libvirtd.pid');
  if (existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
      await until(() => !existsSync(`/proc/${pid}`), 15000);
    }
  }
  await daemon.stop();
  rmSync(home, { recursive: true, force: true });
});

t.test('virsh start: the guest gets its tap on the bridge through the daemon', async (t) => {
  const r = virsh('create', domain('qbh-ok', 'br0'));
  t.equal(r.status, 0, `virsh create: ${r.stderr}`);
  const ports = ipj<any[]>('-d', 'link', 'show', 'master', 'br0');
  t.equal(ports.length, 1, 'one port on br0');
  t.match(ports[0], { ifname: /^tap\d+$/, mtu: 1400, master: 'br0', address: /^fe:/ });
  t.match(ports[0]?.linkinfo?.info_data, { type: 'tap', vnet_hdr: true, persist: false });
  t.ok(await logged(daemon, new RegExp(`tap uid=${UID} gid=${UID} groups=- pid=\\d+ comm="\\S+" parent="\\S+" bridge=br0 tap=${ports[0]?.ifname} outcome=allowed`)), 'audited');
  const d = virsh('destroy', 'qbh-ok');
  t.equal(d.status, 0, d.stderr);
  t.ok(await until(() => taps().length === 0), 'virsh destroy leaves nothing');
});

t.test('a denied bridge: virsh fails with the ACL message, nothing left', async (t) => {
  const r = virsh('create', domain('qbh-denied', 'br9'));
  t.not(r.status, 0);
  t.match(r.stderr, /access denied by acl file/);
  t.same(taps(), []);
});
