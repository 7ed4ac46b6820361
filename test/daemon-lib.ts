// Shared by the daemon tests: start the real daemon (dist/qbhd.cjs) in the test's namespaces, play
// QEMU's part for the real helper run as an unprivileged user, count fds and taps.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ipj } from './harness.js';
import { handOff as playQemu, type HandOff } from './helper-lib.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const HELPER = join(ROOT, 'bin', 'qemu-bridge-helper');
export const QBHD = join(ROOT, 'dist', 'qbhd.cjs');
export const SOCKET = '/run/qbh/qbhd.sock';
export const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** env -i: tap hooks every node child through NODE_OPTIONS; programs run as QEMU would run them. */
export const CLEAN = ['env', '-i', `PATH=${PATH}`];
/** uid/gid 65534 with no supplementary groups and no capabilities at all. */
export const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all'];

/** A running daemon: its process, everything it logged, and a clean stop. */
export interface Daemon {
  child: ChildProcess;
  pid: number;
  log(): string;
  /** SIGTERM, then the exit code (or signal). */
  stop(): Promise<number | string | null>;
  exited: Promise<number | string | null>;
}

/**
 * Starts dist/qbhd.cjs (run as an executable, as a unit's ExecStart= would) with `args`, after
 * `prefix` (prlimit, setpriv …); waits for its "listening" line.
 */
export async function startDaemon(args: string[] = [], env: Record<string, string> = {}, prefix: string[] = []): Promise<Daemon> {
  const child = spawn(CLEAN[0]!, [...CLEAN.slice(1), ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...prefix, QBHD, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
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
export type { HandOff } from './helper-lib.js';

/** Plays QEMU (test/helper-lib.ts handOff), the helper run as uid 65534 with no capabilities by default. */
export function handOff(args: string[], prefix: string[] = NOBODY): HandOff {
  return playQemu(args, prefix);
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
