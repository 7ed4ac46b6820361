// A link dump interrupted by concurrent changes (the kernel sets NLM_F_DUMP_INTR when the link list
// changes between the datagrams of one dump: docs/netlink-pitfalls.md, §3) is retried, and what the
// caller gets is a complete, consistent list — never the interrupted one. 1000 taps make a dump span
// many datagrams; another process adds and deletes a bridge in a loop meanwhile. The wire is watched
// at the addon (nlSend/nlRecv, observed, not changed): which dump requests each listLinks() sent and
// which of their answers the kernel flagged.
import './harness.js';
import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { ipj } from './harness.js';
import { native } from '../src/native.js';
import { Rtnl } from '../src/netlink/rtnl.js';

const RTM_GETLINK = 18;
const NLM_F_DUMP = 0x300;
const NLM_F_DUMP_INTR = 0x10;
const TAPS = 1000;
/** listLinks() calls tried before giving up on seeing a retry (each is short; a retry shows within a few). */
const MAX_CALLS = 60;

function* messages(buf: Uint8Array): Generator<{ type: number; flags: number; seq: number }> {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let off = 0; off + 16 <= b.length; ) {
    const len = b.readUInt32LE(off);
    if (len < 16) return;
    yield { type: b.readUInt16LE(off + 4), flags: b.readUInt16LE(off + 6), seq: b.readUInt32LE(off + 8) };
    off += (len + 3) & ~3;
  }
}

/** Dump requests (by seq, in order) and the seqs whose answers carried NLM_F_DUMP_INTR. */
const wire = { dumps: [] as number[], interrupted: new Set<number>() };
const { nlSend, nlRecv } = native;
native.nlSend = (fd, msg) => {
  for (const m of messages(msg)) if (m.type === RTM_GETLINK && (m.flags & NLM_F_DUMP) === NLM_F_DUMP) wire.dumps.push(m.seq);
  return nlSend(fd, msg);
};
native.nlRecv = (fd, timeout) => {
  const got = nlRecv(fd, timeout);
  if (got) for (const m of messages(got.data)) if (m.flags & NLM_F_DUMP_INTR) wire.interrupted.add(m.seq);
  return got;
};
t.teardown(() => {
  native.nlSend = nlSend;
  native.nlRecv = nlRecv;
});

execFileSync('ip', ['-batch', '-'], { input: Array.from({ length: TAPS }, (_, i) => `tuntap add di${i} mode tap`).join('\n') });

t.test('an interrupted dump is retried, and the caller gets the complete list', async (t) => {
  const churn = spawn('sh', ['-c', 'while :; do ip link add churn0 type bridge; ip link del churn0; done'], { stdio: 'ignore' });
  const h = await Rtnl.open();
  const calls: { dumps: number[]; counted: number; names: string[] | null; error?: unknown }[] = [];
  try {
    for (let i = 0; i < MAX_CALLS; i++) {
      const before = { dumps: wire.dumps.length, counted: h.socket.interruptedDumps };
      let names: string[] | null = null;
      let error: unknown;
      try {
        names = (await h.listLinks()).map((l) => l.ifname);
      } catch (e) {
        error = e;
      }
      calls.push({ dumps: wire.dumps.slice(before.dumps), counted: h.socket.interruptedDumps - before.counted, names, error });
      // Enough once one call completed after at least one retry.
      if (calls.some((c) => c.names !== null && c.dumps.length >= 2)) break;
    }
  } finally {
    churn.kill();
    h.close();
  }
  await new Promise((r) => (churn.exitCode !== null || churn.signalCode !== null ? r(null) : churn.once('exit', r)));

  // Of every call, whatever it ended with: a result never comes from a flagged dump.
  const fromFlagged = calls.filter((c) => c.names !== null && wire.interrupted.has(c.dumps.at(-1)!)).length;
  t.equal(fromFlagged, 0, 'no call returned the result of an interrupted dump');

  const retried = calls.find((c) => c.names !== null && c.dumps.length >= 2);
  t.ok(retried, `a listLinks() call completed after a retry (${calls.length} calls, ${wire.interrupted.size} dumps flagged NLM_F_DUMP_INTR)`);
  if (!retried) return;
  const [last, ...earlier] = [...retried.dumps].reverse();
  t.ok(earlier.every((s) => wire.interrupted.has(s)), 'every attempt before the last was one the kernel flagged');
  t.notOk(wire.interrupted.has(last!), 'the attempt whose result was returned was not interrupted');
  t.equal(retried.counted, earlier.length, 'socket.interruptedDumps counted each interrupted attempt');

  // Complete and consistent: each link once, every tap, and exactly what ip lists now (but churn0,
  // which may or may not have existed at that moment).
  const names = retried.names!;
  t.equal(new Set(names).size, names.length, 'each link listed once');
  t.equal(names.filter((n) => /^di\d+$/.test(n)).length, TAPS, `all ${TAPS} taps`);
  const ip = ipj<{ ifname: string }[]>('link', 'show').map((l) => l.ifname);
  t.same(names.filter((n) => n !== 'churn0').sort(), ip.filter((n) => n !== 'churn0').sort(), 'the same links ip lists once the churn has stopped');
});
