/**
 * The daemon's audit log: one line per decision, every value a peer could have chosen escaped so
 * that it cannot forge a line or drive a terminal, and a rate per person, so that nobody can flood
 * the journal (whose own rate limit would then drop other users' lines). A line for a tap actually
 * handed out is always written.
 * @module
 */
import type { Peer } from './peer.js';
import { TokenBuckets } from './fair.js';

/**
 * Audit lines one person may have written at once. A user's VMs starting together, each one line,
 * fit; a flood is cut after it.
 */
export const AUDIT_BURST = 64;

/** Audit lines per second one person earns back: far more than anybody starts VMs, far less than a flood. */
export const AUDIT_LINES_PER_SECOND = 4;

/**
 * How often the count of suppressed lines is written (one line per person then), when the person
 * writes nothing that would carry it sooner.
 */
export const AUDIT_SUMMARY_MS = 10_000;

/** Persons whose audit rate is tracked one by one; beyond it they share one budget (bounded memory). */
export const MAX_AUDITED_PERSONS = 4096;

/** Stands for every person beyond {@link MAX_AUDITED_PERSONS} in the shared budget. */
const OTHERS = -1;

/** Values written bare; anything else is quoted. */
const BARE = /^[\w.:/%@+-]+$/;

/**
 * Characters never written as they are: C0 and C1 controls, DEL, format characters (bidirectional
 * overrides, zero-width), line and paragraph separators, surrogates, private use and unassigned.
 */
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}]/u;

/**
 * One value for the audit line: text that is a plain word is written bare; anything else in double
 * quotes, with `"` and `\` escaped, unprintable characters as `\u{…}`, and, in bytes (a Buffer:
 * command names are bytes, not text), each byte outside a well-formed UTF-8 sequence as `\xNN`
 * (never a U+FFFD that would hide it). Bytes are always quoted.
 */
export function auditValue(value: string | Buffer): string {
  if (typeof value === 'string' && BARE.test(value)) return value;
  let out = '';
  const add = (text: string) => {
    for (const ch of text) {
      if (ch === '"' || ch === '\\') out += `\\${ch}`;
      else if (UNPRINTABLE.test(ch)) out += `\\u{${ch.codePointAt(0)!.toString(16)}}`;
      else out += ch;
    }
  };
  if (typeof value === 'string') add(value);
  else {
    for (let i = 0; i < value.length; ) {
      const len = utf8Length(value, i);
      if (len === 0) out += `\\x${value[i]!.toString(16).padStart(2, '0')}`;
      else add(value.toString('utf8', i, i + len));
      i += len || 1;
    }
  }
  return `"${out}"`;
}

/** The length of the well-formed UTF-8 sequence at `i` (RFC 3629: no overlongs, no surrogates), or 0. */
function utf8Length(b: Buffer, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => i + k < b.length && b[i + k]! >= lo && b[i + k]! <= hi;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if ((c >= 0xe1 && c <= 0xec) || c === 0xee || c === 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (c === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (c === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xf1 && c <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

/** One line per decision: time, peer (the person, the namespace's ids, command names), request, outcome, rule. */
export function auditLine(peer: Peer, what: string, fields: Record<string, string>): string {
  return [
    new Date().toISOString(),
    `qbhd: ${what}`,
    `uid=${peer.uid}`,
    `gid=${peer.gid}`,
    `groups=${peer.groups.join(',') || '-'}`,
    // A peer in a user namespace below ours: the kernel's ids there, and who owns the namespaces.
    ...(peer.ns === null ? [] : [`ns_uid=${peer.ns.uid}`, `ns_gid=${peer.ns.gid}`, peer.ns.owners === null ? `userns=idmap:${peer.ns.byMaps ?? '-'}` : `userns=owner:${peer.ns.owners.join(',')}`]),
    `pid=${peer.pid}`,
    // /proc/PID/comm is whatever bytes the peer chose (prctl PR_SET_NAME), read as latin1: its bytes.
    `comm=${auditValue(Buffer.from(peer.comm, 'latin1'))}`,
    `parent=${auditValue(Buffer.from(peer.parentComm, 'latin1'))}`,
    ...Object.entries(fields).map(([k, v]) => `${k}=${auditValue(v)}`),
  ].join(' ');
}

/**
 * Writes audit lines within each person's rate ({@link AUDIT_BURST}, then
 * {@link AUDIT_LINES_PER_SECOND}); the lines over it are counted, and the count is written as one
 * `suppressed N lines from uid U` line before that person's next line or within
 * {@link AUDIT_SUMMARY_MS}. An `always` line (a tap handed out) is never suppressed, and costs nothing.
 */
export class AuditLog {
  private readonly budget = new TokenBuckets(AUDIT_BURST, AUDIT_LINES_PER_SECOND, MAX_AUDITED_PERSONS);
  private readonly suppressed = new Map<number, number>();
  private readonly log: (line: string) => void;
  private timer: NodeJS.Timeout | null = null;

  constructor(log: (line: string) => void) {
    this.log = log;
  }

  /**
   * Writes `line` for `person`, or counts it if that person is over their rate and it is not
   * `always`. The line is made only when it is written (a flood is counted, not formatted).
   */
  write(person: number, line: () => string, always = false): void {
    if (!always && !this.budget.take(person)) {
      // Bounded: one entry per tracked person, the rest under OTHERS.
      const key = this.suppressed.has(person) || this.suppressed.size < MAX_AUDITED_PERSONS ? person : OTHERS;
      this.suppressed.set(key, (this.suppressed.get(key) ?? 0) + 1);
      this.timer ??= setTimeout(() => this.flush(), AUDIT_SUMMARY_MS).unref();
      return;
    }
    this.summarise(person);
    this.log(line());
  }

  /** Writes every pending count now (also at shutdown). */
  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    for (const person of [...this.suppressed.keys()]) this.summarise(person);
  }

  private summarise(person: number): void {
    const n = this.suppressed.get(person);
    if (n === undefined) return;
    this.suppressed.delete(person);
    const who = person === OTHERS ? 'other uids' : `uid ${person}`;
    this.log(`${new Date().toISOString()} qbhd: suppressed ${n} lines from ${who} (over ${AUDIT_LINES_PER_SECOND} audit lines per second after ${AUDIT_BURST})`);
  }
}
