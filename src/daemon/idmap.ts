/**
 * Whose ids a user namespace maps, from facts anyone can read: the namespace's uid_map and gid_map
 * (read from the initial user namespace their outside ids are the kernel's) and the subordinate ids
 * the administrator gave each user (/etc/subuid, /etc/subgid). qbhd uses it when it may not open
 * the caller's namespace (no CAP_SYS_PTRACE, as under qbhd.service). docs/daemon.md, "Identity and
 * decision", says why the answer holds.
 * @module
 */
import { readFileSync } from 'node:fs';
import type { UserDb } from '../acl/users.js';

/** A line of /proc/PID/uid_map or gid_map: `count` ids from `outside` (the kernel's) are mapped in. */
export interface IdRange {
  outside: number;
  count: number;
}

/** A line of /etc/subuid or /etc/subgid: `count` ids from `start` belong to `owner` (a name or a uid). */
export interface SubIdRange {
  owner: string;
  start: number;
  count: number;
}

/** What the maps say: one person's ids, or nothing that can be trusted (the reason). */
export type MapVerdict = { kind: 'person'; uid: number } | { kind: 'unknown'; reason: string };

const MAX_ID = 4294967295;

/** Parses the kernel's id map text (`inside outside count` per line). Throws on anything else. */
export function parseIdMap(text: string): IdRange[] {
  const out: IdRange[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const f = line.trim().split(/\s+/);
    const [outside, count] = [Number(f[1]), Number(f[2])];
    if (f.length !== 3 || !/^\d+$/.test(f[1]!) || !/^\d+$/.test(f[2]!) || count < 1 || outside + count > MAX_ID + 1) throw new Error(`unexpected id map line: ${JSON.stringify(line)}`);
    out.push({ outside, count });
  }
  return out;
}

/** Parses /etc/subuid or /etc/subgid text (`owner:start:count`); malformed lines are skipped, as shadow's newuidmap skips them. */
export function parseSubIds(text: string): SubIdRange[] {
  const out: SubIdRange[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length !== 3 || f[0] === '' || !/^\d+$/.test(f[1]!) || !/^\d+$/.test(f[2]!)) continue;
    const start = Number(f[1]);
    const count = Number(f[2]);
    if (count > 0 && start + count <= MAX_ID + 1) out.push({ owner: f[0]!, start, count });
  }
  return out;
}

/** Reads a subordinate id file; a missing one is empty (no user has subordinate ids), any other failure throws. */
export function readSubIds(path: string): SubIdRange[] {
  try {
    return parseSubIds(readFileSync(path, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new Error(`cannot read ${path}: ${(err as Error).message}`);
  }
}

interface Interval {
  start: number;
  count: number;
}

const interval = (r: IdRange): Interval => ({ start: r.outside, count: r.count });
const meets = (a: Interval, b: Interval) => a.start < b.start + b.count && b.start < a.start + a.count;

/** Whether every id of `r` lies in the union of `set`. */
function covered(r: Interval, set: readonly Interval[]): boolean {
  let next = r.start;
  const end = r.start + r.count;
  for (const s of [...set].sort((a, b) => a.start - b.start)) {
    if (s.start > next) break;
    next = Math.max(next, s.start + s.count);
    if (next >= end) return true;
  }
  return next >= end;
}

/** The uid a subordinate line's owner names: a number as written, a name through /etc/passwd; null if unknown. */
function ownerUid(owner: string, db: UserDb): number | null {
  return /^\d+$/.test(owner) ? Number(owner) : (db.user(owner)?.uid ?? null);
}

const show = (m: readonly IdRange[]) => m.map((r) => `${r.outside}+${r.count}`).join(',') || 'none';

/**
 * Whose ids the maps hold. `heldGids` are the gids the peer's process holds (SO_PEERCRED's gid and
 * SO_PEERGROUPS).
 * - `person`: one uid P such that every uid range lies in P's own uid and P's /etc/subuid ranges,
 *   and every gid range in P's account groups, P's /etc/subgid ranges and the gids the process
 *   holds that are no one's subordinate gids — what an unprivileged write, newuidmap and newgidmap
 *   allow P, and nobody else.
 * - `unknown` otherwise: no map yet, a subordinate line of a name /etc/passwd does not know, ids
 *   of two users, ids no user may map, or ranges two users could both have written.
 */
export function mapsVerdict(uidMap: readonly IdRange[], gidMap: readonly IdRange[], subuid: readonly SubIdRange[], subgid: readonly SubIdRange[], db: UserDb, heldGids: readonly number[]): MapVerdict {
  const maps = `uid_map ${show(uidMap)}, gid_map ${show(gidMap)}`;
  if (uidMap.length === 0) return { kind: 'unknown', reason: 'its uid map is not written yet' };
  const touchedUid = subuid.filter((s) => uidMap.some((r) => meets(interval(r), s)));
  const touchedGid = subgid.filter((s) => gidMap.some((r) => meets(interval(r), s)));
  for (const s of [...touchedUid, ...touchedGid]) {
    if (ownerUid(s.owner, db) === null) return { kind: 'unknown', reason: `it maps subordinate ids of "${s.owner}", whom /etc/passwd does not know (${maps})` };
  }
  const candidates = new Set<number>(touchedUid.map((s) => ownerUid(s.owner, db)!));
  for (const r of uidMap) if (r.count === 1) candidates.add(r.outside);
  const nobodysGids = heldGids.filter((g) => !subgid.some((s) => meets({ start: g, count: 1 }, s)));
  const fits = (p: number): boolean => {
    const uids: Interval[] = [{ start: p, count: 1 }, ...subuid.filter((s) => ownerUid(s.owner, db) === p)];
    if (!uidMap.every((r) => covered(interval(r), uids))) return false;
    const user = db.userById(p);
    const own = [...(user === undefined ? [] : db.groupsOf(user)), ...nobodysGids].map((g) => ({ start: g, count: 1 }));
    const gids: Interval[] = [...own, ...subgid.filter((s) => ownerUid(s.owner, db) === p)];
    return gidMap.every((r) => covered(interval(r), gids));
  };
  const persons = [...candidates].filter(fits);
  if (persons.length === 1) return { kind: 'person', uid: persons[0]! };
  if (persons.length > 1) return { kind: 'unknown', reason: `its ids could be those of uid ${persons.join(' or uid ')} (their own or subordinate ids overlap: ${maps})` };
  return { kind: 'unknown', reason: `it maps ids that are not one user's own and subordinate ids (${maps})` };
}
