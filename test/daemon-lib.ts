// Shared by the daemon tests: start the real daemon (dist/qbhd.cjs) in the test's namespaces, play
// QEMU's part for the real helper run as an unprivileged user, count fds and taps.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ipj } from './harness.js';
import { native } from '../src/native.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const HELPER = join(ROOT, 'bin', 'qemu-bridge-helper');
export const QBHD = join(ROOT, 'dist', 'qbhd.cjs');
export const SOCKET = '/run/qbh/qbhd.sock';
export const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** env -i: tap hooks every node child through NODE_OPTIONS; programs run as QEMU would run them. */
export const CLEAN = ['env', '-i', `PATH=${PATH}`];
/** uid/gid 65534 with no supplementary groups and no capabilities at all. */
export const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all'];
const TUNGETIFF = 0x800454d2;

/** A running daemon: its process, everything it logged, and a clean stop. */
export interface Daemon {
  child: ChildProcess;
  pid: number;
  log(): string;
  /** SIGTERM, then the exit code (or signal). */
  stop(): Promise<number | string | null>;
  exited: Promise<number | string | null>;
}

/** Starts dist/qbhd.cjs (run as an executable, as a unit's ExecStart= would) with `args`; waits for its "listening" line. */
export async function startDaemon(args: string[] = [], env: Record<string, string> = {}): Promise<Daemon> {
  const child = spawn(CLEAN[0]!, [...CLEAN.slice(1), ...Object.entries(env).map(([k, v]) => `${k}=${v}`), QBHD, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.setEncoding('utf8');
  const exited = new Promise<number | string | null>((resolve) => child.on('exit', (code, sig) => resolve(code ?? sig)));
  const ready = new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d: string) => {
      log += d;
      if (/listening on/.test(log)) resolve();
    });
    void exited.then((c) => reject(new Error(`qbhd exited (${c}): ${log}`)));
  });
  await ready;
  return {
    child,
    pid: child.pid!,
    log: () => log,
    exited,
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** What came back to "QEMU" from one helper run. */
export interface HandOff {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  payload: string | null;
  fds: number;
  tap: { name: string; flags: number; link: any } | null;
}

/** Plays QEMU: a socketpair, the helper's end at fd 3, the helper run through `prefix`; returns what came back. */
export function handOff(args: string[], prefix: string[] = NOBODY): HandOff {
  const [qemuEnd, helperEnd] = native.socketpair(1);
  const cmd = [...CLEAN, ...prefix, HELPER, ...args];
  const r = spawnSync(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe', helperEnd], timeout: 30000 });
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

/** Open fds of a process. */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Taps in the namespace. */
export function taps(): string[] {
  return ipj<{ ifname: string }[]>('link', 'show', 'type', 'tun').map((l) => l.ifname);
}

/** Resident set size of a process, KiB. */
export function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+)/m.exec(spawnSync('cat', [`/proc/${pid}/status`], { encoding: 'utf8' }).stdout);
  return Number(m?.[1] ?? 0);
}

/** Waits until `cond` holds or `ms` pass; returns whether it held. */
export async function until(cond: () => boolean, ms = 10000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return cond();
}

/** Waits until the daemon has logged a line matching `re` (its stderr is read while the test waits). */
export function logged(d: { log(): string }, re: RegExp, ms = 10000): Promise<boolean> {
  return until(() => re.test(d.log()), ms);
}
