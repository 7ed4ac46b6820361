/**
 * Who is at the other end of a connection, from the kernel only: SO_PEERCRED (pid, uid, gid, as
 * they were at connect()), SO_PEERGROUPS (the supplementary groups) and the peer's user namespace
 * (through its pidfd). Nothing the client says about itself is used. /proc adds the command names
 * (for the audit line) and the working directory (relative includes resolve against it, as they do
 * for the C helper).
 *
 * The identity that decides is the *person*. A process in the daemon's own user namespace is who
 * SO_PEERCRED says. A process in a user namespace below it may hold ids that are not its user's own
 * — a subordinate uid (/etc/subuid, through the setuid newuidmap), or its uid without the
 * supplementary groups it dropped there — so it is the user who owns that namespace (a kernel fact),
 * with that user's groups from the account database and every group the process still holds.
 * With CAP_SYS_PTRACE the kernel names that user (NS_GET_OWNER_UID); without it (qbhd.service) the
 * namespace's id maps and /etc/subuid, /etc/subgid do, when they are one user's ids only, and the
 * peer is refused otherwise (personFromMaps). docs/daemon.md, "Identity and decision", says why.
 * @module
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { readUserDb, type UserDb } from '../acl/users.js';
import { isErrno, native } from '../native.js';
import { mapsVerdict, parseIdMap, readSubIds } from './idmap.js';

/** The kernel's ids of a peer in a user namespace below the daemon's, for the audit line. */
export interface NamespaceIds {
  /** SO_PEERCRED's uid and gid, as the daemon's namespace sees them (a subordinate id, say). */
  uid: number;
  gid: number;
  /**
   * The owners of the namespaces from the child of the daemon's down to the peer's, outermost first;
   * null when the daemon may not open the namespace and judged its id maps instead.
   */
  owners: number[] | null;
  /** Without CAP_SYS_PTRACE: the person the id maps showed; else (or when they showed none) null. */
  byMaps: number | null;
}

/** A connected client, as the kernel describes it. */
export interface Peer {
  /**
   * The person: the uid the ACL decides for and every per-user limit (share of connections, rates,
   * audit lines) is counted against. Equal to `uid`; for a peer in the daemon's own user namespace
   * it is SO_PEERCRED's uid.
   */
  person: number;
  /** The person's uid, gid and groups: the identity the ACL evaluates. */
  uid: number;
  gid: number;
  /** Supplementary groups (at connect() time, and for a person behind a namespace its account's too). */
  groups: number[];
  /** Null in the daemon's own user namespace; else the kernel's ids there. */
  ns: NamespaceIds | null;
  /** 0 when the peer lives in a pid namespace this daemon cannot see into. */
  pid: number;
  /** /proc/PID/comm, for the audit line only (`?` when gone). */
  comm: string;
  /** The parent's comm (the helper's is QEMU or libvirtd), for the audit line only. */
  parentComm: string;
  /** The peer's working directory, or null when it cannot be known. */
  cwd: string | null;
}

/**
 * The daemon cannot tell who the peer is: the request is refused with this message. `peer` holds
 * what the kernel did say (SO_PEERCRED as it came), for the audit line only.
 */
export class UnidentifiedPeerError extends Error {
  readonly peer: Peer;
  constructor(message: string, peer: Peer) {
    super(message);
    this.name = 'UnidentifiedPeerError';
    this.peer = peer;
  }
}

function procText(path: string): string | null {
  try {
    return readFileSync(path, 'latin1');
  } catch {
    return null;
  }
}

/** The command name of `pid` (`?` when it cannot be read). */
function comm(pid: number): string {
  return pid > 0 ? (procText(`/proc/${pid}/comm`)?.replace(/\n$/, '') ?? '?') : '?';
}

/** The parent pid from /proc/PID/stat (field 4, after the parenthesised comm). */
function parentPid(pid: number): number {
  const stat = pid > 0 ? procText(`/proc/${pid}/stat`) : null;
  const after = stat?.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ppid = Number(after?.[1]);
  return Number.isInteger(ppid) ? ppid : 0;
}

/** Why peerUserns failed, in words for the client and the audit line. */
function unknownNamespace(err: unknown, pid: number): string {
  const who = `the caller (pid ${pid})`;
  if (isErrno(err, 'ESRCH')) return `${who} exited before it could be identified`;
  if (isErrno(err, 'EACCES')) return `${who} runs in a user namespace, and qbhd, itself outside the initial user namespace and without CAP_SYS_PTRACE, cannot see whose`;
  if (isErrno(err, 'EPERM')) return `${who} is in a user namespace outside the daemon's`;
  if (isErrno(err, 'ENOPROTOOPT')) return `this kernel cannot tell the user namespace of ${who} (SO_PEERPIDFD: Linux 6.5 or later is needed)`;
  return `cannot read the user namespace of ${who}: ${err instanceof Error ? err.message : String(err)}`;
}

/**
 * The person behind a peer in a user namespace below the daemon's. Namespaces root made (owner uid
 * 0: a system container, a service's PrivateUsers=) carry the ids root gave them, so they are
 * looked through; the first namespace a user made decides: that user, with its primary gid and
 * groups from /etc/passwd and /etc/group, plus every group the process holds (the kernel's: a
 * process cannot hold a group it was not given, so these only add rules it is subject to). Returns
 * null when root made every namespace on the way (the kernel's ids are then the person's).
 */
function personBehind(owners: readonly number[], kernelGid: number, kernelGroups: readonly number[]): { uid: number; gid: number; groups: number[] } | null {
  const owner = owners.find((o) => o !== 0);
  return owner === undefined ? null : accountOf(owner, readUserDb(), kernelGid, kernelGroups);
}

/** The person `owner` with its account's primary gid and groups, plus every group the process holds. */
function accountOf(owner: number, db: UserDb, kernelGid: number, kernelGroups: readonly number[]): { uid: number; gid: number; groups: number[] } {
  const user = db.userById(owner);
  if (user === undefined) throw new Error(`uid ${owner}, the owner of the caller's user namespace, has no entry in /etc/passwd`);
  const groups = db.groupsOf(user);
  for (const g of [kernelGid, ...kernelGroups]) if (!groups.includes(g)) groups.push(g);
  return { uid: owner, gid: user.gid, groups };
}

/**
 * The person behind a peer in a user namespace below the daemon's, when the daemon may not open
 * that namespace (no CAP_SYS_PTRACE: qbhd.service): judged from its uid_map and gid_map, which
 * anyone may read, and /etc/subuid, /etc/subgid (src/daemon/idmap.ts). Who may write a map is the
 * kernel's rule: without CAP_SETUID over the parent namespace, a process maps only its own uid (and
 * its own gid, with setgroups denied, so it cannot drop a group); the setuid newuidmap/newgidmap
 * map only the caller's own id and its subordinate ranges; anything else needs root. A nested
 * namespace maps only ids its parent maps. So if every uid the maps hold is one user's own uid or
 * subordinate ids, and every gid that user's groups or subordinate gids, only that user (or root
 * on its behalf) gave them: it made the outermost namespace, the person NS_GET_OWNER_UID names
 * when the daemon may ask. (Namespaces root made never come here: their owner is the daemon's
 * euid, which holds every capability in them and below, so the kernel lets it open them.)
 * Anything else — two users' ids, ids no user may map (root wrote them), overlapping subordinate
 * ranges, a subordinate line of an unknown name, no map yet — throws: qbhd cannot tell whose, and
 * refuses. The files are read at each request: if an admin gives a range to another user, a
 * namespace still holding it is that user's from then on; if the range is removed, it is refused.
 */
function personFromMaps(uidMap: string, gidMap: string, kernelGid: number, kernelGroups: readonly number[]): { uid: number; gid: number; groups: number[] } {
  const db = readUserDb();
  const verdict = mapsVerdict(parseIdMap(uidMap), parseIdMap(gidMap), readSubIds('/etc/subuid'), readSubIds('/etc/subgid'), db, [kernelGid, ...kernelGroups]);
  if (verdict.kind === 'unknown') throw new Error(verdict.reason);
  return accountOf(verdict.uid, db, kernelGid, kernelGroups);
}

/**
 * Reads the identity of the process connected on `fd` (a unix stream socket). Throws
 * {@link UnidentifiedPeerError} when the person cannot be known (fail closed: the request is
 * refused), the addon's error if the socket is gone.
 */
export function peerOf(fd: number): Peer {
  const cred = native.peerCred(fd);
  const groups = native.peerGroups(fd);
  let cwd: string | null = null;
  if (cred.pid > 0) {
    try {
      cwd = readlinkSync(`/proc/${cred.pid}/cwd`);
    } catch {
      cwd = null;
    }
  }
  const peer: Peer = { person: cred.uid, uid: cred.uid, gid: cred.gid, groups, ns: null, pid: cred.pid, comm: comm(cred.pid), parentComm: comm(parentPid(cred.pid)), cwd };
  let where: ReturnType<typeof native.peerUserns>;
  try {
    where = native.peerUserns(fd);
  } catch (err) {
    throw new UnidentifiedPeerError(unknownNamespace(err, cred.pid), peer);
  }
  if (where.sameNs) return peer;
  peer.ns = { uid: cred.uid, gid: cred.gid, owners: where.owners, byMaps: null };
  let person: ReturnType<typeof personBehind>;
  try {
    if (where.owners !== null) person = personBehind(where.owners, cred.gid, groups);
    else {
      try {
        person = personFromMaps(where.uidMap, where.gidMap, cred.gid, groups);
      } catch (err) {
        throw new Error(`the caller (pid ${cred.pid}) runs in a user namespace, and without CAP_SYS_PTRACE qbhd cannot tell whose: ${(err as Error).message}`);
      }
      peer.ns.byMaps = person.uid;
    }
  } catch (err) {
    throw new UnidentifiedPeerError((err as Error).message, peer);
  }
  return person === null ? peer : { ...peer, person: person.uid, ...person };
}
