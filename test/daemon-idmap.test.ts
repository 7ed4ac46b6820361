// Whose ids a user namespace's maps hold (src/daemon/idmap.ts), the rule qbhd.service decides by
// when it may not open a user's namespace: the map and subordinate-id files as the kernel and
// shadow write them, judged for every way a map can be made. test/daemon-userns.test.ts runs the
// same rule against real namespaces.
import './harness.js';
import t from 'tap';
import { UserDb } from '../src/acl/users.js';
import { mapsVerdict, parseIdMap, parseSubIds } from '../src/daemon/idmap.js';

const db = new UserDb('alice:x:1000:1000::/:/bin/sh\nbob:x:1001:1001::/:/bin/sh\n', 'alice:x:1000:\nbob:x:1001:\nkvm:x:990:alice\n');
const SUBUID = parseSubIds('alice:100000:65536\n1001:165536:65536\n# comment\nbroken line\nalice:300000:10\n');
const SUBGID = parseSubIds('alice:100000:65536\nbob:165536:65536\n');
/** The kernel's map text: `inside outside count`, right-aligned as /proc shows it. */
const map = (...lines: [number, number, number][]) => lines.map((l) => l.map((n) => String(n).padStart(10)).join(' ') + '\n').join('');
const verdict = (uid: string, gid: string, held: number[] = [1000]) => mapsVerdict(parseIdMap(uid), parseIdMap(gid), SUBUID, SUBGID, db, held);

t.test('the kernel map format and shadow subordinate lines', async (t) => {
  t.same(parseIdMap(map([0, 1000, 1], [1, 100000, 65536])), [{ outside: 1000, count: 1 }, { outside: 100000, count: 65536 }]);
  t.same(parseIdMap(''), [], 'no map written yet');
  t.throws(() => parseIdMap('0 1000\n'), /unexpected id map line/);
  t.same(parseSubIds('a:1:2\nb:x:2\n:1:2\nc:1:0\nd:1:2:3\n'), [{ owner: 'a', start: 1, count: 2 }], 'malformed and empty lines are skipped');
});

t.test("one user's ids: that user", async (t) => {
  t.same(verdict(map([1000, 1000, 1]), map([1000, 1000, 1])), { kind: 'person', uid: 1000 }, 'bwrap: own uid and gid');
  t.same(verdict(map([0, 1000, 1]), ''), { kind: 'person', uid: 1000 }, '--map-root-user, no gid map yet');
  t.same(verdict(map([0, 1000, 1], [1, 100000, 65536]), map([0, 1000, 1], [1, 100000, 65536])), { kind: 'person', uid: 1000 }, 'newuidmap/newgidmap: own ids and subordinate ranges');
  t.same(verdict(map([0, 100000, 10]), map([0, 990, 1])), { kind: 'person', uid: 1000 }, 'a subordinate uid, and an account group (kvm) as its gid');
  t.same(verdict(map([0, 165536, 100]), '', [1001]), { kind: 'person', uid: 1001 }, "bob's range keyed by uid");
  t.same(verdict(map([0, 1000, 1]), map([0, 4000, 1]), [1000, 4000]), { kind: 'person', uid: 1000 }, 'a gid the process holds and no one has as a subordinate gid');
});

t.test('anything else: refused, with the reason', async (t) => {
  t.match(verdict('', ''), { kind: 'unknown', reason: 'its uid map is not written yet' });
  t.match(verdict(map([0, 100000, 10], [10, 165536, 10]), ''), { kind: 'unknown', reason: /not one user's own and subordinate ids \(uid_map 100000\+10,165536\+10/ }, "alice's and bob's subordinate uids");
  t.match(verdict(map([0, 1000, 1], [1, 1001, 1]), ''), { kind: 'unknown', reason: /not one user's own/ }, "alice's and bob's own uids");
  t.match(verdict(map([0, 1900544, 65536]), ''), { kind: 'unknown', reason: /not one user's own/ }, 'a range no user may map');
  t.match(verdict(map([0, 100000, 65537]), ''), { kind: 'unknown', reason: /not one user's own/ }, "one uid past alice's range");
  t.match(verdict(map([0, 1000, 1]), map([0, 165536, 1])), { kind: 'unknown', reason: /not one user's own/ }, "alice's uid with bob's subordinate gid");
  t.match(verdict(map([0, 1000, 1]), map([0, 1001, 1])), { kind: 'unknown', reason: /not one user's own/ }, 'a gid neither her account nor her process holds');
  const overlap = parseSubIds('alice:100000:65536\nbob:100000:65536\n');
  t.match(mapsVerdict(parseIdMap(map([0, 100000, 10])), [], overlap, [], db, []), { kind: 'unknown', reason: /could be those of uid 1000 or uid 1001/ }, 'overlapping subordinate ranges');
  const stranger = parseSubIds('carol:100000:65536\n');
  t.match(mapsVerdict(parseIdMap(map([0, 100000, 10])), [], stranger, [], db, []), { kind: 'unknown', reason: /subordinate ids of "carol", whom \/etc\/passwd does not know/ });
});

t.test("ranges across adjacent subordinate lines of one user are that user's, as newuidmap allows", async (t) => {
  const adjacent = parseSubIds('alice:100000:10\nalice:100010:10\n');
  t.same(mapsVerdict(parseIdMap(map([0, 100000, 20])), [], adjacent, [], db, []), { kind: 'person', uid: 1000 });
});
