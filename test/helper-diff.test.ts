// Differential test: qbh's qemu-bridge-helper against the real C one (/usr/lib/qemu/qemu-bridge-helper,
// Debian qemu-system-common), case by case, in this file's private network and mount namespaces with a
// tmpfs over /etc/qemu. The test plays QEMU's part: a socketpair, the child end at an inherited fd,
// stderr read, one recvmsg. Compared: exit status or signal, stderr bytes, the payload and fd count, the
// received fd's TUNGETIFF name and flags, the tap's state (MTU, MAC prefix, master, UP, vnet_hdr, pi,
// persist), and leftovers (no tap may remain once the fds are closed). Where the two differ on purpose
// (docs/helper.md, "Deviations") the case says so, and qbh's side must fail closed.
import './harness.js';
import t, { type Test } from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SANITIZER_ENV, ipj, linkNames, privateEtcQemu, privateRunQbh, sh } from './harness.js';
import { native } from '../src/native.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const OURS = join(ROOT, 'bin', 'qemu-bridge-helper');
const C_HELPER = '/usr/lib/qemu/qemu-bridge-helper';
const ACL_DIR = '/etc/qemu';
const TUNGETIFF = 0x800454d2;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const USAGE = 'Usage: qemu-bridge-helper [--use-vnet] --br=bridge --fd=unixfd\n';
const PARSE_FAILED = "failed to parse default acl file `/etc/qemu/bridge.conf'\n";
const DENIED = 'access denied by acl file\n';
const HINT_PREFIX = 'qbh: this helper is not setuid';
const ALLOW_ALL = 'allow all\n';
// QEMU's environment, not the test runner's: tap puts its coverage hooks in NODE_OPTIONS.
const HELPER_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };

if (!existsSync(C_HELPER)) {
  t.fail(`${C_HELPER} is not installed (apt-get install qemu-system-common)`);
  process.exit(1);
}

// The bundle under test, built from the current sources (atomically replaced: parallel files are safe).
execFileSync(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs')], { stdio: 'inherit' });

// Fixtures: two bridges of different MTUs, a non-bridge, a tmpfs for the ACL, a 0666 /dev/net/tun
// (this machine's is 0600; distros ship 0666) so the unprivileged cases behave as on a distro.
privateEtcQemu(); // ACL_DIR, in this test's mount namespace only
privateRunQbh(); // an empty /run/qbh: a qbh daemon on the host must not serve the runs without a capability
sh('ip', 'link', 'add', 'br0', 'type', 'bridge');
// Set after creation, so the bridge keeps it when its last port leaves (BROPT_MTU_SET_BY_USER).
sh('ip', 'link', 'set', 'br0', 'mtu', '1400');
sh('ip', 'link', 'add', 'br1', 'type', 'bridge');
sh('ip', 'tuntap', 'add', 'dev', 'notbr', 'mode', 'tap'); // persistent, a non-bridge (docs/qemu-bridge-helper.md, §8)
sh('ip', 'link', 'add', 'vx0', 'type', 'veth', 'peer', 'name', 'vx1'); // another kind of non-bridge
sh('ip', 'link', 'property', 'add', 'dev', 'br1', 'altname', 'lan1'); // br1 also answers to lan1
const FIXTURE_LINKS = new Set(linkNames());
const devDir = join(ACL_DIR, '.dev');
mkdirSync(devDir, { mode: 0o700 });
sh('mknod', join(devDir, 'tun'), 'c', '10', '200');
chmodSync(join(devDir, 'tun'), 0o666);
sh('mount', '--bind', join(devDir, 'tun'), '/dev/net/tun');

type Files = Record<string, string | Buffer | { dir: true } | { data: string; mode: number }>;

interface Case {
  name: string;
  /** argv after argv[0]; `{FD}` becomes the fd number the socket has in the child. */
  args: (string | Buffer)[];
  /** Files in /etc/qemu (bridge.conf and includes); default `allow all`. `null`: no bridge.conf. */
  files?: Files | null;
  /** Where the socket sits in the child (default 3). */
  slot?: number;
  socketType?: number;
  /** Close QEMU's end before the helper runs. */
  peerClosed?: boolean;
  /** Give the helper a regular file at the slot instead of a socket. */
  notSocket?: boolean;
  /** Run as uid/gid 65534: with an ambient CAP_NET_ADMIN, or with no capability at all. */
  user?: 'ambient' | 'nocaps';
  /** Put a 0600 root /dev/net/tun back for this case. */
  tun0600?: boolean;
  cwd?: string;
  /** Run the C helper under `prlimit --nofile=N` (its include recursion needs a low limit to survive). */
  cNofile?: number;
  /** A documented deviation: checks both sides itself instead of comparing them. */
  deviation?: (tt: Test, c: Outcome, ours: Outcome) => void;
}

interface Outcome {
  status: number | null;
  signal: string | null;
  stderr: string;
  payload: string | null;
  fds: number;
  tap: null | { name: string; flags: string; mtu: number; macPrefix: string; master: string | null; up: boolean; info: unknown };
  leftovers: string[];
}

function writeFiles(files: Files | null): void {
  for (const f of readdirSync(ACL_DIR)) if (f !== '.dev') rmSync(join(ACL_DIR, f), { recursive: true, force: true });
  if (files === null) return;
  for (const [name, content] of Object.entries(files)) {
    const path = join(ACL_DIR, name);
    if (typeof content === 'object' && 'dir' in content) mkdirSync(path);
    else if (typeof content === 'object' && 'mode' in content) {
      writeFileSync(path, content.data);
      chmodSync(path, content.mode);
    } else writeFileSync(path, content);
  }
}

function userPrefix(user: Case['user']): string[] {
  if (user === undefined) return [];
  const ids = ['--reuid=65534', '--regid=65534', '--clear-groups'];
  return user === 'ambient'
    ? ['setpriv', ...ids, '--inh-caps=+net_admin', '--ambient-caps=+net_admin']
    : ['setpriv', ...ids, '--inh-caps=-all'];
}

/** Plays QEMU: runs `helper` with the socket at the case's slot, then receives what it sent. */
function runHelper(helper: string, c: Case): Outcome {
  writeFiles(c.files === undefined ? { 'bridge.conf': ALLOW_ALL } : c.files);
  const slot = c.slot ?? 3;
  const [qemuEnd, helperEnd] = native.socketpair(c.socketType ?? SOCK_STREAM);
  let given = helperEnd;
  if (c.notSocket) given = openSync('/etc/hostname', 'r');
  if (c.peerClosed) native.close(qemuEnd);
  const stdio: ('ignore' | 'pipe' | number)[] = ['ignore', 'pipe', 'pipe'];
  while (stdio.length <= slot) stdio.push('ignore');
  stdio[slot] = given;
  const args = c.args.map((a) => (typeof a === 'string' ? a.replaceAll('{FD}', String(slot)) : a.toString('latin1')));
  // env -i: QEMU's environment, not the test runner's (tap hooks every node child through NODE_OPTIONS).
  const cmd = ['env', '-i', `PATH=${HELPER_ENV.PATH}`, ...SANITIZER_ENV, ...userPrefix(c.user)];
  if (helper === C_HELPER && c.cNofile !== undefined) cmd.push('prlimit', `--nofile=${c.cNofile}`, '--');
  cmd.push(helper);
  let r;
  if (c.args.some((a) => Buffer.isBuffer(a))) {
    // Node passes argv as UTF-8: bytes that are not UTF-8 go through the shell's printf instead.
    const octal = (b: Buffer) => [...b].map((x) => `\\${x.toString(8).padStart(3, '0')}`).join('');
    const words = c.args.map((a) => `"$(printf '${octal(Buffer.isBuffer(a) ? a : Buffer.from(a.replaceAll('{FD}', String(slot))))}')"`);
    const script = `exec ${cmd.map((x) => `'${x}'`).join(' ')} ${words.join(' ')}`;
    r = spawnSync('sh', ['-c', script], { stdio, cwd: c.cwd ?? '/', env: HELPER_ENV, timeout: 20000 });
  } else {
    r = spawnSync(cmd[0]!, [...cmd.slice(1), ...args], { stdio, cwd: c.cwd ?? '/', env: HELPER_ENV, timeout: 20000 });
  }
  if (c.notSocket) closeSync(given);
  native.close(helperEnd);
  const out: Outcome = {
    status: r.status,
    signal: r.signal,
    stderr: (r.stderr as Buffer).toString('latin1'),
    payload: null,
    fds: 0,
    tap: null,
    leftovers: [],
  };
  if (!c.peerClosed) {
    const got = native.recvFds(qemuEnd, 16, 4, 0);
    if (got !== null) {
      out.payload = got.data.toString('hex');
      out.fds = got.fds.length;
      for (const fd of got.fds) {
        const ifr = Buffer.alloc(40);
        native.ioctl(fd, TUNGETIFF, ifr);
        const name = ifr.toString('latin1', 0, 16).replace(/\0.*$/s, '');
        const [link] = ipj<any[]>('-d', 'link', 'show', 'dev', name);
        out.tap = {
          name,
          flags: `0x${ifr.readUInt16LE(16).toString(16)}`,
          mtu: link.mtu,
          macPrefix: String(link.address).slice(0, 3),
          master: link.master ?? null,
          up: (link.flags as string[]).includes('UP'),
          info: link.linkinfo?.info_data,
        };
      }
      for (const fd of got.fds) native.close(fd);
    }
    native.close(qemuEnd);
  }
  out.leftovers = linkNames().filter((n) => !FIXTURE_LINKS.has(n));
  return out;
}

const success = (tt: Test, o: Outcome, what: string) => {
  tt.equal(o.status, 0, `${what}: exit 0`);
  tt.equal(o.stderr, '', `${what}: silent`);
  tt.equal(o.payload, '00', `${what}: 1 byte 0x00`);
  tt.equal(o.fds, 1, `${what}: one fd`);
};
const failsClosed = (tt: Test, o: Outcome, what: string) => {
  tt.equal(o.status, 1, `${what}: exit 1`);
  tt.equal(o.fds, 0, `${what}: no fd sent`);
  tt.same(o.leftovers, [], `${what}: nothing left behind`);
};

const allow = (conf: string, more: Files = {}): Files => ({ 'bridge.conf': conf, ...more });

const cases: Case[] = [
  // argv grammar (docs/qemu-bridge-helper.md, §1.1)
  { name: 'no arguments', args: [] },
  { name: '--help', args: ['--help'] },
  { name: '-h', args: ['-h'] },
  { name: '--version', args: ['--version'] },
  { name: '--use-vnet=1 is not --use-vnet', args: ['--use-vnet=1', '--br=br0', '--fd={FD}'] },
  { name: 'only --br', args: ['--br=br0'] },
  { name: 'only --fd', args: ['--fd={FD}'] },
  { name: '--fd=-1 counts as missing', args: ['--br=br0', '--fd=-1'] },
  { name: 'unknown argument after valid ones', args: ['--br=br0', '--fd={FD}', '--bogus'] },
  { name: 'unknown argument first: later ones not examined', args: ['--bogus', '--br=0123456789abcdefXYZ', '--fd={FD}'] },
  { name: '--br without =', args: ['--br', 'br0', '--fd={FD}'] },
  { name: '--fd as a separate word', args: ['--br=br0', '--fd', '{FD}'] },
  { name: 'options are case-sensitive', args: ['--BR=br0', '--fd={FD}'] },
  { name: 'an empty argument', args: ['', '--br=br0', '--fd={FD}'] },
  { name: 'atoi overflow: 99999999999999999999 → LONG_MAX → (int) -1 → usage', args: ['--br=br0', '--fd=99999999999999999999'] },
  // name length before the ACL (docs/qemu-bridge-helper.md, §1.2, step 3)
  { name: '16-byte bridge name, no ACL file at all', args: ['--br=0123456789abcdef', '--fd={FD}'], files: null },
  { name: '16 bytes of UTF-8 (14 characters)', args: ['--br=brücke-brücke', '--fd={FD}'] },
  { name: 'non-UTF-8 byte in a 16-byte name', args: [Buffer.from('--br=0123456789abcde\xff', 'latin1'), '--fd={FD}'] },
  { name: '15-byte name passes the check (then no such device)', args: ['--br=0123456789abcde', '--fd={FD}'] },
  // ACL outcomes (docs/qemu-bridge-helper.md, §4)
  { name: 'missing bridge.conf', args: ['--br=br0', '--fd={FD}'], files: null },
  { name: 'empty bridge.conf: default deny', args: ['--br=br0', '--fd={FD}'], files: allow('') },
  { name: 'deny all', args: ['--br=br0', '--fd={FD}'], files: allow('allow br0\ndeny all\n') },
  { name: 'allow br1 only, asked br0', args: ['--br=br0', '--fd={FD}'], files: allow('allow br1\n') },
  { name: 'allow all + deny br0: br0 denied', args: ['--br=br0', '--fd={FD}'], files: allow('allow all\ndeny br0\n') },
  { name: 'allow all + deny br0: br1 allowed', args: ['--use-vnet', '--br=br1', '--fd={FD}'], files: allow('allow all\ndeny br0\n') },
  { name: 'bridge.conf is a directory', args: ['--br=br0', '--fd={FD}'], files: { 'bridge.conf': { dir: true } } },
  { name: 'unknown command', args: ['--br=br0', '--fd={FD}'], files: allow('allow br0\nfoo br0\n') },
  { name: 'allow without argument', args: ['--br=br0', '--fd={FD}'], files: allow('  allow\n') },
  { name: 'last line without newline', args: ['--br=br0', '--fd={FD}'], files: allow('allow br0\ndeny') },
  { name: 'ACL name too long', args: ['--br=br0', '--fd={FD}'], files: allow('allow 0123456789abcdef\n') },
  { name: 'allow<TAB><SP>br0: unknown command', args: ['--br=br0', '--fd={FD}'], files: allow('allow\t br0\n') },
  { name: 'allow<TAB>br0 works', args: ['--use-vnet', '--br=br0', '--fd={FD}'], files: allow('allow\tbr0\n') },
  { name: 'missing include ignored', args: ['--use-vnet', '--br=br0', '--fd={FD}'], files: allow('include /nonexistent\nallow br0\n') },
  { name: 'error in an include: printed, not fatal', args: ['--use-vnet', '--br=br0', '--fd={FD}'], files: allow('include /etc/qemu/inc.conf\n', { 'inc.conf': 'allow br0\nbad\nallow br1\n' }) },
  { name: 'rules after the error in an include are lost', args: ['--br=br1', '--fd={FD}'], files: allow('include /etc/qemu/inc.conf\n', { 'inc.conf': 'allow br0\nbad br1\nallow br1\n' }) },
  { name: 'relative include against the cwd', args: ['--use-vnet', '--br=br0', '--fd={FD}'], files: allow('include rel.conf\n', { 'rel.conf': 'allow br0\n' }), cwd: ACL_DIR },
  { name: 'relative include from another cwd is missing', args: ['--br=br0', '--fd={FD}'], files: allow('include rel.conf\n', { 'rel.conf': 'allow br0\n' }), cwd: '/' },
  { name: '# only at the start of a line', args: ['--br=br0', '--fd={FD}'], files: allow('allow br0 # comment\n') },
  { name: 'ALL is a name', args: ['--br=br0', '--fd={FD}'], files: allow('allow ALL\n') },
  { name: 'CRLF file', args: ['--use-vnet', '--br=br0', '--fd={FD}'], files: allow('# qemu\r\nallow br0\r\n') },
  { name: 'UTF-8 BOM breaks the first line', args: ['--br=br0', '--fd={FD}'], files: allow('\ufeffallow br0\n') },
  // tap setup (docs/qemu-bridge-helper.md, §3)
  { name: 'QEMU argv order', args: ['--use-vnet', '--fd={FD}', '--br=br0'] },
  { name: 'libvirt argv order, virtio (vnet)', args: ['--use-vnet', '--br=br0', '--fd={FD}'] },
  { name: 'libvirt argv order, no vnet', args: ['--br=br0', '--fd={FD}'] },
  { name: 'MTU 1500 bridge', args: ['--use-vnet', '--br=br1', '--fd={FD}'] },
  { name: 'nonexistent bridge', args: ['--br=nob0', '--fd={FD}'] },
  { name: 'empty bridge name, allowed by `allow `', args: ['--br=', '--fd={FD}'], files: allow('allow \n') },
  { name: 'non-bridge interface', args: ['--use-vnet', '--br=notbr', '--fd={FD}'] },
  { name: 'non-bridge interface: a veth', args: ['--use-vnet', '--br=vx0', '--fd={FD}'] },
  { name: 'bridge given by its altname', args: ['--use-vnet', '--br=lan1', '--fd={FD}'] },
  { name: 'altname allowed by name, kernel name denied elsewhere: deny br0 does not touch lan1', args: ['--br=lan1', '--fd={FD}'], files: allow('allow lan1\ndeny br0\n') },
  { name: 'bridge=lo: MTU 65536 refused', args: ['--use-vnet', '--br=lo', '--fd={FD}'] },
  // the fd (docs/qemu-bridge-helper.md, §2)
  { name: '--fd=99 (closed)', args: ['--br=br0', '--fd=99'] },
  { name: '--fd=-2', args: ['--br=br0', '--fd=-2'] },
  { name: '--fd=abc → 0 (stdin, /dev/null)', args: ['--br=br0', '--fd=abc'] },
  { name: '--fd= → 0', args: ['--br=br0', '--fd='] },
  { name: '--fd=0x5 → 0', args: ['--br=br0', '--fd=0x5'] },
  { name: '--fd=3x → 3', args: ['--br=br0', '--fd=3x'] },
  { name: "--fd=' +3' → 3", args: ['--br=br0', '--fd= +3'] },
  { name: '--fd=4294967299 → (int) 3', args: ['--br=br0', '--fd=4294967299'] },
  { name: 'last one wins', args: ['--br=nope', '--fd=99', '--use-vnet', '--br=br0', '--fd={FD}'] },
  { name: 'socket at fd 0', args: ['--br=br0', '--fd=0'], slot: 0 },
  { name: 'socket at fd 8, as in QEMU', args: ['--use-vnet', '--fd={FD}', '--br=br0'], slot: 8 },
  { name: 'SOCK_DGRAM socket', args: ['--use-vnet', '--br=br0', '--fd={FD}'], socketType: SOCK_DGRAM },
  { name: 'fd is a regular file', args: ['--br=br0', '--fd={FD}'], notSocket: true },
  // privilege (docs/qemu-bridge-helper.md, §5)
  { name: 'uid 65534 with an ambient CAP_NET_ADMIN', args: ['--use-vnet', '--br=br0', '--fd={FD}'], user: 'ambient', files: allow('allow br0\n') },
  { name: 'uid 65534: bridge.conf unreadable (0600 root)', args: ['--br=br0', '--fd={FD}'], user: 'ambient', files: { 'bridge.conf': { data: 'allow br0\n', mode: 0o600 } } },
  { name: 'uid 65534: an unreadable include is ignored', args: ['--br=br0', '--fd={FD}'], user: 'ambient', files: allow('include /etc/qemu/secret.conf\n', { 'secret.conf': { data: 'allow br0\n', mode: 0o600 } }) },
  // Documented deviations: qbh fails closed with a message where the C helper dies or differs.
  {
    name: 'peer closed: C dies of SIGPIPE, qbh reports and exits 1',
    args: ['--use-vnet', '--br=br0', '--fd={FD}'],
    peerClosed: true,
    deviation: (tt, c, ours) => {
      tt.equal(c.signal, 'SIGPIPE', 'C: killed by SIGPIPE');
      tt.equal(c.stderr, '');
      tt.same(c.leftovers, [], 'C: nothing left behind');
      failsClosed(tt, ours, 'qbh');
      tt.equal(ours.signal, null, 'qbh: no signal');
      tt.equal(ours.stderr, 'failed to write fd to unix socket: Broken pipe\n');
    },
  },
  {
    name: 'self-include: C survives only with a low RLIMIT_NOFILE, qbh refuses the cycle',
    args: ['--use-vnet', '--br=br0', '--fd={FD}'],
    files: allow('allow br0\ninclude /etc/qemu/bridge.conf\n'),
    cNofile: 64,
    deviation: (tt, c, ours) => {
      success(tt, c, 'C (nofile 64)');
      failsClosed(tt, ours, 'qbh');
      tt.match(ours.stderr, /include/, 'qbh: says the include is the problem');
    },
  },
  {
    name: 'altname of a denied bridge: C attaches to br1, qbh denies (a deny of any name denies)',
    args: ['--use-vnet', '--br=lan1', '--fd={FD}'],
    files: allow('allow all\ndeny br1\n'),
    deviation: (tt, c, ours) => {
      success(tt, c, 'C');
      failsClosed(tt, ours, 'qbh');
      tt.equal(ours.stderr, DENIED);
    },
  },
  {
    name: 'non-bridge without a capability: qbh refuses the kind before it tries TUNSETIFF',
    args: ['--use-vnet', '--br=vx0', '--fd={FD}'],
    user: 'nocaps',
    files: allow('allow all\n'),
    deviation: (tt, c, ours) => {
      failsClosed(tt, c, 'C');
      tt.equal(c.stderr, 'failed to create tun device: Operation not permitted\n');
      failsClosed(tt, ours, 'qbh');
      const lines = ours.stderr.split('\n');
      tt.equal(lines[0], "failed to add interface `tap0' to bridge `vx0': Operation not supported", 'qbh: the C line for a non-bridge');
      tt.ok(lines[1]!.startsWith(HINT_PREFIX), 'qbh: then what to do');
    },
  },
  {
    name: 'no capability: the C message, then what to do',
    args: ['--use-vnet', '--br=br0', '--fd={FD}'],
    user: 'nocaps',
    files: allow('allow br0\n'),
    deviation: (tt, c, ours) => {
      failsClosed(tt, c, 'C');
      tt.equal(c.stderr, 'failed to create tun device: Operation not permitted\n');
      failsClosed(tt, ours, 'qbh');
      const lines = ours.stderr.split('\n');
      tt.equal(lines.length, 3, 'qbh: two lines');
      tt.equal(lines[0], 'failed to create tun device: Operation not permitted', 'qbh: first line is the C one');
      tt.ok(lines[1]!.startsWith(HINT_PREFIX), 'qbh: second line says what to do');
    },
  },
  {
    name: 'no capability, /dev/net/tun 0600: the C message, then what to do',
    args: ['--use-vnet', '--br=br0', '--fd={FD}'],
    user: 'nocaps',
    tun0600: true,
    files: allow('allow br0\n'),
    deviation: (tt, c, ours) => {
      failsClosed(tt, c, 'C');
      tt.equal(c.stderr, 'failed to open /dev/net/tun: Permission denied\n');
      failsClosed(tt, ours, 'qbh');
      tt.ok(ours.stderr.startsWith(c.stderr), 'qbh: first line is the C one');
      tt.ok(ours.stderr.slice(c.stderr.length).startsWith(HINT_PREFIX), 'qbh: second line says what to do');
    },
  },
  {
    name: 'non-UTF-8 bridge name: qbh refuses instead of looking up a re-encoded name',
    args: [Buffer.from('--br=br\xff', 'latin1'), '--fd={FD}'],
    deviation: (tt, c, ours) => {
      failsClosed(tt, c, 'C');
      tt.equal(c.stderr, 'failed to get mtu of bridge `br\xff\': No such device\n');
      failsClosed(tt, ours, 'qbh');
      tt.match(ours.stderr, /not valid UTF-8/);
    },
  },
];

t.ok(cases.length >= 40, `${cases.length} cases`);

for (const c of cases) {
  t.test(c.name, async (tt) => {
    if (c.tun0600) {
      const dev = join(devDir, 'tun0600');
      sh('mknod', dev, 'c', '10', '200');
      chmodSync(dev, 0o600);
      sh('mount', '--bind', dev, '/dev/net/tun');
    }
    let cOut: Outcome;
    let ours: Outcome;
    try {
      cOut = runHelper(C_HELPER, c);
      ours = runHelper(OURS, c);
    } finally {
      if (c.tun0600) {
        sh('umount', '/dev/net/tun');
        rmSync(join(devDir, 'tun0600'));
      }
    }
    tt.same(cOut.leftovers, [], 'C: nothing left behind');
    tt.same(ours.leftovers, [], 'qbh: nothing left behind');
    if (c.deviation) {
      c.deviation(tt, cOut, ours);
      return;
    }
    tt.same(ours, cOut, 'same outcome as the C helper');
    if (ours.status !== 0) failsClosed(tt, ours, 'qbh');
  });
}

// The C helper's observed messages (docs/qemu-bridge-helper.md, §8).
t.test('the outcomes observed of the C helper, as a check on the harness itself', async (tt) => {
  const o = (args: string[], files?: Files | null) => runHelper(OURS, { name: '', args, ...(files !== undefined ? { files } : {}) });
  tt.equal(o(['--help']).stderr, USAGE);
  tt.equal(o(['--br=br0', '--fd={FD}'], null).stderr, PARSE_FAILED);
  tt.equal(o(['--br=br0', '--fd={FD}'], allow('')).stderr, DENIED);
  const ok = o(['--use-vnet', '--br=br0', '--fd={FD}']);
  success(tt, ok, 'success');
  tt.same(ok.tap && { flags: ok.tap.flags, mtu: ok.tap.mtu, macPrefix: ok.tap.macPrefix, master: ok.tap.master, up: ok.tap.up }, {
    flags: '0x5002',
    mtu: 1400,
    macPrefix: 'fe:',
    master: 'br0',
    up: true,
  });
});
