import './harness.js';
import t from 'tap';
import {
  AclError,
  DEFAULT_ACL_FILE,
  ACL_MAX_DEPTH,
  IFNAMSIZ,
  UserDb,
  bridgeNameError,
  checkAcl,
  decideAcl,
  evaluateAcl,
  memoryReader,
  parseAcl,
  tokenizeAcl,
  type AclCredentials,
  type AclSource,
} from '../src/acl/index.js';

const MAIN = '/etc/qemu/bridge.conf';
const FAILED = "failed to parse default acl file `/etc/qemu/bridge.conf'\n";
const DENIED = 'access denied by acl file\n';

/** Runs the helper's ACL step over in-memory files; bridge.conf is `main`. */
function run(main: string | Buffer | AclSource, bridge: string | Buffer, more: Record<string, string | Buffer | AclSource> = {}, credentials?: AclCredentials) {
  const v = evaluateAcl(bridge, { reader: memoryReader({ [MAIN]: main, ...more }), ...(credentials ? { credentials } : {}) });
  return { permitted: v.permitted, fatal: v.fatal, stderr: v.stderr.toString('latin1') };
}

const allowed = (stderr = '') => ({ permitted: true, fatal: false, stderr });
const denied = (stderr = '') => ({ permitted: false, fatal: false, stderr: stderr + DENIED });
const fatal = (stderr: string) => ({ permitted: false, fatal: true, stderr });

// The worked examples of docs/qemu-bridge-helper.md, §4.6.
t.test('the C helper\'s worked examples', async (t) => {
  t.same(run('allow br0\n', 'br0'), allowed());
  t.same(run('allow br0\n', 'br1'), denied());
  t.same(run('', 'br0'), denied(), 'empty file: default deny');
  for (const br of ['br0', 'virbr0', 'x', 'all']) t.same(run('allow all\n', br), allowed(), `allow all: ${br}`);
  t.same(run('allow all\ndeny br0\n', 'br0'), denied());
  t.same(run('allow all\ndeny br0\n', 'br1'), allowed());
  t.same(run('deny br0\nallow br0\n', 'br0'), denied(), 'deny wins regardless of order');
  t.same(run('allow all\ndeny all\n', 'br0'), denied());
  t.same(run('deny br1\n', 'br0'), denied(), 'no allow');
  t.same(run('allow br0 # comment\n', 'br0'), denied(), 'the name is "br0 # comment"');
  t.same(run('allow br0 # comment\n', 'br0 # comment'), allowed());
  t.same(run('allow\tbr0\n', 'br0'), allowed());
  t.same(run('allow\tbr0 \n', 'br0'), fatal("Unknown command `allow\tbr0'\n" + FAILED));
  t.same(run('allow 0123456789abcdef\n', 'br0'), fatal("name `0123456789abcdef' too long: 16\n" + FAILED));
  t.same(run('allow 0123456789abcde\n', '0123456789abcde'), allowed(), '15 bytes is fine');
  t.same(run('include /nonexistent\nallow br0\n', 'br0'), allowed(), 'missing include: no message');
  t.same(run('allow ALL\n', 'br0'), denied(), 'ALL is a name');
  t.same(run('allow ALL\n', 'ALL'), allowed());

  // commit bdef79a299: per-group files, decided by who can read them
  const files = {
    [MAIN]: 'allow br0\ninclude /etc/qemu/alice.conf\ninclude /etc/qemu/bob.conf\ninclude /etc/qemu/charlie.conf\n',
    '/etc/qemu/alice.conf': 'allow br1\n',
    '/etc/qemu/bob.conf': 'allow br2\n',
    '/etc/qemu/charlie.conf': 'deny all\n',
  };
  const asAlice = { ...files, '/etc/qemu/bob.conf': { status: 'unreadable' }, '/etc/qemu/charlie.conf': { status: 'unreadable' } } as const;
  t.same(run(asAlice[MAIN], 'br1', asAlice), allowed(), 'qemu+alice → br1');
  t.same(run(asAlice[MAIN], 'br2', asAlice), denied(), 'bob.conf unreadable → ignored');
  const asCharlie = { ...files, '/etc/qemu/alice.conf': { status: 'unreadable' }, '/etc/qemu/bob.conf': { status: 'unreadable' } } as const;
  t.same(run(asCharlie[MAIN], 'br0', asCharlie), denied(), 'qemu+charlie: deny all readable');
  t.same(run({ status: 'unreadable' }, 'br0'), fatal(FAILED), 'not in qemu: main file unreadable');
  t.same(run('include /etc/qemu/secret.conf\n', 'br0', { '/etc/qemu/secret.conf': { status: 'unreadable' } }), denied(), 'unreadable include silently ignored');
});

// Messages: docs/qemu-bridge-helper.md, §8.
t.test('the C helper\'s messages of the ACL step', async (t) => {
  t.same(run('allow all\n', '0123456789abcdef'), fatal("name `0123456789abcdef' too long: 16\n"), '--br of 16 bytes');
  const untouched = evaluateAcl('0123456789abcdef', {
    reader: () => {
      throw new Error('the ACL must not be read for an over-long name');
    },
  });
  t.equal(untouched.stderr.toString(), "name `0123456789abcdef' too long: 16\n", 'checked before the ACL is read');
  t.equal(untouched.error?.code, 'name');
  t.same(run({ status: 'missing' }, 'br0'), fatal(FAILED), 'missing ACL file');
  t.same(run({ status: 'unreadable' }, 'br0'), fatal(FAILED), 'unreadable ACL file');
  t.same(run('allow br1\n', 'br0'), denied());
  t.same(run('deny all\n', 'br0'), denied());
  t.same(run({ status: 'directory' }, 'br0'), denied(), 'ACL file is a directory: reads as empty');
  t.same(run('foo bar\n', 'br0'), fatal("Unknown command `foo'\n" + FAILED));
  t.same(run('  allow\n', 'br0'), fatal('Invalid config line:\n    allow\n\n' + FAILED), 'raw line with its indent and newline');
  t.same(run('allow br0\ndeny', 'br0'), fatal('Invalid config line:\n  deny\n' + FAILED), 'last line without newline');
  t.same(run('deny 0123456789abcdef\n', 'br0'), fatal("name `0123456789abcdef' too long: 16\n" + FAILED), 'never truncated (CVE-2019-13164)');
  t.same(run('allow\t br0\n', 'br0'), fatal("Unknown command `allow\t'\n" + FAILED));
  t.same(run('allow \n', ''), allowed(), '--br= (empty) allowed by "allow "');
  t.same(run('allow \n', 'br0'), denied());
});

// docs/qemu-bridge-helper.md, §4.2–§4.3; docs/acl.md, "The file format".
t.test('tokenising quirks', async (t) => {
  t.same(run('allow\tbr0\t\n', 'br0'), allowed(), 'trailing tab is trimmed');
  t.same(run('allow\vbr0\n', 'br0'), fatal('Invalid config line:\n  allow\vbr0\n\n' + FAILED), 'VT is not a separator');
  t.same(run('allow br0\v\n', 'br0'), denied(), 'VT is not whitespace to GLib: the name is "br0\\v"');
  t.same(run('allow br0\v\n', 'br0\v'), allowed());
  t.same(run('\vallow br0\n', 'br0'), fatal("Unknown command `\vallow'\n" + FAILED), 'a leading VT is part of the command');
  t.same(run('\fallow br0\f\n', 'br0'), allowed(), 'FF is whitespace');
  t.same(run('allow br0\fx\n', 'br0\fx'), allowed(), 'inner whitespace kept');
  t.same(run('allow br0\fx\n', 'br0'), denied());
  t.same(run('allow br0\r\n', 'br0'), allowed(), 'CRLF');
  t.same(run(Buffer.from('\xEF\xBB\xBFallow br0\n', 'latin1'), 'br0'), fatal('Unknown command `\xEF\xBB\xBFallow\'\n' + FAILED), 'UTF-8 BOM');
  t.same(run('bogus 0123456789abcdef\n', 'br0'), fatal("name `0123456789abcdef' too long: 16\n" + FAILED), 'length checked before the command');
  t.same(run('include 0123456789abcdef0123\nallow br0\n', 'br0'), allowed(), 'no length limit on include paths');
  t.same(run('Allow br0\n', 'br0'), fatal("Unknown command `Allow'\n" + FAILED));
  t.same(run('ALLOW br0\n', 'br0'), fatal("Unknown command `ALLOW'\n" + FAILED));
  t.same(run('allow br0\0 xyz\n', 'br0'), allowed(), 'NUL ends the line');
  t.same(run('\0garbage\nallow br0\n', 'br0'), allowed(), 'a line starting with NUL is skipped');
  t.same(run('allow\0 br0\n', 'br0'), fatal('Invalid config line:\n  allow' + '\n' + FAILED), 'NUL hides the separator; the raw line stops at NUL');
  t.same(run('   # indented comment\n\t#x\nallow br0\n', 'br0'), allowed(), '# after leading whitespace is a comment');
  t.same(run('\n\n   \n\t\r\nallow br0', 'br0'), allowed(), 'blank lines, last line without newline');
  t.same(run('allow    br0   \n', 'br0'), allowed(), 'argument trimmed');
  t.same(run('allow br0 \xa0\n', 'br0'), denied(), 'NBSP (0xA0) is not whitespace');
  t.same(run(Buffer.from('allow br\xa0\n', 'latin1'), Buffer.from('br\xa0', 'latin1')), allowed(), 'bytes compare as bytes');
  t.same(run('allow brü\n', 'brü'), allowed(), 'UTF-8 names compare as bytes');
  t.same(run('allow 0123456789abcdü\n', 'br0'), fatal("name `0123456789abcdü' too long: 16\n".replace('ü', '\xc3\xbc') + FAILED), 'length in bytes');
  t.same(run('include /etc/qemu/my file.conf\n', 'br0', { '/etc/qemu/my file.conf': 'allow br0\n' }), allowed(), 'include path with a space');
  t.same(run('include \n', 'br0'), denied(), 'empty include path fails silently');

  // fgets(line, 4096): 4095-byte chunks are separate lines
  const comment = '#' + ' word'.repeat(1000) + '\n';
  const tail = comment.slice(4095); // "d word word … word\n"
  const name = tail.slice(2, -1);
  t.same(run(comment, 'br0'), fatal(`name \`${name}' too long: ${name.length}\n` + FAILED), 'long comment line: the second chunk is parsed');
  const padded = 'allow' + ' '.repeat(4089) + 'br0\n';
  t.same(run(padded, 'br0'), fatal('Invalid config line:\n  r0\n\n' + FAILED), 'allow line padded past the boundary');
  const exact = 'allow br0'.padEnd(4095, ' ') + '\nallow br1\n';
  t.same(run(exact, 'br0'), allowed(), '4095 bytes + newline: the newline is an empty chunk');
  t.same(run(exact, 'br1'), allowed());
  const third = 'allow' + ' '.repeat(9000) + 'br0\n'; // chunks: "allow   …" (allow ""), 4095 spaces, "   …br0\n"
  t.same(run(third, ''), fatal('Invalid config line:\n  ' + ' '.repeat(5 + 9000 - 2 * 4095) + 'br0\n\n' + FAILED), 'third chunk');

  const tokens = tokenizeAcl('allow br0\n\n  deny\tall\ninclude x y\nallow-group kvm br1\n');
  t.same(tokens.statements, [
    { kind: 'rule', action: 'allow', bridge: 'br0', line: 1, text: 'allow br0' },
    { kind: 'rule', action: 'deny', bridge: null, line: 3, text: 'deny\tall' },
    { kind: 'include', path: 'x y', line: 4, text: 'include x y' },
    { kind: 'rule', action: 'allow', bridge: 'br1', principal: { kind: 'group', name: 'kvm' }, line: 5, text: 'allow-group kvm br1' },
  ]);
  t.equal(tokens.error, null);
});

// docs/qemu-bridge-helper.md, §4.3, §4.5.
t.test('includes: in place, errors printed but not fatal', async (t) => {
  const inc = { '/a': 'allow br0\nbad x\nallow br1\n' };
  t.same(run('include /a\n', 'br0', inc), allowed("Unknown command `bad'\n"), 'rules before the error kept');
  t.same(run('include /a\n', 'br1', inc), denied("Unknown command `bad'\n"), 'rest of that file skipped');
  t.same(run('include /a\nallow br2\n', 'br2', inc), allowed("Unknown command `bad'\n"), 'parent continues');
  t.same(run('allow br0\ninclude /a\n', 'br0', { '/a': 'deny br0\n' }), denied(), 'deny in an include wins');
  t.same(run('include /d\nallow br0\n', 'br0', { '/d': { status: 'directory' } }), allowed(), 'directory include reads as empty');
  t.same(
    run('include /a\ninclude /b\nallow\n', 'br0', { '/a': 'x y\n', '/b': 'include /c\n  z\n', '/c': 'deny 0123456789abcdef\n' }),
    fatal("Unknown command `x'\nname `0123456789abcdef' too long: 16\nInvalid config line:\n    z\n\nInvalid config line:\n  allow\n\n" + FAILED),
    'messages in reading order, then the main file error',
  );
  const rel = evaluateAcl('br0', { reader: memoryReader({ [MAIN]: 'include sub/r.conf\n', '/srv/cwd/sub/r.conf': 'allow br0\n' }), cwd: '/srv/cwd' });
  t.ok(rel.permitted, 'relative include resolved against the given cwd');
  const rel2 = evaluateAcl('br0', { reader: memoryReader({ [MAIN]: 'include ../r.conf\n', '/srv/cwd/../r.conf': 'allow br0\n' }), cwd: '/srv/cwd/' });
  t.ok(rel2.permitted, '.. is left to the file system, not normalised');
  t.same(run('include /a\ninclude /a\n', 'br0', { '/a': 'allow br0\n' }), allowed(), 'the same file twice (not a cycle)');
});

t.test('deviations: cycles, depth, limits fail closed with one line', async (t) => {
  const self = run('allow all\ninclude /etc/qemu/bridge.conf\n', 'br0');
  t.same(self, fatal("include cycle at `/etc/qemu/bridge.conf' line 2: `/etc/qemu/bridge.conf' is already being read\n"));
  const loop = evaluateAcl('br0', { reader: memoryReader({ [MAIN]: 'include /a\nallow all\n', '/a': 'bad x\n', '/b': 'include /a\n' }) });
  t.ok(loop.permitted, 'not a loop: /a does not include /b');
  const loop2 = run('allow all\ninclude /a\n', 'br0', { '/a': 'include /b\n', '/b': 'include /a\n' });
  t.same(loop2, fatal("include cycle at `/b' line 1: `/a' is already being read\n"));
  const err = evaluateAcl('br0', { reader: memoryReader({ [MAIN]: 'x y\ninclude /etc/qemu/bridge.conf\n' }) }).error;
  t.equal(err?.code, 'parse', 'the main file stops at its syntax error, before the self-include');

  const chain = (n: number) => {
    const files: Record<string, string> = { [MAIN]: 'allow all\ninclude /f1\n' };
    for (let i = 1; i < n; i++) files[`/f${i}`] = `include /f${i + 1}\n`;
    files[`/f${n}`] = 'deny br9\n';
    return files;
  };
  const deep = chain(ACL_MAX_DEPTH);
  t.same(run(deep[MAIN] as string, 'br9', deep), denied(), `${ACL_MAX_DEPTH} levels of includes are read`);
  const tooDeep = chain(ACL_MAX_DEPTH + 1);
  const v = evaluateAcl('br0', { reader: memoryReader(tooDeep) });
  t.same({ permitted: v.permitted, fatal: v.fatal, code: v.error?.code }, { permitted: false, fatal: true, code: 'depth' });
  t.equal(v.stderr.toString(), "include nesting deeper than 32 levels at `/f32' line 1 (`/f33')\n");

  const many = run('allow all\n' + 'include /a\n'.repeat(5000), 'br0', { '/a': '# nothing\n' });
  t.same(many, fatal("too many includes: more than 4096 at `/etc/qemu/bridge.conf' line 4098\n"));
  t.same(run('allow all\n' + 'include /missing\n'.repeat(4096), 'br0'), allowed(), '4096 include lines are fine');
  const big = Buffer.alloc(9 * 1024 * 1024, 0x0a);
  t.same(run('allow all\ninclude /a\ninclude /b\ninclude /c\ninclude /d\ninclude /e\ninclude /f\ninclude /g\ninclude /h\n', 'br0', { '/a': big, '/b': big, '/c': big, '/d': big, '/e': big, '/f': big, '/g': big, '/h': big }),
    fatal("acl files too large: more than 67108864 bytes in all at `/etc/qemu/bridge.conf' line 9\n"));
  t.same(run('include /a\nallow all\n', 'br0', { '/a': { status: 'error', detail: "acl file `/a' is not a regular file" } }), fatal("acl file `/a' is not a regular file\n"));
  t.same(run('allow all\n', 'br0', {}, undefined), allowed());
});

t.test('AclError is the only thing thrown, and carries the exact stderr', async (t) => {
  t.throws(() => parseAcl('allow br0\nnope x\n'), AclError);
  try {
    parseAcl('allow br0\n  nope x\n', { path: '/x.conf' });
    t.fail('should throw');
  } catch (e) {
    t.ok(e instanceof AclError);
    const err = e as AclError;
    t.equal(err.code, 'parse');
    t.equal(err.file, '/x.conf');
    t.equal(err.line, 2);
    t.equal(err.stderr.toString(), "Unknown command `nope'\nfailed to parse default acl file `/x.conf'\n");
    t.equal(err.message, "failed to parse default acl file `/x.conf'");
  }
  const rs = parseAcl('allow br0\ninclude /i\n', { reader: memoryReader({ '/i': 'deny br0\n' }) });
  t.same(decideAcl(rs.rules, 'br0').permitted, false);
  t.same(decideAcl(rs.rules, 'br0').deny?.file, '/i');
  t.equal(parseAcl('include /etc/qemu/bridge.conf\n', { path: '/etc/qemu/other' }).rules.length, 0, 'other main path: the default is just a missing include');
  t.equal(DEFAULT_ACL_FILE, '/etc/qemu/bridge.conf');
  t.equal(IFNAMSIZ, 16);
});

t.test('bridgeNameError (checked by the helper before the ACL)', async (t) => {
  t.equal(bridgeNameError('0123456789abcde'), null);
  t.equal(bridgeNameError(''), null);
  t.equal(bridgeNameError('0123456789abcdef')?.toString(), "name `0123456789abcdef' too long: 16\n");
  t.same(bridgeNameError('0123456789abcdü'), Buffer.from("name `0123456789abcdü' too long: 16\n"), 'UTF-8: ü is 2 bytes');
  t.same(bridgeNameError(Buffer.from('0123456789abcd\xff\xfe', 'latin1')), Buffer.from("name `0123456789abcd\xff\xfe' too long: 16\n", 'latin1'), 'raw bytes kept');
});

const db = new UserDb(
  'root:x:0:0:root:/root:/bin/bash\n# comment\n+nis\nalice:x:1000:1000::/home/alice:/bin/sh\nbob:x:1001:1001::/home/bob:/bin/sh\nalice:x:4000:4000:dup::\nbroken:x:abc:1\n',
  'root:x:0:\nalice:x:1000:\nbob:x:1001:\nkvm:x:106:alice, bob\nqemu:x:107:alice\nstaff:x:50:bob\nkvm:x:999:\n',
);
const alice = { uid: 1000, gid: 1000, groups: [1000, 106, 107] };
const bob = { uid: 1001, gid: 1001, groups: [1001, 106, 50] };

t.test('users and groups', async (t) => {
  t.same(db.user('alice'), { name: 'alice', uid: 1000, gid: 1000 }, 'first entry wins');
  t.same(db.userById(4000), { name: 'alice', uid: 4000, gid: 4000 });
  t.equal(db.user('broken'), undefined, 'malformed line ignored');
  t.equal(db.user('+nis'), undefined);
  t.equal(db.group('kvm')?.gid, 106);
  t.same(db.groupsOf(db.user('alice')!), [1000, 106, 107]);
  t.same(db.groupsOf(db.user('bob')!), [1001, 106, 50]);
  t.same(db.groupsOf(db.user('root')!), [0]);
});

t.test('identity rules', async (t) => {
  const ev = (text: string, bridge: string, credentials?: AclCredentials) =>
    evaluateAcl(bridge, { reader: memoryReader({ [MAIN]: text }), userDb: db, ...(credentials ? { credentials } : {}) });
  t.ok(ev('allow-user alice br0\n', 'br0', alice).permitted);
  t.notOk(ev('allow-user alice br0\n', 'br0', bob).permitted);
  t.notOk(ev('allow-user alice br0\n', 'br1', alice).permitted);
  t.ok(ev('allow-user 1001 br0\n', 'br0', bob).permitted, 'numeric uid');
  t.ok(ev('allow-group kvm all\n', 'anything', bob).permitted, 'group from supplementary groups');
  t.ok(ev('allow-group 1001 br0\n', 'br0', { uid: 1001, gid: 1001, groups: [] }).permitted, 'primary gid counts');
  t.notOk(ev('allow all\ndeny-group staff br0\n', 'br0', bob).permitted, 'deny-group wins');
  t.ok(ev('allow all\ndeny-group staff br0\n', 'br0', alice).permitted);
  t.notOk(ev('allow-user alice all\ndeny all\n', 'br0', alice).permitted, 'deny all beats an identity allow');
  t.notOk(ev('allow-user nosuchuser br0\n', 'br0', alice).permitted, 'unknown name matches nobody');
  t.notOk(ev('allow all\ndeny-user nosuchuser br0\n', 'br0', alice).permitted, 'unknown name in a deny matches everybody (fails closed)');
  t.equal(ev('allow-user alice 0123456789abcdef\n', 'br0', alice).stderr.toString(), "name `0123456789abcdef' too long: 16\n" + FAILED);
  t.equal(ev('allow-user alice\n', 'br0', alice).stderr.toString(), 'Invalid config line:\n  allow-user alice\n\n' + FAILED);
  t.equal(ev('allow-user alice br0 br1\n', 'br0', alice).stderr.toString(), 'Invalid config line:\n  allow-user alice br0 br1\n\n' + FAILED);
  t.equal(ev('deny-user 99999999999 br0\n', 'br0', alice).stderr.toString(), 'Invalid config line:\n  deny-user 99999999999 br0\n\n' + FAILED);
  t.ok(ev('allow-user  alice \t br0 \n', 'br0', alice).permitted, 'tabs and spaces between words');
  t.equal(ev('allow-user\talice br0\n', 'br0', alice).stderr.toString(), "Unknown command `allow-user\talice'\n" + FAILED, 'same separator rule as C: first space');
  t.equal(ev('allow-user alice-long-user-name-over-16 br0\n', 'br0', alice).stderr.toString(), DENIED, 'long principal names parse (no such user here)');

  const noExt = evaluateAcl('br0', { reader: memoryReader({ [MAIN]: 'allow br0\nallow-user alice br0\n' }), extensions: false, credentials: alice });
  t.equal(noExt.stderr.toString(), "Unknown command `allow-user'\n" + FAILED, 'extensions off: exactly the C helper');

  // Without an identity (in-memory parse): allow-* never matches, deny-* always does.
  const rs = parseAcl('allow all\nallow-user alice br1\ndeny-group kvm br2\n');
  t.ok(rs.hasIdentityRules);
  t.ok(decideAcl(rs.rules, 'br0').permitted);
  t.notOk(decideAcl(rs.rules, 'br2').permitted, 'unknown caller counts as denied');
  t.ok(decideAcl(rs.rules, 'br2', { identity: { uid: 5, gid: 5, groups: [] }, userDb: db }).permitted);
  t.notOk(decideAcl(rs.rules, 'br2', { identity: bob, userDb: db }).permitted);
});

t.test('checkAcl explains in one line', async (t) => {
  const files = {
    [MAIN]: 'allow br0\ninclude /etc/qemu/extra.conf\ninclude local.conf\ndeny br3\n',
    '/etc/qemu/extra.conf': '# team\nallow br1\ndeny all\n',
  };
  const check = (bridge: string, extra: object = {}, f: Record<string, string | AclSource> = files) =>
    checkAcl({ bridge, reader: memoryReader(f), userDb: db, ...extra });

  const c = check('br0');
  t.equal(c.allowed, false);
  t.equal(c.reason, 'denied: "deny all" at /etc/qemu/extra.conf:3 overrides "allow br0" at /etc/qemu/bridge.conf:1');
  t.same(c.rule, { file: '/etc/qemu/extra.conf', line: 3, text: 'deny all' });
  t.same(c.overridden, { file: MAIN, line: 1, text: 'allow br0' });
  t.same(c.messages, ['access denied by acl file']);
  t.same(c.files.map((f) => [f.path, f.status]), [[MAIN, 'read'], ['/etc/qemu/extra.conf', 'read'], ['local.conf', 'missing']]);
  t.match(c.warnings, [/^\/etc\/qemu\/bridge.conf:3: relative include "include local.conf" resolves against the caller's working directory/]);

  const same = check('br0', {}, { [MAIN]: 'allow br0\nallow all\ndeny all\n' });
  t.equal(same.reason, 'denied: "deny all" at /etc/qemu/bridge.conf:3 overrides "allow br0" at line 1', 'same file: "at line N"');
  t.equal(check('br5', {}, { [MAIN]: 'allow br0\n' }).reason, 'denied: no rule allows "br5" (default deny)');
  t.equal(check('br3', {}, { [MAIN]: 'deny br3\n' }).reason, 'denied: "deny br3" at /etc/qemu/bridge.conf:1, and no rule allows "br3" either');
  const ok = check('br1', {}, { [MAIN]: 'allow br0\ninclude /x\nallow all\n', '/x': { status: 'unreadable' } });
  t.equal(ok.reason, 'allowed: "allow all" at /etc/qemu/bridge.conf:3');
  t.same(ok.rule, { file: MAIN, line: 3, text: 'allow all' });
  t.same(ok.messages, []);
  const skipped = check('br2', {}, { [MAIN]: 'allow br0\ninclude /etc/qemu/bob.conf\ninclude /etc/qemu/c.conf\n', '/etc/qemu/bob.conf': { status: 'unreadable' }, '/etc/qemu/c.conf': 'allow br7\nx y\nallow br2\n' });
  t.equal(skipped.reason, 'denied: no rule allows "br2" (default deny); includes not (fully) read: /etc/qemu/bob.conf (unreadable), /etc/qemu/c.conf (stopped at line 2)');
  t.same(skipped.messages, ["Unknown command `x'", 'access denied by acl file']);
  t.match(skipped.warnings, ["/etc/qemu/c.conf:2: Unknown command `x'; the rest of this included file is ignored"]);

  const broken = check('br0', {}, { [MAIN]: 'allow br0\n  allow\n' });
  t.equal(broken.fatal, true);
  t.equal(broken.reason, 'error: /etc/qemu/bridge.conf:2: invalid line (no space or tab after the command); an error in the main ACL file denies every bridge');
  t.same(broken.messages, ['Invalid config line:', '    allow', '', "failed to parse default acl file `/etc/qemu/bridge.conf'"]);
  t.equal(check('br0', {}, {}).reason, 'error: the ACL file /etc/qemu/bridge.conf does not exist, so every bridge is denied');
  t.equal(check('br0', { user: 'bob' }, { [MAIN]: { status: 'unreadable', detail: 'mode 0640 owner 0 group 107' } }).reason, 'error: bob (uid 1001) cannot read the ACL file /etc/qemu/bridge.conf (mode 0640 owner 0 group 107), so every bridge is denied');
  t.equal(check('0123456789abcdef').reason, "error: name `0123456789abcdef' too long: 16: bridge names must be shorter than 16 bytes (checked before the ACL is read)");
  t.equal(check('br0', {}, { [MAIN]: 'include /etc/qemu/bridge.conf\n' }).reason, "error: include cycle at `/etc/qemu/bridge.conf' line 1: `/etc/qemu/bridge.conf' is already being read; the check fails");

  const id = { [MAIN]: 'allow br9\ninclude /etc/qemu/users.conf\n', '/etc/qemu/users.conf': 'allow-group kvm br1\ndeny-user bob br1\nallow-user alice br2\nallow-user ghost br3\n' };
  const a = check('br1', { user: 'alice' }, id);
  t.equal(a.reason, 'allowed: "allow-group kvm br1" at /etc/qemu/users.conf:1 (the caller is in group kvm)');
  t.same(a.caller, { uid: 1000, gid: 1000, groups: [1000, 106, 107], user: 'alice', as: 'credentials' });
  t.match(a.warnings, [
    "/etc/qemu/users.conf:1: QEMU's own qemu-bridge-helper stops reading this included file here (Unknown command) and ignores the rest of it, including 1 deny rule it then does not enforce",
    '/etc/qemu/users.conf:4: no user "ghost" in /etc/passwd; "allow-user ghost br3" allows nobody',
  ]);
  t.equal(check('br1', { user: 'bob' }, id).reason, 'denied: "deny-user bob br1" at /etc/qemu/users.conf:2 (the caller is user bob) overrides "allow-group kvm br1" at line 1');
  t.equal(check('br2', { uid: 1000 }, id).allowed, true, 'uid looked up in /etc/passwd');
  t.equal(check('br2', { uid: 1000, groups: [] }, id).allowed, true);
  t.equal(check('br1', { uid: 1000, groups: [] }, id).allowed, false, 'explicit groups replace the looked-up ones');
  t.equal(check('br1', { uid: 77, gid: 106 }, id).reason, 'allowed: "allow-group kvm br1" at /etc/qemu/users.conf:1 (group kvm is the caller\'s primary group)');
  t.throws(() => check('br0', { user: 'nosuch' }), { name: 'AclError', code: 'credentials', message: 'no user "nosuch" in /etc/passwd' });
  t.throws(() => check('br0', { uid: 77 }), { code: 'credentials', message: 'uid 77 is not in /etc/passwd: give its gid too' });
  t.throws(() => check('br0', { gid: 5 }), { code: 'credentials' });
  t.throws(() => check('br0', { user: 'alice', uid: 5 }), { code: 'credentials' });
  t.throws(() => check('br0', { uid: -1, gid: 0 }), { code: 'credentials' });
  const self = check('br9', {}, id);
  t.equal(self.caller.as, 'self');
  t.equal(self.caller.uid, process.getuid!());
});
