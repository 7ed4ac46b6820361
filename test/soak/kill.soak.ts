// kill -9 at random points: a helper mid-attach, an API process mid-openTap (persistent and not),
// mid-deleteBridge({ withPorts }), the daemon mid-request. After each: no tap that nobody holds, no
// half-configured bridge (a temporary interface group left set counts), and the next operation
// succeeds. Private netns, mount ns, /etc/qemu and /run/qbh (harness).
import '../harness.js';
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ipj, privateEtcQemu, privateRunQbh, sh } from '../harness.js';
import { CLEAN, HELPER, NOBODY, ROOT, handOff, startDaemon, taps, type Daemon } from '../daemon-lib.js';
import { native } from '../../src/native.js';
import { Rtnl } from '../../src/netlink/rtnl.js';
import { closeTap, openTap } from '../../src/tun/tap.js';
import { bounded, leftoverCount, leftovers, record, sleep } from './soak-lib.js';

privateEtcQemu();
privateRunQbh();
writeFileSync('/etc/qemu/bridge.conf', 'allow br0\n', { mode: 0o644 });
sh('ip', 'link', 'add', 'br0', 'type', 'bridge');
sh('ip', 'link', 'set', 'br0', 'up');
const rtnl = Rtnl.openSync();
t.teardown(() => rtnl.close());

/** Trials per case, and the time each case may take at most (the suite's bound: ~5 min in all). */
const TRIALS = 100;
const CASE_MS = 25000;
const rand = (max: number) => Math.floor(Math.random() * max);

/** br0 as a user would check it: up, default group, no port. */
function br0Clean(): boolean {
  const [br] = ipj<any[]>('-d', 'link', 'show', 'dev', 'br0');
  return br.group === 'default' && ipj<any[]>('link', 'show', 'master', 'br0').length === 0;
}

/** A child node running the built API (dist/): prints "ready" once loaded, then `body`. */
function apiChild(body: string): { child: ChildProcess; ready: Promise<void>; out: () => string } {
  const src = `import * as q from ${JSON.stringify(join(ROOT, 'dist', 'index.js'))};\nprocess.stdout.write('ready\\n');\n${body}`;
  const child = spawn('env', ['-i', `PATH=${process.env.PATH}`, process.execPath, '--input-type=module', '-e', src], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready\n')) resolve();
    });
    child.on('exit', () => reject(new Error(`child exited before ready: ${out}`)));
  });
  return { child, ready, out: () => out };
}

const exited = (c: ChildProcess) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.on('exit', () => r())));

t.test('kill -9 of a helper (direct mode, root) at a random point of its attach', async (t) => {
  let killedMid = 0;
  let finished = 0;
  let left = 0;
  let nextOk = 0;
  const trials = await bounded(TRIALS, CASE_MS, async () => {
    const [qemuEnd, helperEnd] = native.socketpair(1);
    const child = spawn(CLEAN[0]!, [...CLEAN.slice(1), HELPER, '--use-vnet', '--br=br0', '--fd=3'], { stdio: ['ignore', 'ignore', 'ignore', helperEnd] });
    native.close(helperEnd);
    const done = exited(child);
    await Promise.race([sleep(rand(150)), done]);
    if (child.exitCode === null) killedMid++;
    else finished++;
    child.kill('SIGKILL');
    await done;
    const got = native.recvFds(qemuEnd, 16, 4, 0);
    for (const fd of got?.fds ?? []) native.close(fd);
    native.close(qemuEnd);
    left += taps().length + (br0Clean() ? 0 : 1);
    const next = handOff(['--use-vnet', '--br=br0', '--fd=3'], []);
    if (next.status === 0 && next.fds === 1 && next.tap?.link.master === 'br0') nextOk++;
    left += taps().length;
  });
  t.ok(killedMid > 0, `${killedMid} killed mid-run, ${finished} had finished`);
  t.equal(left, 0, 'no tap left, br0 never half-configured');
  t.equal(nextOk, trials, 'the next helper succeeds every time');
  record(t, { area: 'kill -9', fault: 'helper (direct, root) killed mid-attach, random delay 0-150 ms', trials, outcome: `${killedMid} killed mid-run, ${finished} finished first; next helper succeeded ${nextOk}/${trials}`, leftovers: left });
});

for (const persist of [false, true]) {
  t.test(`kill -9 of an API process mid-openTap (${persist ? 'persistent' : 'not persistent'})`, async (t) => {
    let left = 0;
    let complete = 0;
    let nextOk = 0;
    const body = persist
      ? `for (;;) { const tap = await q.openTap({ bridge: 'br0', name: 'pt%d', persist: true }); q.closeTap(tap); await q.deleteTap(tap.name); }`
      : `for (;;) { q.closeTap(await q.openTap({ bridge: 'br0' })); }`;
    const trials = await bounded(TRIALS, CASE_MS, async () => {
      const c = apiChild(body);
      await c.ready;
      await sleep(rand(60));
      c.child.kill('SIGKILL');
      await exited(c.child);
      // A persistent tap may be left only complete (persistence is the last step of openTap): on br0,
      // UP, br0's MTU, an fe: MAC. It is then the caller's, as asked; deleteTap removes it.
      for (const l of ipj<any[]>('-d', 'link', 'show', 'type', 'tun')) {
        const ok = persist && l.master === 'br0' && (l.flags as string[]).includes('UP') && l.mtu === 1500 && /^fe:/.test(l.address) && l.linkinfo.info_data.persist === true;
        if (ok) {
          complete++;
          sh('ip', 'link', 'del', l.ifname);
        } else left++;
      }
      left += br0Clean() ? 0 : 1;
      const tap = await openTap({ bridge: 'br0' }, rtnl);
      try {
        if (ipj<any[]>('link', 'show', 'master', 'br0').some((l) => l.ifname === tap.name)) nextOk++;
      } finally {
        closeTap(tap);
      }
      left += taps().length;
    });
    t.equal(left, 0, 'no tap nobody holds, no half-made persistent tap');
    t.equal(nextOk, trials, 'the next openTap succeeds every time');
    record(t, {
      area: 'kill -9',
      fault: `API process killed mid-openTap loop (${persist ? 'persist: true, then deleteTap' : 'not persistent'}), random delay 0-60 ms`,
      trials,
      outcome: persist ? `${complete} complete persistent taps left (the caller's, as asked), 0 half-made; next openTap ${nextOk}/${trials}` : `next openTap succeeded ${nextOk}/${trials}`,
      leftovers: left,
    });
  });
}

t.test('kill -9 of an API process mid-deleteBridge({ withPorts })', async (t) => {
  let gone = 0;
  let untouched = 0;
  let half = 0;
  let left = 0;
  const trials = await bounded(TRIALS, CASE_MS, async () => {
    const batch = ['link add kb0 type bridge', ...[0, 1, 2, 3].flatMap((i) => [`link add kd${i} type veth peer name kp${i}`, `link set kd${i} master kb0`])].join('\n');
    const p = spawn('ip', ['-b', '-'], { stdio: ['pipe', 'ignore', 'inherit'] });
    p.stdin!.end(`${batch}\n`);
    await exited(p);
    t.equal(ipj<any[]>('link', 'show', 'master', 'kb0').length, 4, 'kb0 has its 4 ports');
    const c = apiChild(`await q.deleteBridge('kb0', { withPorts: true }); process.stdout.write('done\\n');`);
    await c.ready;
    await sleep(rand(12));
    c.child.kill('SIGKILL');
    await exited(c.child);
    const names = ipj<any[]>('link', 'show').map((l) => l.ifname);
    const mine = names.filter((n) => /^k[bdp]\d$/.test(n));
    if (mine.length === 0) gone++;
    else if (leftovers(['br0']).grouped.length === 0) untouched++;
    else {
      // Killed between moving the ports into the temporary group and deleting the group: the next
      // deleteBridge({ withPorts }) finishes the job (docs/reliability.md, "Inherent").
      half++;
      t.ok(mine.includes('kb0'), 'the bridge is still there, with its ports');
    }
    if (mine.length > 0) await rtnl.deleteBridge('kb0', { withPorts: true });
    left += leftoverCount(leftovers(['br0']));
  });
  t.equal(left, 0, 'after the next deleteBridge, nothing left, no link left in a temporary group');
  t.ok(gone + untouched + half === trials);
  record(t, {
    area: 'kill -9',
    fault: 'API process killed mid-deleteBridge({ withPorts }) of a bridge with 4 veth ports, random delay 0-12 ms',
    trials,
    outcome: `${gone} deleted, ${untouched} untouched, ${half} killed with ports in the temporary group (documented; the next deleteBridge finished each)`,
    leftovers: left,
  });
});

t.test('kill -9 of the daemon mid-request', async (t) => {
  let served = 0;
  let cut = 0;
  let unclear = 0;
  let left = 0;
  let daemon: Daemon | undefined;
  const trials = await bounded(30, CASE_MS, async () => {
    daemon = await startDaemon();
    const runs = Array.from({ length: 4 }, () => {
      const [qemuEnd, helperEnd] = native.socketpair(1);
      const child = spawn(CLEAN[0]!, [...CLEAN.slice(1), ...NOBODY, HELPER, '--use-vnet', '--br=br0', '--fd=3'], { stdio: ['ignore', 'ignore', 'pipe', helperEnd] });
      native.close(helperEnd);
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      return new Promise<{ status: number | null; stderr: string; fds: number[] }>((resolve) =>
        child.on('close', (status) => {
          const got = native.recvFds(qemuEnd, 16, 4, 0);
          native.close(qemuEnd);
          resolve({ status, stderr, fds: got?.fds ?? [] });
        }),
      );
    });
    await sleep(rand(200));
    daemon.child.kill('SIGKILL');
    await daemon.exited;
    for (const r of await Promise.all(runs)) {
      if (r.status === 0 && r.fds.length === 1) served++;
      else if (r.status === 1 && r.fds.length === 0 && /^qbh: [^\n]*\n$/.test(r.stderr) && /daemon/.test(r.stderr)) cut++;
      else unclear++;
      for (const fd of r.fds) native.close(fd);
    }
    left += taps().length + (br0Clean() ? 0 : 1);
  });
  // The next request after a restart is served (the stale socket is replaced).
  daemon = await startDaemon();
  const next = handOff(['--use-vnet', '--br=br0', '--fd=3']);
  await daemon.stop();
  t.equal(next.status, 0, next.stderr);
  t.equal(unclear, 0, 'every helper either got its tap or one line naming the daemon');
  t.equal(left, 0, 'no tap left');
  record(t, {
    area: 'kill -9',
    fault: 'daemon killed mid-request (4 helpers as uid 65534 at once), random delay 0-200 ms; daemon-load.test.ts does it once with 60',
    trials,
    outcome: `${served} helpers served, ${cut} cut off with one line, ${unclear} other; restart serves (exit ${next.status})`,
    leftovers: left,
  });
});
