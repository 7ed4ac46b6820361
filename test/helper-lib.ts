// Shared by the helper tests that run the shipped bundle (bin/qemu-bridge-helper) as QEMU would:
// the fixtures they need and one hand-off. Import after './harness.js' (it needs the namespaces).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ipj, sh } from './harness.js';
import { native } from '../src/native.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const HELPER = join(ROOT, 'bin', 'qemu-bridge-helper');
const TUNGETIFF = 0x800454d2;
const SOCK_STREAM = 1;
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** QEMU's environment, not the runner's: tap hooks every node child through NODE_OPTIONS. */
export const CLEAN_ENV = ['env', '-i', `PATH=${PATH}`];
/** uid/gid 65534 (nobody/nogroup), no supplementary groups, CAP_NET_ADMIN in the ambient set only. */
export const AS_NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=+net_admin', '--ambient-caps=+net_admin'];

/** Rebuilds the bundle from the current sources (written beside and renamed: parallel files are safe). */
export function bundle(): void {
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs')], { stdio: 'inherit' });
}

/**
 * A 0666 /dev/net/tun in this mount namespace only (this machine's is 0600 root; distros ship 0666),
 * so uid 65534 with CAP_NET_ADMIN can open it. `dir` must be a root-only directory of the test's.
 */
export function privateTunNode(dir: string): void {
  mkdirSync(dir, { mode: 0o700, recursive: true });
  sh('mknod', join(dir, 'tun'), 'c', '10', '200');
  chmodSync(join(dir, 'tun'), 0o666);
  sh('mount', '--bind', join(dir, 'tun'), '/dev/net/tun');
}

export interface HandOff {
  status: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  stdout: string;
  /** The payload QEMU read (hex), or null when nothing came. */
  payload: string | null;
  fds: number;
  /** The tap behind the received fd, as TUNGETIFF and `ip -d link` saw it while the fd was open. */
  tap: { name: string; flags: number; link: any } | null;
}

/**
 * Plays QEMU: a socketpair, the helper's end at fd 3, runs `[...prefix, helper, ...args]` in a clean
 * environment, reads one message. Synchronous: the caller's event loop is blocked meanwhile, so a
 * monitor in the caller only queues (the kernel keeps its events).
 */
export function handOff(args: string[], prefix: string[] = [], helper = HELPER): HandOff {
  const [qemuEnd, helperEnd] = native.socketpair(SOCK_STREAM);
  const cmd = [...CLEAN_ENV, ...prefix, helper, ...args];
  const r = spawnSync(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe', helperEnd], timeout: 20000 });
  native.close(helperEnd);
  const got = native.recvFds(qemuEnd, 16, 4, 0);
  native.close(qemuEnd);
  let tap: HandOff['tap'] = null;
  for (const fd of got?.fds ?? []) {
    const ifr = Buffer.alloc(40);
    native.ioctl(fd, TUNGETIFF, ifr);
    const name = ifr.toString('latin1', 0, 16).replace(/\0.*$/s, '');
    tap = { name, flags: ifr.readUInt16LE(16), link: ipj<any[]>('-d', 'link', 'show', 'dev', name)[0] };
  }
  for (const fd of got?.fds ?? []) native.close(fd);
  return { status: r.status, signal: r.signal, stdout: String(r.stdout), stderr: String(r.stderr), payload: got?.data.toString('hex') ?? null, fds: got?.fds.length ?? 0, tap };
}

/** Runs the helper with no socket at all (only fds 0-2), asynchronously; resolves with status and stderr. */
export function runBare(args: string[], prefix: string[] = []): Promise<{ status: number | null; stderr: string }> {
  const cmd = [...CLEAN_ENV, ...prefix, HELPER, ...args];
  const p = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    p.on('error', reject);
    p.on('close', (status) => resolve({ status, stderr }));
  });
}

/**
 * Runs the helper as QEMU does, asynchronously (many at once): `prefix` (setpriv …) before it, a
 * socket at fd 3. Resolves with its exit status, stderr and the fds QEMU's end received, left open
 * (the caller closes them, or keeps the taps alive while it looks).
 */
export function handOffAsync(args: string[], prefix: string[] = []): Promise<{ status: number | null; stderr: string; fds: number[] }> {
  const [qemuEnd, helperEnd] = native.socketpair(1);
  const cmd = [...CLEAN_ENV, ...prefix, HELPER, ...args];
  const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'ignore', 'pipe', helperEnd] });
  native.close(helperEnd);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => {
    child.on('close', (status) => {
      const got = native.recvFds(qemuEnd, 16, 4, 0);
      native.close(qemuEnd);
      resolve({ status, stderr, fds: got?.fds ?? [] });
    });
  });
}
