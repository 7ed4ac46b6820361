// Fairness and the audit log under a hostile local user (issue 20, findings 4, 5, 7, 8): looping
// clients of one uid must not make another uid's helper wait or fail, unread tap replies must not
// use up the in-flight fd quota of the daemon's user, nobody floods the audit log, and nothing a
// peer controls reaches it unescaped. The real daemon (dist/qbhd.cjs) and the real helper; the
// attackers are small Python clients run as other uids. Private netns, mount ns, /etc/qemu and
// /run/qbh (harness).
import './harness.js';
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { privateEtcQemu, privateRunQbh, sh } from './harness.js';
import { ROOT, SOCKET, logged, startDaemon, taps, until, type Daemon } from './daemon-lib.js';
import { handOffAsync } from './helper-lib.js';
import { native } from '../src/native.js';

execFileSync(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs')], { stdio: 'inherit' });
privateEtcQemu();
privateRunQbh();
/** The attacker (allowed br0, or no rights at all) and the victim, each a uid of its own. */
const ATTACKER = 4242;
const VICTIM = 4243;
const NOBODY_UID = 65534;
writeFileSync('/etc/qemu/bridge.conf', `deny-user ${NOBODY_UID} all\nallow br0\n`, { mode: 0o644 });
sh('ip', 'link', 'add', 'br0', 'type', 'bridge');

/** setpriv for `uid` (its gid the same), no groups, no capabilities. */
const as = (uid: number) => ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all'];

const TAP = '{"v":1,"op":"tap","bridge":"br0","vnet_hdr":true}\n';
/**
 * A looping client, as the attacker: `mode` `fire` connects, sends a tap request and closes
 * at once (the listen backlog fills fastest so); `read` also reads each reply; `hold` sends tap
 * requests on new connections and never reads or closes one. Prints how many replies it read.
 */
function attacker(uid: number, mode: 'fire' | 'read' | 'hold', request = TAP): ChildProcess {
  const py = `
import socket, sys
req = ${JSON.stringify(request)}.encode()
held, n = [], 0
while True:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(${JSON.stringify(SOCKET)})
        s.sendall(req)
        if ${JSON.stringify(mode)} == "read":
            socket.recv_fds(s, 65536, 4)
            n += 1
    except OSError:
        pass
    if ${JSON.stringify(mode)} == "hold":
        held.append(s)
    else:
        s.close()
`;
  return spawn('env', ['-i', ...as(uid), 'python3', '-c', py], { stdio: 'ignore' });
}

async function stopAll(procs: ChildProcess[]): Promise<void> {
  await Promise.all(
    procs.map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.exitCode !== null || p.signalCode !== null) return resolve();
          p.once('exit', () => resolve());
          p.kill('SIGKILL');
        }),
    ),
  );
}

/** The victim's helper, as QEMU runs it: its exit status, stderr, fds and wall time. */
async function victim(): Promise<{ status: number | null; stderr: string; fds: number[]; ms: number }> {
  const started = Date.now();
  const r = await handOffAsync(['--use-vnet', '--br=br0', '--fd=3'], as(VICTIM));
  const ms = Date.now() - started;
  for (const fd of r.fds) native.close(fd);
  return { ...r, ms };
}

let daemon: Daemon;
t.afterEach(async () => {
  if (daemon !== undefined && daemon.child.exitCode === null && daemon.child.signalCode === null) await daemon.stop();
});

t.test('finding 4: four looping clients of an allowed uid do not starve another uid', async (t) => {
  daemon = await startDaemon();
  const quiet = await victim();
  t.equal(quiet.status, 0, quiet.stderr);
  const procs = [...Array.from({ length: 4 }, () => attacker(ATTACKER, 'fire')), attacker(ATTACKER, 'read')];
  try {
    await until(() => (daemon.log().match(new RegExp(`uid=${ATTACKER} `, 'g'))?.length ?? 0) >= 200, 20000);
    const runs = [];
    for (let i = 0; i < 3; i++) runs.push(await victim());
    t.comment(`victim's helper: ${quiet.ms} ms alone, ${runs.map((r) => r.ms).join(', ')} ms under the attack`);
    for (const r of runs) {
      t.equal(r.status, 0, `the victim got its tap (${r.stderr.trim() || 'ok'})`);
      t.equal(r.fds.length, 1);
    }
  } finally {
    await stopAll(procs);
  }
  t.ok(await until(() => taps().length === 0, 30000), 'no tap left');
});

t.test('finding 4: six looping clients of a uid with no rights are answered at a bounded rate', async (t) => {
  daemon = await startDaemon();
  const quiet = await victim();
  const replies = () => daemon.log().match(new RegExp(`uid=${NOBODY_UID} `, 'g'))?.length ?? 0;
  const procs = Array.from({ length: 6 }, () => attacker(NOBODY_UID, 'read'));
  const started = Date.now();
  try {
    await until(() => replies() > 0, 20000);
    const runs = [];
    for (let i = 0; i < 3; i++) runs.push(await victim());
    t.comment(`victim's helper: ${quiet.ms} ms alone, ${runs.map((r) => r.ms).join(', ')} ms under the attack`);
    for (const r of runs) t.equal(r.status, 0, `the victim got its tap (${r.stderr.trim() || 'ok'})`);
  } finally {
    await stopAll(procs);
  }
  const seconds = (Date.now() - started) / 1000;
  t.comment(daemon.log().split("\n").slice(-4).join("\n"));
  await daemon.stop();
  // Every denial is one audit line or counted in a "suppressed" line: the sum is what was served.
  const lines = replies();
  const suppressed = [...daemon.log().matchAll(new RegExp(`suppressed (\\d+) lines from uid ${NOBODY_UID}\\b`, 'g'))].reduce((n, m) => n + Number(m[1]), 0);
  const served = lines + suppressed;
  t.comment(`uid ${NOBODY_UID} was answered ${served} times in ${seconds.toFixed(1)} s`);
  // The refusal rate (16/s after a burst of 32) with a wide margin; unbounded, it is thousands per second.
  t.ok(served <= 64 + 32 * seconds, `refusals to one uid are rate-limited (${served} in ${seconds.toFixed(1)} s)`);
});
