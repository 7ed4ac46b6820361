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
  t.ok(link.flags.includes('UP'), 'with --bridge it comes up');
  t.same(await qbh('tap', 'create', 'qt1'), { code: 0, stdout: '', stderr: '' }, 'a name given in full: quiet');
  t.notOk(ipj('link', 'show', 'qt1')[0].flags.includes('UP'), 'without --bridge it stays down, as ip tuntap add leaves it');
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
    [['tap', 'create', 'qt1'], 1, 'qbh: cannot create tap qt1: name qt1 is taken by a tap device\n'],
    [['tap', 'create', 'tb0'], 1, 'qbh: cannot create tap tb0: name tb0 is taken by a bridge device\n'],
    [['tap', 'create', 'qt2', '--bridge', 'nobr0'], 1, 'qbh: bridge nobr0 does not exist\n'],
    [['tap', 'delete', 'nosuch0'], 1, 'qbh: tap nosuch0 does not exist\n'],
    [['tap', 'show', 'nosuch0'], 1, 'qbh: tap nosuch0 does not exist\n'],
    [['tap', 'show', 'tb0'], 1, 'qbh: cannot show tap tb0: tb0 is a bridge, not a tap\n'],
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
  // tap show: one tap as tap list shows it; without NAME (or `qbh tap` alone, `tap ls`) the list.
  const list = await qbh('tap', 'list');
  for (const argv of [['tap', 'show'], ['tap'], ['tap', 'ls'], ['ta', 'l']]) t.same(await qbh(...argv), list, `qbh ${argv.join(' ')}`);
  r = await qbh('tap', 'show', 'qt0', '--json');
  t.equal(r.code, 0, r.stderr);
  t.same(JSON.parse(r.stdout), taps.find((x: any) => x.ifname === 'qt0'));
  t.match((await qbh('tap', 'sh', 'qt0')).stdout, /^NAME .*\nqt0\s+\S+\s+nobody\s+-\s+yes\s+yes\s+yes\s+tb0\n$/);
  t.equal((await qbh('tap', 'delete', 'qt0')).code, 0);
  t.equal((await qbh('tap', 'delete', 'qt1')).code, 0);
  t.notOk(linkNames().includes('qt0') || linkNames().includes('qt1'));
});

t.test('tap create: a %d template prints the name the kernel picked; a name a veth holds says so', async (t) => {
  let r = await qbh('tap', 'create', 'qv%d');
  t.same(r, { code: 0, stdout: 'qv0\n', stderr: '' });
  r = await qbh('tap', 'create', 'qv%d');
  t.same(r, { code: 0, stdout: 'qv1\n', stderr: '' });
  t.ok(linkNames().includes('qv1'));
  r = await qbh('tap', 'create', 'qv%d', '--json');
  t.equal(JSON.parse(r.stdout).ifname, 'qv2', '--json: the object, with its name');
  sh('ip', 'link', 'add', 'qe0', 'type', 'veth', 'peer', 'name', 'qe1');
  r = await qbh('tap', 'create', 'qe0');
  t.same(r, { code: 1, stdout: '', stderr: 'qbh: cannot create tap qe0: name qe0 is taken by a veth device\n' });
  for (const n of ['qv0', 'qv1', 'qv2']) t.equal((await qbh('tap', 'delete', n)).code, 0);
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
  const usage = 'usage: qbh acl check [BRIDGE | --bridge B] [--ifname NAME] [--user U] [--acl FILE] [-j|--json] [-p|--pretty]\n';
  r = await qbh('acl', 'check', '--acl', acl);
  t.equal(r.code, 2);
  t.equal(r.stderr, `qbh: acl check: missing BRIDGE (or --bridge B)\n${usage}`);
  // The bridge as a positional, like bridge show: the same answer.
  t.same(await qbh('acl', 'check', 'br0', '--acl', acl), await qbh('acl', 'check', '--bridge', 'br0', '--acl', acl));
  t.same(await qbh('acl', 'check', 'br0', '--bridge', 'br0', '--acl', acl), await qbh('acl', 'check', '--bridge', 'br0', '--acl', acl));
  r = await qbh('acl', 'check', 'br0', '--bridge', 'br1', '--acl', acl);
  t.same(r, { code: 2, stdout: '', stderr: `qbh: acl check: two bridges: "br0" and --bridge "br1"\n${usage}` });
  // A name no bridge can have is a usage error, not "no rule allows".
  for (const bad of ['bad name', 'averyverylongname0']) {
    r = await qbh('acl', 'check', '--bridge', bad, '--acl', acl);
    t.equal(r.code, 2, bad);
    t.match(r.stderr, new RegExp(`^qbh: acl check: invalid bridge name "${bad}": `));
    t.equal(r.stdout, '');
  }
  r = await qbh('acl', 'check', '--bridge', 'br0', '--acl', join(dir, 'missing'));
  t.equal(r.code, 1);
  r = await qbh('acl', 'check', '--bridge', 'br0', '--acl', acl, '--user', 'no-such-user');
  t.equal(r.code, 1);
  t.equal(r.stderr, 'qbh: cannot check bridge br0: no user "no-such-user" in /etc/passwd\n');
});
