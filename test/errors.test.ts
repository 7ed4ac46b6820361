// Issue 13 item 2: one error family, and the same mistake gives the same words in the API and in `qbh`.
import './harness.js';
import t from 'tap';
import {
  QbhError,
  AddressError,
  InvalidArgumentError,
  NameTakenError,
  NetlinkError,
  NoSuchDeviceError,
  NotABridgeError,
  TapError,
  openTaps,
  recvFds,
  addAddress,
  createBridge,
  deleteBridge,
  deleteLink,
  deleteTap,
  deleteTaps,
  getBridge,
  getLink,
  openTap,
  setLink,
  tapInfo,
} from '../src/index.js';
import { qbh } from './cli-lib.js';
import { ipj, linkNames, sh } from './harness.js';

const LONG = 'averyverylongname0'; // 18 bytes
const PROBLEMS: [string, string, RegExp][] = [
  [LONG, `"${LONG}": longer than 15 bytes`, /longer than 15 bytes/],
  ['a/b', '"a/b": "/", ":", whitespace, "." and ".." are not allowed', /not allowed/],
  ['', '"": empty', /empty/],
];

t.test('a bad bridge name: the same words from createBridge, openTap and qbh', async (t) => {
  for (const [name, problem] of PROBLEMS) {
    const words = `invalid bridge name ${problem}`;
    await t.rejects(createBridge(name), { message: `createBridge: ${words}`, code: 'EINVAL' }, `createBridge(${JSON.stringify(name)})`);
    await t.rejects(openTap({ bridge: name }), { message: `openTap: ${words}`, code: 'EINVAL' }, `openTap({ bridge: ${JSON.stringify(name)} })`);
    const cli = await qbh('bridge', 'create', name);
    t.equal(cli.code, 2);
    t.match(cli.stderr, `qbh: bridge create: ${words}\n`, `qbh bridge create ${name}`);
    const tap = await qbh('tap', 'create', 'qe0', '--bridge', name);
    t.equal(tap.code, 2);
    t.match(tap.stderr, `qbh: tap create: ${words}\n`, `qbh tap create --bridge ${name}`);
  }
});

t.test('a bad tap name: the same words from openTap, deleteTap and qbh tap create', async (t) => {
  for (const [name, problem] of PROBLEMS) {
    const words = `invalid tap name ${problem}`;
    await t.rejects(openTap({ name }), { message: `openTap: ${words}`, op: 'openTap' });
    await t.rejects(deleteTap(name), { message: `deleteTap: ${words}`, op: 'deleteTap' });
    const cli = await qbh('tap', 'create', name);
    t.equal(cli.code, 2);
    t.match(cli.stderr, `qbh: tap create: ${words}\n`, `qbh tap create ${JSON.stringify(name)}`);
  }
});

t.test('a missing device: one wording naming it, from every API call and every command', async (t) => {
  sh('ip', 'link', 'add', 'mv0', 'type', 'veth', 'peer', 'name', 'mv1');
  sh('ip', 'link', 'add', 'mbr0', 'type', 'bridge');
  const api: [string, () => Promise<unknown>, string, string, string][] = [
    ['getBridge', () => getBridge('br9'), 'bridge', 'br9', 'getBridge: bridge br9 does not exist'],
    ['deleteBridge', () => deleteBridge('br9'), 'bridge', 'br9', 'deleteBridge: bridge br9 does not exist'],
    ['getLink', () => getLink('lo0'), 'device', 'lo0', 'getLink: device lo0 does not exist'],
    ['deleteLink', () => deleteLink('lo0'), 'device', 'lo0', 'deleteLink: device lo0 does not exist'],
    ['setLink', () => setLink('lo0', { up: true }), 'device', 'lo0', 'setLink: device lo0 does not exist'],
    ['setLink master', () => setLink('mv0', { master: 'br9' }), 'master', 'br9', 'setLink mv0: master br9 does not exist'],
    ['addAddress', () => addAddress('lo0', '10.0.0.1/24'), 'device', 'lo0', 'addAddress 10.0.0.1/24 on lo0: device lo0 does not exist'],
    ['deleteTap', () => deleteTap('t9'), 'tap', 't9', 'deleteTap: tap t9 does not exist'],
  ];
  for (const [what, call, kind, device, message] of api) {
    await t.rejects(call(), { constructor: NoSuchDeviceError, code: 'ENODEV', errno: 19, kind, device, message, problem: `${kind} ${device} does not exist` }, what);
  }
  // openTap names the operation and the tap; its cause is the same NoSuchDeviceError.
  let tapErr: unknown;
  await openTap({ name: 't0', bridge: 'br9' }).catch((e: unknown) => (tapErr = e));
  t.match(tapErr, { name: 'TapError', code: 'ENODEV', op: 'openTap', step: 'bridge-mtu', message: 'cannot create t0: bridge br9 does not exist' });
  t.ok((tapErr as Error).cause instanceof NoSuchDeviceError, 'the cause: the missing bridge');
  for (const [argv, stderr] of [
    [['bridge', 'show', 'br9'], 'bridge br9 does not exist'],
    [['bridge', 'delete', 'br9'], 'bridge br9 does not exist'],
    [['bridge', 'attach', 'br9', 'lo'], 'bridge br9 does not exist'],
    [['bridge', 'attach', 'mbr0', 'lo0'], 'device lo0 does not exist'],
    [['bridge', 'detach', 'lo0'], 'device lo0 does not exist'],
    [['tap', 'create', 't0', '--bridge', 'br9'], 'bridge br9 does not exist'],
    [['tap', 'delete', 't9'], 'tap t9 does not exist'],
    [['tap', 'show', 't9'], 'tap t9 does not exist'],
  ] as const) {
    t.same(await qbh(...argv), { code: 1, stdout: '', stderr: `qbh: ${stderr}\n` }, `qbh ${argv.join(' ')}`);
  }
});

t.test('a tap name another device holds: the API says which kind holds it', async (t) => {
  sh('ip', 'link', 'add', 'tv0', 'type', 'veth', 'peer', 'name', 'tv1');
  await t.rejects(openTap({ name: 'tv0' }), { name: 'TapError', code: 'EBUSY', step: 'create', message: 'cannot create tv0: name tv0 is taken by a veth device' });
  await t.rejects(openTap({ name: 'mbr0' }), { message: 'cannot create mbr0: name mbr0 is taken by a bridge device' });
});

t.test('common mistakes: every error is a QbhError with a code and op', async (t) => {
  sh('ip', 'link', 'add', 'ev0', 'type', 'veth', 'peer', 'name', 'ev1');
  sh('ip', 'link', 'add', 'ebr0', 'type', 'bridge');
  const mistakes: [string, () => unknown, string, string][] = [
    ['createBridge: long name', () => createBridge(LONG), 'EINVAL', 'createBridge'],
    ['createBridge: exists', () => createBridge('ebr0'), 'EEXIST', 'createBridge'],
    ['createBridge: mtu 10', () => createBridge('ebr1', { mtu: 10 }), 'EINVAL', 'createBridge'],
    ['getLink: missing', () => getLink('missing0'), 'ENODEV', 'getLink'],
    ['getBridge: a veth', () => getBridge('ev0'), 'EINVAL', 'getBridge'],
    ['deleteLink: missing', () => deleteLink('missing0'), 'ENODEV', 'deleteLink'],
    ['deleteBridge: missing', () => deleteBridge('missing0'), 'ENODEV', 'deleteBridge'],
    ['setLink: bad MTU', () => setLink('ev0', { mtu: 1 }), 'EINVAL', 'setLink'],
    ['addAddress: bad CIDR', () => addAddress('ev0', '10.0.0.1/33'), 'EINVAL', 'addAddress'],
    ['openTap: missing bridge', () => openTap({ bridge: 'missing0' }), 'ENODEV', 'openTap'],
    ['openTap: queues 0', () => openTap({ queues: 0 }), 'EINVAL', 'openTap'],
    ['deleteTap: missing', () => deleteTap('missing0'), 'ENODEV', 'deleteTap'],
    ['deleteTap: a bridge', () => deleteTap('ebr0'), 'EINVAL', 'deleteTap'],
    ['deleteTaps: a veth', () => deleteTaps(['ev0']), 'ENODEV', 'deleteTaps'],
    ['tapInfo: not a tun fd', () => tapInfo(0), 'ENOTTY', 'tapInfo'],
    ['tapInfo: closed fd', () => tapInfo(987654), 'EBADF', 'tapInfo'],
  ];
  for (const [what, call, code, op] of mistakes) {
    let err: unknown;
    try {
      await call();
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof QbhError, `${what}: a QbhError (${String(err)})`);
    t.match(err, { code, op }, `${what}: code ${code}, op ${op}`);
  }
});

t.test('a device of the wrong kind: one class from every entry point, with its fields, and qbh says it without the errno', async (t) => {
  sh('ip', 'link', 'add', 'kv0', 'type', 'veth', 'peer', 'name', 'kv1');
  const wrong = { device: 'kv0', kind: 'veth', kernelMessage: undefined, detail: 'kv0 is a veth, not a bridge', problem: 'kv0 is a veth, not a bridge' };
  const api: [string, () => Promise<unknown>, object][] = [
    ['getBridge', () => getBridge('kv0'), { ...wrong, code: 'EINVAL', op: 'getBridge', message: 'getBridge: kv0 is a veth, not a bridge' }],
    ['deleteBridge', () => deleteBridge('kv0'), { ...wrong, code: 'EINVAL', op: 'deleteBridge' }],
    // The tap functions keep the errno the kernel gives for enslaving to a non-bridge.
    ['openTap', () => openTap({ bridge: 'kv0' }), { ...wrong, code: 'EOPNOTSUPP', op: 'openTap', message: 'openTap: kv0 is a veth, not a bridge' }],
    ['openTaps', () => openTaps(2, { bridge: 'kv0' }), { ...wrong, code: 'EOPNOTSUPP', op: 'openTaps' }],
  ];
  for (const [what, call, want] of api) {
    const e = await call().then(() => undefined, (err: unknown) => err);
    t.ok(e instanceof NotABridgeError && e instanceof NetlinkError, `${what}: a NotABridgeError, still a NetlinkError (${String(e)})`);
    t.match(e, want, what);
  }
  t.ok(linkNames().every((n) => !/^tap\d/.test(n)), 'no tap was made');
  for (const existOk of [false, true]) {
    const e = await createBridge('kv0', { existOk }).then(() => undefined, (err: unknown) => err);
    t.ok(e instanceof NameTakenError && e instanceof NetlinkError, `createBridge over a veth (existOk ${existOk}): a NameTakenError`);
    t.match(e, { code: 'EEXIST', errno: 17, device: 'kv0', kind: 'veth', wanted: 'bridge', kernelMessage: undefined, message: 'createBridge: kv0 exists and is a veth, not a bridge' });
  }
  t.equal(ipj<any[]>('-d', 'link', 'show', 'kv0')[0].linkinfo.info_kind, 'veth', 'the veth is left as it was');
  for (const [argv, stderr] of [
    [['bridge', 'create', 'kv0'], 'cannot create bridge kv0: kv0 exists and is a veth, not a bridge'],
    [['bridge', 'create', 'kv0', '--exist-ok'], 'cannot create bridge kv0: kv0 exists and is a veth, not a bridge'],
    [['bridge', 'show', 'kv0'], 'cannot show bridge kv0: kv0 is a veth, not a bridge'],
    [['bridge', 'delete', 'kv0'], 'cannot delete bridge kv0: kv0 is a veth, not a bridge'],
    [['bridge', 'attach', 'kv0', 'lo'], 'cannot attach lo to bridge kv0: kv0 is a veth, not a bridge'],
    [['tap', 'create', 'kt0', '--bridge', 'kv0'], 'cannot create tap kt0: kv0 is a veth, not a bridge'],
  ] as const) {
    t.same(await qbh(...argv), { code: 1, stdout: '', stderr: `qbh: ${stderr}\n` }, `qbh ${argv.join(' ')}`);
  }
  // A bridge of that name: the kernel's EEXIST as before, no NameTakenError.
  sh('ip', 'link', 'add', 'kbr0', 'type', 'bridge');
  const exists = await createBridge('kbr0').then(() => undefined, (err: unknown) => err);
  t.ok(exists instanceof NetlinkError && !(exists instanceof NameTakenError), 'an existing bridge: the kernel\'s EEXIST');
  t.match(exists, { code: 'EEXIST', message: 'createBridge kbr0: File exists' });
});

t.test('kernelMessage is only ever the kernel\'s; qbh\'s own words are detail', async (t) => {
  sh('ip', 'link', 'add', 'kbr1', 'mtu', '1400', 'type', 'bridge');
  const kernel = await setLink('kbr1', { mtu: 10 }).then(() => undefined, (err: unknown) => err);
  t.match(kernel, { constructor: NetlinkError, code: 'EINVAL', kernelMessage: 'mtu less than device minimum', detail: undefined });
  const ours = await createBridge('kbr1', { existOk: true, mtu: 1500 }).then(() => undefined, (err: unknown) => err);
  t.match(ours, {
    constructor: NetlinkError,
    code: 'EEXIST',
    kernelMessage: undefined,
    detail: 'kbr1 exists with other settings: mtu 1400 not 1500',
    message: 'createBridge kbr1: File exists (kbr1 exists with other settings: mtu 1400 not 1500)',
  });
  const timeout = NetlinkError.fromQbh(110, { op: 'getLink', target: 'x' }, 'no answer from the kernel');
  t.match(timeout, { code: 'ETIMEDOUT', kernelMessage: undefined, detail: 'no answer from the kernel', message: 'getLink x: Connection timed out (no answer from the kernel)' });
});

t.test('an address the kernel refuses: an AddressError naming it, and what createBridge undid', async (t) => {
  sh('ip', 'link', 'add', 'kbr2', 'type', 'bridge');
  await addAddress('kbr2', '10.9.0.1/24');
  const again = await addAddress('kbr2', '10.9.0.1/24').then(() => undefined, (err: unknown) => err);
  t.ok(again instanceof AddressError && again instanceof NetlinkError, 'an AddressError, still a NetlinkError');
  t.match(again, { code: 'EEXIST', op: 'addAddress', address: '10.9.0.1/24', link: 'kbr2', undone: undefined });
  const made = await createBridge('kbr3', { addresses: ['10.9.1.1/24', '10.9.1.1/24'] }).then(() => undefined, (err: unknown) => err);
  t.match(made, { constructor: AddressError, address: '10.9.1.1/24', link: 'kbr3', undone: 'bridge kbr3 was removed again', message: /; bridge kbr3 was removed again$/ });
  t.notOk(linkNames().includes('kbr3'), 'the bridge was removed');
});

t.test('the same bad number: an InvalidArgumentError from every entry point, in the same words', async (t) => {
  sh('ip', 'link', 'add', 'kbr4', 'type', 'bridge');
  const mtu = 'invalid MTU 10: expected a whole number from 68 to';
  const cases: [string, () => unknown, string | RegExp][] = [
    ['createBridge mtu', () => createBridge('kbr5', { mtu: 10 }), `${mtu} 65535`],
    ['openTap mtu', () => openTap({ bridge: 'kbr4', mtu: 10 }), `${mtu} 65521`],
    ['openTaps mtu', () => openTaps(2, { bridge: 'kbr4', mtu: 10 }), `${mtu} 65521`],
    ['setLink mtu', () => setLink('kbr4', { mtu: -1 }), 'invalid MTU -1: expected a whole number from 0 to 4294967295'],
    ['openTap queues', () => openTap({ queues: 0 }), 'invalid number of queues 0: expected a whole number from 1 to 256'],
    ['openTaps queues', () => openTaps(2, { queues: 1.5 }), 'invalid number of queues 1.5: expected a whole number from 1 to 256'],
    ['openTaps count', () => openTaps(-1), 'invalid tap count -1: expected a whole number from 0 to 65536'],
    ['openTap owner', () => openTap({ owner: -1 }), 'invalid owner -1: expected a whole number from 0 to 4294967294'],
    ['recvFds maxFds', () => recvFds(0, 0), 'invalid maxFds 0: expected a whole number from 1 to 253'],
  ];
  for (const [what, call, problem] of cases) {
    let err: unknown;
    try {
      await call();
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof InvalidArgumentError && !(err instanceof TapError), `${what}: an InvalidArgumentError (${String(err)})`);
    t.match(err, { code: 'EINVAL', problem }, what);
  }
  t.ok(linkNames().every((n) => !/^tap\d/.test(n)), 'no tap was made');
});

t.test('TapError carries its reason; qbh prints it without cutting the message', async (t) => {
  sh('ip', 'link', 'add', 'kv2', 'type', 'veth', 'peer', 'name', 'kv3');
  const e = await openTap({ name: 'kv2' }).then(() => undefined, (err: unknown) => err);
  t.match(e, { constructor: TapError, step: 'create', reason: 'name kv2 is taken by a veth device', message: 'cannot create kv2: name kv2 is taken by a veth device' });
  t.same(await qbh('tap', 'create', 'kv2'), { code: 1, stdout: '', stderr: 'qbh: cannot create tap kv2: name kv2 is taken by a veth device\n' });
});
