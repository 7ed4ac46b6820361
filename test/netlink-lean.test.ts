// The helper's hand-encoded rtnetlink (src/netlink/lean.ts) against the generic codec: the requests
// are byte for byte what Rtnl sends (but the sequence number), the kernel's errors come back as the
// same NetlinkErrors, and the failure path's name dump finds the same names.
import './harness.js';
import t from 'tap';
import { ipj, sh } from './harness.js';
import { NetlinkError, Rtnl } from '../src/index.js';
import { encodeLink, encodeMessage } from '../src/netlink/message.js';
import { NLM_F_ACK, NLM_F_REQUEST, RTM_GETLINK, RTM_NEWLINK } from '../src/netlink/constants.js';
import { getLinkRequest, linkNamesSync, openRouteSocketSync, setLinkRequest, setLinkSync, type LeanLinkChanges } from '../src/netlink/lean.js';
import { native } from '../src/native.js';

sh('ip', 'link', 'add', 'lnbr0', 'type', 'bridge');
sh('ip', 'link', 'property', 'add', 'dev', 'lnbr0', 'altname', 'lean-alt0');
sh('ip', 'link', 'add', 'lnve0', 'type', 'veth', 'peer', 'name', 'lnve1');

const rtnl = Rtnl.openSync();
t.teardown(() => rtnl.close());

/** The header the generic socket puts on a body, with the lean request's sequence number. */
const generic = (type: number, body: Buffer, lean: Uint8Array) => encodeMessage({ type, flags: NLM_F_REQUEST | NLM_F_ACK, seq: Buffer.from(lean).readUInt32LE(8), pid: 0 }, body);
/** What Rtnl.setLinkSync(index, changes) encodes (its private body builder). */
const setLinkBody = (index: number, c: LeanLinkChanges) =>
  (rtnl as unknown as { setLinkBody(i: number, n: undefined, o: LeanLinkChanges, m: number | undefined): Buffer }).setLinkBody(index, undefined, c, c.master);

t.test('RTM_NEWLINK: the bytes Rtnl.setLinkSync sends, for every combination of changes', async (t) => {
  const all: LeanLinkChanges = { mtu: 1450, address: 'fe:12:ab:00:7f:e0', master: 7, up: true };
  const keys = Object.keys(all) as (keyof LeanLinkChanges)[];
  for (let mask = 0; mask < 1 << keys.length; mask++) {
    const c: LeanLinkChanges = {};
    keys.forEach((k, i) => mask & (1 << i) && Object.assign(c, { [k]: all[k] }));
    const lean = setLinkRequest(42, c);
    t.same(Buffer.from(lean), generic(RTM_NEWLINK, setLinkBody(42, c), lean), JSON.stringify(c));
  }
  const down = setLinkRequest(3, { up: false, mtu: 9000 });
  t.same(Buffer.from(down), generic(RTM_NEWLINK, setLinkBody(3, { up: false, mtu: 9000 }), down), 'up: false (IFF_UP in change only)');
});

t.test('RTM_GETLINK by name: the bytes Rtnl.getLinkMessageSync sends', async (t) => {
  for (const name of ['lnbr0', 'a', 'x'.repeat(15), 'lnbr\u00e9']) {
    const lean = getLinkRequest(name);
    t.same(Buffer.from(lean), generic(RTM_GETLINK, encodeLink({ index: 0, attrs: { ifname: name, extMask: 1 << 3 } }), lean), name);
  }
});

t.test('a request the kernel refuses: the NetlinkError the generic socket gives', async (t) => {
  const fd = openRouteSocketSync();
  t.teardown(() => native.close(fd));
  const ve = ipj<any[]>('link', 'show', 'dev', 'lnve0')[0].ifindex as number;
  const br = ipj<any[]>('link', 'show', 'dev', 'lnbr0')[0].ifindex as number;
  const cases: [number, LeanLinkChanges][] = [
    [ve, { mtu: 10 }], // EINVAL with the kernel's text
    [ve, { master: 999999 }], // ENODEV
    [br, { master: br }], // a bridge into itself
    [999999, { up: true }], // no such link
  ];
  for (const [index, c] of cases) {
    const got = (() => {
      try {
        setLinkSync(fd, index, c, 'x');
      } catch (e) {
        return e;
      }
      return undefined;
    })() as NetlinkError;
    t.type(got, NetlinkError, JSON.stringify(c));
    t.throws(() => rtnl.setLinkSync(index, c, 'x'), { constructor: NetlinkError, message: got.message, errno: got.errno, kernelMessage: got.kernelMessage, kernelOffset: got.kernelOffset, op: 'setLink', target: 'x' });
  }
  setLinkSync(fd, ve, { mtu: 1400, up: true });
  const after = ipj<any[]>('link', 'show', 'dev', 'lnve0')[0];
  t.same([after.mtu, after.flags.includes('UP')], [1400, true], 'and one that passes is applied');
});

t.test('every name in use, altnames included: what Rtnl.linkNamesSync finds', async (t) => {
  const fd = openRouteSocketSync();
  t.teardown(() => native.close(fd));
  // Enough links for the dump to take several datagrams.
  for (let i = 0; i < 40; i++) sh('ip', 'link', 'add', `lnbr${i}x`, 'type', 'bridge');
  const lean = linkNamesSync(fd);
  t.same([...lean].sort(), [...rtnl.linkNamesSync()].sort());
  t.ok(lean.has('lean-alt0') && lean.has('lnve1') && lean.has('lnbr39x'));
});
