import './harness.js';
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { SANITIZER_ENV, ipj, sh } from './harness.js';

// An unprivileged user (nobody) holding only CAP_NET_ADMIN, with a 0666 /dev/net/tun: the node
// is made and bind-mounted in this test's own mount namespace, so the host's stays 0600.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qbh-unpriv-'));
fs.chmodSync(dir, 0o755);
sh('mknod', path.join(dir, 'tun'), 'c', '10', '200');
fs.chmodSync(path.join(dir, 'tun'), 0o666);
sh('mount', '--bind', path.join(dir, 'tun'), '/dev/net/tun');
t.teardown(() => {
  spawnSync('umount', ['/dev/net/tun']);
  fs.rmSync(dir, { recursive: true, force: true });
});
sh('ip', 'link', 'add', 'br0', 'type', 'bridge');
sh('ip', 'link', 'set', 'br0', 'mtu', '1450', 'up');

const tun = fileURLToPath(new URL('../src/tun/index.js', import.meta.url));
const rtnl = fileURLToPath(new URL('../src/netlink/rtnl.js', import.meta.url));
const script = path.join(dir, 'child.mts');
fs.writeFileSync(
  script,
  `import { openTap, openTapSync, closeTap, helperMessage, TapError } from ${JSON.stringify(tun)};
import { Rtnl } from ${JSON.stringify(rtnl)};
const out: Record<string, unknown> = { uid: process.getuid!() };
try {
  const tap = await openTap({ bridge: 'br0', queues: 2 });
  out.tap = { name: tap.name, fds: tap.fds.length };
  const h = openTapSync({ bridge: 'br0', vnetHdr: true }, Rtnl.openSync());
  out.helper = { name: h.name, vnetHdr: h.vnetHdr };
  process.stdout.write(JSON.stringify(out) + '\\n');
  await new Promise((r) => process.stdin.once('end', r).resume());
  closeTap(tap);
} catch (e) {
  out.error = e instanceof TapError ? helperMessage(e) : String(e);
  process.stdout.write(JSON.stringify(out) + '\\n');
}
`,
);
fs.chmodSync(script, 0o644);
// Load TypeScript the way tap loads this file; without tap's process-info hook, which writes to .tap/.
const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));

function child(caps: string[]) {
  // env -u NODE_OPTIONS: tap's process-info hook injects itself into children through it.
  const p = spawn(
    'env',
    ['-u', 'NODE_OPTIONS', ...SANITIZER_ENV, 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', ...caps, process.execPath, ...loader, script],
    { cwd: fileURLToPath(new URL('..', import.meta.url)), env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir }, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  let buf = '';
  p.stdout.setEncoding('utf8');
  const line = (async () => {
    for await (const d of p.stdout) {
      buf += d;
      if (buf.includes('\n')) return JSON.parse(buf.split('\n')[0]!) as Record<string, any>;
    }
    throw new Error(`child printed nothing (${buf})`);
  })();
  return { p, line };
}

t.test('uid 65534 with only CAP_NET_ADMIN opens taps on a bridge', async (t) => {
  const c = child(['--inh-caps=+net_admin', '--ambient-caps=+net_admin']);
  const r = await c.line;
  t.equal(r.uid, 65534);
  t.notOk(r.error, r.error);
  const l = ipj('-d', 'link', 'show', r.tap.name)[0];
  t.match(l, { master: 'br0', mtu: 1450 });
  t.match(l.linkinfo.info_data, { type: 'tap', vnet_hdr: true, multi_queue: true, numqueues: 2 });
  t.match(l.address, /^fe:/);
  t.match(ipj('-d', 'link', 'show', r.helper.name)[0], { master: 'br0', mtu: 1450 });
  c.p.stdin.end();
  await once(c.p, 'exit');
  t.same(ipj('link', 'show', 'type', 'tun'), [], 'the taps vanished with the process');
});

t.test('without CAP_NET_ADMIN: the C helper message for TUNSETIFF', async (t) => {
  const c = child(['--inh-caps=-all']);
  const r = await c.line;
  t.equal(r.error, 'failed to create tun device: Operation not permitted');
  await once(c.p, 'exit');
  t.same(ipj('link', 'show', 'type', 'tun'), []);
});
