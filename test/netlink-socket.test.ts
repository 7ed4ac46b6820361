// NetlinkSocket and the wire core against a fake kernel (test/fake-kernel.ts): acks, errors with
// their extended-ack text and offset, multipart dumps, the pipelining window, NLM_F_DUMP_INTR
// retries, stale sequence numbers, messages from other ports, timeouts and a closed socket — the
// paths a real kernel takes only by chance. No root, no namespace, no patched addon.
import t from 'tap';
import { DumpInterruptedError, NetlinkError } from '../src/netlink/errors.js';
import { NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_MULTI, NLM_F_REQUEST, RTM_GETLINK, RTM_NEWLINK } from '../src/netlink/constants.js';
import { PIPELINE_WINDOW } from '../src/netlink/socket.js';
import { Rtnl } from '../src/netlink/rtnl.js';
import { linkNamesSync, lookupLinkSync, setLinkSync } from '../src/netlink/link-requests.js';
import { DUMP_RETRIES, exchangeSync, requestMessage, splitMessages } from '../src/netlink/wire.js';
import { FakeKernel, ack, datagram, done, message, nlError } from './fake-kernel.js';

const ctx = { op: 'setLink', target: 'v0' };
const body = Buffer.alloc(16);

/** An RTM_NEWLINK reply naming a link (ifinfomsg with `index`, IFLA_IFNAME). */
function linkReply(index: number, name: string): Buffer {
  const b = Buffer.alloc(16);
  b.writeInt32LE(index, 4);
  const n = Buffer.from(`${name}\0`);
  const a = Buffer.alloc((4 + n.length + 3) & ~3);
  a.writeUInt16LE(4 + n.length, 0);
  a.writeUInt16LE(3, 2);
  n.copy(a, 4);
  return Buffer.concat([b, a]);
}

/** Answers a dump with `names` as RTM_NEWLINK, two to a datagram, then DONE; `flags` on every message. */
const dumpOf = (names: string[], flags = 0) => (req: Parameters<FakeKernel['answer']>[0]) => {
  const msgs = names.map((n, i) => message(req, RTM_NEWLINK, linkReply(i + 1, n), NLM_F_MULTI | flags));
  const out: Buffer[] = [];
  for (let i = 0; i < msgs.length; i += 2) out.push(datagram(...msgs.slice(i, i + 2)));
  out.push(done(req, { flags }));
  return out;
};

t.test('an ACK ends a request: sync and on the event loop, REQUEST|ACK and a fresh sequence number each', async (t) => {
  const k = new FakeKernel();
  const s = k.socket();
  t.same(s.requestSync(RTM_NEWLINK, 0, body, ctx), []);
  k.deferred = true;
  t.same(await s.request(RTM_NEWLINK, 0, body, ctx), [], 'answered on a later turn: the watch fires');
  t.equal(k.requests.length, 2);
  for (const r of k.requests) t.equal(r.flags, NLM_F_REQUEST | NLM_F_ACK);
  t.not(k.requests[0]!.seq, k.requests[1]!.seq);
  t.not(k.requests[0]!.seq, 0);
  s.close();
  t.ok(k.closed, 'close() closes through the transport');
});

t.test('NLMSG_ERROR: a NetlinkError with the kernel\'s errno, extended-ack text and offset', async (t) => {
  for (const capped of [true, false]) {
    const k = new FakeKernel();
    k.answer = (req) => [nlError(req, 22, { text: 'mtu less than device minimum', offset: 28, capped })];
    const s = k.socket();
    const want = { constructor: NetlinkError, errno: 22, code: 'EINVAL', kernelMessage: 'mtu less than device minimum', kernelOffset: 28, op: 'setLink', target: 'v0', message: 'setLink v0: Invalid argument (mtu less than device minimum)' };
    t.throws(() => s.requestSync(RTM_NEWLINK, 0, body, ctx), want, `sync, echo ${capped ? 'capped' : 'whole'}`);
    await t.rejects(s.request(RTM_NEWLINK, 0, body, ctx), want, `async, echo ${capped ? 'capped' : 'whole'}`);
    t.throws(() => setLinkSync(k.fd, 3, { mtu: 10 }, 'v0', k), want, 'the helper\'s request: the same error');
  }
  const k = new FakeKernel();
  k.answer = (req) => [nlError(req, 1)];
  t.throws(() => k.socket().requestSync(RTM_NEWLINK, 0, body, ctx), { errno: 1, code: 'EPERM', kernelMessage: undefined, kernelOffset: undefined });
});

t.test('a multipart dump: every reply in order across datagrams, until DONE; an error in DONE', async (t) => {
  const names = ['lo', 'br0', 'tap0', 'tap1', 'veth0'];
  const k = new FakeKernel();
  k.answer = dumpOf(names);
  const s = k.socket();
  const got = (await s.dump(RTM_GETLINK, body, { op: 'listLinks' })).map((m) => (m.kind === 'link' ? m.link.attrs.ifname : m.kind));
  t.same(got, names);
  t.same(s.dumpSync(RTM_GETLINK, body, { op: 'listLinks' }).map((m) => (m.kind === 'link' ? m.link.attrs.ifname : m.kind)), names, 'blocking: the same');
  t.equal(k.requests.at(-1)!.flags & NLM_F_DUMP, NLM_F_DUMP);
  t.same([...linkNamesSync(k.fd, 'openTap', k)], names, 'the helper\'s name dump: the same names');
  k.answer = (req) => [done(req, { errno: 22, text: 'Filter by device index not supported for link dumps' })];
  await t.rejects(s.dump(RTM_GETLINK, body, { op: 'listLinks' }), { name: 'NetlinkError', errno: 22, kernelMessage: 'Filter by device index not supported for link dumps' });
  k.deferred = true;
  k.answer = dumpOf(names);
  t.same((await s.dump(RTM_GETLINK, body, { op: 'listLinks' })).length, names.length, 'answered on later turns of the event loop');
});

t.test('pipelining: a window of requests per datagram, only its last asks for an ACK, failures matched by sequence number', async (t) => {
  const k = new FakeKernel();
  const failing = new Map([[5, 19], [PIPELINE_WINDOW, 16], [PIPELINE_WINDOW + 70, 22]]);
  let n = 0;
  const seqOf: number[] = [];
  k.answer = (req) => {
    const i = n++;
    seqOf[i] = req.seq;
    const errno = failing.get(i);
    // The kernel answers a failed request whether or not it asked for an ACK; a stale error too.
    if (errno !== undefined) return [nlError(req, errno, { text: `no ${i}` }), nlError(req, 1, { seq: 7 })];
    return req.flags & NLM_F_ACK ? [ack(req)] : [];
  };
  const count = 2 * PIPELINE_WINDOW + 22;
  const requests = Array.from({ length: count }, (_, i) => ({ type: RTM_NEWLINK, flags: 0, body, ctx: { op: 'setLink', target: `t${i}` } }));
  const outcomes = await k.socket().requestPipelined(requests);
  t.same(k.sent.map((d) => splitMessages(d).length), [PIPELINE_WINDOW, PIPELINE_WINDOW, 22], 'PIPELINE_WINDOW messages per datagram');
  t.same(
    k.sent.map((d) => splitMessages(d).flatMap((m, i) => (m.flags & NLM_F_ACK ? [i] : []))),
    [[PIPELINE_WINDOW - 1], [PIPELINE_WINDOW - 1], [21]],
    'only the last of each window asks for an ACK',
  );
  t.equal(new Set(seqOf).size, count, 'each request its own sequence number');
  t.equal(outcomes.length, count);
  for (const [i, errno] of failing) t.match(outcomes[i], { constructor: NetlinkError, errno, kernelMessage: `no ${i}`, target: `t${i}` }, `request ${i} failed`);
  t.equal([...outcomes].filter((o) => o === undefined).length, count - failing.size, 'every other request succeeded');
});

t.test('NLM_F_DUMP_INTR: the dump is run again; past DUMP_RETRIES a DumpInterruptedError with the last result', async (t) => {
  const k = new FakeKernel();
  let runs = 0;
  k.answer = (req) => {
    runs++;
    return dumpOf(runs <= 2 ? ['stale'] : ['lo', 'br0'], runs <= 2 ? NLM_F_DUMP_INTR : 0)(req);
  };
  const s = k.socket();
  const got = await s.dump(RTM_GETLINK, body, { op: 'listLinks' });
  t.same(got.map((m) => (m.kind === 'link' ? m.link.attrs.ifname : undefined)), ['lo', 'br0'], 'the uninterrupted third run');
  t.equal(runs, 3);
  t.equal(s.interruptedDumps, 2);

  k.answer = dumpOf(['half'], NLM_F_DUMP_INTR);
  runs = 0;
  const before = k.requests.length;
  await t.rejects(s.dump(RTM_GETLINK, body, { op: 'listLinks' }), { constructor: DumpInterruptedError, code: 'EINTR', attempts: DUMP_RETRIES, partial: [{ kind: 'link' }] });
  t.equal(k.requests.length - before, DUMP_RETRIES, `${DUMP_RETRIES} runs`);
  t.throws(() => s.dumpSync(RTM_GETLINK, body, { op: 'listLinks' }), { name: 'DumpInterruptedError', attempts: DUMP_RETRIES }, 'blocking: the same');
  t.throws(() => linkNamesSync(k.fd, 'openTap', k), { name: 'DumpInterruptedError', op: 'openTap' }, 'and the helper\'s name dump');
  t.equal(k.requests.length - before, 3 * DUMP_RETRIES);
});

t.test('left-overs of an abandoned request (a stale sequence number) and messages from other ports are ignored', async (t) => {
  const k = new FakeKernel();
  const s = k.socket();
  s.syncTimeoutMs = 30;
  k.answer = () => [];
  t.throws(() => s.requestSync(RTM_NEWLINK, 0, body, ctx), { name: 'NetlinkError', errno: 110 });
  const abandoned = k.requests.at(-1)!;
  // Its answer comes late, before the next request's: an error the next request must not take.
  k.inject(nlError(abandoned, 16, { text: 'late' }));
  k.answer = (req) => [{ data: nlError(req, 1, { text: 'from a process, not the kernel' }), portId: 999 }, datagram(message(req, RTM_NEWLINK, linkReply(7, 'br0')), ack(req))];
  const replies = s.requestSync(RTM_GETLINK, 0, body, { op: 'getLink', target: 'br0' });
  t.same(replies.map((m) => m.kind === 'link' && m.link.index), [7], 'the answer to this request only');
  k.inject(nlError(abandoned, 16));
  t.same((await s.request(RTM_GETLINK, 0, body, { op: 'getLink', target: 'br0' })).map((m) => m.kind === 'link' && m.link.index), [7], 'on the event loop too');
  k.inject(nlError(abandoned, 16));
  t.equal(lookupLinkSync(k.fd, 'br0', { op: 'resolveBridge', target: 'br0' }, k).attrs.ifname, 'br0', 'and in the helper\'s lookup');
});

t.test('no answer: ETIMEDOUT naming the request, in qbh\'s words', async (t) => {
  const k = new FakeKernel();
  k.answer = () => [];
  const s = k.socket();
  s.syncTimeoutMs = 40;
  const start = Date.now();
  t.throws(() => s.requestSync(RTM_NEWLINK, 0, body, ctx), { constructor: NetlinkError, errno: 110, code: 'ETIMEDOUT', op: 'setLink', target: 'v0', message: /no answer from the kernel/ });
  t.ok(Date.now() - start >= 40, 'after the timeout');
  t.throws(() => exchangeSync(k.fd, requestMessage(RTM_NEWLINK, 0, body), ctx, k, 20), { name: 'NetlinkError', errno: 110 }, 'the wire exchange alone');
});

t.test('a receive that overruns, and a socket closed under a waiting request', async (t) => {
  const k = new FakeKernel();
  const s = k.socket();
  k.failRecv = 105;
  t.throws(() => s.requestSync(RTM_NEWLINK, 0, body, ctx), { constructor: NetlinkError, code: 'ENOBUFS', message: /receive buffer overrun/ });
  k.failRecv = 105;
  await t.rejects(s.request(RTM_NEWLINK, 0, body, ctx), { constructor: NetlinkError, code: 'ENOBUFS' }, 'on the event loop too');
  k.answer = () => [];
  const waiting = s.request(RTM_NEWLINK, 0, body, ctx);
  const pipelined = s.requestPipelined([{ type: RTM_NEWLINK, flags: 0, body, ctx }]);
  await new Promise((r) => setImmediate(r));
  s.close();
  await t.rejects(waiting, { constructor: NetlinkError, code: 'EBADF', op: 'setLink', message: /closed while waiting/ });
  await t.rejects(pipelined, { code: 'EBADF' }, 'a request queued behind it: the socket is closed');
  t.throws(() => s.requestSync(RTM_NEWLINK, 0, body, ctx), { code: 'EBADF', message: /closed/ }, 'and after close');
});

t.test('an Rtnl over a fake kernel: the typed API on the seam', async (t) => {
  const k = new FakeKernel();
  k.answer = (req) => [nlError(req, 19)];
  const rtnl = Rtnl.over(k.socket());
  await t.rejects(rtnl.setLink(42, { mtu: 1400 }), { code: 'ENODEV', op: 'setLink', target: '42' });
  t.equal(k.requests.at(-1)!.type, RTM_NEWLINK);
  rtnl.close();
});
