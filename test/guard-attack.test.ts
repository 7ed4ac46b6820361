// The attack matrix of the port guard (issue 23): a guest on a guarded tap writes >= 10 000 crafted
// attack frames to its fd (writing is transmitting) and none arrives at the receiver, the bridge's
// uplink port, nor at a second guarded tenant; its legitimate traffic all arrives, and its
// conversations with the host (ping, ping6, TCP, DHCP, ND, ARP) are all answered. Every frame is
// first sent from an UNGUARDED tap and must arrive there, 100 %: the frames are well-formed, so
// it is the guard, not a malformed frame, that drops them later.
import './harness.js';
import t from 'tap';
import { sh } from './harness.js';
import {
  ATTACKS,
  BRIDGE,
  LEGIT_FLOODED,
  PREFIX4,
  PREFIX6,
  TagCounter,
  clsactDrops,
  craft,
  exchanges,
  guest,
  haveDnsmasq,
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

/** Frames per attack class, per run: 20 classes x 260 = 5200 per guarded variant, 10 400 in all. */
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
function matrix(t: Tap.Test, title: string, frames: readonly Crafted[], seen: ReadonlySet<number>): void {
  const rows = [...perClass(frames, seen)].map(([cls, e]) => `  ${cls.padEnd(42)} ${String(e.seen).padStart(5)}/${e.sent}`);
  t.comment(`${title}\n${rows.join('\n')}`);
}

let lab: Lab;
t.before(async () => {
  lab = await startLab();
  lab.neighbours(A);
  lab.neighbours(B);
});
t.teardown(async () => lab?.stop());

let seq = 1;
function nextSeqs(n: number): number {
  const first = seq;
  seq += n;
  return first;
}

t.test('unguarded: every crafted frame arrives at the receiver (they are well-formed)', { skip: haveDnsmasq() ? false : 'dnsmasq (dnsmasq-base) is not installed' }, async (t) => {
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
