// Every permission hint is true of the situation it is printed in: which capability the process
// holds (CapEff), which mode of /dev/net/tun refused it. Each case makes its own state — a 0600 or
// 0666 node bound over /dev/net/tun, uid 65534 with or without an ambient CAP_NET_ADMIN, a user
// namespace that does not own the network namespace — and runs the CLI, the API and the helper
// as a user would. Private netns and mount ns (harness).
import './harness.js';
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ipj, linkNames, privateEtcQemu, privateRunQbh, sh, withTunNode } from './harness.js';
import { CLEAN, ROOT, handOff } from './daemon-lib.js';
import { NEED_NET_ADMIN } from '../src/index.js';
import { HAS_NET_ADMIN } from '../src/errors.js';

execFileSync(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs')], { stdio: 'inherit' });
privateEtcQemu();
privateRunQbh(); // an empty /run/qbh: a qbh daemon on the host must not serve the runs without a capability
execFileSync('sh', ['-c', "printf 'allow br0\\n' > /etc/qemu/bridge.conf && chmod 0644 /etc/qemu/bridge.conf"]);
sh('ip', 'link', 'add', 'br0', 'type', 'bridge');

const ids = ['--reuid=65534', '--regid=65534', '--clear-groups'];
/** uid 65534 with CAP_NET_ADMIN in its ambient (so effective) set, and with no capability at all. */
const WITH_CAP = ['setpriv', ...ids, '--inh-caps=+net_admin', '--ambient-caps=+net_admin'];
const NO_CAP = ['setpriv', ...ids, '--inh-caps=-all', '--bounding-set=-all'];

const MODE_0600 = "/dev/net/tun is mode 0600 (owner 0:0), which uid 65534 may not open: sudo chmod 0666 /dev/net/tun, the distributions' default (creating a tap still needs CAP_NET_ADMIN)";

function run(prefix: string[], file: string, ...args: string[]) {
  const r = spawnSync(CLEAN[0]!, [...CLEAN.slice(1), ...prefix, process.execPath, file, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
const qbh = (prefix: string[], ...args: string[]) => run(prefix, join(ROOT, 'dist', 'qbh.cjs'), ...args);
/** openTap through the API, as a script would: prints the error's message, or the tap's name. */
const api = (prefix: string[]) =>
  run(prefix, '--input-type=module', '-e', `import { openTap } from ${JSON.stringify(join(ROOT, 'dist', 'index.js'))}; try { const t = await openTap({ bridge: 'br0' }); console.log('ok', t.name); } catch (e) { console.log(e.message); }`);
const taps = () => ipj<{ ifname: string }[]>('link', 'show', 'type', 'tun').map((l) => l.ifname);

t.test('CAP_NET_ADMIN held, /dev/net/tun 0600: the mode is named, not the capability', async (t) => {
  await withTunNode(0o600, () => {
    const r = qbh(WITH_CAP, 'tap', 'create', 't0', '--bridge', 'br0');
    t.equal(r.status, 1);
    t.equal(r.stderr, `qbh: cannot create tap t0: Permission denied; ${MODE_0600}\n`);
    t.notMatch(r.stderr, /this needs CAP_NET_ADMIN/, 'it had the capability');
    t.equal(api(WITH_CAP).stdout, `cannot open /dev/net/tun: Permission denied; ${MODE_0600}\n`, 'openTap: the same words');
    const h = handOff(['--br=br0', '--fd=3'], WITH_CAP);
    t.equal(h.status, 1);
    t.equal(
      h.stderr,
      "failed to open /dev/net/tun: Permission denied\nqbh: /dev/net/tun is mode 0600 (owner 0:0), which uid 65534 may not open; make it 0666, the distributions' default (creating a tap still needs CAP_NET_ADMIN)\n",
      'the helper: the C line, then the mode (no word of a missing capability)',
    );
  });
  t.same(taps(), []);
});

t.test('no capability, /dev/net/tun 0600: both are named', async (t) => {
  await withTunNode(0o600, () => {
    const r = qbh(NO_CAP, 'tap', 'create', 't0', '--bridge', 'br0');
    t.equal(r.stderr, `qbh: cannot create tap t0: Permission denied; ${MODE_0600}; and this process lacks CAP_NET_ADMIN: run as root, or with the capability in the ambient set\n`);
    const h = handOff(['--br=br0', '--fd=3'], NO_CAP);
    const lines = h.stderr.split('\n');
    t.equal(lines[0], 'failed to open /dev/net/tun: Permission denied');
    t.match(lines[1], /^qbh: this helper is not setuid .*no qbh daemon listens/, 'no capability and no daemon: both true here');
    t.match(lines[2], /^qbh: \/dev\/net\/tun is mode 0600 \(owner 0:0\), which uid 65534 may not open; make it 0666/);
    t.equal(lines.length, 4);
  });
});

t.test('no capability, /dev/net/tun 0666: the capability is named, not the mode', async (t) => {
  await withTunNode(0o666, () => {
    const r = qbh(NO_CAP, 'tap', 'create', 't0', '--bridge', 'br0');
    t.equal(r.stderr, `qbh: cannot create tap t0: Operation not permitted; ${NEED_NET_ADMIN}\n`);
    t.equal(api(NO_CAP).stdout, `cannot create tap%d: Operation not permitted; ${NEED_NET_ADMIN}\n`);
    const h = handOff(['--br=br0', '--fd=3'], NO_CAP);
    const lines = h.stderr.split('\n');
    t.equal(lines[0], 'failed to create tun device: Operation not permitted');
    t.match(lines[1], /^qbh: this helper is not setuid/);
    t.equal(lines.length, 3, 'no line about the mode: it allowed the open');
  });
});

t.test('CAP_NET_ADMIN held, /dev/net/tun 0666: it works (the control)', async (t) => {
  await withTunNode(0o666, () => {
    const r = qbh(WITH_CAP, 'tap', 'create', 't0', '--bridge', 'br0');
    t.equal(r.status, 0, r.stderr);
    t.ok(linkNames().includes('t0'));
    sh('ip', 'link', 'del', 't0');
    t.equal(handOff(['--br=br0', '--fd=3'], WITH_CAP).status, 0);
  });
});

t.test('every capability, but in a user namespace that does not own the network namespace', async (t) => {
  const r = qbh(['unshare', '--user', '--map-root-user', '--'], 'bridge', 'create', 'brx');
  t.equal(r.status, 1);
  t.equal(r.stderr, `qbh: cannot create bridge brx: Operation not permitted; ${HAS_NET_ADMIN}\n`);
  t.notMatch(r.stderr, /this needs CAP_NET_ADMIN/);
  t.notOk(linkNames().includes('brx'));
});
