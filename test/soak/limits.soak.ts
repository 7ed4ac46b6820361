// Limits: a tiny RLIMIT_NOFILE, 15- and 16-byte names, 256 queues, a tiny netlink receive buffer
// during a 10 000-link dump and during monitor() (ENOBUFS → resync), signals arriving during blocking
// calls (EINTR), the kernel refusing a value. Clear errors, nothing half-made. Private netns,
// mount ns and /etc/qemu (harness).
import '../harness.js';
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ipj, linkNames, privateEtcQemu, sh } from '../harness.js';
import { ROOT, taps } from '../daemon-lib.js';
import { handOff } from '../helper-lib.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { native } from '../../src/native.js';
import { SOL_SOCKET, SO_RCVBUFFORCE } from '../../src/netlink/constants.js';
import { NetlinkError } from '../../src/netlink/errors.js';
import { monitor } from '../../src/netlink/monitor.js';
import { Rtnl } from '../../src/netlink/rtnl.js';
import { TapError } from '../../src/tun/errors.js';
import { closeTap, openTap } from '../../src/tun/tap.js';
import { leftoverCount, leftovers, record } from './soak-lib.js';

privateEtcQemu();
writeFileSync('/etc/qemu/bridge.conf', 'allow br0\nallow b23456789012345\n', { mode: 0o644 });
sh('ip', 'link', 'add', 'br0', 'type', 'bridge');
sh('ip', 'link', 'set', 'br0', 'up');
const rtnl = Rtnl.openSync();
t.teardown(() => rtnl.close());

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  return undefined;
}

/** The descriptor limit the API runs under below: enough to load it, far too few for 64 queues. */
const API_NOFILE = 48;

t.test('RLIMIT_NOFILE tiny: the helper and openTap fail with one line, nothing half-made', async (t) => {
  const statuses = new Map<string, number>();
  const bad: string[] = [];
  let below = '';
  for (let n = 12; n <= 40; n++) {
    const r = handOff(['--use-vnet', '--br=br0', '--fd=3'], ['prlimit', `--nofile=${n}:${n}`]);
    // Below Node's own floor of descriptors it cannot start at all (docs/helper.md, "Deviations from
    // the C helper"): not ours to report, but no tap either.
    const key = r.status === 0 && r.fds === 1 ? 'ok' : r.status === 1 && /^[^\n]+\n$/.test(r.stderr) ? r.stderr.trim() : `status ${r.status ?? r.signal}`;
    if (!key.startsWith('status')) statuses.set(key, (statuses.get(key) ?? 0) + 1);
    else if (n < 18) below += `${n}:${key} `;
    else bad.push(`${n}: ${key} ${r.stderr}`);
    if (taps().length > 0) bad.push(`${n}: tap left`);
  }
  // 48 descriptors: Node 20's ESM loader reads the API's modules in parallel, and loading them took
  // 41-44 once the port guard's modules joined the graph (measured; 40 sufficed before). The 64 queues
  // asked for are still far beyond what is left.
  const api = spawnSync('env', ['-i', `PATH=${process.env.PATH}`, 'prlimit', `--nofile=${API_NOFILE}:${API_NOFILE}`, process.execPath, '--input-type=module', '-e',
    `import * as q from ${JSON.stringify(join(ROOT, 'dist', 'index.js'))};
try { await q.openTap({ bridge: 'br0', queues: 64 }); console.log('opened'); } catch (e) { console.log(e.name, e.code, e.step, e.message); }`], { encoding: 'utf8' });
  t.match(api.stdout, /^TapError EMFILE (open|queue) cannot open \/dev\/net\/tun[^\n]*Too many open files/, `openTap of 64 queues at ${API_NOFILE} fds: EMFILE (${api.stdout}${api.stderr})`);
  t.same(bad, [], 'from 18 fds up: the tap, or exit 1 with one line');
  t.equal(api.stderr, '');
  const left = leftoverCount(leftovers(['br0']));
  t.equal(left, 0);
  record(t, { area: 'limits', fault: `RLIMIT_NOFILE 12-40 for the helper (root, direct); ${API_NOFILE} for openTap({ queues: 64 })`, trials: 30, outcome: `helper: ${[...statuses].map(([k, v]) => `${k} ×${v}`).join(', ')}; below 18 Node itself: ${below.trim() || 'none'}; openTap: ${api.stdout.trim().split(' ').slice(0, 2).join(' ')}`, leftovers: left });
});

t.test('15- and 16-byte names', async (t) => {
  const b15 = 'b23456789012345';
  const b16 = 'b234567890123456';
  const br = await rtnl.createBridge(b15);
  t.equal(br.ifname, b15);
  const e16 = await rejection(rtnl.createBridge(b16));
  t.ok(e16 instanceof InvalidArgumentError, String(e16));
  const tpl = await rejection(openTap({ bridge: b15, name: 't2345678901234%d' }, rtnl));
  // The library's shared name check (src/netlink/validate.ts): the same words as createBridge and the CLI.
  t.ok(tpl instanceof InvalidArgumentError && tpl.code === 'EINVAL' && tpl.op === 'openTap', `a 16-byte template is refused: ${String(tpl)}`);
  const t15 = await openTap({ bridge: b15, name: 't23456789012345' }, rtnl);
  t.equal(ipj<any[]>('link', 'show', 'dev', 't23456789012345')[0].master, b15);
  closeTap(t15);
  const t16 = await rejection(openTap({ bridge: b15, name: 't234567890123456' }, rtnl));
  t.ok(t16 instanceof InvalidArgumentError && t16.code === 'EINVAL', String(t16));
  const h15 = handOff(['--use-vnet', `--br=${b15}`, '--fd=3']);
  const h16 = handOff(['--use-vnet', `--br=${b16}`, '--fd=3']);
  t.equal(h15.status, 0, h15.stderr);
  t.equal(h16.status, 1);
  t.equal(h16.stderr, "name `b234567890123456' too long: 16\n", "the C helper's message");
  await rtnl.deleteBridge(b15);
  const left = leftoverCount(leftovers(['br0']));
  t.equal(left, 0);
  record(t, { area: 'limits', fault: '15- and 16-byte bridge and tap names (API and helper)', trials: 8, outcome: `15 bytes work; 16: InvalidArgumentError (createBridge and openTap, the same words), helper "${h16.stderr.trim()}"`, leftovers: left });
});

t.test('256 queues, and 257', async (t) => {
  const tap = await openTap({ bridge: 'br0', queues: 256 }, rtnl);
  t.equal(tap.fds.length, 256);
  const [l] = ipj<any[]>('-d', 'link', 'show', 'dev', tap.name);
  t.equal(l.num_tx_queues >= 1 && l.master, 'br0');
  closeTap(tap);
  const e = await rejection(openTap({ bridge: 'br0', queues: 257 }, rtnl));
  t.ok(e instanceof InvalidArgumentError && e.code === 'EINVAL', String(e));
  const left = leftoverCount(leftovers(['br0']));
  t.equal(left, 0);
  record(t, { area: 'limits', fault: 'multiqueue tap of 256 queues, then 257', trials: 2, outcome: `256: ${tap.name} on br0, closed; 257: "${(e as Error).message}"`, leftovers: left });
});

t.test('signals during blocking calls (EINTR)', async (t) => {
  const src = `import * as q from ${JSON.stringify(join(ROOT, 'dist', 'index.js'))};
let hits = 0; process.on('SIGUSR2', () => hits++); process.on('SIGWINCH', () => hits++);
const rtnl = q.Rtnl.openSync();
let n = 0, errs = [];
const end = Date.now() + 6000;
while (Date.now() < end) {
  try { const a = await q.openTap({ bridge: 'br0' }); q.closeTap(a); const b = q.openTapSync({ bridge: 'br0', vnetHdr: true }, rtnl); q.closeTap({ fds: [b.fd] }); await q.listLinks(); n++; }
  catch (e) { errs.push(e.name + ' ' + e.message); }
}
await new Promise((r) => setTimeout(r, 50));
process.stdout.write(JSON.stringify({ n, errs: errs.slice(0, 5), nerr: errs.length, hits }) + '\\n');
setTimeout(() => undefined, 1000); // the parent stops signalling first: a signal after exit began would kill us`;
  const c = spawn('env', ['-i', `PATH=${process.env.PATH}`, process.execPath, '--input-type=module', '-e', src], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let pump: NodeJS.Timeout | undefined;
  c.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.endsWith('\n')) clearInterval(pump);
  });
  const exited = new Promise<number | null>((r) => c.on('exit', (code) => r(code)));
  await new Promise((r) => setTimeout(r, 300));
  let sent = 0;
  pump = setInterval(() => {
    for (let i = 0; i < 20; i++) {
      try {
        process.kill(c.pid!, i % 2 ? 'SIGUSR2' : 'SIGWINCH');
        sent++;
      } catch {
        // exited
      }
    }
  }, 2);
  const code = await exited;
  clearInterval(pump);
  const res = JSON.parse(out || '{}');
  t.equal(code, 0);
  t.equal(res.nerr, 0, `no call failed: ${JSON.stringify(res.errs)}`);
  const left = leftoverCount(leftovers(['br0']));
  t.equal(left, 0);
  record(t, { area: 'limits', fault: 'SIGUSR2/SIGWINCH (handled) sent every 0.1 ms at a process in openTap, openTapSync and listLinks loops, 6 s', trials: res.n ?? 0, outcome: `${res.nerr ?? '?'} calls failed; ${sent} signals sent, ${res.hits} handled`, leftovers: left });
});

t.test('the kernel refusing a value: an MTU above the tap maximum', async (t) => {
  const tap = await openTap({ bridge: 'br0' }, rtnl);
  const e = await rejection(rtnl.setLink(tap.name, { mtu: 65530 }));
  t.ok(e instanceof NetlinkError && e.code === 'EINVAL', String(e));
  t.equal(ipj<any[]>('link', 'show', 'dev', tap.name)[0].mtu, 1500, 'unchanged');
  closeTap(tap);
  sh('ip', 'link', 'add', 'bj0', 'type', 'bridge');
  sh('ip', 'link', 'set', 'bj0', 'mtu', '65535');
  const e2 = await rejection(openTap({ bridge: 'bj0' }, rtnl));
  t.ok(e2 instanceof TapError && e2.step === 'set-mtu', String(e2));
  sh('ip', 'link', 'del', 'bj0');
  const left = leftoverCount(leftovers(['br0']));
  t.equal(left, 0);
  record(t, { area: 'limits', fault: 'MTU 65530 on a tap (kernel max 65521); openTap on a bridge of MTU 65535', trials: 2, outcome: `"${(e as Error).message}"; "${(e2 as Error).message}"`, leftovers: left });
});

t.test('tiny SO_RCVBUF: monitor() through a flood (ENOBUFS → resync), then a 10 000-link dump', async (t) => {
  const N = 10000;
  const FLOOD = 2000;
  const batch = (lines: string[]) =>
    new Promise<void>((resolve) => {
      const p = spawn('ip', ['-b', '-'], { stdio: ['pipe', 'ignore', 'inherit'] });
      p.stdin!.end(`${lines.join('\n')}\n`);
      p.on('exit', () => resolve());
    });
  const it = monitor({ receiveBuffer: 1 });
  t.same((await it.next()).value, { type: 'ready' });
  const names = new Set(linkNames());
  let resyncs = 0;
  let events = 0;
  const started = Date.now();
  const made = batch([...Array.from({ length: FLOOD }, (_, i) => `link add d${i} type bridge`), 'link add zzend type bridge']);
  const timer = setTimeout(() => void it.return(undefined), 60000);
  for (;;) {
    const r = await it.next();
    if (r.done) break;
    events++;
    const ev = r.value;
    if (ev.type === 'resync') {
      resyncs++;
      names.clear();
      for (const l of ev.links) names.add(l.ifname);
    } else if (ev.type === 'link') names.add(ev.link.ifname);
    else if (ev.type === 'dellink') names.delete(ev.link.ifname);
    if (names.has('zzend')) break;
  }
  clearTimeout(timer);
  await it.return(undefined);
  await made;
  const monitorMs = Date.now() - started;
  t.ok(resyncs > 0, `${resyncs} resyncs`);
  t.same([...names].sort(), linkNames().sort(), "the monitor's view equals the kernel's");
  await batch(Array.from({ length: N - FLOOD }, (_, i) => `link add d${i + FLOOD} type bridge`));
  // The dump on a socket whose receive buffer is the kernel's minimum (SO_RCVBUFFORCE 1 → 2304 bytes).
  // 10 000 links are more JSON than execFileSync's 1 MiB buffer: count them with ip -o.
  const count = () => spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8', maxBuffer: 256 << 20 }).stdout.split('\n').filter(Boolean).length;
  const small = Rtnl.openSync();
  native.setsockoptInt((small as any).socket.fd, SOL_SOCKET, SO_RCVBUFFORCE, 1);
  const dumpStart = Date.now();
  const links = await small.listLinks();
  const dumpMs = Date.now() - dumpStart;
  small.close();
  t.equal(links.length, count(), `all ${links.length} links`);
  // The 10 000 fixture bridges go with the namespace (the kernel frees it in the background): deleting
  // them here, even as one group, takes minutes. Last in this file for that reason.
  const left = spawnSync('ip', ['-o', 'link', 'show', 'type', 'tun'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).length;
  t.equal(left, 0, 'no tap');
  record(t, { area: 'limits', fault: `monitor({ receiveBuffer: 1 }) while ${FLOOD} bridges are created; listLinks() on a 2304-byte SO_RCVBUF with ${N + 3} links`, trials: 2, outcome: `${resyncs} resyncs, view = kernel's (${events} events); dump complete (${links.length} links)`, leftovers: left, figures: `monitor ${monitorMs} ms; dump ${dumpMs} ms` });
});
