// Issue 13 item 2: one error family, and the same mistake gives the same words in the API and in `qbh`.
import './harness.js';
import t from 'tap';
import {
  QbhError,
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

t.test('a missing bridge: the kernel\'s words in the API and the CLI', async (t) => {
  await t.rejects(getBridge('missing0'), { code: 'ENODEV', message: /No such device/ });
  for (const [argv, action] of [
    [['bridge', 'show', 'missing0'], 'show bridge missing0'],
    [['bridge', 'delete', 'missing0'], 'delete bridge missing0'],
  ] as const) {
    const r = await qbh(...argv);
    t.equal(r.stderr, `qbh: cannot ${action}: No such device\n`);
  }
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
