// The daemon's own socket: where it may be made (issue 20, finding 11), what the helper says when
// the socket's mode keeps a user out (issue 21, #16: systemd-socket-activate has no mode option), and
// how a second daemon's probe shows in the first one's audit log (issue 21, #17).
// Private netns, mount ns, /etc/qemu and /run/qbh (harness).
import './harness.js';
import t from 'tap';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { privateEtcQemu, privateRunQbh, sh } from './harness.js';
import { CLEAN, QBHD, ROOT, SOCKET, handOff, logged, startDaemon, taps, type Daemon } from './daemon-lib.js';

execFileSync(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs')], { stdio: 'inherit' });
privateEtcQemu();
privateRunQbh();
writeFileSync('/etc/qemu/bridge.conf', 'allow br0\n', { mode: 0o644 });
sh('ip', 'link', 'add', 'br0', 'type', 'bridge');

const tmp = mkdtempSync('/tmp/qbh-socket-');
chmodSync(tmp, 0o755);
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

/** qbhd run to its end (it is expected to refuse to start): exit status and stderr. */
function qbhdOnce(args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(CLEAN[0]!, [...CLEAN.slice(1), QBHD, ...args], { encoding: 'utf8', timeout: 20000 });
  return { status: r.status, stderr: r.stderr };
}

t.test('--socket in a directory another user can change is refused, whatever that user does meanwhile', async (t) => {
  const victim = join(tmp, 'victim');
  writeFileSync(victim, 'root only\n', { mode: 0o600 });
  const open = join(tmp, 'open');
  execFileSync('mkdir', ['-m', '0777', open]);
  // uid 4242 keeps swapping the socket's name for a symlink to root's file: after listen(), the old
  // daemon's chmod 0666 followed it.
  const swapper = spawn('setpriv', ['--reuid=4242', '--regid=4242', '--clear-groups', 'sh', '-c', `while :; do rm -f ${open}/qbhd.sock; ln -s ${victim} ${open}/qbhd.sock 2>/dev/null; done`], { stdio: 'ignore' });
  t.teardown(() => swapper.kill('SIGKILL'));
  for (let i = 0; i < 5; i++) {
    const r = qbhdOnce(['--socket', `${open}/qbhd.sock`]);
    t.equal(r.status, 1);
    t.equal(
      r.stderr,
      `qbh daemon: will not make the socket ${open}/qbhd.sock: directory ${open} is writable by others (mode 0777), so another user could swap the socket for a symlink before its mode is set; choose a directory only root can change\n`,
    );
  }
  swapper.kill('SIGKILL');
  t.equal(statSync(victim).mode & 0o7777, 0o600, "root's file kept its mode");

  const owned = join(tmp, 'owned');
  execFileSync('mkdir', ['-p', join(owned, 'sub')]);
  chownSync(owned, 4242, 4242);
  const r = qbhdOnce(['--socket', `${owned}/sub/qbhd.sock`]);
  t.equal(r.status, 1);
  t.match(r.stderr, new RegExp(`^qbh daemon: will not make the socket ${owned}/sub/qbhd.sock: directory ${owned} is owned by uid 4242, `), 'a directory above, owned by a user');
  t.notOk(existsSync(`${owned}/sub/qbhd.sock`), 'nothing made');
});

t.test('a sticky directory (as /tmp) is fine: nobody can replace root’s entry there', async (t) => {
  const sticky = join(tmp, 'sticky');
  execFileSync('mkdir', ['-m', '1777', sticky]);
  const d: Daemon = await startDaemon(['--socket', `${sticky}/qbhd.sock`]);
  t.equal(statSync(`${sticky}/qbhd.sock`).mode & 0o7777, 0o666);
  t.equal(await d.stop(), 0);
});

t.test('a second daemon is refused, and its probe is audited as a probe, not as an attack', async (t) => {
  const first: Daemon = await startDaemon();
  t.teardown(() => first.stop());
  const second = qbhdOnce([]);
  t.equal(second.status, 1);
  t.equal(second.stderr, `qbh daemon: another daemon is already listening on ${SOCKET}\n`);
  t.ok(await logged(first, /qbhd: probe uid=0 gid=0 /), 'the first daemon saw a probe');
  t.notMatch(first.log(), /refused|truncated/, 'and no refused request');
  t.equal(handOff(['--br=br0', '--fd=3']).status, 0, 'the first daemon still serves');
  t.same(taps(), []);
});

/** systemd-socket-activate, as an admin without systemd as PID 1 runs it: it makes the socket at once, the daemon on the first connection. */
async function activated(): Promise<{ stop(): Promise<unknown> }> {
  const child = spawn(CLEAN[0]!, [...CLEAN.slice(1), 'systemd-socket-activate', '-l', SOCKET, process.execPath, QBHD], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.setEncoding('utf8');
  const exited = new Promise((resolve) => child.on('exit', resolve));
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d: string) => {
      log += d;
      if (/Listening on/i.test(log) && existsSync(SOCKET)) resolve();
    });
    void exited.then((c) => reject(new Error(`exited ${c}: ${log}`)));
  });
  return {
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      rmSync(SOCKET, { force: true });
    },
  };
}

t.test('systemd-socket-activate: the helper names the socket’s mode, and chmod 0666 is the fix', async (t) => {
  const sa = await activated();
  t.equal(statSync(SOCKET).mode & 0o777, 0o644, 'systemd-socket-activate makes it 0644 and has no option for the mode');
  const r = handOff(['--br=br0', '--fd=3']);
  t.equal(r.status, 1);
  t.match(r.stderr, /^qbh: the qbh daemon's socket \/run\/qbh\/qbhd\.sock does not let uid 65534 connect \(connect: Permission denied\): it is mode 0644, owner uid 0, group gid 0, and connecting needs write permission; .*chmod 0666 after systemd-socket-activate made it \(docs\/daemon\.md\)\n$/);
  t.notMatch(r.stderr, /is it running/);
  chmodSync(SOCKET, 0o666);
  const ok = handOff(['--br=br0', '--fd=3']);
  t.equal(ok.status, 0, ok.stderr);
  await sa.stop();
  t.same(taps(), []);
});
