/**
 * Readability and hardening with real files: owners, groups and modes set with chown/chmod in a
 * private directory, evaluated for other users by credentials, as the daemon does.
 */
import './harness.js';
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserDb, checkAcl, evaluateAcl, type AclCredentials } from '../src/acl/index.js';

const QEMU = 1100;
const ALICE = 1101;
const BOB = 1102;
const CHARLIE = 1103;
const alice: AclCredentials = { uid: ALICE, gid: ALICE, groups: [ALICE, QEMU] };
const bob: AclCredentials = { uid: BOB, gid: BOB, groups: [BOB] };
const root: AclCredentials = { uid: 0, gid: 0, groups: [0] };
const db = new UserDb(
  'root:x:0:0::/root:/bin/sh\nalice:x:1101:1101::/:/bin/sh\nbob:x:1102:1102::/:/bin/sh\ncarol:x:1104:1104::/:/bin/sh\n',
  'root:x:0:\nqemu:x:1100:alice,carol\nalice:x:1101:carol\nbob:x:1102:\ncharlie:x:1103:carol\n',
);

const dir = mkdtempSync('/tmp/qbh-acl-perm-');
chmodSync(dir, 0o755);
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

let serial = 0;
/** A fresh directory under `dir` for one test, root:root 0755. */
function area(): string {
  const p = join(dir, `t${serial++}`);
  mkdirSync(p);
  chmodSync(p, 0o755);
  return p;
}

function put(path: string, data: string, o: { uid?: number; gid?: number; mode?: number } = {}): string {
  writeFileSync(path, data);
  chownSync(path, o.uid ?? 0, o.gid ?? 0);
  chmodSync(path, o.mode ?? 0o644);
  return path;
}

function subdir(path: string, o: { uid?: number; gid?: number; mode?: number } = {}): string {
  mkdirSync(path);
  chownSync(path, o.uid ?? 0, o.gid ?? 0);
  chmodSync(path, o.mode ?? 0o755);
  return path;
}

const as = (aclPath: string, bridge: string, credentials?: AclCredentials, extra: { harden?: boolean; cwd?: string } = {}) => {
  const v = evaluateAcl(bridge, { aclPath, ...(credentials ? { credentials } : {}), ...extra });
  return { permitted: v.permitted, stderr: v.stderr.toString(), ...(v.error ? { code: v.error.code } : {}) };
};
const OK = { permitted: true, stderr: '' };
const DENIED = { permitted: false, stderr: 'access denied by acl file\n' };

t.test('a root:alice 0640 include is read for members of alice only', async (t) => {
  const d = area();
  const main = put(join(d, 'bridge.conf'), `allow br0\ninclude ${d}/alice.conf\n`);
  put(join(d, 'alice.conf'), 'allow br1\n', { gid: ALICE, mode: 0o640 });
  t.same(as(main, 'br1', alice), OK, 'alice (primary group alice)');
  t.same(as(main, 'br1', { uid: 1104, gid: 1104, groups: [ALICE] }), OK, 'a member through a supplementary group');
  t.same(as(main, 'br1', bob), DENIED, 'bob: the include is silently skipped');
  t.same(as(main, 'br0', bob), OK, 'bob still gets what the main file allows');
  t.same(as(main, 'br1', root), OK, 'uid 0 reads everything');
  const c = checkAcl({ bridge: 'br1', user: 'bob', aclPath: main, userDb: db });
  t.equal(c.reason, `denied: no rule allows "br1" (default deny); includes not (fully) read: ${d}/alice.conf (unreadable)`);
  t.same(c.files[1], { path: `${d}/alice.conf`, status: 'unreadable', depth: 1, detail: `mode 0640 owner 0 group ${ALICE}`, includedFrom: { file: main, line: 2, text: `include ${d}/alice.conf` } });
  t.equal(checkAcl({ bridge: 'br1', user: 'carol', aclPath: main, userDb: db }).reason, `allowed: "allow br1" at ${d}/alice.conf:1`, 'carol is in group alice');
});

t.test('commit bdef79a299: per-group include files, decided by readability', async (t) => {
  const d = area();
  const main = put(join(d, 'bridge.conf'), `allow br0\ninclude ${d}/alice.conf\ninclude ${d}/bob.conf\ninclude ${d}/charlie.conf\n`, { gid: QEMU, mode: 0o640 });
  put(join(d, 'alice.conf'), 'allow br1\n', { gid: ALICE, mode: 0o640 });
  put(join(d, 'bob.conf'), 'allow br2\n', { gid: BOB, mode: 0o640 });
  put(join(d, 'charlie.conf'), 'deny all\n', { gid: CHARLIE, mode: 0o640 });
  const qemuAlice = { uid: 2000, gid: 2000, groups: [QEMU, ALICE] };
  t.same(as(main, 'br1', qemuAlice), OK);
  t.same(as(main, 'br2', qemuAlice), DENIED, 'bob.conf unreadable → ignored');
  t.same(as(main, 'br0', { uid: 2000, gid: 2000, groups: [QEMU, CHARLIE] }), DENIED, 'charlie: deny all');
  t.same(as(main, 'br0', { uid: 2000, gid: 2000, groups: [ALICE] }), { permitted: false, stderr: `failed to parse default acl file \`${main}'\n`, code: 'unreadable' }, 'not in qemu');
  const c = checkAcl({ bridge: 'br0', uid: 2000, gid: 2000, groups: [ALICE], aclPath: main, userDb: db });
  t.equal(c.reason, `error: uid 2000 cannot read the ACL file ${main} (mode 0640 owner 0 group ${QEMU}), so every bridge is denied`);
});

t.test('mode bits as the kernel applies them', async (t) => {
  const d = area();
  // The owner class is exclusive: an owner without the read bit cannot read even if others can.
  const main = put(join(d, 'bridge.conf'), `include ${d}/odd.conf\n`);
  put(join(d, 'odd.conf'), 'allow br0\n', { uid: ALICE, gid: ALICE, mode: 0o044 });
  t.same(as(main, 'br0', alice, { harden: false }), DENIED, 'owner alice, mode 0044: alice cannot read');
  t.same(as(main, 'br0', bob, { harden: false }), OK, 'others can');
  put(join(d, 'odd.conf'), 'allow br0\n', { uid: 0, gid: ALICE, mode: 0o604 });
  t.same(as(main, 'br0', alice, { harden: false }), DENIED, 'group alice without the read bit: alice cannot read');
  t.same(as(main, 'br0', bob, { harden: false }), OK);

  // Directories: search (x) on every directory passed, read (r) to open one.
  const e = area();
  const m2 = put(join(e, 'bridge.conf'), `include ${e}/priv/x.conf\ninclude ${e}/link.conf\ninclude ${e}/priv/../pub.conf\ninclude ${e}/gx/x.conf\n`);
  subdir(join(e, 'priv'), { mode: 0o700 });
  put(join(e, 'priv', 'x.conf'), 'allow br1\n');
  symlinkSync('priv/x.conf', join(e, 'link.conf'));
  put(join(e, 'pub.conf'), 'allow br2\n');
  subdir(join(e, 'gx'), { gid: ALICE, mode: 0o710 });
  put(join(e, 'gx', 'x.conf'), 'allow br3\n');
  t.same(as(m2, 'br1', bob), DENIED, 'no search permission on priv, direct or through a symlink');
  t.same(as(m2, 'br1', root), OK);
  t.same(as(m2, 'br2', bob), DENIED, 'priv/.. needs search permission on priv too');
  t.same(as(m2, 'br2', root), OK);
  t.same(as(m2, 'br3', alice), OK, 'a directory searchable by group');
  t.same(as(m2, 'br3', bob), DENIED);
  const files = checkAcl({ bridge: 'br1', user: 'bob', aclPath: m2, userDb: db }).files;
  t.same(files.map((f) => [f.status, f.detail]), [
    ['read', undefined],
    ['unreadable', `no search permission on ${e}/priv`],
    ['unreadable', `no search permission on ${e}/priv`],
    ['unreadable', `no search permission on ${e}/priv`],
    ['unreadable', `no search permission on ${e}/gx`],
  ]);

  const f = area();
  const m3 = put(join(f, 'bridge.conf'), `allow br0\ninclude ${f}/open\ninclude ${f}/closed\ninclude ${f}/loop\ninclude ${f}/bridge.conf/\ninclude ${f}/open/\n`);
  subdir(join(f, 'open'));
  subdir(join(f, 'closed'), { mode: 0o711 });
  symlinkSync('loop', join(f, 'loop'));
  t.same(as(m3, 'br0', bob), OK);
  t.same(
    checkAcl({ bridge: 'br0', user: 'bob', aclPath: m3, userDb: db }).files.map((x) => x.status),
    ['read', 'directory', 'unreadable', 'missing', 'missing', 'directory'],
    'readable directory reads as empty, unreadable is skipped, symlink loop and file/ are missing',
  );
});

t.test('hardening: only root-controlled ACL files count when acting for someone else', async (t) => {
  const d = area();
  const main = put(join(d, 'bridge.conf'), 'allow br0\n', { uid: ALICE });
  t.same(as(main, 'br0', bob), { permitted: false, stderr: `acl file \`${main}' is not owned by root (owner uid ${ALICE})\n`, code: 'insecure' });
  t.same(as(main, 'br0', bob, { harden: false }), OK, 'harden: false');
  t.same(as(main, 'br0'), OK, 'the caller itself (no credentials): the C helper has no such check');

  const e = area();
  const m2 = put(join(e, 'bridge.conf'), `allow br0\ninclude ${e}/inc.conf\n`);
  put(join(e, 'inc.conf'), 'deny br1\n', { mode: 0o664 });
  t.same(as(m2, 'br0', bob), { permitted: false, stderr: `acl file \`${e}/inc.conf' is writable by group (mode 0664)\n`, code: 'insecure' });
  put(join(e, 'inc.conf'), 'deny br1\n', { mode: 0o646 });
  t.same(as(m2, 'br0', bob), { permitted: false, stderr: `acl file \`${e}/inc.conf' is writable by others (mode 0646)\n`, code: 'insecure' });
  put(join(e, 'inc.conf'), 'deny br1\n', { mode: 0o600, uid: ALICE });
  t.same(as(m2, 'br0', bob).code, 'insecure', 'fails closed even when the caller could not read the file');
  put(join(e, 'inc.conf'), 'deny br1\n', { mode: 0o640, gid: BOB });
  t.same(as(m2, 'br0', bob), OK, 'root-owned, group bob, 0640: fine');

  const f = area();
  const m3 = put(join(f, 'bridge.conf'), `allow br0\ninclude ${f}/open/x.conf\n`);
  subdir(join(f, 'open'), { mode: 0o777 });
  t.same(as(m3, 'br0', bob), { permitted: false, stderr: `acl directory \`${f}/open' is writable by others (mode 0777), on the path of \`${f}/open/x.conf'\n`, code: 'insecure' }, 'even a missing include: anyone could create it');
  chmodSync(join(f, 'open'), 0o1777);
  t.same(as(m3, 'br0', bob), OK, 'sticky: nobody can replace root’s files there');
  put(join(f, 'open', 'x.conf'), 'deny br0\n', { uid: BOB });
  t.same(as(m3, 'br0', bob).stderr, `acl file \`${f}/open/x.conf' is not owned by root (owner uid ${BOB})\n`, 'and what others put there is not root’s');
  chmodSync(join(f, 'open'), 0o775);
  rmSync(join(f, 'open', 'x.conf'));
  t.same(as(m3, 'br0', bob).stderr, `acl directory \`${f}/open' is writable by group (mode 0775), on the path of \`${f}/open/x.conf'\n`);

  const g = area();
  const m4 = put(join(g, 'bridge.conf'), `allow br0\ninclude ${g}/link.conf\n`);
  subdir(join(g, 'home'), { uid: ALICE });
  put(join(g, 'home', 'x.conf'), 'allow br1\n');
  symlinkSync(`${g}/home/x.conf`, join(g, 'link.conf'));
  t.same(as(m4, 'br0', bob).stderr, `acl directory \`${g}/home' is not owned by root (owner uid ${ALICE}), on the path of \`${g}/link.conf'\n`, 'a symlink into a user’s directory');
  const c = checkAcl({ bridge: 'br0', user: 'bob', aclPath: m4, userDb: db });
  t.equal(c.reason, `error: acl directory \`${g}/home' is not owned by root (owner uid ${ALICE}), on the path of \`${g}/link.conf'; the check fails`);
  t.same(c.files.map((x) => x.status), ['read', 'insecure']);

  const h = area();
  const m5 = put(join(h, 'bridge.conf'), `allow br0\ninclude ${h}/link.conf\n`);
  put(join(h, 'real.conf'), 'allow br1\n', { uid: BOB });
  symlinkSync('real.conf', join(h, 'link.conf'));
  t.same(as(m5, 'br0', bob).stderr, `acl file \`${h}/link.conf' (\`${h}/real.conf') is not owned by root (owner uid ${BOB})\n`, 'names the file behind the symlink');
});

t.test('FIFOs and devices are refused, never waited on', async (t) => {
  const d = area();
  execFileSync('mkfifo', [join(d, 'fifo')]);
  const main = put(join(d, 'bridge.conf'), `allow br0\ninclude ${d}/fifo\n`);
  t.same(as(main, 'br0'), { permitted: false, stderr: `acl file \`${d}/fifo' is not a regular file\n`, code: 'io' }, 'as the caller');
  t.same(as(main, 'br0', bob), { permitted: false, stderr: `acl file \`${d}/fifo' is not a regular file\n`, code: 'io' }, 'for a peer');
  const m2 = put(join(d, 'null.conf'), 'allow br0\ninclude /dev/null\n');
  t.same(as(m2, 'br0').code, 'io', '/dev/null too (documented deviation: the C helper reads it as empty)');
});

t.test('relative includes for a peer resolve against the given cwd', async (t) => {
  const d = area();
  const main = put(join(d, 'bridge.conf'), 'include rel.conf\n');
  subdir(join(d, 'cwd'));
  put(join(d, 'cwd', 'rel.conf'), 'allow br0\n');
  t.same(as(main, 'br0', bob, { cwd: join(d, 'cwd') }), OK);
  t.same(as(main, 'br0', bob, { cwd: d }), DENIED);
  const c = checkAcl({ bridge: 'br0', user: 'bob', aclPath: main, cwd: join(d, 'cwd'), userDb: db });
  t.match(c.warnings, [`${main}:1: relative include "include rel.conf" resolves against ${d}/cwd`]);
});

t.test('checkAcl with the system user database', async (t) => {
  const d = area();
  const main = put(join(d, 'bridge.conf'), 'allow br0\nallow-user nobody br1\ndeny-group nogroup br0\n');
  const c = checkAcl({ bridge: 'br1', user: 'nobody', aclPath: main });
  t.equal(c.allowed, true);
  t.equal(c.caller.uid, 65534);
  t.equal(c.caller.user, 'nobody');
  t.equal(c.reason, `allowed: "allow-user nobody br1" at ${main}:2 (the caller is user nobody)`);
  const c0 = checkAcl({ bridge: 'br0', user: 'nobody', aclPath: main });
  t.equal(c0.reason, `denied: "deny-group nogroup br0" at ${main}:3 (group nogroup is the caller's primary group) overrides "allow br0" at line 1`);
  t.equal(checkAcl({ bridge: 'br0', user: 'root', aclPath: main }).allowed, true);
});

t.test('POSIX ACLs: the evaluation used without CAP_SETUID agrees with the kernel, entry by entry', async (t) => {
  const d = area();
  // Owner 4245, group 5000; each file one ACL, each caller one identity. The kernel's answer is the
  // addon's openAs (the open the daemon makes as the peer); the evaluation is mayAccess on the ACL.
  const acls = [
    'u::rw-,g::r--,o::r--', // no extended entries: the mode bits
    'u::rw-,u:4242:---,g::r--,m::r--,o::r--', // a named user without read, others may
    'u::---,u:4242:r--,g::---,m::r--,o::---', // only a named user
    'u::rw-,u:4242:r--,g::---,m::---,o::r--', // an empty mask: the kernel skips the ACL, the mode bits decide (4242 is an other)
    'u::rw-,u:4242:r--,g::-w-,m::-w-,o::r--', // a mask without read takes the named user's read away
    'u::rw-,g::---,g:5001:r--,m::---,o::r--', // an empty mask again: the named group does not count, others may
    'u::rw-,g::---,g:5001:r--,m::r--,o::r--', // a named group grants; the owning group matches without read
    'u::rw-,g::r--,g:5001:---,m::r--,o::r--', // in two groups, one grants
    'u::rw-,g::---,g:5001:---,m::rwx,o::r--', // a matching group without read denies, others may not help
    'u::---,u:4245:r--,g::r--,m::r--,o::r--', // the owner entry wins over a named entry for the owner
  ];
  const callers: AclCredentials[] = [
    { uid: 4242, gid: 4242, groups: [] },
    { uid: 4243, gid: 4243, groups: [5000] },
    { uid: 4244, gid: 4244, groups: [5001] },
    { uid: 4246, gid: 5000, groups: [5001] },
    { uid: 4245, gid: 4245, groups: [] },
    { uid: 4247, gid: 4247, groups: [] },
  ];
  const { native } = await import('../src/native.js');
  const { mayAccess, parsePosixAcl } = await import('../src/acl/index.js');
  const { lstatSync } = await import('node:fs');
  let n = 0;
  for (const acl of acls) {
    const file = put(join(d, `f${n++}`), 'x\n', { uid: 4245, gid: 5000 });
    execFileSync('setfacl', ['-n', '--set', acl, file]); // -n: the mask as written, not recalculated
    const entries = ((x) => (x === null ? null : parsePosixAcl(x)))(native.lgetxattr(Buffer.from(file), 'system.posix_acl_access'));
    for (const c of callers) {
      let kernel: boolean;
      try {
        native.close(native.openAs(Buffer.from(file), c.uid, c.gid, c.groups, 0));
        kernel = true;
      } catch (e) {
        t.equal((e as { code?: string }).code, 'EACCES');
        kernel = false;
      }
      t.equal(mayAccess(lstatSync(file), c, 4, entries), kernel, `${acl} for uid ${c.uid} groups ${[c.gid, ...c.groups]}: ${kernel ? 'reads' : 'may not read'}`);
    }
  }
});
