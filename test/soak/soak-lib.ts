// Shared by the soak cases (test/soak/*.soak.ts, `npm run test:soak`): what is left behind in the
// test's namespace, bounded loops, and one results line per case for docs/reliability.md.
// Import after '../harness.js' (it needs the namespaces).
import { appendFileSync, readdirSync } from 'node:fs';
import { ipj } from '../harness.js';

/** What a user could find left over: taps, bridges, links in a non-default group. */
export interface Leftovers {
  taps: string[];
  bridges: string[];
  grouped: string[];
}

/** Taps, bridges (other than `keep`) and links whose interface group is not the default one. */
export function leftovers(keep: string[] = []): Leftovers {
  const links = ipj<any[]>('-d', 'link', 'show');
  return {
    taps: links.filter((l) => l.linkinfo?.info_kind === 'tun').map((l) => l.ifname),
    bridges: links.filter((l) => l.linkinfo?.info_kind === 'bridge' && !keep.includes(l.ifname)).map((l) => l.ifname),
    grouped: links.filter((l) => l.group !== undefined && l.group !== 'default' && l.group !== 0).map((l) => `${l.ifname}(group ${l.group})`),
  };
}

/** The number of things in {@link leftovers}. */
export function leftoverCount(l: Leftovers): number {
  return l.taps.length + l.bridges.length + l.grouped.length;
}

/** Open fds of this process. */
export function ownFds(): number {
  return readdirSync('/proc/self/fd').length;
}

/** One row of docs/reliability.md. */
export interface SoakResult {
  area: string;
  fault: string;
  trials: number;
  outcome: string;
  leftovers: number;
  figures?: string;
}

/**
 * Records a case's result: appended as one JSON line to $QBH_SOAK_RESULTS (scripts/soak-report.mjs
 * turns the file into docs/reliability.md), and printed as a TAP comment either way.
 */
export function record(t: { comment(...a: unknown[]): void }, r: SoakResult): void {
  t.comment(`${r.fault}: ${r.trials} trials, ${r.outcome}, leftovers ${r.leftovers}${r.figures ? `; ${r.figures}` : ''}`);
  const file = process.env.QBH_SOAK_RESULTS;
  if (file) appendFileSync(file, `${JSON.stringify(r)}\n`);
}

/** Runs `body(i)` up to `count` times or until `ms` have passed; returns how many ran. */
export async function bounded(count: number, ms: number, body: (i: number) => Promise<void> | void): Promise<number> {
  const end = Date.now() + ms;
  let i = 0;
  for (; i < count && Date.now() < end; i++) await body(i);
  return i;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
