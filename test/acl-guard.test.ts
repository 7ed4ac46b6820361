// Port guards in bridge.conf (issue 23): `guard`, `guard-user`, `guard-group` lines — parsing and
// their one-line errors, which line decides for whom (the precedence docs/acl.md gives), includes,
// a bridge's altnames, what evaluateAcl and authorizeTap hand on, and `qbh acl check` (text and
// JSON) through the CLI. QEMU's own helper refusing these lines is in test/acl-diff.test.ts.
import './harness.js';
import t from 'tap';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sh } from './harness.js';
import { qbh } from './cli-lib.js';
import {
  AclError,
  UserDb,
  checkAcl,
  decideGuard,
  evaluateAcl,
  memoryReader,
  parseAcl,
  tokenizeAcl,
  type AclCredentials,
  type AclReader,
} from '../src/acl/index.js';
import { authorizeTap } from '../src/attach/authorize.js';
import { Rtnl } from '../src/netlink/rtnl.js';
import { formatGuard, parseGuard } from '../src/guard/policy.js';

const MAIN = '/etc/qemu/bridge.conf';
const FAILED = "failed to parse default acl file `/etc/qemu/bridge.conf'\n";
const STRICT = 'isolated mac=sticky:1 server-guard bpdu-guard ethertypes=ipv4,arp,ipv6';
// alice: uid 1000, in staff (2000) as a supplementary group; carol: staff as her primary group; bob: neither.
const db = new UserDb(
  'root:x:0:0::/:/bin/sh\nalice:x:1000:1000::/:/bin/sh\ncarol:x:1001:2000::/:/bin/sh\nbob:x:1002:1002::/:/bin/sh\n',
  'root:x:0:\nalice:x:1000:\nstaff:x:2000:alice\nbob:x:1002:\n',
);
const ALICE: AclCredentials = { uid: 1000, gid: 1000, groups: [1000, 2000] };
const CAROL: AclCredentials = { uid: 1001, gid: 2000, groups: [2000] };
const BOB: AclCredentials = { uid: 1002, gid: 1002, groups: [1002] };

/** The stderr a main file with these contents makes the helper print (it must fail to parse). */
function parseFailure(acl: string, extensions = true): string {
  try {
    parseAcl(acl, { extensions });
  } catch (e) {
    if (e instanceof AclError && e.code === 'parse') return e.stderr.toString('latin1');
    throw e;
  }
  throw new Error(`parsed: ${JSON.stringify(acl)}`);
}

/** The guard decision evaluateAcl makes for `who` on `bridge` from files held in memory. */
function verdictFor(files: Record<string, string>, bridge: string, who?: AclCredentials, bridgeNames?: string[]) {
  const reader: AclReader = memoryReader(files);
  return evaluateAcl(bridge, { reader, userDb: db, ...(who ? { credentials: who } : {}), ...(bridgeNames ? { bridgeNames } : {}) });
}

t.test('guard lines: bridge or all, user or group by name or id, words as policy.ts reads them', async (t) => {
  const { statements, error } = tokenizeAcl('guard br0 strict\nguard all isolated\tmac=sticky:2  server-guard\nguard-user alice br0 none\nguard-group 100 all ip=10.0.0.0/24\n');
  t.equal(error, null);
  t.same(statements, [
    { kind: 'guard', bridge: 'br0', guard: parseGuard('strict'), line: 1, text: 'guard br0 strict' },
    { kind: 'guard', bridge: null, guard: { isolated: true, mac: 'sticky', macLimit: 2, serverGuard: true }, line: 2, text: 'guard all isolated\tmac=sticky:2  server-guard' },
    { kind: 'guard', bridge: 'br0', principal: { kind: 'user', name: 'alice' }, guard: {}, line: 3, text: 'guard-user alice br0 none' },
    { kind: 'guard', bridge: null, principal: { kind: 'group', name: '100', id: 100 }, guard: { ips: ['10.0.0.0/24'] }, line: 4, text: 'guard-group 100 all ip=10.0.0.0/24' },
  ]);
  const set = parseAcl('allow all\nguard-user bob all strict\n');
  t.equal(set.hasIdentityRules, true, 'a guard-user line needs the caller, as an identity rule does');
  t.same(set.rules.length, 1, 'guard lines are not allow/deny rules');
  t.same(set.guardRules?.map((g) => [g.file, g.line, g.text]), [[MAIN, 2, 'guard-user bob all strict']]);
});

t.test('a bad guard line: one line naming file:line and the word, and the file fails to parse', async (t) => {
  const other = 'expected isolated, mac=, ip=, server-guard, bpdu-guard, ethertypes=, strict or none';
  const cases: [string, string][] = [
    ['guard br0 strict bogus', `${MAIN}:2: invalid guard word "bogus": unknown (${other})\n`],
    ['guard all mac=sticky:99', `${MAIN}:2: invalid guard word "mac=sticky:99": a port may hold 1-16 MACs\n`],
    ['guard br0 none isolated', `${MAIN}:2: invalid guard word "none": stands alone\n`],
    ['guard br0 ip=10.0.0.1/24', `${MAIN}:2: invalid guard word "ip=10.0.0.1/24": "10.0.0.1/24": host bits set (did you mean 10.0.0.0/24?)\n`],
    ['guard br0 isolated=yes', `${MAIN}:2: invalid guard word "isolated=yes": takes no value\n`],
    ['guard br0 mac=01:00:5e:00:00:01', `${MAIN}:2: invalid guard word "mac=01:00:5e:00:00:01": "01:00:5e:00:00:01" is not a unicast MAC such as 52:54:00:12:34:56 (or sticky[:N])\n`],
    ['guard br0 ethertypes=0x8100', `${MAIN}:2: invalid guard word "ethertypes=0x8100": "0x8100": VLAN tags are always dropped on a guarded port\n`],
    ['guard br0', `${MAIN}:2: "guard" needs a bridge (or all) and guard words, as in "guard br0 strict"\n`],
    ['guard strict ', `${MAIN}:2: "guard" needs a bridge (or all) and guard words, as in "guard br0 strict"\n`],
    ['guard-user alice br0', `${MAIN}:2: "guard-user" needs a user (name or id), a bridge (or all) and guard words, as in "guard-user alice br0 strict"\n`],
    ['guard-group  ', `${MAIN}:2: "guard-group" needs a group (name or id), a bridge (or all) and guard words, as in "guard-group alice br0 strict"\n`],
    ['guard-user 4294967295 br0 strict', `${MAIN}:2: uid "4294967295" is out of range (at most 4294967294)\n`],
    // The bridge obeys the C helper's 16-byte rule, in its words, as for the identity rules.
    ['guard 0123456789abcdef strict', "name `0123456789abcdef' too long: 16\n"],
  ];
  for (const [line, message] of cases) {
    const stderr = parseFailure(`allow all\n${line}\nallow br9\n`);
    t.equal(stderr, message + FAILED, line);
    t.equal(message.split('\n').length, 2, `one line: ${line}`);
  }
  // Fail closed, as any syntax error in the main file: no bridge for anyone.
  const v = verdictFor({ [MAIN]: 'allow all\nguard br0 strict mac=nope\n' }, 'br1');
  t.match(v, { permitted: false, fatal: true, error: { code: 'parse', line: 2 } });
  t.equal(v.guard, undefined);
  const c = checkAcl({ bridge: 'br1', reader: memoryReader({ [MAIN]: 'allow all\nguard br0 strict mac=nope\n' }), userDb: db });
  t.equal(c.reason, `error: ${MAIN}:2: invalid guard word "mac=nope": "nope" is not a unicast MAC such as 52:54:00:12:34:56 (or sticky[:N]); an error in the main ACL file denies every bridge`, 'the reason names file:line once');
  t.same(c.files[0]?.error, { line: 2, message: 'invalid guard word "mac=nope": "nope" is not a unicast MAC such as 52:54:00:12:34:56 (or sticky[:N])' });
  t.equal(tokenizeAcl('guard br0 bogus\n').error?.message, `line 1: invalid guard word "bogus": unknown (${other})\n`, 'tokenizeAcl without a file name says "line N"');
});

t.test('with extensions off (the C helper) a guard line is an unknown command, or a name too long', async (t) => {
  t.equal(parseFailure('allow all\nguard br0 strict\n', false), "Unknown command `guard'\n" + FAILED);
  t.equal(parseFailure('guard-user 0 all none\n', false), "Unknown command `guard-user'\n" + FAILED);
  t.equal(parseFailure('guard-group kvm br0 strict\n', false), "Unknown command `guard-group'\n" + FAILED);
  // The C helper's 16-byte rule comes before the command is recognised: a longer line is "too long".
  t.equal(parseFailure('guard all isolated mac=sticky:1\n', false), "name `all isolated mac=sticky:1' too long: 25\n" + FAILED);
});

t.test('which line decides: user over group over everyone, then a named bridge over all, then the later line', async (t) => {
  const acl = [
    'allow all', //                            1
    'guard all isolated', //                   2
    'guard br0 strict', //                     3
    'guard-group staff all mac=sticky:2', //   4
    'guard-group staff br0 server-guard', //   5
    'guard-user alice all bpdu-guard', //      6
    'guard-user alice br1 none', //            7
    'guard br0 isolated server-guard', //      8: the same rank as line 3, later
    'guard-user ghost all none', //            9: nobody is ghost
    'guard-user 1002 br3 ip=10.0.3.0/24', //  10: bob by uid
    'guard-group 2000 br4 isolated', //       11: staff by gid
    '',
  ].join('\n');
  const table: [string, AclCredentials | undefined, string, number, string][] = [
    ['an unknown caller', undefined, 'br0', 8, 'isolated server-guard'],
    ['an unknown caller', undefined, 'br2', 2, 'isolated'],
    ['bob', BOB, 'br0', 8, 'isolated server-guard'],
    ['bob', BOB, 'br2', 2, 'isolated'],
    ['bob', BOB, 'br3', 10, 'ip=10.0.3.0/24'],
    ['carol (staff, primary)', CAROL, 'br0', 5, 'server-guard'],
    ['carol (staff, primary)', CAROL, 'br2', 4, 'mac=sticky:2'],
    ['carol (staff, primary)', CAROL, 'br4', 11, 'isolated'],
    ['alice (staff, supplementary)', ALICE, 'br0', 6, 'bpdu-guard'],
    ['alice (staff, supplementary)', ALICE, 'br1', 7, 'none'],
    ['alice (staff, supplementary)', ALICE, 'br4', 6, 'bpdu-guard'],
  ];
  for (const [who, cred, bridge, line, words] of table) {
    const v = verdictFor({ [MAIN]: acl }, bridge, cred);
    t.equal(v.permitted, true);
    t.equal(v.guard?.rule?.line, line, `${who} on ${bridge}: line ${line}`);
    t.equal(formatGuard(v.guard?.guard), words, `${who} on ${bridge}: ${words}`);
  }
  t.same(verdictFor({ [MAIN]: acl }, 'br1', ALICE).guard, { guard: {}, rule: { bridge: 'br1', principal: { kind: 'user', name: 'alice' }, guard: {}, file: MAIN, line: 7, text: 'guard-user alice br1 none' } }, 'none: an explicit exemption, with its line');

  // Specificity, not file order: the user line first, the line for everyone after it.
  t.equal(verdictFor({ [MAIN]: 'allow all\nguard-user alice br0 isolated\nguard br0 strict\n' }, 'br0', ALICE).guard?.rule?.line, 2);
  // A user line for all beats a group line naming the bridge; a group line for all beats a line for everyone naming it.
  t.equal(verdictFor({ [MAIN]: 'allow all\nguard-user alice all isolated\nguard-group staff br0 strict\n' }, 'br0', ALICE).guard?.rule?.line, 2);
  t.equal(verdictFor({ [MAIN]: 'allow all\nguard-group staff all isolated\nguard br0 strict\n' }, 'br0', CAROL).guard?.rule?.line, 2);
  // No guard line: no guard.
  t.same(verdictFor({ [MAIN]: 'allow all\n' }, 'br0', ALICE).guard, { guard: {}, rule: null });
  // Denied: no guard decision at all.
  const denied = verdictFor({ [MAIN]: 'allow br0\nguard all strict\n' }, 'br1', ALICE);
  t.equal(denied.permitted, false);
  t.equal(denied.guard, undefined, 'absent when denied');
  const ifname = evaluateAcl('br0', { reader: memoryReader({ [MAIN]: 'allow all\nguard all strict\n' }), credentials: ALICE, userDb: db, ifname: 'eth9' });
  t.equal(ifname.permitted, false);
  t.equal(ifname.guard, undefined, 'absent when the tap name is refused');
  // decideGuard alone: without an identity only the lines for everyone apply.
  const rules = parseAcl(acl).guardRules ?? [];
  t.equal(decideGuard(rules, 'br0', { userDb: db }).rule?.line, 8);
  t.equal(decideGuard(rules, 'br1', { userDb: db }).rule?.line, 2);
  t.equal(decideGuard(rules, 'br1', { userDb: db, identity: ALICE }).rule?.line, 7);
});

t.test('includes: guard lines are read in place, with their file and line', async (t) => {
  const files = {
    [MAIN]: 'allow all\nguard all isolated\ninclude /etc/qemu/guards.conf\n',
    '/etc/qemu/guards.conf': 'guard all server-guard\nguard-user alice br0 strict\n',
  };
  let v = verdictFor(files, 'br0', BOB);
  t.same([v.guard?.rule?.file, v.guard?.rule?.line, v.guard?.rule?.text], ['/etc/qemu/guards.conf', 1, 'guard all server-guard'], 'the included line is the later one');
  t.same(v.guard?.guard, { serverGuard: true });
  v = verdictFor(files, 'br0', ALICE);
  t.same([v.guard?.rule?.file, v.guard?.rule?.line], ['/etc/qemu/guards.conf', 2]);
  v = verdictFor({ ...files, [MAIN]: files[MAIN] + 'guard all bpdu-guard\n' }, 'br0', BOB);
  t.same([v.guard?.rule?.file, v.guard?.rule?.line], [MAIN, 4], 'a line after the include is later still');
  // A bad guard line in an include: printed, the rest of that file skipped (as any syntax error there).
  v = verdictFor({ ...files, '/etc/qemu/guards.conf': 'guard all server-guard\nguard br0 mac=sticky:0\nguard all strict\n' }, 'br0', BOB);
  t.equal(v.stderr.toString(), '/etc/qemu/guards.conf:2: invalid guard word "mac=sticky:0": a port may hold 1-16 MACs\n');
  t.equal(v.guard?.rule?.line, 1);
  const c = checkAcl({ bridge: 'br0', uid: 1002, gid: 1002, reader: memoryReader({ ...files, '/etc/qemu/guards.conf': 'guard all server-guard\nguard br0 bogus\n' }), userDb: db });
  t.ok(c.warnings.includes('/etc/qemu/guards.conf:2: invalid guard word "bogus": unknown (expected isolated, mac=, ip=, server-guard, bpdu-guard, ethertypes=, strict or none); the rest of this included file is ignored'), c.warnings.join('\n'));
});

t.test('a bridge named by an altname: a line naming any of its names applies', async (t) => {
  const acl = 'allow all\nguard all isolated\nguard br0 strict\n';
  t.equal(verdictFor({ [MAIN]: acl }, 'lan0', BOB).guard?.rule?.line, 2, 'without its names lan0 is just another bridge');
  t.equal(verdictFor({ [MAIN]: acl }, 'lan0', BOB, ['br0']).guard?.rule?.line, 3, 'with them, the line for br0');
  t.equal(decideGuard(parseAcl(acl).guardRules ?? [], 'br0', { bridgeNames: ['lan0'] }).rule?.line, 3);
  t.equal(decideGuard(parseAcl('guard lan0 isolated\n').guardRules ?? [], 'br0', { bridgeNames: ['lan0'] }).rule?.line, 1, 'and the other way round');

  // Through the kernel: authorizeTap resolves the altname and hands the decision on unchanged.
  sh('ip', 'link', 'add', 'gb0', 'type', 'bridge');
  sh('ip', 'link', 'property', 'add', 'dev', 'gb0', 'altname', 'glan0');
  const dir = mkdtempSync(join(tmpdir(), 'qbh-guard-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const aclPath = join(dir, 'bridge.conf');
  writeFileSync(aclPath, 'allow all\nguard all isolated\nguard gb0 strict\n');
  const rtnl = Rtnl.openSync();
  t.teardown(() => rtnl.close());
  const { verdict } = authorizeTap({ bridge: Buffer.from('glan0'), ifname: null }, rtnl, { aclPath });
  t.equal(verdict.permitted, true);
  t.same([verdict.guard?.rule?.line, formatGuard(verdict.guard?.guard)], [3, STRICT], 'authorizeTap: the line for gb0 decides for --br=glan0');
  const r = await qbh('acl', 'check', 'glan0', '--acl', aclPath);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, `\n  guard: ${STRICT} (guard gb0 strict, ${aclPath}:3)\n`, 'qbh acl check finds the same line');
});

t.test('qbh acl check: the guard line, text and JSON', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'qbh-guard-'));
  chmodSync(dir, 0o755); // checking for another user: they must reach the file
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const acl = join(dir, 'bridge.conf');
  writeFileSync(acl, 'allow br0\nallow br1\nguard br0 strict\nguard-user nobody br0 isolated server-guard\nguard-user nobody br1 none\n', { mode: 0o644 });

  let r = await qbh('acl', 'check', 'br0', '--acl', acl);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout.split('\n').filter((l) => l.startsWith('  guard: ')).length, 1, 'one guard line');
  t.match(r.stdout, `\n  guard: ${STRICT} (guard br0 strict, ${acl}:3)\n`);
  r = await qbh('acl', 'check', 'br0', '--acl', acl, '--json');
  t.equal(r.code, 0);
  t.same(JSON.parse(r.stdout).guard, { words: STRICT, rule: { file: acl, line: 3, text: 'guard br0 strict' } });

  r = await qbh('acl', 'check', 'br0', '--acl', acl, '--user', 'nobody');
  t.match(r.stdout, `\n  guard: isolated server-guard (guard-user nobody br0 isolated server-guard, ${acl}:4)\n`, 'for another user: their own line');
  r = await qbh('acl', 'check', 'br1', '--acl', acl, '--user', 'nobody');
  t.match(r.stdout, `\n  guard: none (guard-user nobody br1 none, ${acl}:5)\n`, 'an exemption names its line');
  r = await qbh('acl', 'check', 'br1', '--acl', acl, '--user', 'nobody', '--json');
  t.same(JSON.parse(r.stdout).guard, { words: 'none', rule: { file: acl, line: 5, text: 'guard-user nobody br1 none' } });
  r = await qbh('acl', 'check', 'br1', '--acl', acl);
  t.match(r.stdout, '\n  guard: none (no guard line)\n', 'no line applies');
  t.same(JSON.parse((await qbh('acl', 'check', 'br1', '--acl', acl, '--json')).stdout).guard, { words: 'none', rule: null });

  r = await qbh('acl', 'check', 'br2', '--acl', acl);
  t.equal(r.code, 1);
  t.notMatch(r.stdout, 'guard:', 'denied: no guard shown');
  t.equal(JSON.parse((await qbh('acl', 'check', 'br2', '--acl', acl, '--json')).stdout).guard, undefined);
  t.match(JSON.parse((await qbh('acl', 'check', 'br0', '--acl', acl, '--json')).stdout).warnings, [`${acl}:3: guard lines make QEMU's own qemu-bridge-helper refuse this whole file (Unknown command)`]);

  writeFileSync(acl, 'allow all\nguard br0 strict mac=sticky:17\n');
  r = await qbh('acl', 'check', 'br0', '--acl', acl);
  t.equal(r.code, 1);
  t.match(r.stdout, `error: ${acl}:2: invalid guard word "mac=sticky:17": a port may hold 1-16 MACs; an error in the main ACL file denies every bridge\n`);

  const help = await qbh('acl', 'check', '--help');
  t.match(help.stdout, 'guard (when allowed): {words, rule: {file, line, text} | null}');
});

t.test('checkAcl warns where QEMU\'s own helper would hand out an unguarded tap, and about guard lines for nobody', async (t) => {
  const c = checkAcl({
    bridge: 'br0',
    uid: 1002,
    gid: 1002,
    reader: memoryReader({ [MAIN]: 'allow all\ninclude /etc/qemu/g.conf\n', '/etc/qemu/g.conf': 'guard all strict\ndeny br9\nguard-user ghost all none\n' }),
    userDb: db,
  });
  t.same(c.warnings, [
    "/etc/qemu/g.conf:1: QEMU's own qemu-bridge-helper stops reading this included file here (Unknown command) and ignores the rest of it, including 1 deny rule it then does not enforce; it never applies guard lines, so a tap it makes is not guarded",
    '/etc/qemu/g.conf:3: no user "ghost" in /etc/passwd; "guard-user ghost all none" applies to nobody',
  ]);
  t.same(c.guard, { words: STRICT, rule: { file: '/etc/qemu/g.conf', line: 1, text: 'guard all strict' } });
});

t.test('the example in docs/acl.md decides as its table says', async (t) => {
  const users = new UserDb(
    'alice:x:1100:1100::/:/bin/sh\nbob:x:1101:1101::/:/bin/sh\ncarol:x:1102:1102::/:/bin/sh\ndave:x:1103:1103::/:/bin/sh\n',
    'lab:x:3000:alice,dave\n',
  );
  const acl = 'allow all\nguard all isolated\nguard br0 strict\nguard-group lab br0 isolated mac=sticky:4\nguard-user alice all none\nguard-user bob br0 strict ip=10.0.0.0/24\n';
  const id = (uid: number, lab: boolean): AclCredentials => ({ uid, gid: uid, groups: lab ? [uid, 3000] : [uid] });
  const rows: [string, AclCredentials, string, number, string][] = [
    ['carol', id(1102, false), 'br0', 3, STRICT],
    ['carol', id(1102, false), 'br1', 2, 'isolated'],
    ['dave', id(1103, true), 'br0', 4, 'isolated mac=sticky:4'],
    ['dave', id(1103, true), 'br1', 2, 'isolated'],
    ['alice', id(1100, true), 'br0', 5, 'none'],
    ['bob', id(1101, false), 'br0', 6, 'isolated mac=sticky:1 ip=10.0.0.0/24 server-guard bpdu-guard ethertypes=ipv4,arp,ipv6'],
    ['bob', id(1101, false), 'br1', 2, 'isolated'],
  ];
  const rules = parseAcl(acl).guardRules ?? [];
  for (const [who, identity, bridge, line, words] of rows) {
    const d = decideGuard(rules, bridge, { identity, userDb: users });
    t.same([d.rule?.line, formatGuard(d.guard)], [line, words], `${who} on ${bridge}`);
  }
  t.equal(parseFailure('allow all\nguard br0 strict # note\n'), `${MAIN}:2: invalid guard word "#": unknown (expected isolated, mac=, ip=, server-guard, bpdu-guard, ethertypes=, strict or none)\n${FAILED}`, 'a # after the words is no comment');
});

t.test('random guard line sets: the decision is the most specific applicable line, the last among equals', async (t) => {
  // A different way to the same answer: sort the applicable lines by (specificity, position), take the last.
  const who = ['guard', 'guard-user alice', 'guard-user 1002', 'guard-user ghost', 'guard-group staff', 'guard-group 1002'];
  const bridges = ['br0', 'br1', 'lan0', 'all'];
  const words = ['isolated', 'strict', 'none', 'server-guard', 'mac=sticky:3'];
  let seed = 23;
  // mulberry32: small, and unlike a plain LCG its low bits are not periodic.
  const rand = (n: number) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x ^= x + Math.imul(x ^ (x >>> 7), 61 | x);
    return ((x ^ (x >>> 14)) >>> 0) % n;
  };
  const callers: [string, AclCredentials | undefined][] = [['alice', ALICE], ['bob', BOB], ['carol', CAROL], ['an unknown caller', undefined]];
  let decided = 0;
  for (let i = 0; i < 2000; i++) {
    const lines = Array.from({ length: 1 + rand(8) }, () => `${who[rand(who.length)]} ${bridges[rand(bridges.length)]} ${words[rand(words.length)]}`);
    const rules = parseAcl(lines.join('\n') + '\n').guardRules ?? [];
    const [name, identity] = callers[rand(callers.length)]!;
    const bridge = ['br0', 'br1'][rand(2)]!;
    const bridgeNames = bridge === 'br0' && rand(2) === 0 ? ['lan0'] : [];
    const applies = (text: string): number | null => {
      const parts = text.split(' ');
      const kind = parts[0] === 'guard' ? null : parts[0]!.slice('guard-'.length);
      const target = parts[kind === null ? 1 : 2]!;
      if (target !== 'all' && target !== bridge && !bridgeNames.includes(target)) return null;
      if (kind !== null) {
        if (identity === undefined) return null;
        const p = parts[1]!;
        const id = /^[0-9]+$/.test(p) ? Number(p) : kind === 'user' ? db.user(p)?.uid : db.group(p)?.gid;
        if (id === undefined) return null;
        if (kind === 'user' ? id !== identity.uid : !identity.groups.includes(id) && identity.gid !== id) return null;
      }
      return (kind === 'user' ? 4 : kind === 'group' ? 2 : 0) + (target === 'all' ? 0 : 1);
    };
    const ranked = lines.map((text, k) => ({ k, rank: applies(text) })).filter((x) => x.rank !== null);
    ranked.sort((a, b) => a.rank! - b.rank! || a.k - b.k);
    const want = ranked.length === 0 ? null : ranked[ranked.length - 1]!.k + 1;
    const got = decideGuard(rules, bridge, { userDb: db, bridgeNames, ...(identity ? { identity } : {}) });
    if (got.rule?.line !== (want ?? undefined)) {
      t.fail(`${name} on ${bridge} (names ${bridgeNames.join(',') || '-'}): line ${got.rule?.line} instead of ${want}`, { lines });
      return;
    }
    if (want !== null) decided++;
  }
  t.ok(decided > 1000, `2000 random sets: the same line each time (${decided} with a line that applies)`);
});
