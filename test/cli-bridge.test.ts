import './harness.js';
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { bridgej, ipj, linkNames, sh } from './harness.js';
import { qbh } from './cli-lib.js';
import { run } from '../src/cli/run.js';


/**
 * Keys the kernel reports that this machine's iproute2 (6.1) predates but newer iproute2 prints;
 * qbh prints them too. Anything else extra is a mismatch.
 */
const NEWER_IPROUTE2_KEYS = new Set(['fdb_n_learned', 'fdb_max_learned', 'mst_enabled', 'gso_ipv4_max_size', 'gro_ipv4_max_size', 'neigh_vlan_suppress', 'mab']);

/** Every key iproute2 prints is there with the same value; extra keys only from the list above. */
function agrees(t: Test, got: any, want: any, what: string) {
  const bad: string[] = [];
  const walk = (g: any, w: any, path: string) => {
    if (Array.isArray(w) && Array.isArray(g) && w.some((x) => typeof x === 'object')) {
      if (g.length !== w.length) return void bad.push(`${path}: ${g.length} entries != ${w.length}`);
      w.forEach((x, i) => walk(g[i], x, `${path}[${i}]`));
    } else if (w !== null && typeof w === 'object' && !Array.isArray(w)) {
      if (g === null || typeof g !== 'object') return void bad.push(`${path}: ${JSON.stringify(g)} != object`);
      for (const k of Object.keys(w)) walk(g[k], w[k], `${path}.${k}`);
      for (const k of Object.keys(g)) if (!(k in w) && !NEWER_IPROUTE2_KEYS.has(k)) bad.push(`${path}.${k}: extra`);
    } else if (JSON.stringify(g) !== JSON.stringify(w)) bad.push(`${path}: ${JSON.stringify(g)} != ${JSON.stringify(w)}`);
  };
  walk(got, want, '');
  t.same(bad, [], what);
}

const VOLATILE = ['hello_timer', 'tcn_timer', 'topology_change_timer', 'gc_timer'];
/** Drops the kernel timers that tick between two dumps. */
function steady<T>(o: T): T {
  const c = structuredClone(o) as any;
  const data = c?.linkinfo?.info_data;
  if (data) for (const k of VOLATILE) delete data[k];
  return c;
}

t.test('bridge list --json: the objects of ip -j -d and bridge -j -d', async (t) => {
  sh('ip', 'link', 'add', 'lb0', 'type', 'bridge');
  sh('ip', 'link', 'add', 'lb1', 'mtu', '9000', 'type', 'bridge', 'stp_state', '1');
  sh('ip', 'addr', 'add', '10.9.0.1/24', 'dev', 'lb0');
  sh('ip', 'addr', 'add', 'fd00:9::1/64', 'dev', 'lb0');
  for (const v of ['va', 'vb']) {
    sh('ip', 'link', 'add', v, 'type', 'veth', 'peer', 'name', `${v}p`);
    sh('ip', 'link', 'set', v, 'master', 'lb0', 'up');
  }
  sh('ip', 'link', 'set', 'lb0', 'up');
  const r = await qbh('bridge', 'list', '--json');
  t.equal(r.code, 0);
  t.equal(r.stderr, '');
  const got = JSON.parse(r.stdout) as any[];
  const links = ipj('-d', 'link', 'show', 'type', 'bridge');
  const ports = bridgej('-d', 'link', 'show');
  t.same(got.map((b) => b.ifname), links.map((l: any) => l.ifname));
  for (const b of got) {
    const { ports: bp, addr_info, ...link } = b;
    const want = links.find((l: any) => l.ifname === b.ifname);
    agrees(t, steady(link), steady(want), `${b.ifname}: same keys and values as ip -j -d link show`);
    agrees(t, bp, ports.filter((p: any) => p.master === b.ifname), `${b.ifname}: ports as bridge -j -d link show`);
    const [ipAddr] = ipj('addr', 'show', 'dev', b.ifname);
    t.strictSame(addr_info, ipAddr.addr_info, `${b.ifname}: addr_info as ip -j addr show`);
  }
  t.equal(got.find((b) => b.ifname === 'lb0').ports.length, 2);
});

t.test('bridge list as a table: name, state, MTU, MAC, STP, addresses, ports; no colour on a pipe', async (t) => {
  const r = await qbh('bridge', 'list');
  t.equal(r.code, 0);
  const [header, ...rows] = r.stdout.trimEnd().split('\n');
  t.match(header, /^NAME\s+STATE\s+MTU\s+MAC\s+STP\s+ADDRESSES\s+PORTS$/);
  const lb0 = rows.find((l) => l.startsWith('lb0 '))!;
  t.match(lb0, /10\.9\.0\.1\/24/);
  t.match(lb0, /va,vb|vb,va/);
  t.match(rows.find((l) => l.startsWith('lb1 '))!, /9000 .* on /);
  t.notMatch(r.stdout, /\x1b\[/);
  const d = await qbh('bridge', 'list', '-d');
  t.match(d.stdout, /lb0: .*\n[\s\S]*ports 2\n\s+va  /);
});

t.test('bridge show NAME --json equals the list entry', async (t) => {
  const r = await qbh('bridge', 'show', 'lb0', '--json');
  t.equal(r.code, 0);
  const one = JSON.parse(r.stdout);
  const all = JSON.parse((await qbh('bridge', 'list', '--json')).stdout);
  t.strictSame(steady(one), steady(all.find((b: any) => b.ifname === 'lb0')));
  t.equal((await qbh('bridge', 'show', 'lb0')).code, 0);
});

t.test('bridge create: options reach the kernel, --json prints the bridge', async (t) => {
  const r = await qbh('bridge', 'create', 'cb0', '--mtu', '1400', '--mac', '02:00:00:00:00:0A', '--stp', '--address', '10.8.0.1/24', '--address', 'fd00:8::1/64', '--json');
  t.equal(r.code, 0, r.stderr);
  const [link] = ipj('-d', 'link', 'show', 'cb0');
  t.equal(link.mtu, 1400);
  t.equal(link.address, '02:00:00:00:00:0a');
  t.equal(link.linkinfo.info_data.stp_state, 1);
  t.ok(link.flags.includes('UP'));
  const [a] = ipj('addr', 'show', 'dev', 'cb0');
  t.same(a.addr_info.filter((x: any) => x.scope === 'global').map((x: any) => `${x.local}/${x.prefixlen}`), ['10.8.0.1/24', 'fd00:8::1/64']);
  const printed = JSON.parse(r.stdout);
  t.equal(printed.ifname, 'cb0');
  t.equal(printed.mtu, 1400);
  const quiet = await qbh('bridge', 'create', 'cb1', '--down');
  t.equal(quiet.code, 0);
  t.equal(quiet.stdout, '', 'a mutation is quiet without --json');
  t.notOk(ipj('link', 'show', 'cb1')[0].flags.includes('UP'));
});

t.test('bridge create --exist-ok', async (t) => {
  t.equal((await qbh('bridge', 'create', 'cb0', '--exist-ok', '--address', '10.8.0.1/24', '--address', '10.8.1.1/24')).code, 0);
  const [a] = ipj('addr', 'show', 'dev', 'cb0');
  t.ok(a.addr_info.some((x: any) => x.local === '10.8.1.1'), 'a missing address is added');
  sh('ip', 'link', 'add', 'notbr', 'type', 'veth', 'peer', 'name', 'notbrp');
  const r = await qbh('bridge', 'create', 'notbr', '--exist-ok');
  t.equal(r.code, 1);
  t.equal(r.stderr, 'qbh: cannot create bridge notbr: notbr exists and is a veth, not a bridge\n');
});

t.test('bridge create --exist-ok on a bridge with other settings: refused, naming them; nothing changed', async (t) => {
  // cb0: mtu 1400, MAC 02:00:00:00:00:0a, STP on (made above).
  const before = ipj('addr', 'show', 'dev', 'cb0')[0].addr_info.length;
  const r = await qbh('bridge', 'create', 'cb0', '--exist-ok', '--mtu', '1500', '--mac', '02:00:00:00:00:0b', '--address', '10.8.9.1/24');
  t.equal(r.code, 1);
  t.equal(r.stderr, 'qbh: cannot create bridge cb0: cb0 exists with other settings: mtu 1400 not 1500, address 02:00:00:00:00:0a not 02:00:00:00:00:0b\n');
  t.equal(ipj('addr', 'show', 'dev', 'cb0')[0].addr_info.length, before, 'no address added');
  t.equal(ipj('link', 'show', 'cb0')[0].mtu, 1400, 'the MTU is left as it was');
  const stp = await qbh('bridge', 'create', 'cb1', '--exist-ok', '--stp');
  t.equal(stp.stderr, 'qbh: cannot create bridge cb1: cb1 exists with other settings: stp off not on\n');
  // The same settings, or none given: fine, as before.
  t.equal((await qbh('bridge', 'create', 'cb0', '--exist-ok', '--mtu', '1400', '--stp', '--mac', '02:00:00:00:00:0A')).code, 0);
  t.equal((await qbh('bridge', 'create', 'cb0', '--exist-ok')).code, 0);
});

t.test('bridge create --exist-ok: an address the kernel refuses removes the addresses this command added', async (t) => {
  const global = () => ipj('addr', 'show', 'dev', 'cb0')[0].addr_info.filter((x: any) => x.scope === 'global').map((x: any) => x.local).sort();
  const before = global();
  const r = await qbh('bridge', 'create', 'cb0', '--exist-ok', '--address', '10.8.5.1/24', '--address', 'ff02::1/64');
  t.equal(r.code, 1);
  t.match(r.stderr, /^qbh: cannot add address ff02::1\/64 to bridge cb0: .*; the address added \(10\.8\.5\.1\/24\) was removed again\n$/);
  t.same(global(), before, 'the addresses are as they were');
  t.ok(linkNames().includes('cb0'), 'the existing bridge stays');
});

t.test('error cases: the documented message and exit code, nothing left behind', async (t) => {
  const before = linkNames().sort();
  const usage = 'usage: qbh bridge create NAME [--mtu N] [--address CIDR]... [--mac MAC | --no-persistent-mac] [--stp] [--down] [--exist-ok] [-j|--json] [-p|--pretty]\n';
  const cases: [string[], number, string][] = [
    [['bridge', 'create', 'lb0'], 1, 'qbh: cannot create bridge lb0: File exists\n'],
    [['bridge', 'create', 'eb0', '--mtu', '10'], 2, `qbh: bridge create: invalid MTU 10: expected a whole number from 68 to 65535\n${usage}`],
    [['bridge', 'create', 'eb0', '--mtu', 'big'], 2, `qbh: bridge create: invalid MTU "big": expected a whole number from 68 to 65535\n${usage}`],
    [['bridge', 'create', 'eb0', '--address', '10.0.0.1/33'], 2, `qbh: bridge create: invalid address "10.0.0.1/33": prefix length must be 0-32\n${usage}`],
    [['bridge', 'create', 'eb0', '--address', '10.0.0/24'], 2, `qbh: bridge create: invalid address "10.0.0/24": not an IPv4 address\n${usage}`],
    [['bridge', 'create', 'averyverylongname0'], 2, `qbh: bridge create: invalid bridge name "averyverylongname0": longer than 15 bytes\n${usage}`],
    [['bridge', 'create', 'eb0', '--mac', 'xx'], 2, `qbh: bridge create: invalid MAC address "xx": expected aa:bb:cc:dd:ee:ff\n${usage}`],
    [['bridge', 'create'], 2, `qbh: bridge create: missing NAME\n${usage}`],
    [['bridge', 'create', 'eb0', '--colour'], 2, `qbh: bridge create: unknown option '--colour'\n${usage}`],
    [['bridge', 'create', 'eb0', '--address', '10.7.0.1/24', '--address', '10.7.0.1/24'], 1,
      'qbh: cannot add address 10.7.0.1/24 to bridge eb0: File exists (ipv4: Address already assigned); bridge eb0 was removed again\n'],
    [['bridge', 'show', 'missing0'], 1, 'qbh: bridge missing0 does not exist\n'],
    [['bridge', 'show', 'notbr'], 1, 'qbh: cannot show bridge notbr: notbr is a veth, not a bridge\n'],
    [['bridge', 'delete', 'missing0'], 1, 'qbh: bridge missing0 does not exist\n'],
    [['bridge', 'delete', 'lb0'], 1, 'qbh: cannot delete bridge lb0: it still has 2 ports (va, vb); --force releases them, --with-ports deletes them too\n'],
    [['bridge', 'attach', 'missing0', 'va'], 1, 'qbh: bridge missing0 does not exist\n'],
    [['bridge', 'attach', 'lb1', 'nope0'], 1, 'qbh: device nope0 does not exist\n'],
    [['bridge', 'detach', 'nope0'], 1, 'qbh: device nope0 does not exist\n'],
    [['bridge', 'de', 'lb0'], 2, ''],
    [['d'], 2, 'qbh: "d" is ambiguous: doctor, daemon\nusage: qbh COMMAND [ARGS...] [--help]\n'],
    [['bridge', 'attach', 'lb1', 'lb0'], 1, 'qbh: cannot attach lb0 to bridge lb1: Too many levels of symbolic links (Can not enslave a bridge to a bridge)\n'],
    [['bridge', 'detach', 'notbr'], 1, 'qbh: cannot detach notbr: it is not attached to a bridge\n'],
    [['bridge', 'frobnicate'], 2, ''],
    [['frobnicate'], 2, 'qbh: no command "frobnicate"; `qbh help` lists them\nusage: qbh COMMAND [ARGS...] [--help]\n'],
    // Names every object has (a group lookup once used `in` and printed Object's source as help).
    [['constructor'], 2, 'qbh: no command "constructor"; `qbh help` lists them\nusage: qbh COMMAND [ARGS...] [--help]\n'],
    [['__proto__'], 2, 'qbh: no command "__proto__"; `qbh help` lists them\nusage: qbh COMMAND [ARGS...] [--help]\n'],
  ];
  for (const [argv, code, stderr] of cases) {
    const r = await qbh(...argv);
    t.equal(r.code, code, `qbh ${argv.join(' ')}: exit ${code}`);
    if (stderr) t.equal(r.stderr, stderr, `qbh ${argv.join(' ')}: message`);
    t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
    t.equal(r.stdout, '');
  }
  t.same(linkNames().sort(), before, 'no link created or deleted by a failed command');
  t.equal(ipj('link', 'show', 'lb0')[0].ifname, 'lb0');
});

t.test('attach, detach', async (t) => {
  sh('ip', 'link', 'add', 'vc', 'type', 'veth', 'peer', 'name', 'vcp');
  t.equal((await qbh('bridge', 'attach', 'lb1', 'vc')).code, 0);
  t.equal(ipj('link', 'show', 'vc')[0].master, 'lb1');
  t.same(bridgej('link', 'show').filter((p: any) => p.master === 'lb1').map((p: any) => p.ifname), ['vc']);
  t.equal((await qbh('bridge', 'detach', 'vc')).code, 0);
  t.equal(ipj('link', 'show', 'vc')[0].master, undefined);
});

t.test('delete: --force releases ports, --with-ports deletes them in one go', async (t) => {
  sh('ip', 'link', 'set', 'vc', 'master', 'lb1');
  t.equal((await qbh('bridge', 'delete', 'lb1', '--force')).code, 0);
  t.notOk(linkNames().includes('lb1'));
  t.ok(linkNames().includes('vc'), 'the port is released, not deleted');
  const r = await qbh('bridge', 'delete', 'lb0', '--with-ports');
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stderr, '', 'no progress on a pipe');
  const names = linkNames();
  for (const n of ['lb0', 'va', 'vb', 'vap', 'vbp']) t.notOk(names.includes(n), `${n} gone`);
  t.equal((await qbh('bridge', 'delete', 'cb1')).code, 0);
});

t.test("iproute2 habits: prefixes, ls, a group alone, options before the command, one-line JSON unless -p", async (t) => {
  sh('ip', 'link', 'add', 'hb0', 'type', 'bridge');
  sh('ip', 'link', 'add', 'hv0', 'type', 'veth', 'peer', 'name', 'hv1');
  const list = await qbh('bridge', 'list');
  t.equal(list.code, 0);
  for (const argv of [['br', 'li'], ['b', 'l'], ['bridge', 'ls'], ['bridge', 'lst'], ['bridge', 'show'], ['bridge', 'sh'], ['bridge']]) {
    t.same(await qbh(...argv), list, `qbh ${argv.join(' ')} is qbh bridge list`);
  }
  t.same(await qbh('-d', 'bridge', 'list'), await qbh('bridge', 'list', '-d'), '-d before the command');
  // Bridge timers tick between two runs: compared as 0.
  const calm = (r: { code: number; stdout: string; stderr: string }) => ({ ...r, stdout: r.stdout.replace(/"(hello_timer|tcn_timer|topology_change_timer|gc_timer)": ?[\d.]+/g, '"$1":0') });
  const json = calm(await qbh('bridge', 'list', '--json'));
  t.equal(json.stdout.indexOf('\n'), json.stdout.length - 1, 'JSON on one line, as ip -j');
  for (const argv of [['-j', 'bridge', 'list'], ['--json', 'br', 'ls'], ['-json', 'bridge'], ['bridge', '-j']]) {
    t.same(calm(await qbh(...argv)), json, `qbh ${argv.join(' ')} is qbh bridge list --json`);
  }
  const pretty = calm(await qbh('-j', '-p', 'bridge', 'list'));
  t.same(JSON.parse(pretty.stdout), JSON.parse(json.stdout), '-p: the same JSON');
  t.match(pretty.stdout, /^\[\n  \{\n    "ifindex": /, '-p: indented');
  t.same(calm(await qbh('-jp', 'bridge', 'list')), pretty, '-jp');
  t.same(calm(await qbh('bridge', 'list', '-j', '--pretty')), pretty, '--pretty after the command');
  t.same(JSON.parse((await qbh('-j', 'br', 'sh', 'hb0')).stdout).ifname, 'hb0', 'show NAME with -j before it');
  // On a terminal too: one line, as `ip -j` prints there.
  const out: string[] = [];
  const code = await run(['-j', 'bridge', 'show', 'hb0'], { stdout: { write: (x: string) => out.push(x) }, stderr: { write: () => true }, stdoutIsTTY: true, stderrIsTTY: true, env: {} });
  t.equal(code, 0);
  t.equal(out.join('').split('\n').length, 2, 'one line on a terminal');
  // A command without such an option ignores it, as ip does: `qbh -j bridge attach` prints nothing.
  t.same(await qbh('-j', 'bridge', 'attach', 'hb0', 'hv0'), { code: 0, stdout: '', stderr: '' });
  t.equal(ipj('link', 'show', 'hv0')[0].master, 'hb0');
  const amb = await qbh('bridge', 'de', 'hb0');
  t.equal(amb.code, 2);
  t.match(amb.stderr, /^qbh: "de" is ambiguous: bridge delete, bridge detach\nqbh bridge: manage bridges [^\n]*\n\nusage:\n/);
  t.ok(linkNames().includes('hb0'), 'nothing deleted');
  t.same(await qbh('help', 'br', 'ls'), await qbh('bridge', 'list', '--help'));
  t.same(await qbh('help', 'br'), await qbh('bridge', '--help'));
});

t.test('help and version', async (t) => {
  const h = await qbh('help');
  t.equal(h.code, 0);
  t.match(h.stdout, /bridge create/);
  t.match(h.stdout, /doctor/);
  for (const cmd of ['bridge list', 'bridge show', 'bridge create', 'bridge delete', 'bridge attach', 'bridge detach']) {
    const r = await qbh(...cmd.split(' '), '--help');
    t.equal(r.code, 0, `${cmd} --help`);
    t.match(r.stdout, new RegExp(`^usage: qbh ${cmd}`));
    t.same(await qbh('help', ...cmd.split(' ')), r);
  }
  const v = await qbh('--version');
  t.match(v.stdout, /^qbh \d+\.\d+\.\d+\n$/);
  const none = await qbh();
  t.equal(none.code, 2);
});

t.test('as a program: exit codes and streams of a real process', async (t) => {
  // tap runs TypeScript through its loader; the child reuses it to run src/cli/main.ts directly.
  const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));
  const main = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
  const env = { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' };
  const ok = spawnSync(process.execPath, [...loader, main, 'bridge', 'create', 'pb0', '--json'], { encoding: 'utf8', env });
  t.equal(ok.status, 0, ok.stderr);
  t.equal(JSON.parse(ok.stdout).ifname, 'pb0');
  const bad = spawnSync(process.execPath, [...loader, main, 'bridge', 'create', 'pb0'], { encoding: 'utf8', env });
  t.equal(bad.status, 1);
  t.equal(bad.stderr, 'qbh: cannot create bridge pb0: File exists\n');
  t.equal(bad.stdout, '');
});
