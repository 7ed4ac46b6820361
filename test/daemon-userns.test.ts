// Identities from user namespaces (issue 20, finding 1): a user with subordinate ids (/etc/subuid,
// /etc/subgid, the setuid newuidmap/newgidmap) builds a user namespace in which it drops its
// supplementary groups or acts as one of its subordinate uids. The daemon decides for the person —
// the user who owns the namespace, with that user's groups — so a deny-group or deny-user still
// holds, the per-uid cap still counts one user once, and namespaces that map the user's own uid
// (bwrap, a sandboxed QEMU) or a plain --map-root-user behave as before. Every attack here is run
// for real: util-linux unshare calls newuidmap/newgidmap, as rootless containers do.
// Private netns, mount ns, /etc (an overlay: the test's users, groups and subordinate ids), /run/qbh.
import './harness.js';
import t from 'tap';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { privateEtcQemu, privateRunQbh, sh } from './harness.js';
import { CLEAN, ROOT, SOCKET, handOff, logged, startDaemon, taps, until, type Daemon } from './daemon-lib.js';

const isRoot = process.getuid?.() === 0;
const haveUidmap = spawnSync('newuidmap', [], { encoding: 'utf8' }).error === undefined;
const skip = !isRoot ? 'needs root (newuidmap maps only from the initial user namespace here)' : !haveUidmap ? 'newuidmap missing (Debian package uidmap)' : false;

/**
 * Overlays /etc (its upper layer on a tmpfs of the test's own), so the test's accounts and
 * subordinate ids exist in its mount namespace only; /etc/qemu is made inside it for privateEtcQemu.
 */
function privateEtc(): void {
  const layer = join(process.env.QBH_TEST_SCRATCH!, 'etc-accounts');
  mkdirSync(layer);
  sh('mount', '-t', 'tmpfs', '-o', 'mode=0700', 'qbh-etc-accounts', layer);
  mkdirSync(join(layer, 'upper'));
  mkdirSync(join(layer, 'work'));
  sh('mount', '-t', 'overlay', 'qbh-etc-accounts', '-o', `lowerdir=/etc,upperdir=${layer}/upper,workdir=${layer}/work`, '/etc');
  mkdirSync('/etc/qemu', { mode: 0o755, recursive: true });
}

if (!skip) {
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs')], { stdio: 'inherit' });
  privateEtc();
  privateEtcQemu();
  privateRunQbh();
  // u4242 is in group 5000 (a supplementary group, as `adduser u4242 g5000` makes it); u4243 is not.
  appendFileSync('/etc/passwd', 'u4242:x:4242:4242::/nonexistent:/usr/sbin/nologin\nu4243:x:4243:4243::/nonexistent:/usr/sbin/nologin\n');
  appendFileSync('/etc/group', 'u4242:x:4242:\nu4243:x:4243:\ng5000:x:5000:u4242\n');
  // What Debian's useradd gives every new user: 65 536 subordinate uids and gids.
  writeFileSync('/etc/subuid', 'u4242:100000:65536\nu4243:200000:65536\n', { mode: 0o644 });
  writeFileSync('/etc/subgid', 'u4242:100000:65536\nu4243:200000:65536\n', { mode: 0o644 });
  for (const br of ['br0']) sh('ip', 'link', 'add', br, 'type', 'bridge');
}

/** setpriv to `uid` with its own primary gid and `groups`, no capabilities — but a bounding set newuidmap (setuid root) still works under. */
const as = (uid: number, groups: number[] = []) => ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, groups.length ? `--groups=${groups.join(',')}` : '--clear-groups', '--inh-caps=-all'];
/** uid 4242 (in g5000) and uid 4243, as they log in. */
const U42 = as(4242, [5000]);
const U43 = as(4243);
/** First subordinate id of each user. */
const SUB = { 4242: 100000, 4243: 200000 } as const;

/**
 * A user namespace made through newuidmap/newgidmap: the user's own uid and gid mapped to
 * themselves, its subordinate gids mapped too (so newgidmap leaves setgroups allowed), and the
 * program run with the supplementary groups dropped (`unshare -G` calls setgroups(0, NULL)).
 */
const dropGroups = (uid: 4242 | 4243) => ['unshare', `--map-user=${uid}`, `--map-group=${uid}`, `--map-groups=${SUB[uid]},${SUB[uid]},65536`, '-S', `${uid}`, '-G', `${uid}`, '--'];
/** A user namespace in which the program runs as the user's first subordinate uid and gid. */
const asSubordinate = (uid: 4242 | 4243) => ['unshare', `--map-users=${SUB[uid]},${SUB[uid]},65536`, `--map-groups=${SUB[uid]},${SUB[uid]},65536`, '-S', `${SUB[uid]}`, '-G', `${SUB[uid]}`, '--'];
/** What bwrap or a sandboxed QEMU does: the user's own uid and gid mapped to themselves, nothing else (no newuidmap). */
const ownIds = (uid: number) => ['unshare', `--map-user=${uid}`, `--map-group=${uid}`, '--'];

function outcome(who: string[], bridge = 'br0'): string {
  const r = handOff(['--use-vnet', `--br=${bridge}`, '--fd=3'], who);
  return r.status === 0 && r.fds === 1 ? 'ok' : r.stderr;
}

/**
 * A Python client (docs/daemon.md): one request line, the reply line. For callers the helper would
 * not send to the daemon. A refusal may come, and the daemon close, before the request is sent.
 */
function pyAsk(who: string[], line: string): any {
  const py = `import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(${JSON.stringify(SOCKET)})\ntry: s.sendall(sys.argv[1].encode()+b"\\n")\nexcept BrokenPipeError: pass\nb=b""\nwhile not b.endswith(b"\\n"):\n  c=s.recv(65536)\n  if not c: break\n  b+=c\nprint(b.decode(),end="")`;
  const r = spawnSync(CLEAN[0]!, [...CLEAN.slice(1), ...who, 'python3', '-c', py, line], { encoding: 'utf8' });
  if (r.stdout === '') throw new Error(`no reply (exit ${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}
const TAP = '{"v":1,"op":"tap","bridge":"br0","vnet_hdr":true}';

const acl = (...lines: string[]) => writeFileSync('/etc/qemu/bridge.conf', [...lines, ''].join('\n'), { mode: 0o644 });

let daemon: Daemon;

/**
 * The daemon as root runs it by hand (CAP_SYS_PTRACE: the namespace's owner, NS_GET_OWNER_UID) and
 * as qbhd.service runs it (CAP_NET_ADMIN alone: the namespace's id maps and /etc/subuid,
 * /etc/subgid). Both must name the same person for every caller; the audit line says which way
 * it was found (`userns=owner:UID`, `userns=idmap:UID`).
 */
const MODES = [
  { name: 'with CAP_SYS_PTRACE', prefix: [] as string[], tag: 'owner' },
  // The service's bounding set: CAP_NET_ADMIN alone. The kernel then lets it open no other uid's namespace.
  { name: 'limited to CAP_NET_ADMIN (qbhd.service)', prefix: ['setpriv', '--bounding-set=-all,+net_admin', '--inh-caps=-all'], tag: 'idmap' },
];

for (const mode of MODES) {
  t.test(`a daemon ${mode.name}`, { skip }, async (t) => {
    daemon = await startDaemon([], {}, mode.prefix);
    t.teardown(() => daemon.stop());
    const owner = (uid: number) => `userns=${mode.tag}:${uid}`;
    await t.test('(a) deny-group holds for a user who dropped the group in a user namespace', async (t) => {
      acl('allow br0', 'deny-group 5000 br0');
      t.equal(outcome(U42), 'access denied by acl file\n', 'u4242 as it logs in (in g5000): denied');
      t.equal(outcome([...U42, ...dropGroups(4242)]), 'access denied by acl file\n', 'the same user with its groups dropped in a user namespace: still denied');
      t.ok(await logged(daemon, new RegExp(`tap uid=4242 gid=4242 groups=4242,5000 ns_uid=4242 ns_gid=4242 ${owner(4242)} .* bridge=br0 tap=- outcome=denied rule=\\/etc\\/qemu\\/bridge.conf:2`)), 'the audit line names the person, its groups and the namespace');
      t.equal(outcome([...U43, ...dropGroups(4243)]), 'ok', 'u4243 (not in g5000) through the same kind of namespace: allowed');
      t.same(taps(), []);
    });

    await t.test('(b) deny-user holds for a user acting as one of its subordinate uids', async (t) => {
      acl('allow br0', 'deny-user 4242 all');
      t.equal(outcome(U42), 'access denied by acl file\n', 'u4242 itself: denied');
      t.equal(outcome([...U42, ...asSubordinate(4242)]), 'access denied by acl file\n', 'u4242 as its subordinate uid 100000: still denied');
      t.ok(await logged(daemon, new RegExp(`tap uid=4242 gid=4242 groups=4242,5000,100000 ns_uid=100000 ns_gid=100000 ${owner(4242)} .* bridge=br0 tap=- outcome=denied rule=\\/etc\\/qemu\\/bridge.conf:2`)), 'the audit line names the person 4242 and the namespace uid 100000');
      t.notMatch(daemon.log(), /tap uid=100000 /, 'no decision was made for uid 100000');
      t.equal(outcome([...U43, ...asSubordinate(4243)]), 'ok', 'u4243 as its subordinate uid 200000: allowed, as u4243 is');
      t.ok(await logged(daemon, new RegExp(`tap uid=4243 gid=4243 groups=4243,200000 ns_uid=200000 ns_gid=200000 ${owner(4243)} .* outcome=allowed`)));
      t.same(taps(), []);
    });

    await t.test("(c) the per-uid cap counts a user's subordinate uids as that user", async (t) => {
      acl('allow br0');
      // One process, root of a namespace whose ids are u4242's subordinate ones (0 → 100000, 1 → 100001…),
      // opens 70 silent connections, each with another effective uid (100001…100070), then reads what
      // came back at once. Counted per namespace uid, none would be refused.
      const py = [
        'import socket,os,select,json,time',
        'socks=[]',
        'for i in range(1,71):',
        '  os.seteuid(i)',
        '  s=socket.socket(socket.AF_UNIX); s.connect(' + JSON.stringify(SOCKET) + '); socks.append(s)',
        '  os.seteuid(0)',
        'busy=[]; end=time.time()+2',
        'pending=list(socks)',
        'while pending and time.time()<end:',
        '  r,_,_=select.select(pending,[],[],0.2)',
        '  for s in r:',
        '    d=s.recv(65536); pending.remove(s)',
        '    if d: busy.append(json.loads(d))',
        'print(json.dumps(busy))',
      ].join('\n');
      const ns = ['unshare', '--map-users=100000,0,65536', '--map-groups=100000,0,65536', '-S', '0', '-G', '0', '--'];
      const r = spawnSync(CLEAN[0]!, [...CLEAN.slice(1), ...U42, ...ns, 'python3', '-c', py], { encoding: 'utf8' });
      t.equal(r.status, 0, r.stderr);
      const busy = JSON.parse(r.stdout) as { errno: number; message: string }[];
      t.equal(busy.length, 70 - 64, `the connections beyond 64 were told to retry (${busy.length})`);
      t.match(busy[0], { ok: false, errno: 11, message: 'qbhd: busy (64 requests of uid 4242 in progress); try again\n' });
      t.ok(await logged(daemon, new RegExp(`busy uid=4242 gid=4242 groups=\\S+ ns_uid=1000\\d\\d ns_gid=100000 ${owner(4242)} `)));
      // Another user is served meanwhile, and u4242 again once its connections are gone.
      t.equal(outcome(U43), 'ok', 'u4243 is served');
      t.equal(outcome(U42), 'ok', 'u4242 is served again');
      t.same(taps(), []);
    });

    await t.test('(d) a plain --map-root-user and a namespace of the user\'s own ids behave as before', async (t) => {
      acl('allow br0', 'deny-user 4242 br0');
      // --map-root-user: no subordinate ids. The helper would have CAP_NET_ADMIN there (in its own
      // namespace only) and not ask the daemon, so a client speaks the protocol itself.
      t.match(pyAsk([...U42, 'unshare', '--map-root-user', '--'], TAP), { ok: false, errno: 13, message: 'access denied by acl file\n' }, 'u4242 as root of its namespace: denied');
      t.match(pyAsk([...U43, 'unshare', '--map-root-user', '--'], TAP), { ok: true, op: 'tap' }, 'u4243 as root of its namespace: allowed');
      t.ok(await logged(daemon, new RegExp(`tap uid=4243 gid=4243 groups=4243 ns_uid=4243 ns_gid=4243 ${owner(4243)} .* outcome=allowed`)));
      // bwrap, a sandboxed QEMU: the user's own uid and gid mapped to themselves.
      t.equal(outcome([...U43, ...ownIds(4243)]), 'ok', 'u4243 in a namespace of its own ids: allowed, as the ACL allows u4243');
      t.equal(outcome([...U42, ...ownIds(4242)]), 'access denied by acl file\n', 'u4242 likewise: denied');
      const check = pyAsk([...U43, ...ownIds(4243)], '{"v":1,"op":"check","bridge":"br0"}');
      t.match(check, { ok: true, uid: 4243, gid: 4243, bridges: ['br0'], bridge: { allowed: true } }, 'check answers for the person');
      t.ok(await until(() => taps().length === 0), 'no tap left');
    });
  });
}

/**
 * A process of `uid` in a user namespace of its own (so `uid` owns it) whose maps root writes
 * (`uidMap`, `gidMap`: kernel map lines), as only root can write such maps. uid 0: root's own.
 */
async function rootMapped(uid: number, uidMap: string, gidMap: string): Promise<{ pid: number; stop(): void }> {
  const child = spawn(CLEAN[0]!, [...CLEAN.slice(1), ...(uid === 0 ? [] : as(uid)), 'unshare', '--user', '--', 'sleep', '60'], { stdio: 'ignore' });
  const own = readlinkSync('/proc/self/ns/user');
  await until(() => {
    try {
      return readFileSync(`/proc/${child.pid}/comm`, 'utf8') === 'sleep\n' && readlinkSync(`/proc/${child.pid}/ns/user`) !== own;
    } catch {
      return false;
    }
  });
  writeFileSync(`/proc/${child.pid}/uid_map`, uidMap);
  writeFileSync(`/proc/${child.pid}/gid_map`, gidMap);
  return { pid: child.pid!, stop: () => child.kill() };
}

/** Asks for a tap as uid 0 (and gid 0) inside the user namespace of `pid`. */
function askIn(pid: number, line: string): any {
  return pyAsk(['nsenter', `--user=/proc/${pid}/ns/user`, '-S', '0', '-G', '0', '--'], line);
}

t.test('a daemon limited to CAP_NET_ADMIN (qbhd.service) decides for the person from the id maps, or refuses in words', { skip }, async (t) => {
  acl('allow br0', 'deny-group 5000 br0');
  daemon = await startDaemon([], {}, MODES[1]!.prefix);
  t.teardown(() => daemon.stop());
  t.equal(outcome(U43), 'ok', 'u4243 in the initial namespace: recognised by its id maps, served');
  // bwrap's way: the caller's own uid, as itself, without newuidmap.
  t.equal(outcome([...U43, 'unshare', '--map-current-user', '--']), 'ok', 'u4243 in a namespace of its own uid (--map-current-user): allowed');
  t.equal(outcome([...U42, 'unshare', '--map-current-user', '--']), 'access denied by acl file\n', 'u4242 likewise, named by deny-group 5000 (its account group): denied');
  t.ok(await logged(daemon, /tap uid=4242 gid=4242 groups=4242,5000 ns_uid=4242 ns_gid=4242 userns=idmap:4242 .* outcome=denied/));
  acl('allow br0', 'deny-user 4243 br0');
  t.equal(outcome([...U43, ...ownIds(4243)]), 'access denied by acl file\n', 'deny-user 4243: u4243 in a namespace of its own ids is denied');
  // Nested: u4242 as root of its namespace, then in a namespace below it. The helper would hold
  // CAP_NET_ADMIN there (in its own namespace only) and not ask the daemon, so a client speaks the protocol.
  acl('allow br0', 'deny-user 4243 br0', 'deny-user 100000 br0');
  t.match(pyAsk([...U42, 'unshare', '--map-root-user', '--', ...ownIds(0)], TAP), { ok: true, op: 'tap' }, 'u4242 in a namespace nested in one of its own uid: the person is u4242, allowed');
  t.ok(await logged(daemon, /tap uid=4242 gid=4242 groups=4242,5000 ns_uid=4242 ns_gid=4242 userns=idmap:4242 .* outcome=allowed/));

  acl('allow br0');
  const unknown = (why: string) => new RegExp(`^qbhd: the caller \\(pid \\d+\\) runs in a user namespace, and without CAP_SYS_PTRACE qbhd cannot tell whose: ${why}.*\\n$`);
  // Root writes, into a namespace u4242 made, a map that joins both users' subordinate ranges: no one user could have.
  const mixed = await rootMapped(4242, '0 100000 10\n10 200000 10\n', '0 100000 10\n');
  t.teardown(() => mixed.stop());
  t.match(askIn(mixed.pid, TAP), { ok: false, errno: 13, message: unknown("it maps ids that are not one user's own and subordinate ids \\(uid_map 100000\\+10,200000\\+10, gid_map 100000\\+10\\)") }, "a map of u4242's and u4243's subordinate uids: refused");
  t.ok(await logged(daemon, /refused uid=100000 gid=100000 .*userns=idmap:- .*error="the caller \(pid \d+\) runs in a user namespace, and without CAP_SYS_PTRACE qbhd cannot tell whose/), 'audited with the ids the kernel gave');
  // Ids no user may map (a range in no /etc/subuid, as systemd-nspawn's), in a namespace u4242 owns: refused.
  const foreign = await rootMapped(4242, '0 1900544 65536\n', '0 1900544 65536\n');
  t.teardown(() => foreign.stop());
  t.match(askIn(foreign.pid, TAP), { ok: false, errno: 13, message: unknown("it maps ids that are not one user's own and subordinate ids") }, 'a range no user owns, in a user-made namespace: refused');
  // The same range in a namespace root made (a container): the daemon owns that namespace, so the
  // kernel lets it open it; its ids are root's to give and come as they are.
  const container = await rootMapped(0, '0 1900544 65536\n', '0 1900544 65536\n');
  t.teardown(() => container.stop());
  t.match(askIn(container.pid, TAP), { ok: true, op: 'tap' }, 'a root-made container: served');
  t.ok(await logged(daemon, /tap uid=1900544 gid=1900544 groups=\S* ns_uid=1900544 ns_gid=1900544 userns=owner:0 .* outcome=allowed/), 'through its owner, root');
  // Subordinate ranges the admin gave two users at once: ambiguous.
  for (const file of ['/etc/subuid', '/etc/subgid']) {
    writeFileSync(file, 'u4242:100000:65536\nu4243:200000:65536\nu4243:100000:65536\n', { mode: 0o644 });
    t.teardown(() => writeFileSync(file, 'u4242:100000:65536\nu4243:200000:65536\n', { mode: 0o644 }));
  }
  t.match(outcome([...U42, ...asSubordinate(4242)]), unknown('its ids could be those of uid 4242 or uid 4243'), 'after an overlapping /etc/subuid edit, u4242 as its subordinate uid: refused');
  t.ok(await until(() => taps().length === 0), 'no tap left');
});
