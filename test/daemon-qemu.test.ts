// QEMU 7.2 as uid 65534 with no capabilities and -sandbox on (seccomp, NoNewPrivs: setuid and file
// capabilities are ignored for its helper) gets a bridged tap through the qbh daemon. QEMU's filter
// applies to the helper it spawns, Node included. Private netns, mount ns, /etc/qemu and /run/qbh.
import './harness.js';
import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ipj, privateEtcQemu, privateRunQbh, sh } from './harness.js';
import { CLEAN, HELPER, NOBODY, ROOT, logged, startDaemon, taps, type Daemon } from './daemon-lib.js';

execFileSync(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs')], { stdio: 'inherit' });
privateEtcQemu();
privateRunQbh();
writeFileSync('/etc/qemu/bridge.conf', 'allow br0\n', { mode: 0o644 });
sh('ip', 'link', 'add', 'br0', 'type', 'bridge');
sh('ip', 'link', 'set', 'br0', 'mtu', '1400');
sh('ip', 'link', 'add', 'br9', 'type', 'bridge');

let daemon: Daemon;
t.before(async () => {
  daemon = await startDaemon();
});
t.teardown(async () => {
  await daemon.stop();
});

/** QEMU with one netdev, no guest, as uid 65534 without capabilities; waits for a port on `bridge` or QEMU's exit. */
async function startQemu(netdev: string, bridge: string) {
  const args = [...CLEAN.slice(1), ...NOBODY, 'qemu-system-x86_64', '-machine', 'none', '-nodefaults', '-display', 'none', '-monitor', 'none', '-S', '-sandbox', 'on', '-netdev', netdev];
  const child = spawn(CLEAN[0]!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let code: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve((code = c))));
  const deadline = Date.now() + 30000;
  for (;;) {
    const ports = ipj<any[]>('-d', 'link', 'show', 'master', bridge);
    if (ports.length > 0 || code !== undefined) return { child, exited, ports, stderr: () => stderr, code };
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`QEMU did not attach a tap: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

for (const [form, netdev] of [
  ['-netdev bridge,helper=PATH', `bridge,id=n0,br=br0,helper=${HELPER}`],
  ['-netdev tap,helper="PATH --br=br0"', `tap,id=n0,helper=${HELPER} --br=br0`],
] as const) {
  t.test(`sandboxed, unprivileged QEMU, ${form}: a tap on the bridge, gone with QEMU`, async (t) => {
    const q = await startQemu(netdev, 'br0');
    t.equal(q.code, undefined, `QEMU runs (${q.stderr()})`);
    t.equal(q.ports.length, 1);
    const tap = q.ports[0];
    t.match(tap, { ifname: /^tap\d+$/, mtu: 1400, master: 'br0', address: /^fe:/ });
    t.ok((tap.flags as string[]).includes('UP'), 'UP');
    t.match(tap.linkinfo.info_data, { type: 'tap', pi: false, vnet_hdr: true, persist: false });
    t.ok(await logged(daemon, new RegExp(`tap uid=65534 gid=65534 groups=- pid=\\d+ comm="\\S+" parent="qemu-system-x86" bridge=br0 tap=${tap.ifname} outcome=allowed`)), 'the audit line names QEMU as the parent');
    // env and setpriv exec QEMU in the same process: its status shows the sandbox its helper ran in.
    const status = execFileSync('cat', [`/proc/${q.child.pid}/status`], { encoding: 'utf8' });
    t.match(status, /^NoNewPrivs:\s+1$/m, 'QEMU runs with NoNewPrivs');
    t.match(status, /^Seccomp:\s+2$/m, 'and a seccomp filter');
    t.match(status, /^CapEff:\s+0+$/m, 'and no capabilities');
    q.child.kill('SIGKILL');
    await q.exited;
    t.same(taps(), [], 'the tap is gone with QEMU');
    t.notMatch(q.stderr(), /bridge helper failed/);
  });
}

t.test('sandboxed QEMU and a denied bridge: QEMU fails with the ACL message, nothing left', async (t) => {
  const q = await startQemu(`bridge,id=n0,br=br9,helper=${HELPER}`, 'br9');
  t.not(q.code, undefined, 'QEMU exits');
  t.not(q.code, 0);
  t.match(q.stderr(), /^access denied by acl file\n/m);
  t.match(q.stderr(), /bridge helper failed/);
  t.same(taps(), []);
});
