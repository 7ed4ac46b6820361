// The native addon against hostile arguments (the contract at the top of native/qbh.cc): wrong
// types, NaN, ±Infinity, BigInt, negative and ≥2^31 numbers, detached buffers, getters that detach,
// odd fd counts, huge sizes. Each case runs in a child process of its own
// (test/fixtures/native-hostile-child.cjs), so an abort or a sanitizer report is a failed assertion
// here. Every case must end with a typed error or the documented result, the child's open-fd count
// unchanged and fds 0-2 the same files. The cases of the TypeScript wrappers import
// dist/tun/fds.js (plain node, no loader or coverage in each child, so that its ninety-odd children
// stay cheap), so run `npx tsc -p tsconfig.build.json` first when running this file alone;
// `npm test` builds it. .ci/run runs this file again against an addon built with
// -fsanitize=address,undefined.
import './harness.js';
import t from 'tap';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'native-hostile-child.cjs');
const { cases } = createRequire(import.meta.url)(CHILD) as { cases: Record<string, unknown> };

// A plain node for the children: tap's NODE_OPTIONS loader and coverage would only slow them down.
// The sanitizer settings (LD_PRELOAD, ASAN_OPTIONS…) pass through.
const env = { ...process.env };
delete env.NODE_OPTIONS;
delete env.NODE_V8_COVERAGE;

const TYPE = { error: { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' } };
const RANGE = { error: { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' } };
const REFUSED = { error: { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' } };
// The public wrappers (src/tun/fds.ts) refuse with the library's own error family.
const INVALID = { error: { name: 'InvalidArgumentError', code: 'EINVAL' } };

/** What each case must give (t.match shapes), by item of native/qbh.cc's contract. */
const expected: Record<string, object> = {
  // 4. Non-number arguments.
  'close(undefined)': TYPE,
  'close(string)': TYPE,
  'close(bigint)': TYPE,
  'close(null)': TYPE,
  'close(object)': TYPE,
  'close(NaN)': RANGE,
  'close(Infinity)': RANGE,
  'close(-1)': RANGE,
  'close(1.5)': RANGE,
  'close(2**31)': RANGE,
  'close(2**32)': RANGE,
  'close()': TYPE,
  "ioctl('3', …)": TYPE,
  'ioctl(fd, bigint request, …)': TYPE,
  'ioctl(fd, req, string)': { error: { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: /Uint8Array/ } },
  'ioctlInt(fd, req, string)': TYPE,
  "sendFds(sock, data, ['0'])": { ...TYPE, peerGot: null },
  "sendFds('3', …)": TYPE,
  'sendFds(sock, data, 5)': TYPE,
  'sendFds(sock, string, [fd])': TYPE,
  "nlOpen('0')": TYPE,
  'nlOpen()': TYPE,
  "nlOpenIn(0, '3')": TYPE,
  'nlOpenIn(0)': TYPE,
  'nlOpenIn(0, -1)': RANGE,
  'nlOpenIn(0, 2**31)': RANGE,
  'nlOpenIn(0, fd of no namespace): EINVAL from setns, nothing open': { error: { code: 'EINVAL', message: 'setns: Invalid argument' } },
  'nlSend(fd, string)': TYPE,
  'nlSend(bigint, buffer)': TYPE,
  'nlRecv(undefined, 0)': TYPE,
  "nlRecv(fd, '5')": TYPE,
  "setsockoptInt(fd, 'x', …)": TYPE,
  'setsockoptInt(fd, …, 2**32)': RANGE,
  'getsockoptInt(10n, …)': TYPE,
  'peerCred(undefined)': TYPE,
  "peerGroups('1')": TYPE,
  "peerUserns('1')": TYPE,
  'peerUserns on a socketpair: our own namespace': { value: { sameNs: true, owners: [] } },
  'peerUserns on a netlink socket: no peer': { error: { code: 'ENODATA', message: 'getsockopt(SO_PEERPIDFD): No data available' } },
  'socketpair(undefined)': TYPE,
  "openAs('/', …): a string path": TYPE,
  'openAs(path with NUL, …)': RANGE,
  "openAs(…, groups ['0'])": TYPE,
  'openAs(…, groups [1.5])': RANGE,
  'openAs(…, groups 5)': TYPE,
  'openAs(…, uid -1)': RANGE,
  'openAs(…, O_WRONLY|O_CREAT)': RANGE,
  "lgetxattr(path, 'user.x')": RANGE,
  "watch('3', fn)": TYPE,
  "recvFds(sock, 'x', 1): the message stays queued": { ...TYPE, stillQueued: true },
  // 5. Sizes.
  'recvFds wrapper maxBytes 2**31': INVALID,
  'recvFds wrapper maxBytes 65537': INVALID,
  'recvFds maxBytes 2**32+1': RANGE,
  'recvFds maxBytes 0': RANGE,
  'recvFds maxFds 2**31-1': RANGE,
  'recvFds maxFds -1': RANGE,
  'sendFds array length 2**32-1': RANGE,
  'sendFds 254 fds': RANGE,
  'sendFds wrapper 254 fds': INVALID,
  // 1. ioctl sizes and requests.
  'ioctl SIOCGIFINDEX into an 8-byte subarray': { ...RANGE, intact: true },
  'ioctl SIOCGIFINDEX with a whole ifreq': { value: 0, ifindex: 1 },
  'ioctl TUNGETIFF into a 4-byte subarray (its _IOC_SIZE)': { ...RANGE, intact: true },
  'ioctl TUNGETFEATURES into 4 bytes': { value: 0, tap: true },
  'ioctl into a detached buffer': RANGE,
  'ioctl SIOCGIFCONF (carries a pointer)': REFUSED,
  'ioctlInt SIOCGIFINDEX (an address as the value)': REFUSED,
  'ioctl TUNGETIFF on a socket': { error: { code: 'ENOTTY', errno: 25 } },
  // 2. sendFds and a payload detached by a getter.
  'sendFds: an fd getter detaches the payload': { value: 0, peerBytes: null },
  'sendFds: an fd getter throws': { error: { message: 'getter says no' }, peerGot: null },
  'sendFds of a detached payload': { value: 0, peerBytes: 0 },
  // 3. watch().
  'watch: stop() twice, after the handle closed': { value: 'survived' },
  'watch(fd, 42) on a readable fd': { ...TYPE, survived: true },
  'watch: a Worker ends with the watch open': { value: 'watching' },
  'watch: a Worker exits by itself with the watch open': { value: 'survived' },
  'watch: the callback throws': { caught: 'callback says no', next: { value: 1 } },
  // 6. Truncation.
  'recvFds(b, 1, maxFds 1) of 2 fds': { truncated: true, fds: 2 },
  'recvFds wrapper, maxFds 1, 2 fds sent': { error: { name: 'FdMessageTruncatedError', code: 'EMSGSIZE' } },
  'recvFds wrapper on a stream: bytes past maxBytes stay queued': { first: [1], rest: [2, 3] },
  // 7. errno names.
  'TUNGETIFF on an unattached tun fd: EBADFD': { error: { code: 'EBADFD', errno: 77, message: 'ioctl: File descriptor in bad state' } },
  // 8. Timeouts, blocking fds, closed watched fds.
  'nlRecv(fd, NaN)': RANGE,
  'nlRecv(fd, 2**32)': RANGE,
  'nlRecv(fd, 2**31)': RANGE,
  'nlRecv(fd, -1)': RANGE,
  'recvFds(…, timeoutMs NaN)': RANGE,
  'recvFds(…, timeoutMs 2**32)': RANGE,
  'recvFds(…, timeoutMs 2**31)': RANGE,
  'recvFds(…, timeoutMs -1)': RANGE,
  'nlRecv(fd, 30) waits, then null': { value: null, waited: true },
  'nlRecv(blocking fd, 0) does not block': { value: null },
  'recvFds waits on an fd watch() left non-blocking': { data: [7] },
  'close(fd) of a watched fd, then a watch on the reused number': { reused: true, error: undefined },
};

interface ChildReport {
  result: unknown;
  before: { fds: number; stdio: string[] };
  after: { fds: number; stdio: string[] };
}

function runChild(name: string): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--expose-gc', CHILD, name], { env, timeout: 10_000, killSignal: 'SIGKILL', maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number | string; signal?: string }) | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, signal: e?.signal ?? null, stdout, stderr });
    });
  });
}

t.test('every case has an expectation, and every expectation a case', async (t) => {
  t.same(Object.keys(cases).sort(), Object.keys(expected).sort());
});

// Two children at a time: the machine is shared.
const names = Object.keys(expected);
const runs = new Map<string, ReturnType<typeof runChild>>();
let next = 0;
const start = (): void => {
  const name = names[next++];
  if (name === undefined) return;
  const p = runChild(name);
  runs.set(name, p);
  void p.then(start);
};
start();
start();

for (const name of names) {
  t.test(name, async (t) => {
    while (!runs.has(name)) await new Promise((r) => setTimeout(r, 5));
    const { code, signal, stdout, stderr } = await runs.get(name)!;
    t.equal(signal, null, 'not killed (an abort, a hang past 10 s)');
    t.equal(code, 0, 'exits 0');
    t.notMatch(stderr, /AddressSanitizer|runtime error:|FATAL ERROR|Assertion/, 'no sanitizer report, no V8 or libuv abort');
    if (code !== 0 || signal !== null) t.comment(stderr.slice(0, 2000));
    let report: ChildReport | undefined;
    try {
      report = JSON.parse(stdout) as ChildReport;
    } catch {
      t.fail(`no report from the child: ${stdout.slice(0, 200)}`);
      return;
    }
    t.match(report.result, expected[name], 'the result');
    t.equal(report.after.fds, report.before.fds, 'no fd leaked');
    t.same(report.after.stdio, report.before.stdio, 'fds 0-2 are the same files');
  });
}
