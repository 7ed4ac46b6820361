// "Nothing left behind, whatever dies", against the anchor (issue 23): the reference CNI `bridge`
// plugin with `macspoofchk` leaves its nftables chains and rules when a container's netns goes
// without a DEL; a guarded qbh tap whose holder is killed with SIGKILL leaves nothing (its qdisc,
// FDB pin and alias live on the tap and go with it; its filter's shared block, with its last tap). Both run here, side by side, in the
// test's own network and mount namespaces (harness); iproute2 and nft are the oracles.
import './harness.js';
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bridgej, ipj, linkNames, sh } from './harness.js';

const CNI_PLUGIN = '/usr/lib/cni/bridge';
/** How long the kernel may take to tear a deleted netns down (cleanup_net runs in a workqueue). */
const TEARDOWN_MS = 10_000;
const PINNED = '52:54:00:12:34:56';
const GUARD = `isolated mac=${PINNED} ip=10.0.0.0/24,2001:db8::/64 server-guard bpdu-guard ethertypes=ipv4,arp,ipv6`;

// A /run of this test's mount namespace: `ip netns add` makes /run/netns, never on the host.
sh('mount', '-t', 'tmpfs', 'qbh-anchor-run', '/run');
const scratch = mkdtempSync(join(tmpdir(), 'qbh-anchor-'));
t.teardown(() => rmSync(scratch, { recursive: true, force: true }));

interface NftObject {
  [kind: string]: { family?: string; table?: string; chain?: string; name?: string; comment?: string; expr?: unknown };
}
/** The ruleset's tables, chains, rules, sets… (`nft -j list ruleset`), without its metainfo. */
function nftObjects(): NftObject[] {
  const out = JSON.parse(sh('nft', '-j', 'list', 'ruleset')) as { nftables: NftObject[] };
  return out.nftables.filter((o) => !('metainfo' in o));
}
/** The ruleset's objects that name `word` anywhere (a chain's name, a rule's comment or match). */
const naming = (word: string): NftObject[] => nftObjects().filter((o) => JSON.stringify(o).includes(word));

async function until(what: string, ok: () => boolean): Promise<void> {
  for (const t0 = Date.now(); !ok(); ) {
    if (Date.now() - t0 > TEARDOWN_MS) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

t.test('the CNI bridge plugin with macspoofchk: its netns deleted without a DEL, its rules stay', { skip: existsSync(CNI_PLUGIN) ? false : `${CNI_PLUGIN} is missing (apt-get install containernetworking-plugins)` }, async (t) => {
  const id = 'anchor1';
  sh('ip', 'netns', 'add', id);
  const conf = {
    cniVersion: '1.0.0',
    name: 'anchor',
    type: 'bridge',
    bridge: 'cni0',
    isGateway: false,
    macspoofchk: true,
    ipam: { type: 'host-local', subnet: '10.88.0.0/24', dataDir: join(scratch, 'ipam') },
  };
  const r = spawnSync(CNI_PLUGIN, [], {
    input: JSON.stringify(conf),
    encoding: 'utf8',
    env: { PATH: process.env.PATH, CNI_COMMAND: 'ADD', CNI_CONTAINERID: id, CNI_NETNS: `/run/netns/${id}`, CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni' },
  });
  t.equal(r.status, 0, r.status === 0 ? 'CNI ADD' : `CNI ADD: ${r.stdout}${r.stderr}`);
  const result = JSON.parse(r.stdout) as { interfaces: { name: string; sandbox?: string }[] };
  const veth = result.interfaces.find((i) => i.name !== 'cni0' && i.sandbox === undefined)!.name;
  t.ok(linkNames().includes(veth), `the container's host end ${veth} is on cni0`);
  const made = naming(id).length;
  t.ok(made > 0, `ADD made ${made} nft objects naming ${id}`);

  sh('ip', 'netns', 'delete', id); // the container is gone; its runtime never calls DEL
  await until(`${veth} to go with the netns`, () => !linkNames().includes(veth));
  const left = naming(id);
  t.comment(`left behind by the CNI bridge plugin (no DEL): ${left.length} nft objects naming ${id}:`);
  for (const o of left) {
    const [kind, v] = Object.entries(o)[0]!;
    t.comment(`  ${kind} ${v.family} ${v.table} ${v.chain ?? v.name ?? ''}${v.comment ? ` (${v.comment})` : ''}`);
  }
  t.ok(left.length > 0, 'chains and rules for a container that no longer exists remain');
  t.equal(left.length, made, 'every one of them');
  t.ok(naming(veth).length > 0, `a rule still matches the vanished ${veth}`);
});

t.test('a guarded qbh tap whose holder is killed with SIGKILL: nothing of the guard remains', async (t) => {
  sh('ip', 'link', 'add', 'qbr0', 'type', 'bridge');
  sh('ip', 'link', 'set', 'qbr0', 'up');
  // The holder: a Node process that opens the guarded tap, says so, and sleeps holding its fd (as QEMU would).
  const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));
  const tap = fileURLToPath(new URL('../src/tun/tap.ts', import.meta.url));
  const policy = fileURLToPath(new URL('../src/guard/policy.ts', import.meta.url));
  const script = `
    const { openTap } = await import(${JSON.stringify(tap)});
    const { parseGuard } = await import(${JSON.stringify(policy)});
    await openTap({ bridge: 'qbr0', name: 'vm0', guard: parseGuard(${JSON.stringify(GUARD)}) });
    process.stdout.write('ready\\n');
    setInterval(() => {}, 1 << 30);`;
  const holder = spawn(process.execPath, [...loader, '--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' },
  });
  let out = '';
  let err = '';
  holder.stdout.on('data', (d) => (out += d));
  holder.stderr.on('data', (d) => (err += d));
  const exited = new Promise<void>((r) => holder.on('exit', () => r()));
  t.teardown(() => holder.kill('SIGKILL'));
  await until('the holder to open its guarded tap', () => {
    if (holder.exitCode !== null) throw new Error(`the holder exited: ${err}`);
    return out === 'ready\n';
  });

  // The guard is there: the tap's alias, its clsact qdisc and BPF filter, the static pin of its MAC.
  const alias = ipj<{ ifalias?: string }[]>('-d', 'link', 'show', 'dev', 'vm0')[0]!.ifalias;
  t.match(alias, /^qbh-guard: isolated mac=52:54:00:12:34:56 /, 'the alias records the guard');
  const qdiscs = () => ipjTc<{ kind: string; dev: string; ingress_block?: number }[]>('qdisc', 'show').filter((q) => q.kind === 'clsact');
  t.same(qdiscs().map((q) => q.dev), ['vm0'], 'a clsact qdisc on vm0');
  t.same(ipjTc<{ kind?: string }[]>('filter', 'show', 'dev', 'vm0', 'ingress').filter((f) => f.kind === 'bpf').length > 0, true, 'a BPF filter on its ingress');
  // The filter sits in a shared tc block (taps of one guard share its program): it must go with its last tap.
  const block = qdiscs()[0]?.ingress_block;
  t.ok(block !== undefined && ipjTc<{ kind?: string }[]>('filter', 'show', 'block', String(block)).some((f) => f.kind === 'bpf'), `the filter in shared block ${block}`);
  const pins = () => bridgej<{ mac: string; ifname: string; state?: string }[]>('fdb', 'show').filter((e) => e.mac === PINNED);
  t.match(pins(), [{ ifname: 'vm0', state: 'static' }], `${PINNED} pinned to vm0`);
  t.same(naming('vm0'), [], 'no nft object (the guard uses none)');

  holder.kill('SIGKILL');
  await exited;
  await until('vm0 to go with its last fd', () => !linkNames().includes('vm0'));
  t.same(qdiscs(), [], 'no clsact qdisc left anywhere');
  const filters = spawnSync('tc', ['-j', 'filter', 'show', 'dev', 'vm0', 'ingress'], { encoding: 'utf8' });
  t.not(filters.status, 0, 'tc cannot list vm0\'s filters: the device is gone, and they with it');
  t.match(filters.stderr, /Cannot find device "vm0"/, 'tc says why');
  if (block !== undefined) {
    const left = spawnSync('tc', ['-j', 'filter', 'show', 'block', String(block)], { encoding: 'utf8' });
    t.match(`${left.status} ${left.stderr}`, /^1 Cannot find block/, `shared block ${block} gone with its last tap`);
  }
  t.same(pins(), [], `no FDB entry for ${PINNED}`);
  t.same(naming('vm0'), [], 'no nft object naming vm0');
  t.same(naming('qbh'), [], 'no nft object naming qbh');
  t.comment('left behind by qbh after kill -9: 0 qdiscs, 0 filters, 0 tc blocks, 0 FDB entries, 0 nft objects');
});

/** `tc -j ARGS`, parsed. */
function ipjTc<T>(...args: string[]): T {
  const out = sh('tc', '-j', ...args);
  return (out.trim() === '' ? [] : JSON.parse(out)) as T;
}
