import './harness.js';
import t from 'tap';
import { spawn, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sh } from './harness.js';
import { monitor, type MonitorEvent } from '../src/netlink/monitor.js';
import { READY_LINE } from '../src/cli/commands/monitor.js';

/** Collects events with next() (so the monitor keeps running) until `until` says stop; ends it after 5 s. */
async function collect(it: AsyncGenerator<MonitorEvent>, until: (evs: MonitorEvent[]) => boolean): Promise<MonitorEvent[]> {
  const evs: MonitorEvent[] = [];
  const timer = setTimeout(() => void it.return(undefined), 5000);
  for (;;) {
    const r = await it.next();
    if (r.done) break;
    evs.push(r.value);
    if (until(evs)) break;
  }
  clearTimeout(timer);
  return evs;
}

t.test('ready first; then link, address and bridge-port events, stopped with break', async (t) => {
  const it = monitor();
  t.same((await it.next()).value, { type: 'ready' }, 'the first event says the subscription is in place');
  // Right after ready, with no delay: every one of these changes must be seen.
  sh('ip', 'link', 'add', 'mb0', 'type', 'bridge');
  sh('ip', 'addr', 'add', '10.1.0.1/24', 'dev', 'mb0');
  sh('ip', 'link', 'add', 'mv0', 'type', 'veth', 'peer', 'name', 'mv1');
  sh('ip', 'link', 'set', 'mv0', 'master', 'mb0');
  sh('ip', 'link', 'del', 'mb0');
  const evs = await collect(it, (e) => e.some((x) => x.type === 'dellink' && x.link.ifname === 'mb0'));
  t.notOk(evs.some((e) => e.type === 'ready'), 'ready comes once');
  const link = evs.find((e) => e.type === 'link' && e.link.ifname === 'mb0');
  t.ok(link, 'new bridge');
  t.equal(link?.type === 'link' && link.link.linkinfo?.info_kind, 'bridge');
  t.ok(evs.some((e) => e.type === 'addr' && e.address.local === '10.1.0.1' && e.address.ifname === 'mb0'), 'address added');
  t.ok(evs.some((e) => e.type === 'port' && e.port.ifname === 'mv0' && e.port.master === 'mb0'), 'port joined');
  t.ok(evs.some((e) => e.type === 'link' && e.link.ifname === 'mv0' && e.link.master === 'mb0'), 'link shows its master by name');
  t.ok(evs.some((e) => e.type === 'delport' && e.port.ifname === 'mv0'), 'port left');
  t.ok(evs.some((e) => e.type === 'deladdr' && e.address.local === '10.1.0.1'), 'address removed');
  t.equal(evs.at(-1)?.type, 'dellink');
  await it.return(undefined);
  t.same(await it.next(), { value: undefined, done: true }, 'ended after return (what break calls)');
});

t.test('an AbortSignal ends the iterator', async (t) => {
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 100);
  const evs: MonitorEvent[] = [];
  for await (const ev of monitor({ signal: ac.signal })) evs.push(ev);
  t.same(evs, [{ type: 'ready' }], 'nothing happened, and it ended');
  const pre = new AbortController();
  pre.abort();
  t.same(await monitor({ signal: pre.signal }).next(), { value: undefined, done: true });
});

t.test('an overrun (ENOBUFS) gives a resync with the full state', async (t) => {
  const it = monitor({ receiveBuffer: 4096, groups: ['link'] });
  t.same((await it.next()).value, { type: 'ready' });
  sh('ip', 'link', 'add', 'ob0', 'type', 'bridge');
  await it.next();
  // Block the event loop while the kernel sends far more than the buffer holds.
  const batch = Array.from({ length: 100 }, (_, i) => `link add ov${i} type veth peer name ow${i}`).join('\n');
  execFileSync('ip', ['-batch', '-'], { input: batch });
  const evs = await collect(it, (e) => e.some((x) => x.type === 'resync'));
  const resync = evs.find((e) => e.type === 'resync');
  t.ok(resync, 'resync event');
  if (resync?.type === 'resync') {
    t.equal(resync.reason, 'overrun');
    const names = resync.links.map((l) => l.ifname);
    t.ok(names.includes('ov99') && names.includes('ob0'), 'the dump has the current links');
    t.ok(resync.addresses.some((a) => a.ifname === 'lo'), 'and the addresses');
  }
  // It keeps working after the resync. With a buffer this small even two notifications can
  // overrun it again, so the deletion shows as a dellink or as a resync without the bridge.
  setTimeout(() => sh('ip', 'link', 'del', 'ob0'), 50);
  const gone = (e: MonitorEvent) =>
    (e.type === 'dellink' && e.link.ifname === 'ob0') || (e.type === 'resync' && !e.links.some((l) => l.ifname === 'ob0'));
  const after = await collect(it, (e) => e.some(gone));
  t.ok(after.some(gone), 'events flow again');
  await it.return(undefined);
});

t.test('qbh monitor --json: one event per line; Ctrl-C stops it', async (t) => {
  const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));
  const main = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
  const child = spawn(process.execPath, [...loader, main, 'monitor', '--json'], { env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' } });
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (s: string) => (out += s));
  let err = '';
  child.stderr.on('data', (s) => (err += s));
  // The first line says it is listening; a change made right after it must be printed.
  const deadline = Date.now() + 20000;
  while (!out.includes('\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.equal(out.split('\n')[0], '{"type":"ready"}', 'first line: ready');
  sh('ip', 'link', 'add', 'cmb', 'type', 'bridge');
  sh('ip', 'link', 'del', 'cmb');
  await new Promise((r) => setTimeout(r, 300));
  child.kill('SIGINT');
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  t.equal(code, 0, err);
  t.equal(err, '');
  const events = out.trimEnd().split('\n').map((l) => JSON.parse(l));
  t.equal(events.filter((e) => e.type === 'ready').length, 1);
  t.ok(events.some((e) => e.type === 'link' && e.link.ifname === 'cmb' && e.link.linkinfo.info_kind === 'bridge'), 'create seen');
  t.ok(events.some((e) => e.type === 'dellink' && e.link.ifname === 'cmb'), 'delete seen');
});

t.test('qbh monitor (text): a ready line on stderr, then the events on stdout', async (t) => {
  const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));
  const main = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
  const child = spawn(process.execPath, [...loader, main, 'monitor'], { env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' } });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
  const deadline = Date.now() + 20000;
  while (!err.includes('\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.equal(err, `${READY_LINE}\n`);
  sh('ip', 'link', 'add', 'ctb', 'type', 'bridge');
  while (!out.includes('link ctb bridge') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  child.kill('SIGINT');
  t.equal(await new Promise<number | null>((r) => child.on('exit', (c) => r(c))), 0);
  t.match(out, /^link ctb bridge DOWN mtu 1500/m, 'the change right after ready was printed');
});
