// "No window" (issue 23): a guest writes attack frames (a foreign source MAC, a router
// advertisement) in a tight loop from the instant its tap's fd exists, and none reaches the
// receiver: the guard is complete before the port forwards its first frame. And nothing of a guard
// is left once its tap is gone (fd closed, bridge deleted).
import './harness.js';
import t from 'tap';
import { Worker } from 'node:worker_threads';
import { sh } from './harness.js';
import {
  ALL_NODES_MAC,
  BRIDGE,
  ETH_IPV4,
  ETH_IPV6,
  PREFIX4,
  PREFIX6,
  SINK_MAC,
  TagCounter,
  ether,
  guest,
  labMissing,
  ra,
  send,
  sendAll,
  startLab,
  tag,
  tagOption,
  udp4,
  type Lab,
} from './guard-lib.js';
import { closeTap, openTap } from '../src/tun/index.js';
import { attachTap, type DownTap } from '../src/attach/tap.js';
import { parseGuard, type PortGuard } from '../src/guard/policy.js';
import { applyGuardSync } from '../src/guard/apply.js';
import { openRouteSocketSync } from '../src/netlink/wire.js';
import { native } from '../src/native.js';

const G = guest(0x0c);
/** The guard of the window tests: `strict` with the lab's prefixes and the guest's MAC listed. */
const GUARD: PortGuard = parseGuard(['strict', `ip=${PREFIX4},${PREFIX6}`, `mac=${G.mac}`]);

/** Tags of the window frames: [WINDOW_SEQ, WINDOW_SEQ + 1]. */
const WINDOW_SEQ = 0x57000000;
/** The two attack frames the window tests write over and over: a foreign source MAC, an RA. */
const WINDOW_FRAMES = [
  ether(SINK_MAC, '02:66:00:00:00:01', ETH_IPV4, udp4(G.ip4, '10.0.0.250', 40000, 9, tag(WINDOW_SEQ))),
  ether(ALL_NODES_MAC, G.mac, ETH_IPV6, ra(G.ll6, G.mac, '2001:db8:66::', tagOption(WINDOW_SEQ + 1))),
];
/** Write attempts the writer makes on the down tap before the hook goes on (all EIO). */
const WRITES_WHILE_DOWN = 100;
/** How long the writer keeps going after the tap is handed out. */
const WRITE_AFTER_MS = 300;

/** Applies `g` to a down tap on a route socket of its own, as attachTap's guard does. */
function applyGuard(down: DownTap, g: PortGuard): void {
  const fd = openRouteSocketSync();
  try {
    applyGuardSync(fd, down, g);
  } finally {
    native.close(fd);
  }
}

let lab: Lab;
t.before(async () => {
  if (labMissing()) return;
  lab = await startLab();
});
t.teardown(async () => lab?.stop());

/** The window frames the receiver saw (reads what is queued). */
function windowFramesSeen(recv: TagCounter): number {
  recv.poll();
  return [...recv.seen].filter((s) => s === WINDOW_SEQ || s === WINDOW_SEQ + 1).length;
}

// Writing to a tap fd while the tap is down: measured here (Linux 6.18), tun_get_user() refuses
// with EIO before it builds an skb, so a guest cannot queue frames that would leave when the tap
// comes up. A guard applied while the tap is down therefore covers every frame the port forwards.
t.test('a write to a tap that is down fails with EIO; up, it is accepted', async (t) => {
  const tap = await openTap({ bridge: BRIDGE, name: 'downW', vnetHdr: false, nonBlocking: true, up: false });
  t.teardown(() => closeTap(tap));
  t.equal(send(tap.fds[0]!, WINDOW_FRAMES[0]!), 'EIO', 'down: EIO');
  sh('ip', 'link', 'set', 'downW', 'up');
  t.equal(send(tap.fds[0]!, WINDOW_FRAMES[0]!), null, 'up: accepted');
});

/**
 * A writer thread: writes `frames` to `fd` in a tight loop until stopped, counting attempts,
 * accepted writes and EIO. Started from inside a beforeUp hook, it runs while the main thread is
 * still in attachTap (applying the guard, bringing the tap up).
 */
class Writer {
  private readonly counters = new Int32Array(new SharedArrayBuffer(5 * 4));
  private readonly worker: Worker;
  constructor(fd: number, frames: Buffer[]) {
    this.worker = new Worker(
      `const { writeSync } = require('node:fs');
       const { workerData: { fd, frames, counters } } = require('node:worker_threads');
       const c = new Int32Array(counters);
       const bufs = frames.map((f) => Buffer.from(f));
       while (Atomics.load(c, 0) === 0) {
         for (const b of bufs) {
           try { writeSync(fd, b); Atomics.add(c, 2, 1); }
           catch (e) { Atomics.add(c, e.code === 'EIO' ? 3 : 4, 1); }
           Atomics.add(c, 1, 1);
           Atomics.notify(c, 1);
         }
       }`,
      { eval: true, workerData: { fd, frames: frames.map((f) => new Uint8Array(f)), counters: this.counters.buffer } },
    );
  }
  /** Blocks the calling thread until the writer made `n` write attempts. */
  waitWrites(n: number): void {
    const deadline = Date.now() + 10_000;
    for (let seen = Atomics.load(this.counters, 1); seen < n; seen = Atomics.load(this.counters, 1)) {
      if (Date.now() > deadline) throw new Error('the writer thread never wrote');
      Atomics.wait(this.counters, 1, seen, 10);
    }
  }
  get stats(): { attempts: number; accepted: number; eio: number; other: number } {
    const c = this.counters;
    return { attempts: Atomics.load(c, 1), accepted: Atomics.load(c, 2), eio: Atomics.load(c, 3), other: Atomics.load(c, 4) };
  }
  async stop(): Promise<void> {
    Atomics.store(this.counters, 0, 1);
    await new Promise((resolve) => this.worker.once('exit', resolve));
  }
}

/**
 * attachTap (with `guard`, which it applies before the hook) and a beforeUp hook that starts the
 * writer on the down tap (and waits for its first WRITES_WHILE_DOWN attempts) and then runs
 * `inHook` (a guard, or nothing); the writer goes on for WRITE_AFTER_MS after the tap is up. Returns the writer's counts and how many window frames the receiver saw.
 */
async function raceAttach(name: string, inHook: (tap: DownTap) => void, guard?: PortGuard) {
  const recv = new TagCounter(lab.receiver.fds[0]!);
  recv.reset();
  let writer: Writer | undefined;
  let tap;
  try {
    tap = attachTap(
      { bridge: BRIDGE, vnetHdr: false, ifname: name },
      {
        ...(guard ? { guard } : {}),
        beforeUp: (down) => {
          writer = new Writer(down.fd, WINDOW_FRAMES);
          writer.waitWrites(WRITES_WHILE_DOWN);
          inHook(down);
        },
      },
    );
  } catch (e) {
    // A refused guard: the writer must not outlive the test.
    await writer?.stop();
    throw e;
  }
  const upAt = writer!.stats;
  const end = Date.now() + WRITE_AFTER_MS;
  while (Date.now() < end) {
    recv.poll();
    await new Promise((r) => setTimeout(r, 5));
  }
  await writer!.stop();
  await recv.settle();
  // Closed here: the guest MAC the bridge learned on an unguarded port must not stay claimed there.
  closeTap({ fds: [tap.fd] });
  return { atHandOut: upAt, total: writer!.stats, seen: windowFramesSeen(recv) };
}

t.test('attachTap: a writer started inside beforeUp, the guard applied after it in the hook: none through', { skip: labMissing() }, async (t) => {
  // Unguarded first: the same race puts frames through, so the test can see a window.
  const open = await raceAttach('raceU', () => {});
  t.comment(`unguarded: ${JSON.stringify(open)}`);
  t.ok(open.atHandOut.eio >= WRITES_WHILE_DOWN, 'while the tap is down, every write is EIO');
  t.ok(open.seen > 0, 'unguarded, the window frames reach the receiver');

  const g = await raceAttach('raceG', (down) => applyGuard(down, GUARD));
  t.comment(`guarded: ${JSON.stringify(g)}`);
  t.ok(g.atHandOut.attempts >= WRITES_WHILE_DOWN, 'the writer was writing before the guard was applied');
  t.ok(g.total.accepted > 1000, `after the tap came up, ${g.total.accepted} writes were accepted`);
  t.equal(g.total.other, 0, 'no write failed but with EIO (tap down)');
  t.equal(g.seen, 0, 'none of them reached the receiver');
});

t.test('openTap({ guard }): frames written the instant the fd is handed out: none through', { skip: labMissing() }, async (t) => {
  for (const guard of [undefined, GUARD]) {
    const recv = new TagCounter(lab.receiver.fds[0]!);
    recv.reset();
    const tap = await openTap({ bridge: BRIDGE, name: 'instantW', vnetHdr: false, nonBlocking: true, ...(guard ? { guard } : {}) });
    const frames = Array.from({ length: 1000 }, (_, i) => WINDOW_FRAMES[i % 2]!);
    const errors = sendAll(tap.fds[0]!, frames, [recv]);
    await recv.settle();
    closeTap(tap);
    t.same([...errors], [], `${guard ? 'guarded' : 'unguarded'}: 1000 writes accepted`);
    if (guard) t.equal(windowFramesSeen(recv), 0, 'guarded: none reached the receiver');
    else t.equal(windowFramesSeen(recv), 2, 'unguarded: both frames reached the receiver (the test can see them)');
  }
});

/** The ingress filter block a tap's clsact qdisc is bound to (the guard's shared block), or undefined. */
function ingressBlock(dev: string): number | undefined {
  const qdiscs = JSON.parse(sh('tc', '-j', 'qdisc', 'show', 'dev', dev)) as { kind: string; ingress_block?: number }[];
  return qdiscs.find((q) => q.kind === 'clsact')?.ingress_block;
}

/** The filters in a shared block; 0 once the kernel freed it (tc then has no such block to show). */
function blockFilters(block: number): number {
  try {
    return (JSON.parse(sh('tc', '-j', 'filter', 'show', 'block', String(block)) || '[]') as unknown[]).length;
  } catch {
    return 0;
  }
}

/**
 * The guard objects in the namespace: clsact qdiscs, ingress filters (per device and in `blocks`),
 * static FDB entries of guest MACs, nft tables.
 */
function guardObjects(macs: readonly string[], blocks: readonly number[] = []): { clsact: string[]; filters: string[]; blockFilters: number; fdb: string[]; nft: number } {
  const qdiscs = JSON.parse(sh('tc', '-j', 'qdisc', 'show')) as { kind: string; dev: string }[];
  const links = (JSON.parse(sh('ip', '-j', 'link', 'show')) as { ifname: string }[]).map((l) => l.ifname);
  const filters = links.filter((dev) => (JSON.parse(sh('tc', '-j', 'filter', 'show', 'dev', dev, 'ingress') || '[]') as unknown[]).length > 0);
  const fdb = (JSON.parse(sh('bridge', '-j', 'fdb', 'show')) as { mac: string; ifname: string }[]).filter((e) => macs.includes(e.mac)).map((e) => `${e.mac} ${e.ifname}`);
  const ruleset = JSON.parse(sh('nft', '-j', 'list', 'ruleset')) as { nftables: Record<string, unknown>[] };
  return {
    clsact: qdiscs.filter((q) => q.kind === 'clsact').map((q) => q.dev),
    filters,
    blockFilters: blocks.reduce((n, b) => n + blockFilters(b), 0),
    fdb,
    nft: ruleset.nftables.filter((o) => !('metainfo' in o)).length,
  };
}

const NONE = { clsact: [], filters: [], blockFilters: 0, fdb: [], nft: 0 };

t.test('leftovers: nothing of a guard remains once its tap is gone', { skip: labMissing() }, async (t) => {
  t.same(guardObjects([G.mac]), NONE, 'before: no guard objects');

  const tap = await openTap({ bridge: BRIDGE, name: 'leftW', vnetHdr: false, nonBlocking: true, guard: GUARD });
  const block = ingressBlock('leftW');
  t.ok(block !== undefined, `open: the tap's clsact is bound to a shared filter block (${block})`);
  const held = guardObjects([G.mac], [block!]);
  t.comment(`while the guarded tap is open: ${JSON.stringify(held)}`);
  t.same(held.clsact, ['leftW'], 'open: a clsact qdisc on the tap');
  t.same(held.filters, ['leftW'], 'open: an ingress filter on the tap');
  t.ok(held.blockFilters > 0, 'open: the block holds the filter');
  t.same(held.fdb, [`${G.mac} leftW`], "open: the guest's MAC is pinned on the tap");
  closeTap(tap);
  t.same(guardObjects([G.mac], [block!]), NONE, 'fd closed: no clsact, no filter, no FDB entry, no nft rule');

  // The bridge deleted under an open guarded tap: the port (flags, FDB entries) goes with it;
  // what lives on the tap (its qdisc, filter and alias) stays with the tap until it goes.
  sh('ip', 'link', 'add', 'gbr9', 'type', 'bridge');
  sh('ip', 'link', 'set', 'gbr9', 'up');
  const orphan = await openTap({ bridge: 'gbr9', name: 'orphanW', vnetHdr: false, nonBlocking: true, guard: GUARD });
  const orphanBlock = ingressBlock('orphanW')!;
  sh('ip', 'link', 'del', 'gbr9');
  const after = guardObjects([G.mac], [orphanBlock]);
  t.comment(`bridge deleted, tap still open: ${JSON.stringify(after)}`);
  t.same(after.fdb, [], 'bridge deleted: no FDB entry left');
  closeTap(orphan);
  t.same(guardObjects([G.mac], [orphanBlock]), NONE, 'bridge deleted, then the fd closed: no guard object left');
});

t.test('attachTap({ guard, beforeUp }): a writer started in the hook, after the guard, through the tap coming up: none through', { skip: labMissing() }, async (t) => {
  const g = await raceAttach('raceH', () => {}, GUARD);
  t.comment(`guarded by attachTap: ${JSON.stringify(g)}`);
  t.ok(g.total.accepted > 1000, `after the tap came up, ${g.total.accepted} writes were accepted`);
  t.equal(g.seen, 0, 'none of them reached the receiver');
});
