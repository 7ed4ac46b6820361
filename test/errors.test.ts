// Issue 13 item 2: one error family, and the same mistake gives the same words in the API and in `qbh`.
import './harness.js';
import t from 'tap';
import {
  QbhError,
  NoSuchDeviceError,
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
import { sh } from './harness.js';

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
