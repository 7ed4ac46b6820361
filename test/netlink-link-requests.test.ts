// The helper's hand-built link requests (src/netlink/link-requests.ts) against the generic codec and
// iproute2: the requests are byte for byte what Rtnl sends (but the sequence number), the kernel's
// errors come back as the same NetlinkErrors, the brief decode of a link reads its four attributes
// as the generic decoder does, and the failure path's name dump finds every name ip lists.
import './harness.js';
import t from 'tap';
import { ipj, sh } from './harness.js';
import { NetlinkError, Rtnl } from '../src/index.js';
import { getLinkBody, setLinkBody } from '../src/netlink/rtnl.js';
import { encodeMessage, type LinkMessage } from '../src/netlink/message.js';
import { NLM_F_ACK, NLM_F_REQUEST, RTM_GETLINK, RTM_NEWLINK } from '../src/netlink/constants.js';
import { getLinkRequest, linkNamesSync, lookupLinkSync, setLinkRequest, setLinkSync, type LinkChanges } from '../src/netlink/link-requests.js';
import { openRouteSocketSync } from '../src/netlink/wire.js';
import type { AttrSet } from '../src/netlink/attr.js';
import { native } from '../src/native.js';

sh('ip', 'link', 'add', 'lnbr0', 'type', 'bridge');
sh('ip', 'link', 'set', 'lnbr0', 'mtu', '1400');
sh('ip', 'link', 'property', 'add', 'dev', 'lnbr0', 'altname', 'lean-alt0', 'altname', 'lkalt1');
sh('ip', 'link', 'add', 'lnve0', 'type', 'veth', 'peer', 'name', 'lnve1');
sh('ip', 'tuntap', 'add', 'lktap0', 'mode', 'tap');
sh('ip', 'link', 'add', 'name', 'lkbr\u00e9', 'type', 'bridge');

const rtnl = Rtnl.openSync();
t.teardown(() => rtnl.close());

/** The header the generic socket puts on a body, with the hand-built request's sequence number. */
const generic = (type: number, body: Buffer, built: Uint8Array) => encodeMessage({ type, flags: NLM_F_REQUEST | NLM_F_ACK, seq: Buffer.from(built).readUInt32LE(8), pid: 0 }, body);
const caught = (fn: () => unknown): unknown => {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
};

t.test('RTM_NEWLINK: the bytes Rtnl.setLink sends, for every combination of changes', async (t) => {
  const all: LinkChanges = { mtu: 1450, address: 'fe:12:ab:00:7f:e0', master: 7, up: true };
  const keys = Object.keys(all) as (keyof LinkChanges)[];
  for (let mask = 0; mask < 1 << keys.length; mask++) {
    const c: LinkChanges = {};
    keys.forEach((k, i) => mask & (1 << i) && Object.assign(c, { [k]: all[k] }));
    const built = setLinkRequest(42, c);
    t.same(Buffer.from(built), generic(RTM_NEWLINK, setLinkBody(42, undefined, c, c.master), built), JSON.stringify(c));
  }
  const down = setLinkRequest(3, { up: false, mtu: 9000 });
  t.same(Buffer.from(down), generic(RTM_NEWLINK, setLinkBody(3, undefined, { up: false, mtu: 9000 }, undefined), down), 'up: false (IFF_UP in change only)');
});

t.test('RTM_GETLINK by name: the bytes Rtnl.getLinkMessage sends', async (t) => {
  for (const name of ['lnbr0', 'a', 'x'.repeat(15), 'lnbr\u00e9']) {
    const built = getLinkRequest(name);
    t.same(Buffer.from(built), generic(RTM_GETLINK, getLinkBody(name), built), name);
  }
});

t.test('a request the kernel refuses: the NetlinkError the generic socket gives', async (t) => {
  const fd = openRouteSocketSync();
  t.teardown(() => native.close(fd));
  const ve = ipj<any[]>('link', 'show', 'dev', 'lnve0')[0].ifindex as number;
  const br = ipj<any[]>('link', 'show', 'dev', 'lnbr0')[0].ifindex as number;
  const cases: [number, LinkChanges][] = [
    [ve, { mtu: 10 }], // EINVAL with the kernel's text
    [ve, { master: 999999 }], // ENODEV
    [br, { master: br }], // a bridge into itself
    [999999, { up: true }], // no such link
  ];
  for (const [index, c] of cases) {
    const got = caught(() => setLinkSync(fd, index, c, 'x')) as NetlinkError;
    t.type(got, NetlinkError, JSON.stringify(c));
    const [theirs] = await rtnl.setLinks([{ index, opts: c, target: 'x' }]);
    t.match(theirs, { constructor: NetlinkError, message: got.message, errno: got.errno, kernelMessage: got.kernelMessage, kernelOffset: got.kernelOffset, op: 'setLink', target: 'x' });
  }
  setLinkSync(fd, ve, { mtu: 1400, up: true });
  const after = ipj<any[]>('link', 'show', 'dev', 'lnve0')[0];
  t.same([after.mtu, after.flags.includes('UP')], [1400, true], 'and one that passes is applied');
});

t.test('every name in use, altnames included: what ip lists', async (t) => {
  const fd = openRouteSocketSync();
  t.teardown(() => native.close(fd));
  // Enough links for the dump to take several datagrams.
  for (let i = 0; i < 40; i++) sh('ip', 'link', 'add', `lnbr${i}x`, 'type', 'bridge');
  const names = linkNamesSync(fd);
  const ip = ipj<{ ifname: string; altnames?: string[] }[]>('link', 'show').flatMap((l) => [l.ifname, ...(l.altnames ?? [])]);
  t.same([...names].sort(), ip.sort());
  t.ok(names.has('lean-alt0') && names.has('lnve1') && names.has('lnbr39x'));
});

const ctx = (target: string) => ({ op: 'resolveBridge', target });
/** The fields the brief decode reads, from any LinkMessage. */
const brief = (m: LinkMessage) => ({
  index: m.index,
  flags: m.flags,
  type: m.type,
  ifname: m.attrs.ifname,
  mtu: m.attrs.mtu,
  kind: (m.attrs.linkinfo as AttrSet | undefined)?.kind,
  altnames: ((m.attrs.propList as AttrSet | undefined)?.altIfname as string[] | undefined) ?? [],
});

t.test('lookupLinkSync: the four attributes agree with the generic decoder, for every kind of link and by altname', async (t) => {
  for (const name of ['lnbr0', 'lean-alt0', 'lkalt1', 'lo', 'lnve0', 'lnve1', 'lktap0', 'lkbr\u00e9']) {
    const got = lookupLinkSync(rtnl.socket.fd, name, ctx(name));
    t.same(brief(got), brief(await rtnl.getLinkMessage(name)), name);
  }
  const br = lookupLinkSync(rtnl.socket.fd, 'lkalt1', ctx('lkalt1'));
  const ip = ipj<any[]>('-d', 'link', 'show', 'dev', 'lnbr0')[0];
  t.same(brief(br), { index: ip.ifindex, flags: br.flags, type: 1, ifname: 'lnbr0', mtu: 1400, kind: 'bridge', altnames: ['lean-alt0', 'lkalt1'] }, 'an altname finds its device, as ip says');
  t.equal(brief(lookupLinkSync(rtnl.socket.fd, 'lo', ctx('lo'))).kind, undefined, 'lo: no IFLA_LINKINFO');
});

t.test('lookupLinkSync: no such link, or a name the kernel refuses: a NetlinkError, and the socket goes on', async (t) => {
  t.throws(() => lookupLinkSync(rtnl.socket.fd, 'lknone0', ctx('lknone0')), { constructor: NetlinkError, code: 'ENODEV', op: 'resolveBridge', target: 'lknone0' });
  t.throws(() => lookupLinkSync(rtnl.socket.fd, 'x'.repeat(20), ctx('long')), NetlinkError);
  t.equal((await rtnl.getLinkMessage('lnbr0')).attrs.mtu, 1400, 'the handle still answers its own requests');
  t.equal(lookupLinkSync(rtnl.socket.fd, 'lnbr0', ctx('lnbr0')).attrs.mtu, 1400);
});
