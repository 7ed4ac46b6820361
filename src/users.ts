/**
 * Users and groups from /etc/passwd and /etc/group, read directly (no NSS): enough to turn a user
 * name into uid, gid and supplementary groups, names in identity rules into ids, and ids back into
 * names (tap owners, as `ip -d link` prints them). Below every layer: the ACL and netlink both use it.
 */
import { readFileSync } from 'node:fs';

/** A line of /etc/passwd. */
export interface UserEntry {
  name: string;
  uid: number;
  gid: number;
}

/** A line of /etc/group. */
export interface GroupEntry {
  name: string;
  gid: number;
  members: readonly string[];
}

function parseId(field: string | undefined): number | null {
  if (field === undefined || !/^[0-9]+$/.test(field)) return null;
  const n = Number(field);
  return n <= 4294967294 ? n : null;
}

/** Lines that are data: not empty, not comments, not NIS `+`/`-` compat entries. */
function dataLines(text: string): string[][] {
  const out: string[][] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#') || line.startsWith('+') || line.startsWith('-')) continue;
    out.push(line.split(':'));
  }
  return out;
}

/**
 * An in-memory view of /etc/passwd and /etc/group. The first entry for a name or id wins, as with glibc.
 * @category Bridge helper ACL
 */
export class UserDb {
  private readonly usersByName = new Map<string, UserEntry>();
  private readonly usersById = new Map<number, UserEntry>();
  private readonly groupsByName = new Map<string, GroupEntry>();
  private readonly groupsById = new Map<number, GroupEntry>();
  private readonly groupList: GroupEntry[] = [];

  /** Builds the view from the two files' text. Malformed lines are ignored. */
  constructor(passwd: string, group: string) {
    for (const f of dataLines(passwd)) {
      const uid = parseId(f[2]);
      const gid = parseId(f[3]);
      const name = f[0] ?? '';
      if (name === '' || uid === null || gid === null) continue;
      const entry = { name, uid, gid };
      if (!this.usersByName.has(name)) this.usersByName.set(name, entry);
      if (!this.usersById.has(uid)) this.usersById.set(uid, entry);
    }
    for (const f of dataLines(group)) {
      const gid = parseId(f[2]);
      const name = f[0] ?? '';
      if (name === '' || gid === null) continue;
      const members = (f[3] ?? '').split(',').map((m) => m.trim()).filter((m) => m !== '');
      const entry = { name, gid, members };
      this.groupList.push(entry);
      if (!this.groupsByName.has(name)) this.groupsByName.set(name, entry);
      if (!this.groupsById.has(gid)) this.groupsById.set(gid, entry);
    }
  }

  /** The user called `name`. Equivalent to `getent passwd NAME` (files only). */
  user(name: string): UserEntry | undefined {
    return this.usersByName.get(name);
  }

  /** The first user with `uid`. Equivalent to `getent passwd UID`. */
  userById(uid: number): UserEntry | undefined {
    return this.usersById.get(uid);
  }

  /** The group called `name`. Equivalent to `getent group NAME`. */
  group(name: string): GroupEntry | undefined {
    return this.groupsByName.get(name);
  }

  /** The first group with `gid`. Equivalent to `getent group GID`. */
  groupById(gid: number): GroupEntry | undefined {
    return this.groupsById.get(gid);
  }

  /**
   * The groups a login gives `user`: its primary gid first, then every group that lists it as a
   * member, without duplicates. Equivalent to `id -G NAME` (what `initgroups(3)` sets up).
   */
  groupsOf(user: UserEntry): number[] {
    const out = [user.gid];
    for (const g of this.groupList) {
      if (g.members.includes(user.name) && !out.includes(g.gid)) out.push(g.gid);
    }
    return out;
  }
}

/**
 * Reads /etc/passwd and /etc/group (or the given files); a file that cannot be read counts as empty.
 * @category Bridge helper ACL
 */
export function readUserDb(files: { passwd?: string; group?: string } = {}): UserDb {
  const read = (p: string) => {
    try {
      return readFileSync(p, 'utf8');
    } catch {
      return '';
    }
  };
  return new UserDb(read(files.passwd ?? '/etc/passwd'), read(files.group ?? '/etc/group'));
}
