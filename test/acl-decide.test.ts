// The ACL decision where test/acl.test.ts left room (found by a Stryker run, docs/testing.md):
// callers whose uid and gid differ (a user rule must compare the uid, never the gid), an unknown
// caller against allow-* rules, and which rules `decideAcl` reports as deciding — the first allow
// and the first deny in file order, whatever comes between (the explanation `qbh acl check` prints).
import './harness.js';
import t from 'tap';
import { UserDb, decideAcl, parseAcl, type AclCredentials } from '../src/acl/index.js';

const db = new UserDb('root:x:0:0::/:/bin/sh\nalice:x:1000:2000::/:/bin/sh\ncarol:x:2000:3000::/:/bin/sh\n', 'root:x:0:\nstaff:x:2000:\nops:x:3000:\n');
// alice: uid 1000, primary group 2000 (staff) — the same number as carol's uid.
const alice: AclCredentials = { uid: 1000, gid: 2000, groups: [] };
const decide = (acl: string, bridge: string, identity?: AclCredentials) =>
  decideAcl(parseAcl(acl).rules, bridge, { userDb: db, ...(identity ? { identity } : {}) });

t.test('a user rule compares the uid, a group rule the groups: a uid equal to someone\'s gid is not that user', async (t) => {
  t.notOk(decide('allow-user carol br0\n', 'br0', alice).permitted, 'allow-user carol (uid 2000) does not admit alice (gid 2000)');
  t.notOk(decide('allow-user 2000 br0\n', 'br0', alice).permitted, 'nor does allow-user 2000');
  t.ok(decide('allow br0\ndeny-user carol br0\n', 'br0', alice).permitted, 'deny-user carol does not deny alice');
  t.ok(decide('allow-group staff br0\n', 'br0', alice).permitted, 'allow-group staff admits her (primary gid 2000)');
  t.notOk(decide('allow-group 1000 br0\n', 'br0', alice).permitted, 'allow-group 1000 (her uid, no group of hers) does not');
  t.ok(decide('allow-user alice br0\n', 'br0', alice).permitted, 'allow-user alice does');
});

t.test('an unknown caller: allow-user/allow-group never match it, deny-user/deny-group always do', async (t) => {
  t.notOk(decide('allow-user alice br0\n', 'br0').permitted, 'allow-user alice');
  t.notOk(decide('allow-group staff all\n', 'br0').permitted, 'allow-group staff');
  t.ok(decide('allow br0\n', 'br0').permitted, 'a plain allow still does');
  t.notOk(decide('allow br0\ndeny-user carol br0\n', 'br0').permitted, 'deny-user carol denies the unknown caller');
});

t.test('the deciding rules are the first allow and the first deny, in file order', async (t) => {
  const d = decide('deny br0\ndeny all\nallow all\nallow br0\n', 'br0', alice);
  t.equal(d.permitted, false);
  t.equal(d.deny?.line, 1, 'the first deny (line 1), not the one after it');
  t.equal(d.allow?.line, 3, 'and the first allow (line 3), though denies came before it');
  const e = decide('deny-user alice br0\nallow-user alice br0\ndeny br0\n', 'br0', alice);
  t.same([e.deny?.line, e.allow?.line], [1, 2], 'the same with identity rules');
});
