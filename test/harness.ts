/**
 * Test harness: every test file that imports this module first runs in fresh network and mount
 * namespaces of its own. It re-executes the file under `unshare`, so nothing a test does can touch
 * the host's interfaces or mounts; the namespaces vanish with the process, whatever happens.
 * Root uses `unshare -n -m`; an unprivileged developer gets a user namespace mapped to root.
 */
import { spawnSync, execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

if (process.env.QBH_TEST_NETNS !== '1') {
  const userns = process.getuid?.() === 0 ? [] : ['--user', '--map-root-user'];
  // An empty directory the child may mount over (privateEtcQemu); removed here once it is done.
  const scratch = mkdtempSync(join(tmpdir(), 'qbh-test-'));
  const r = spawnSync(
    'unshare',
    [...userns, '--net', '--mount', '--propagation', 'private', '--', process.execPath, ...process.execArgv, ...process.argv.slice(1)],
    { stdio: 'inherit', env: { ...process.env, QBH_TEST_NETNS: '1', QBH_TEST_SCRATCH: scratch } },
  );
  rmSync(scratch, { recursive: true, force: true });
  if (r.error) {
    console.error(`harness: cannot create a network namespace (${r.error.message})`);
    process.exit(1);
  }
  process.exit(r.status ?? 128 + 1);
}
execFileSync('ip', ['link', 'set', 'lo', 'up']);

/**
 * The sanitizer settings of .ci/run's ASan step (LD_PRELOAD of libasan, ASAN_OPTIONS, UBSAN_OPTIONS)
 * as `NAME=value` words for `env -i`, or none outside it. A test that starts a program with a clean
 * environment, as QEMU would, passes them on: a node loading the ASan-built addon needs the runtime
 * preloaded, or it stops at once ("ASan runtime does not come first").
 */
export const SANITIZER_ENV: string[] = ['LD_PRELOAD', 'ASAN_OPTIONS', 'UBSAN_OPTIONS'].flatMap((k) =>
  process.env[k] ? [`${k}=${process.env[k]}`] : [],
);

/** Runs `ip -j ARGS` in the test's namespace and returns the parsed JSON. */
export function ipj<T = any>(...args: string[]): T {
  const out = execFileSync('ip', ['-j', ...args], { encoding: 'utf8' });
  return (out.trim() === '' ? [] : JSON.parse(out)) as T;
}

/** Runs `bridge -j ARGS` and returns the parsed JSON. */
export function bridgej<T = any>(...args: string[]): T {
  const out = execFileSync('bridge', ['-j', ...args], { encoding: 'utf8' });
  return (out.trim() === '' ? [] : JSON.parse(out)) as T;
}

/** Runs a command, returns stdout; throws on a non-zero exit. */
export function sh(cmd: string, ...args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Names of all links in the namespace. */
export function linkNames(): string[] {
  return ipj<{ ifname: string }[]>('link', 'show').map((l) => l.ifname);
}

/**
 * Gives this test an empty, private /etc/qemu (a tmpfs, mode 0755), where QEMU's helper and ours
 * read bridge.conf. It lives in the test's own mount namespace and vanishes with it. Where the host
 * has no /etc/qemu, /etc itself is overlaid first (its upper layer on a tmpfs), so the directory is
 * created only inside the namespace: the host's /etc is never written.
 */
export function privateEtcQemu(): string {
  const dir = '/etc/qemu';
  if (!existsSync(dir)) {
    const layer = process.env.QBH_TEST_SCRATCH!;
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'mode=0700', 'qbh-etc', layer]);
    mkdirSync(join(layer, 'upper'));
    mkdirSync(join(layer, 'work'));
    execFileSync('mount', ['-t', 'overlay', 'qbh-etc', '-o', `lowerdir=/etc,upperdir=${layer}/upper,workdir=${layer}/work`, '/etc']);
    mkdirSync(dir, { mode: 0o755 });
  }
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'mode=0755', 'qbh-etc-qemu', dir]);
  return dir;
}

/**
 * Gives this test an empty, private /run/qbh (a tmpfs, mode 0755), where the daemon listens and the
 * helper looks for it. Like {@link privateEtcQemu}: where the host has no /run/qbh, /run is overlaid
 * first (its upper layer on a tmpfs of the test's own), so nothing is ever created on the host.
 */
export function privateRunQbh(): string {
  const dir = '/run/qbh';
  if (!existsSync(dir)) {
    const layer = join(process.env.QBH_TEST_SCRATCH!, 'run-layer');
    mkdirSync(layer);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'mode=0700', 'qbh-run', layer]);
    mkdirSync(join(layer, 'upper'));
    mkdirSync(join(layer, 'work'));
    execFileSync('mount', ['-t', 'overlay', 'qbh-run', '-o', `lowerdir=/run,upperdir=${layer}/upper,workdir=${layer}/work`, '/run']);
    mkdirSync(dir, { mode: 0o755 });
  }
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'mode=0755', 'qbh-run-qbh', dir]);
  return dir;
}

/**
 * Runs `fn` with a /dev/net/tun of `mode` (root's, char 10:200) bound over the real one in this
 * test's mount namespace, then puts the previous one back: a test asserting what a user meets on a
 * 0600 or a 0666 node makes that node itself, whatever the host's mode (0600 here, 0666 from
 * udev's default rule on most distributions).
 */
export async function withTunNode<T>(mode: number, fn: () => T | Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(process.env.QBH_TEST_SCRATCH ?? tmpdir(), 'tun-'));
  const node = join(dir, 'tun');
  execFileSync('mknod', [node, 'c', '10', '200']);
  chmodSync(node, mode);
  execFileSync('mount', ['--bind', node, '/dev/net/tun']);
  try {
    return await fn();
  } finally {
    execFileSync('umount', ['/dev/net/tun']);
    rmSync(dir, { recursive: true, force: true });
  }
}
