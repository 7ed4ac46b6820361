// The attack matrix of the port guard (issue 23): a guest on a guarded tap writes >= 10 000 crafted
// attack frames to its fd (writing is transmitting) and none arrives at the receiver, the bridge's
// uplink port, nor at a second guarded tenant; its legitimate traffic all arrives, and its
// conversations with the host (ping, ping6, TCP, DHCP, ND, ARP) are all answered. Every frame is
// first sent from an UNGUARDED tap and must arrive there, 100 %: the frames are well-formed, so
// it is the guard, not a malformed frame, that drops them later.
import './harness.js';
import t, { type Test } from 'tap';
import { ipj, sh } from './harness.js';
import {
  ATTACKS,
  BROADCAST,
  ETH_ARP,
  ETH_IPV4,
  ETH_IPV6,
  GW_LL6,
  SINK_MAC,
  arp,
  echo4,
  ether,
  tag,
  udp4,
  udp6,
  BRIDGE,
  LEGIT_FLOODED,
  PREFIX4,
  PREFIX6,
  TagCounter,
  clsactDrops,
  craft,
  exchanges,
  guest,
  labMissing,
  perClass,
  sendAll,
  startLab,
  type Crafted,
  type Guest,
  type Lab,
  type MacMode,
} from './guard-lib.js';
import { closeTap, openTap, type Tap } from '../src/tun/index.js';
import { parseGuard, type PortGuard } from '../src/guard/policy.js';
import { StickyPinner, type PinEvent } from '../src/guard/pinner.js';

/** Frames per attack class, per run: 27 classes x 260 = 7020 per guarded variant, 14 040 in all. */
const PER_CLASS = 260;
/** Legitimate frames per class, and conversations per kind. */
const LEGIT_PER_CLASS = 40;
const EXCHANGES = 20;

const A = guest(0x0a);
const B = guest(0x0b);

/** `strict` with the lab's prefixes; `list` pins the guest's MAC outright instead of sticky. */
function guardFor(g: Guest, mode: MacMode): PortGuard {
  return parseGuard(['strict', `ip=${PREFIX4},${PREFIX6}`, ...(mode === 'list' ? [`mac=${g.mac}`] : [])]);
}

/** Prints a class table: `name: seen/sent`. */
function matrix(t: Test, title: string, frames: readonly Crafted[], seen: ReadonlySet<number>): void {
  const rows = [...perClass(frames, seen)].map(([cls, e]) => `  ${cls.padEnd(46)} ${String(e.seen).padStart(5)}/${e.sent}`);
  t.comment(`${title}\n${rows.join('\n')}`);
}

let lab: Lab;
t.before(async () => {
  if (labMissing()) return;
  lab = await startLab();
  lab.neighbours(A);
  lab.neighbours(B);
});
t.teardown(async () => {
  pinner?.stop();
  await lab?.stop();
});

let seq = 1;
function nextSeqs(n: number): number {
  const first = seq;
  seq += n;
  return first;
}

t.test('unguarded: every crafted frame arrives at the receiver (they are well-formed)', { skip: labMissing() }, async (t) => {
  const ll = ipj<{ addr_info: { local: string; scope: string }[] }[]>('-6', 'addr', 'show', 'dev', BRIDGE)[0]!.addr_info.filter((a) => a.scope === 'link');
  t.same(ll.map((a) => a.local), [GW_LL6], `the gateway's link-local address is ${GW_LL6}`);
  const a = await openTap({ bridge: BRIDGE, name: 'guestA', vnetHdr: false, nonBlocking: true });
  t.teardown(() => closeTap(a));
  const recv = new TagCounter(lab.receiver.fds[0]!);
  recv.reset();
  const attacks = craft(ATTACKS, A, B, PER_CLASS, nextSeqs(ATTACKS.length * PER_CLASS));
  const legit = craft(LEGIT_FLOODED, A, B, LEGIT_PER_CLASS, nextSeqs(LEGIT_FLOODED.length * LEGIT_PER_CLASS));
  const errors = sendAll(a.fds[0]!, [...attacks, ...legit].map((f) => f.frame), [recv]);
  await recv.settle();
  t.same([...errors], [], 'every write accepted');
  matrix(t, 'unguarded port: attack frames at the receiver', attacks, recv.seen);
  for (const [cls, e] of perClass(attacks, recv.seen)) t.equal(e.seen, e.sent, `${cls}: all ${e.sent} arrive unguarded`);
  for (const [cls, e] of perClass(legit, recv.seen)) t.equal(e.seen, e.sent, `legitimate ${cls}: all ${e.sent} arrive`);
  const ex = await exchanges(a.fds[0]!, A, EXCHANGES, nextSeqs(EXCHANGES));
  for (const r of ex) t.equal(r.answered, r.sent, `${r.name}: ${r.answered}/${r.sent}`);
});

/** qbhd's sticky pinner, run in this process for the sticky variant, and what it reported. */
let pinner: StickyPinner | undefined;
const pinEvents: PinEvent[] = [];

/** The static FDB entries on a port (`bridge -j fdb show dev PORT`, state "static"), by MAC. */
function staticMacs(port: string): string[] {
  const fdb = JSON.parse(sh('bridge', '-j', 'fdb', 'show', 'dev', port)) as { mac: string; state?: string; flags?: string[] }[];
  return fdb.filter((e) => e.state === 'static' && !(e.flags ?? []).includes('self')).map((e) => e.mac);
}

/**
 * The guest's first frames on a sticky port, with qbhd's pinner running: the kernel reports the
 * MAC as a locked entry, the pinner makes it static and sticky. Returns whether it did.
 */
async function pinSticky(tap: Tap, g: Guest): Promise<boolean> {
  pinner ??= StickyPinner.start({ report: (e) => pinEvents.push(e) });
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    sendAll(tap.fds[0]!, LEGIT_FLOODED.slice(1, 2).map((c) => c.make(g, g, 0, 0)), []);
    await new Promise((r) => setTimeout(r, 20));
    if (staticMacs(tap.name).includes(g.mac)) return true;
  }
  return false;
}

/** Opens a guarded tap for guest `g`. */
async function guarded(name: string, g: Guest, mode: MacMode): Promise<Tap> {
  const tap = await openTap({ bridge: BRIDGE, name, vnetHdr: false, nonBlocking: true, guard: guardFor(g, mode) });
  if (mode === 'sticky' && !(await pinSticky(tap, g))) {
    closeTap(tap);
    throw new Error(`${g.mac} was not pinned on ${name} within 5 s (pinner: ${JSON.stringify(pinEvents)})`);
  }
  return tap;
}

for (const mode of ['list', 'sticky'] as const) {
  t.test(`guarded (strict, ip=, mac=${mode === 'list' ? A.mac : 'sticky:1'}): 0 attack frames through, 100 % legitimate`, { skip: labMissing() }, async (t) => {
    // The second tenant, guarded too (its MAC listed): the attacks must not reach it either.
    const b = await guarded('guestB', B, 'list');
    t.teardown(() => closeTap(b));
    const a = await guarded('guestA', A, mode);
    t.teardown(() => closeTap(a));
    t.equal(clsactDrops('guestA'), 0, "the tap's clsact qdisc is there, nothing dropped yet");
    const recv = new TagCounter(lab.receiver.fds[0]!);
    const atB = new TagCounter(b.fds[0]!);
    recv.reset();
    atB.reset();

    const attacks = craft(ATTACKS, A, B, PER_CLASS, nextSeqs(ATTACKS.length * PER_CLASS));
    const errors = sendAll(a.fds[0]!, attacks.map((f) => f.frame), [recv, atB]);
    await recv.settle();
    atB.poll();
    t.same([...errors], [], 'every write accepted (the guard drops later, silently, as a switch would)');
    matrix(t, `guarded port (mac ${mode}): attack frames at the receiver`, attacks, recv.seen);
    for (const [cls, e] of perClass(attacks, recv.seen)) t.equal(e.seen, 0, `${cls}: 0 of ${e.sent} at the receiver`);
    t.equal(perClass(attacks, atB.seen).size > 0 ? [...perClass(attacks, atB.seen).values()].reduce((s, e) => s + e.seen, 0) : 0, 0, `0 of ${attacks.length} at the second tenant`);

    // The filter's own drops: every attack frame it is responsible for, not one legitimate frame.
    const byFilter = attacks.filter((f) => ATTACKS.find((c) => c.name === f.cls)!.droppedBy === 'filter').length;
    if (mode === 'sticky') {
      t.same(staticMacs('guestA'), [A.mac], "sticky:1: the pinner pinned the guest's MAC and no other");
      t.ok(pinEvents.some((e) => e.kind === 'refused' && e.port === 'guestA'), 'the pinner refused the foreign MACs past the cap');
    }
    const dropped = clsactDrops('guestA');
    t.equal(dropped, byFilter, `clsact drops = the ${byFilter} attack frames the filter drops (the locked port drops the other ${attacks.length - byFilter})`);

    const legit = craft(LEGIT_FLOODED, A, B, LEGIT_PER_CLASS, nextSeqs(LEGIT_FLOODED.length * LEGIT_PER_CLASS));
    sendAll(a.fds[0]!, legit.map((f) => f.frame), [recv]);
    await recv.settle();
    matrix(t, `guarded port (mac ${mode}): legitimate frames at the receiver`, legit, recv.seen);
    for (const [cls, e] of perClass(legit, recv.seen)) t.equal(e.seen, e.sent, `legitimate ${cls}: ${e.seen}/${e.sent}`);
    const ex = await exchanges(a.fds[0]!, A, EXCHANGES, nextSeqs(EXCHANGES));
    t.comment(`guarded port (mac ${mode}): conversations\n${ex.map((r) => `  ${r.name.padEnd(46)} ${String(r.answered).padStart(5)}/${r.sent}`).join('\n')}`);
    for (const r of ex) t.equal(r.answered, r.sent, `${r.name}: ${r.answered}/${r.sent}`);
    t.equal(clsactDrops('guestA'), dropped, 'no legitimate frame was dropped by the filter (its drops did not move)');
  });
}

/** Frames per kind in the isolation test. */
const CROSS = 50;

/**
 * What `from` sends toward `to` (unicast UDP and ping to its MAC and address, UDP over IPv6, ARP
 * requests for its address) and toward the uplink (UDP to a MAC the bridge floods).
 */
function cross(from: Guest, to: Guest, firstSeq: number): { toPeer: Crafted[]; toUplink: Crafted[] } {
  const toPeer: Crafted[] = [];
  const toUplink: Crafted[] = [];
  for (let i = 0; i < CROSS; i++) {
    const s = firstSeq + 5 * i;
    toPeer.push({ cls: 'UDP to the peer', seq: s, frame: ether(to.mac, from.mac, ETH_IPV4, udp4(from.ip4, to.ip4, 40000, 9, tag(s))) });
    toPeer.push({ cls: 'ping to the peer', seq: s + 1, frame: ether(to.mac, from.mac, ETH_IPV4, echo4(from.ip4, to.ip4, 7, i, tag(s + 1))) });
    toPeer.push({ cls: 'UDP over IPv6 to the peer', seq: s + 2, frame: ether(to.mac, from.mac, ETH_IPV6, udp6(from.ip6, to.ip6, 40000, 9, tag(s + 2))) });
    toPeer.push({ cls: "ARP request for the peer's IP", seq: s + 3, frame: ether(BROADCAST, from.mac, ETH_ARP, arp(1, from.mac, from.ip4, '00:00:00:00:00:00', to.ip4, tag(s + 3))) });
    toUplink.push({ cls: 'UDP to the uplink', seq: s + 4, frame: ether(SINK_MAC, from.mac, ETH_IPV4, udp4(from.ip4, '10.0.0.250', 40000, 9, tag(s + 4))) });
  }
  return { toPeer, toUplink };
}

t.test('isolation: two guarded tenants cannot reach each other, both reach the uplink', { skip: labMissing() }, async (t) => {
  for (const guard of [false, true]) {
    const open = (name: string, g: Guest) => (guard ? guarded(name, g, 'list') : openTap({ bridge: BRIDGE, name, vnetHdr: false, nonBlocking: true }));
    const a = await open('guestA', A);
    const b = await open('guestB', B);
    const recv = new TagCounter(lab.receiver.fds[0]!);
    const atA = new TagCounter(a.fds[0]!);
    const atB = new TagCounter(b.fds[0]!);
    for (const c of [recv, atA, atB]) c.reset();
    const ab = cross(A, B, nextSeqs(5 * CROSS));
    const ba = cross(B, A, nextSeqs(5 * CROSS));
    sendAll(a.fds[0]!, [...ab.toPeer, ...ab.toUplink].map((f) => f.frame), [recv, atA, atB]);
    sendAll(b.fds[0]!, [...ba.toPeer, ...ba.toUplink].map((f) => f.frame), [recv, atA, atB]);
    await recv.settle();
    for (const c of [atA, atB]) c.poll();
    const count = (frames: Crafted[], seen: Set<number>) => frames.filter((f) => seen.has(f.seq)).length;
    const what = guard ? 'guarded (isolated)' : 'unguarded';
    t.comment(`${what}: A->B ${count(ab.toPeer, atB.seen)}/${ab.toPeer.length}, B->A ${count(ba.toPeer, atA.seen)}/${ba.toPeer.length}, A->uplink ${count(ab.toUplink, recv.seen)}/${CROSS}, B->uplink ${count(ba.toUplink, recv.seen)}/${CROSS}`);
    if (guard) {
      t.equal(count(ab.toPeer, atB.seen), 0, "nothing A sends toward B reaches B's fd");
      t.equal(count(ba.toPeer, atA.seen), 0, "nothing B sends toward A reaches A's fd");
    } else {
      t.equal(count(ab.toPeer, atB.seen), ab.toPeer.length, "unguarded, all A sends toward B reaches B's fd (the frames can arrive)");
      t.equal(count(ba.toPeer, atA.seen), ba.toPeer.length, "unguarded, all B sends toward A reaches A's fd");
    }
    t.equal(count(ab.toUplink, recv.seen), CROSS, `${what}: A reaches the uplink`);
    t.equal(count(ba.toUplink, recv.seen), CROSS, `${what}: B reaches the uplink`);
    closeTap(a);
    closeTap(b);
  }
});
