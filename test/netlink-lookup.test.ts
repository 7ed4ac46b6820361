// The helper's lean lookup (src/netlink/lookup.ts) against the generic decoder and iproute2: the
// four attributes it reads must be what getLinkMessageSync decodes, for every kind of link.
import './harness.js';
import t from 'tap';
import { ipj, sh } from './harness.js';
import { NetlinkError, Rtnl } from '../src/index.js';
import { lookupLinkSync } from '../src/netlink/lookup.js';
import type { AttrSet } from '../src/netlink/attr.js';
import type { LinkMessage } from '../src/netlink/message.js';

sh('ip', 'link', 'add', 'lkbr0', 'type', 'bridge');
sh('ip', 'link', 'set', 'lkbr0', 'mtu', '1400');
sh('ip', 'link', 'property', 'add', 'dev', 'lkbr0', 'altname', 'lan-uplink0', 'altname', 'lkalt1');
sh('ip', 'link', 'add', 'lkve0', 'type', 'veth', 'peer', 'name', 'lkve1');
sh('ip', 'tuntap', 'add', 'lktap0', 'mode', 'tap');
sh('ip', 'link', 'add', 'name', 'lkbr\u00e9', 'type', 'bridge');

const rtnl = Rtnl.openSync();
t.teardown(() => rtnl.close());

const ctx = (target: string) => ({ op: 'resolveBridge', target });
/** The fields the lookup decodes, from any LinkMessage. */
const brief = (m: LinkMessage) => ({
  index: m.index,
  flags: m.flags,
  type: m.type,
  ifname: m.attrs.ifname,
  mtu: m.attrs.mtu,
  kind: (m.attrs.linkinfo as AttrSet | undefined)?.kind,
  altnames: ((m.attrs.propList as AttrSet | undefined)?.altIfname as string[] | undefined) ?? [],
});

t.test('the four attributes agree with the generic decoder, for every kind of link and by altname', async (t) => {
  for (const name of ['lkbr0', 'lan-uplink0', 'lkalt1', 'lo', 'lkve0', 'lkve1', 'lktap0', 'lkbr\u00e9']) {
    const lean = lookupLinkSync(rtnl.socket.fd, name, ctx(name));
    t.same(brief(lean), brief(rtnl.getLinkMessageSync(name)), name);
  }
  const br = lookupLinkSync(rtnl.socket.fd, 'lkalt1', ctx('lkalt1'));
  const ip = ipj<any[]>('-d', 'link', 'show', 'dev', 'lkbr0')[0];
  t.same(brief(br), { index: ip.ifindex, flags: br.flags, type: 1, ifname: 'lkbr0', mtu: 1400, kind: 'bridge', altnames: ['lan-uplink0', 'lkalt1'] }, 'an altname finds its device, as ip says');
  t.equal(brief(lookupLinkSync(rtnl.socket.fd, 'lo', ctx('lo'))).kind, undefined, 'lo: no IFLA_LINKINFO');
});

t.test('no such link, or a name the kernel refuses: a NetlinkError, and the socket goes on', async (t) => {
  t.throws(() => lookupLinkSync(rtnl.socket.fd, 'lknone0', ctx('lknone0')), { constructor: NetlinkError, code: 'ENODEV', op: 'resolveBridge', target: 'lknone0' });
  t.throws(() => lookupLinkSync(rtnl.socket.fd, 'x'.repeat(20), ctx('long')), NetlinkError);
  t.equal(rtnl.getLinkMessageSync('lkbr0').attrs.mtu, 1400, 'the handle still answers its own requests');
  t.equal(lookupLinkSync(rtnl.socket.fd, 'lkbr0', ctx('lkbr0')).attrs.mtu, 1400);
});
