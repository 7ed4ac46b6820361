import './harness.js';
import t from 'tap';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ipj, linkNames, sh } from './harness.js';
import { qbh } from './cli-lib.js';


t.test('tap create/list/delete', async (t) => {
  sh('ip', 'link', 'add', 'tb0', 'mtu', '1400', 'type', 'bridge');
  let r = await qbh('tap', 'create', 'qt0', '--bridge', 'tb0', '--owner', 'nobody', '--queues', '4', '--vnet-hdr', '--json');
  t.equal(r.code, 0, r.stderr);
  const printed = JSON.parse(r.stdout);
  const [link] = ipj('-d', 'link', 'show', 'qt0');
  t.equal(link.master, 'tb0');
  t.equal(link.mtu, 1400);
  t.match(link.linkinfo.info_data, { type: 'tap', vnet_hdr: true, multi_queue: true, persist: true, user: 'nobody' });
  t.equal(printed.ifname, 'qt0');
  t.equal((await qbh('tap', 'create', 'qt1')).code, 0);
  r = await qbh('tap', 'list', '--json');
  const taps = JSON.parse(r.stdout);
  t.same(taps.map((x: any) => x.ifname).sort(), ['qt0', 'qt1']);
  const ip = ipj('-d', 'link', 'show', 'type', 'tun');
  for (const x of taps) t.match(x.linkinfo, ip.find((l: any) => l.ifname === x.ifname).linkinfo, `${x.ifname}: linkinfo has what ip -j -d prints`);
  r = await qbh('tap', 'list');
  t.match(r.stdout, /^NAME\s+STATE\s+OWNER\s+GROUP\s+VNET_HDR\s+MULTI_QUEUE\s+PERSIST\s+MASTER\n/);
  t.match(r.stdout, /qt0\s+\S+\s+nobody\s+-\s+yes\s+yes\s+yes\s+tb0\n/);
  const before = linkNames().sort();
  const errors: [string[], number, string][] = [
    [['tap', 'create', 'qt1'], 1, 'qbh: cannot create tap qt1: Device or resource busy (a device of that name exists)\n'],
    [['tap', 'create', 'qt2', '--bridge', 'nobr0'], 1, ''],
    [['tap', 'create', 'qt2', '--queues', '0'], 2, ''],
    [['tap', 'create', 'qt2', '--owner', 'no-such-user'], 2, ''],
    [['tap', 'delete', 'tb0'], 1, 'qbh: cannot delete tap tb0: tb0 is a bridge, not a tap\n'],
  ];
  for (const [argv, code, stderr] of errors) {
    r = await qbh(...argv);
    t.equal(r.code, code, `qbh ${argv.join(' ')}: exit ${code} (${r.stderr.trim()})`);
    if (stderr) t.equal(r.stderr, stderr);
    t.match(r.stderr, /^qbh: /);
  }
  t.same(linkNames().sort(), before, 'failed commands leave nothing behind');
  t.equal((await qbh('tap', 'delete', 'qt0')).code, 0);
  t.equal((await qbh('tap', 'delete', 'qt1')).code, 0);
  t.notOk(linkNames().includes('qt0') || linkNames().includes('qt1'));
});

t.test('acl check: exit 0 allowed, 1 denied; rule with file:line', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'qbh-acl-'));
  chmodSync(dir, 0o755); // checking for another user decides from mode bits: they must reach the file
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const acl = join(dir, 'bridge.conf');
  writeFileSync(acl, 'allow br0\nallow br1\ndeny br1\n', { mode: 0o644 });
  let r = await qbh('acl', 'check', '--bridge', 'br0', '--acl', acl);
  t.equal(r.code, 0);
  t.match(r.stdout, `rule: ${acl}:1: allow br0`);
  r = await qbh('acl', 'check', '--bridge', 'br1', '--acl', acl, '--json');
  t.equal(r.code, 1);
  const j = JSON.parse(r.stdout);
  t.equal(j.allowed, false);
  t.same(j.rule, { file: acl, line: 3, text: 'deny br1' });
  t.equal(j.files[0].path, acl);
  r = await qbh('acl', 'check', '--bridge', 'br0', '--acl', acl, '--user', 'nobody');
  t.equal(r.code, 0);
  t.match(r.stdout, /user: nobody/);
  r = await qbh('acl', 'check', '--acl', acl);
  t.equal(r.code, 2);
  t.equal(r.stderr, 'qbh: acl check: missing --bridge B\nusage: qbh acl check --bridge B [--ifname NAME] [--user U] [--acl FILE] [--json]\n');
  r = await qbh('acl', 'check', '--bridge', 'br0', '--acl', join(dir, 'missing'));
  t.equal(r.code, 1);
  r = await qbh('acl', 'check', '--bridge', 'br0', '--acl', acl, '--user', 'no-such-user');
  t.equal(r.code, 1);
  t.equal(r.stderr, 'qbh: cannot check bridge br0: no user "no-such-user" in /etc/passwd\n');
});
