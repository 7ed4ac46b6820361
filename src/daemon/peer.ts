/**
 * Who is at the other end of a connection, from the kernel only: SO_PEERCRED (pid, uid, gid, as
 * they were at connect()) and SO_PEERGROUPS (the supplementary groups). Nothing the client says
 * about itself is used. /proc adds the command names (for the audit line) and the working
 * directory (relative includes resolve against it, as they do for the C helper).
 * @module
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { native } from '../native.js';

/** A connected client, as the kernel describes it. */
export interface Peer {
  uid: number;
  /**
   * The person behind the connection: the uid every per-user limit (share of connections, rates,
   * audit lines) is counted against.
   */
  person: number;
  gid: number;
  /** Supplementary groups at connect() time. */
  groups: number[];
  /** 0 when the peer lives in a pid namespace this daemon cannot see into. */
  pid: number;
  /** /proc/PID/comm, for the audit line only (`?` when gone). */
  comm: string;
  /** The parent's comm (the helper's is QEMU or libvirtd), for the audit line only. */
  parentComm: string;
  /** The peer's working directory, or null when it cannot be known. */
  cwd: string | null;
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

/** Reads the identity of the process connected on `fd` (a unix stream socket). Throws the addon's error if the socket is gone. */
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
  return { uid: cred.uid, person: cred.uid, gid: cred.gid, groups, pid: cred.pid, comm: comm(cred.pid), parentComm: comm(parentPid(cred.pid)), cwd };
}
