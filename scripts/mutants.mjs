#!/usr/bin/env node
// Curated mutation testing (docs/testing.md): each mutant is a small textual patch on one source file
// — a bug a reviewer could plausibly write or a refactor could plausibly introduce — and the test
// files that must fail when it is applied. For each mutant the tree is copied to a temporary
// directory, patched, rebuilt (`npm run prepare`; the native addon is reused) and the mapped tests
// run there. A mutant the tests do not notice "survives"; any survivor makes the exit status 1.
//
//   node scripts/mutants.mjs            all mutants
//   node scripts/mutants.mjs ID …       only these (see --list)
//   node scripts/mutants.mjs --list     the mutants and their tests
//
// A patch whose search text is not found exactly once is an error, not a pass: after a refactor the
// mutant must be updated by hand (keep each one a single obvious line so that is easy).
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Per mutant: rebuild plus its tests. A hang counts as killed only if the baseline did not hang. */
const MUTANT_TIMEOUT_MS = 150_000;
/** The baseline: every mapped test file in one run (19 files by now: several minutes at --jobs=1). */
const BASELINE_TIMEOUT_MS = 10 * 60_000;
/** The whole run: twenty minutes on a shared 2-core machine (ten until the flood and storm tests of the daemon and helper mutants came). */
const RUN_BUDGET_MS = 20 * 60_000;

/**
 * @typedef {{ file: string, search: string, replace: string }} Patch
 * @typedef {{ id: string, what: string, patches: Patch[], tests: string[] }} Mutant
 * @type {Mutant[]}
 */
export const MUTANTS = [
  // ---- the five gaps of issue 14 ----------------------------------------------------------------
  {
    id: 'identity-forced-root',
    what: "the helper judges identity rules as root instead of its caller's real ids",
    patches: [{ file: 'src/acl/evaluate.ts', search: 'return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, groups: process.getgroups?.() ?? [] };', replace: 'return { uid: 0, gid: 0, groups: [] };' }],
    tests: ['test/helper-identity.test.ts'],
  },
  {
    id: 'string-without-nul',
    what: 'string attributes (IFLA_IFNAME, IFLA_INFO_KIND) encoded without their NUL',
    patches: [{ file: 'src/netlink/attr.ts', search: "return Buffer.concat([Buffer.from(String(value), 'utf8'), Buffer.alloc(1)]);", replace: "return Buffer.from(String(value), 'utf8');" }],
    tests: ['test/netlink-wire.test.ts'],
  },
  {
    id: 'dump-not-retried',
    what: 'an NLM_F_DUMP_INTR dump is returned as it is, never retried',
    patches: [{ file: 'src/netlink/wire.ts', search: '  if (!ex.interrupted) return ex.replies;\n', replace: '  return ex.replies;\n' }],
    tests: ['test/netlink-dump-retry.test.ts', 'test/netlink-socket.test.ts'],
  },
  {
    id: 'stale-answer-taken',
    what: "an answer with another request's sequence number (a left-over of an abandoned one) is taken as this request's",
    patches: [{ file: 'src/netlink/wire.ts', search: '    if (m.seq !== ex.seq || ex.done) continue;', replace: '    if (ex.done) continue;' }],
    tests: ['test/netlink-socket.test.ts'],
  },
  {
    id: 'other-port-answer-taken',
    what: 'a message from another process (a port other than the kernel\'s 0) is taken as the answer to a request',
    patches: [{ file: 'src/netlink/wire.ts', search: '  if (fromPort !== 0) return; // only the kernel answers requests\n', replace: '' }],
    tests: ['test/netlink-socket.test.ts'],
  },
  {
    id: 'pipeline-ack-every-request',
    what: 'every pipelined request asks for an ACK, not only the last of its window (an answer per request)',
    patches: [{ file: 'src/netlink/socket.ts', search: 'const ack = next === last - 1 ? NLM_F_ACK : 0;', replace: 'const ack = NLM_F_ACK;' }],
    tests: ['test/netlink-socket.test.ts'],
  },
  {
    id: 'closed-fd-unchecked',
    what: 'a closed --fd is not noticed before the helper opens its own fds',
    patches: [{ file: 'src/helper/main.ts', search: 'const sendError = closedFdError(opts.fd);', replace: 'const sendError = opts.fd < 0 ? closedFdError(opts.fd) : null;' }],
    tests: ['test/helper-failclosed.test.ts'],
  },
  {
    id: 'acl-after-tap',
    what: 'the tap is made before the ACL verdict is acted on (then closed on a denial)',
    patches: [
      { file: 'src/helper/main.ts', search: '    if (!verdict.permitted) return EXIT_FAILURE;\n', replace: '' },
      // Inside the try that holds the verdict (it ends by closing the rtnetlink socket).
      { file: 'src/helper/main.ts', search: '  } finally {\n    native.close(rtnl.socket.fd);', replace: '    if (!verdict.permitted) {\n      native.close(tap.fd);\n      return EXIT_FAILURE;\n    }\n  } finally {\n    native.close(rtnl.socket.fd);' },
    ],
    tests: ['test/helper-failclosed.test.ts'],
  },
  // ---- issue 14's other gaps -------------------------------------------------------------------
  {
    id: 'flag-decoded-as-1',
    what: 'a flag attribute decodes to 1 instead of true (equal only to a loose comparison)',
    patches: [{ file: 'src/netlink/attr.ts', search: "case 'flag':\n        return true;", replace: "case 'flag':\n        return 1;" }],
    tests: ['test/netlink-codec.test.ts'],
  },
  {
    id: 'bundle-without-meta-url',
    what: "the bundles lose their import.meta.url stand-in (bin/qbh cannot load what it loads on first need: ip-address, node:crypto, node:os)",
    patches: [{ file: 'scripts/bundle.mjs', search: "define: { 'import.meta.url': '__qbh_import_meta_url' },", replace: 'define: {},' }],
    tests: ['test/cli-bin.test.ts'],
  },
  // ---- the privileged path: ACL, helper, taps ---------------------------------------------------
  {
    id: 'deny-does-not-win',
    what: 'an allow rule wins over a deny rule for the same bridge',
    patches: [{ file: 'src/acl/evaluate.ts', search: 'return { permitted: allow !== null && deny === null, allow, deny };', replace: 'return { permitted: allow !== null, allow, deny };' }],
    tests: ['test/acl.test.ts'],
  },
  {
    id: 'unknown-caller-not-denied',
    what: 'deny-user/deny-group rules do not apply to a caller whose identity is unknown',
    patches: [{ file: 'src/acl/evaluate.ts', search: "if (identity === undefined) return rule.action === 'deny';", replace: 'if (identity === undefined) return false;' }],
    tests: ['test/acl.test.ts'],
  },
  // Found by a Stryker run on evaluate.ts (docs/testing.md): acl.test.ts let these through.
  {
    id: 'user-rule-matches-gid',
    what: "a user rule also matches a caller whose gid is that user's uid",
    patches: [{ file: 'src/acl/evaluate.ts', search: "return p.kind === 'user' ? id === identity.uid :", replace: "return p.kind === 'user' ? id === identity.uid || id === identity.gid :" }],
    tests: ['test/acl-decide.test.ts', 'test/helper-identity.test.ts'],
  },
  {
    id: 'unknown-caller-allowed',
    what: 'allow-user/allow-group rules match a caller whose identity is unknown',
    patches: [{ file: 'src/acl/evaluate.ts', search: "if (identity === undefined) return rule.action === 'deny';", replace: 'if (identity === undefined) return true;' }],
    tests: ['test/acl-decide.test.ts'],
  },
  {
    id: 'last-deny-reported',
    what: 'the decision reports the last deny rule instead of the first',
    patches: [{ file: 'src/acl/evaluate.ts', search: "if (rule.action === 'allow' ? allow !== null : deny !== null) continue;", replace: "if (rule.action === 'allow' ? allow !== null : false) continue;" }],
    tests: ['test/acl-decide.test.ts'],
  },
  {
    id: 'stop-at-first-deny',
    what: 'the scan stops at the first deny, so an allow after it is not reported',
    patches: [{ file: 'src/acl/evaluate.ts', search: 'if (allow !== null && deny !== null) break;', replace: 'if (deny !== null) break;' }],
    tests: ['test/acl-decide.test.ts'],
  },
  {
    id: 'rule-name-off-by-one',
    what: 'a 16-byte bridge name in a rule is accepted (>= IFNAMSIZ became > IFNAMSIZ)',
    patches: [{ file: 'src/acl/parse.ts', search: "if (cmd !== 'include' && arg.length >= IFNAMSIZ) {", replace: "if (cmd !== 'include' && arg.length > IFNAMSIZ) {" }],
    tests: ['test/acl.test.ts'],
  },
  {
    id: 'helper-name-check-dropped',
    what: "the helper's own length check on --br/--ifname before the ACL is read is gone",
    patches: [{ file: 'src/helper/main.ts', search: 'const tooLong = name === null ? null : bridgeNameError(name);', replace: 'const tooLong: Buffer | null = null;' }],
    tests: ['test/helper.test.ts'],
  },
  {
    id: 'include-depth-unbounded',
    what: 'the include depth bound (ACL_MAX_DEPTH) is not enforced',
    patches: [{ file: 'src/acl/load.ts', search: 'if (depth > ACL_MAX_DEPTH) {', replace: 'if (depth > Infinity) {' }],
    tests: ['test/acl.test.ts'],
  },
  {
    id: 'acl-file-hardening-skipped',
    what: 'a group/other-writable or non-root ACL file is trusted when judging for a caller',
    patches: [{ file: 'src/acl/read.ts', search: '    if (harden) {\n      const label', replace: '    if (false as boolean) {\n      const label' }],
    tests: ['test/acl-perm.test.ts'],
  },
  {
    id: 'argv-fd-optional',
    what: 'a helper command line without --fd is accepted',
    patches: [{ file: 'src/helper/argv.ts', search: 'if (bridge === null || fd === -1) return null;', replace: 'if (bridge === null) return null;' }],
    tests: ['test/helper.test.ts'],
  },
  {
    id: 'vnet-hdr-ignored',
    what: "--use-vnet is ignored: the helper's tap never gets IFF_VNET_HDR",
    patches: [{ file: 'src/tun/tap-sync.ts', search: 'if (opts.vnetHdr && probeFeatures(fd) & IFF_VNET_HDR) flags |= IFF_VNET_HDR;', replace: 'if (opts.vnetHdr && probeFeatures(fd) & IFF_VNET_HDR) flags |= 0;' }],
    tests: ['test/helper.test.ts'],
  },
  {
    id: 'mac-prefix-not-applied',
    what: "the helper's tap keeps the kernel's random MAC (no 0xFE first octet)",
    patches: [{ file: 'src/tun/tap-sync.ts', search: 'const address = randomMac(HELPER_PREFIX);', replace: 'const address = randomMac(Buffer.alloc(0));' }],
    tests: ['test/helper.test.ts'],
  },
  // ---- the privileged daemon (issue 14: src/daemon in the mutated privileged path) -----------------
  {
    id: 'daemon-ifname-unchecked',
    what: 'qbhd decides a tap request without its --ifname: the allow-ifname policy fails open',
    patches: [{ file: 'src/daemon/decide.ts', search: "ifname: req.ifname === null ? null : Buffer.from(req.ifname, 'utf8') }", replace: 'ifname: null }' }],
    tests: ['test/daemon.test.ts'],
  },
  {
    id: 'daemon-peer-as-root',
    what: "qbhd takes every peer's uid as 0 (root's rules, root's per-uid share) instead of SO_PEERCRED's",
    patches: [{ file: 'src/daemon/peer.ts', search: 'const peer: Peer = { person: cred.uid, uid: cred.uid, gid: cred.gid,', replace: 'const peer: Peer = { person: 0, uid: 0, gid: cred.gid,' }],
    tests: ['test/daemon-identity.test.ts'],
  },
  {
    id: 'daemon-userns-ignored',
    what: "qbhd takes a peer in a user namespace as the ids it holds there (a subordinate uid, its groups dropped), not as the person who owns the namespace",
    patches: [{ file: 'src/daemon/peer.ts', search: 'if (where.sameNs) return peer;', replace: 'if (where.sameNs || where.owners?.length !== 0) return peer;' }],
    tests: ['test/daemon-userns.test.ts'],
  },
  {
    id: 'daemon-userns-account-groups-ignored',
    what: "the person behind a user namespace gets only the groups its process still holds, not its account's (a dropped deny-group escapes)",
    patches: [{ file: 'src/daemon/peer.ts', search: 'const groups = db.groupsOf(user);', replace: 'const groups = [user.gid];' }],
    tests: ['test/daemon-userns.test.ts'],
  },
  {
    id: 'daemon-userns-idmap-uids-unchecked',
    what: "without CAP_SYS_PTRACE, qbhd takes a namespace's uid map as one user's without checking every range is that user's own or subordinate uids (a map joining two users' ranges is one of them)",
    patches: [{ file: 'src/daemon/idmap.ts', search: '    if (!uidMap.every((r) => covered(interval(r), uids))) return false;\n', replace: '' }],
    tests: ['test/daemon-idmap.test.ts', 'test/daemon-userns.test.ts'],
  },
  {
    id: 'daemon-request-uncapped',
    what: 'qbhd reads a request of any size (MAX_REQUEST_BYTES not enforced)',
    patches: [{ file: 'src/daemon/server.ts', search: '> MAX_REQUEST_BYTES) return refuse', replace: '> Infinity) return refuse' }],
    tests: ['test/daemon-hostile.test.ts'],
  },
  {
    id: 'daemon-per-uid-cap-ignored',
    what: 'one uid may hold every connection slot (MAX_CONNECTIONS_PER_UID not enforced)',
    patches: [{ file: 'src/daemon/server.ts', search: 'if (this.open.size >= MAX_CONNECTIONS || held >= MAX_CONNECTIONS_PER_UID) {', replace: 'if (this.open.size >= MAX_CONNECTIONS) {' }],
    tests: ['test/daemon-hostile.test.ts'],
  },
  {
    id: 'daemon-tap-fd-kept',
    what: "qbhd keeps its copy of each tap fd after sending it (one fd leaked per tap, and the tap outlives QEMU's use)",
    patches: [{ file: 'src/daemon/act.ts', search: '    if (tapFd !== undefined) native.close(tapFd);', replace: '' }],
    tests: ['test/daemon-hostile.test.ts'],
  },
  {
    id: 'daemon-queue-not-round-robin',
    what: "qbhd's request queue serves the first person with requests until they have none left, not one person after the other",
    patches: [{ file: 'src/daemon/fair.ts', search: '      this.queues.delete(person);\n      if (q.length > 0) this.queues.set(person, q);', replace: '      if (q.length === 0) this.queues.delete(person);' }],
    tests: ['test/daemon-fair.test.ts'],
  },
  {
    id: 'daemon-tap-reply-not-held',
    what: "qbhd closes a connection as soon as its tap reply is sent, so unread replies (fds in flight, counted against root) are no longer part of the client's share",
    patches: [{ file: 'src/daemon/server.ts', search: 'if (sendError === null) this.holdUntilRead(conn);', replace: 'if (sendError === null) sock.destroy();' }],
    tests: ['test/daemon-fair.test.ts'],
  },
  {
    id: 'daemon-unknown-field-taken',
    what: 'a request with an unknown field (say "uid") is accepted and the field ignored',
    patches: [{ file: 'src/attach/protocol.ts', search: 'if (!required.includes(key) && !optional.includes(key)) throw', replace: 'if (false as boolean) throw' }],
    tests: ['test/daemon-identity.test.ts'],
  },
  // ---- issue 20 ----------------------------------------------------------------------------------
  {
    id: 'sigusr1-inspect-port-loopback',
    what: "the helper's odd inspector address `[::%/]` 'tidied' to `[::1]` (in the #! line and in the helper's list alike): SIGUSR1 opens an inspector again",
    patches: [
      { file: 'scripts/launcher.mjs', search: "export const UNRESOLVABLE_INSPECT_PORT = '--inspect-port=[::%/]';", replace: "export const UNRESOLVABLE_INSPECT_PORT = '--inspect-port=[::1]';" },
      { file: 'src/helper/privilege.ts', search: "['--disable-sigusr1', '--inspect-port=[::%/]']", replace: "['--disable-sigusr1', '--inspect-port=[::1]']" },
    ],
    tests: ['test/helper-sigusr1.test.ts'],
  },
  {
    id: 'daemon-reads-acl-as-root',
    what: "qbhd opens ACL files with its own credentials, not the peer's (root reads every include)",
    patches: [{ file: 'src/acl/read.ts', search: 'native.openAs(byteStringBuffer(abs), cred.uid, cred.gid, cred.groups,', replace: 'native.openAs(byteStringBuffer(abs), 0, 0, [],' }],
    tests: ['test/daemon-posix-acl.test.ts'],
  },
  {
    id: 'posix-acl-ignored',
    what: 'without CAP_SETUID, a POSIX ACL on an ACL file is ignored: mode bits alone decide',
    patches: [{ file: 'src/acl/read.ts', search: 'return mayAccess(st, cred, bit, posixAclOf(p));', replace: 'return mayAccess(st, cred, bit, null);' }],
    tests: ['test/daemon-posix-acl.test.ts'],
  },
];

/**
 * The mutated text of each file a mutant touches, read from `dir`; throws unless each search text
 * occurs exactly once (patches apply in order, so a later one sees the earlier ones' result).
 */
export function mutatedFiles(dir, mutant) {
  const files = new Map();
  for (const p of mutant.patches) {
    const text = files.get(p.file) ?? readFileSync(join(dir, p.file), 'utf8');
    const count = text.split(p.search).length - 1;
    if (count !== 1) {
      throw new Error(`mutant ${mutant.id}: the search text occurs ${count} times in ${p.file} (expected once): update the mutant\n  ${JSON.stringify(p.search)}`);
    }
    files.set(p.file, text.replace(p.search, () => p.replace));
  }
  return files;
}

/** Applies a mutant to the tree under `dir`. */
export function applyMutant(dir, mutant) {
  for (const [file, text] of mutatedFiles(dir, mutant)) writeFileSync(join(dir, file), text);
}

/** A copy of the tree to build and test in: sources, tests, scripts, docs, config, the built addon. */
function copyTree() {
  const dir = mkdtempSync(join(tmpdir(), 'qbh-mutant-'));
  // Tests run the bundle as uid 65534: the copy must be readable by everyone, as the worktree is.
  chmodSync(dir, 0o755);
  for (const entry of ['src', 'test', 'scripts', 'docs', 'bin', 'build', 'package.json', 'tsconfig.json', 'tsconfig.build.json']) {
    if (existsSync(join(ROOT, entry))) cpSync(join(ROOT, entry), join(dir, entry), { recursive: true, verbatimSymlinks: true });
  }
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

/** Runs a command in `cwd` with a deadline; resolves { code, output, timedOut }. Kills its whole process group. */
function run(cmd, args, cwd, deadline) {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } });
    let output = '';
    p.stdout.on('data', (d) => (output += d));
    p.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => {
      try {
        process.kill(-p.pid, 'SIGKILL');
      } catch {}
    }, Math.max(1, deadline - Date.now()));
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, output, timedOut: signal === 'SIGKILL' && Date.now() >= deadline - 50 });
    });
  });
}

const TAP = join(ROOT, 'node_modules', '.bin', 'tap');

/** Builds and tests a copy, mutated or not. */
async function trial(mutant, tests, timeoutMs = MUTANT_TIMEOUT_MS) {
  const dir = copyTree();
  const started = Date.now();
  const deadline = started + timeoutMs;
  try {
    if (mutant) applyMutant(dir, mutant);
    const build = await run('npm', ['run', '--silent', 'prepare'], dir, deadline);
    if (build.code !== 0) return { outcome: 'build-failed', ms: Date.now() - started, output: build.output };
    const t = await run(TAP, ['--disable-coverage', '--reporter=tap', '--jobs=1', ...tests], dir, deadline);
    // The innermost failed assertions (most indented `not ok` lines), to show what noticed the mutant.
    const notOk = [...t.output.matchAll(/^( *)not ok \d+ - (.*?)(?: # time=.*)?$/gm)].map((m) => ({ depth: m[1].length, name: m[2] }));
    const deepest = Math.max(0, ...notOk.map((n) => n.depth));
    const failed = notOk.filter((n) => n.depth === deepest).map((n) => n.name).slice(0, 3);
    return { outcome: t.timedOut ? 'timeout' : t.code === 0 ? 'passed' : 'failed', ms: Date.now() - started, output: t.output, failed };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  const argv = process.argv.slice(2);
  if (argv.includes('--list')) {
    for (const m of MUTANTS) console.log(`${m.id.padEnd(28)} ${m.tests.join(' ')}\n${''.padEnd(28)} ${m.what}`);
    return 0;
  }
  const chosen = argv.length > 0 ? argv.map((id) => MUTANTS.find((m) => m.id === id) ?? die(`no mutant ${id} (see --list)`)) : MUTANTS;
  // Every patch must apply to the current sources before anything runs: a stale mutant is an error.
  for (const m of chosen) mutatedFiles(ROOT, m);
  const start = Date.now();
  const allTests = [...new Set(chosen.flatMap((m) => m.tests))];
  console.log(`baseline: ${allTests.join(' ')}`);
  const base = await trial(null, allTests, BASELINE_TIMEOUT_MS);
  if (base.outcome !== 'passed') {
    console.error(`baseline ${base.outcome}: the unmutated tree must pass the mapped tests first\n${base.output.slice(-4000)}`);
    return 2;
  }
  console.log(`baseline passed in ${(base.ms / 1000).toFixed(0)} s`);
  const results = [];
  for (const m of chosen) {
    if (Date.now() - start > RUN_BUDGET_MS) {
      results.push({ m, outcome: 'not-run' });
      console.log(`${m.id}: not run (the ${RUN_BUDGET_MS / 60000} min budget is spent)`);
      continue;
    }
    const r = await trial(m, m.tests);
    // A build failure is not a kill: the mutant must compile, or it tests nothing.
    const verdict = r.outcome === 'failed' || r.outcome === 'timeout' ? 'killed' : r.outcome === 'passed' ? 'SURVIVED' : r.outcome.toUpperCase();
    results.push({ m, outcome: verdict });
    const why = verdict === 'killed' ? ` by ${m.tests.join(' ')}${r.failed?.length ? `: ${r.failed.join(' | ')}` : r.outcome === 'timeout' ? ' (timeout)' : ''}` : '';
    console.log(`${m.id}: ${verdict} in ${(r.ms / 1000).toFixed(0)} s${why}`);
    if (verdict === 'BUILD-FAILED') console.log(r.output.slice(-2000));
  }
  const killed = results.filter((r) => r.outcome === 'killed').length;
  console.log(`\n${killed}/${results.length} mutants killed in ${((Date.now() - start) / 1000).toFixed(0)} s`);
  return killed === results.length ? 0 : 1;
}

function die(msg) {
  console.error(msg);
  process.exit(2);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.exitCode = await main();
