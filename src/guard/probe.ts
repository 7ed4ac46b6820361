/**
 * Which guard features this kernel has, tried for real in a throwaway network namespace: a child
 * (`unshare --net`) holds a fresh namespace, qbh makes a bridge and a veth port in it through a
 * socket opened there, sets each feature and reads it back, and the namespace dies with the child.
 * The host's interfaces are never touched. What `qbh doctor` reports; needs root (CAP_SYS_ADMIN
 * to make the namespace, CAP_NET_ADMIN in it).
 * @module
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readlinkSync } from 'node:fs';
import { native } from '../native.js';
import { AF_UNSPEC, IFLA_BRPORT_ISOLATED, IFLA_BRPORT_LOCKED, IFLA_BRPORT_MAB, NLM_F_CREATE, NLM_F_EXCL, RTM_GETLINK, RTM_NEWLINK } from '../netlink/constants.js';
import { decodeLink, encodeLink } from '../netlink/message.js';
import { lookupLinkSync, setLinkSync } from '../netlink/link-requests.js';
import { bridgePortData, type LinkAttrs } from '../netlink/tables.js';
import { getLinkBody } from '../netlink/rtnl.js';
import { exchangeSync, openRouteSocket, requestMessage } from '../netlink/wire.js';
import { addFdbSync, fdbDumpSync } from './fdb.js';
import { addBpfFilterSync, addClsactSync, hasGuardFilterSync, qdiscsSync } from './tc.js';
import { setPortFlagsSync } from './apply.js';
import { compileGuard } from './bpf.js';

/** The guard features, in the order reported. */
export const GUARD_FEATURES = ['isolated', 'locked', 'mab', 'sticky FDB', 'clsact', 'cls_bpf'] as const;
/** One of {@link GUARD_FEATURES}. */
export type GuardFeature = (typeof GUARD_FEATURES)[number];

/** What the probe found for one feature: present, or why not (the kernel's words). */
export interface GuardFeatureResult {
  feature: GuardFeature;
  ok: boolean;
  why?: string;
}

/** How long the probe waits for the child to be in its namespace. */
const NAMESPACE_WAIT_MS = 3000;
/** How long the child lives at most if the probe never ends it (it is killed at once normally). */
const HOLDER_SECONDS = 30;

const BRIDGE = 'qbhprobe0';
const PORT = 'qbhprobe1';
const PROBE_MAC = '52:54:00:00:00:01';

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

const nsOf = (pid: number | string) => {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return null;
  }
};

/**
 * Tries each guard feature in a throwaway network namespace and says which work. Throws (one line
 * saying why) when no namespace can be made: not root, or no `unshare`.
 * @category Guard
 */
export function probeGuardFeaturesSync(): GuardFeatureResult[] {
  const own = nsOf('self');
  const child = spawn('unshare', ['--net', '--', 'sleep', String(HOLDER_SECONDS)], { stdio: 'ignore' });
  let nsFd: number | undefined;
  let fd: number | undefined;
  try {
    const deadline = Date.now() + NAMESPACE_WAIT_MS;
    let ns: string | null = null;
    // The child is in its own namespace once unshare(2) returned in it: its ns link differs from ours.
    while (child.pid !== undefined && child.exitCode === null && Date.now() < deadline) {
      ns = nsOf(child.pid);
      if (ns !== null && ns !== own) break;
      ns = null;
      sleep(5);
    }
    if (child.pid === undefined || ns === null) throw new Error('cannot make a network namespace to probe in (unshare --net failed: this needs root)');
    nsFd = openSync(`/proc/${child.pid}/ns/net`, 'r');
    fd = openRouteSocket({ netnsFd: nsFd }).fd;
    return probeIn(fd);
  } finally {
    if (fd !== undefined) native.close(fd);
    if (nsFd !== undefined) closeSync(nsFd);
    child.kill('SIGKILL');
    child.unref();
  }
}

/** The probe proper, on a socket in the throwaway namespace. */
function probeIn(fd: number): GuardFeatureResult[] {
  const create = (attrs: LinkAttrs) => exchangeSync(fd, requestMessage(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, encodeLink({ family: AF_UNSPEC, attrs })), { op: 'createLink', target: attrs.ifname });
  create({ ifname: BRIDGE, linkinfo: { kind: 'bridge' } });
  create({ ifname: PORT, linkinfo: { kind: 'veth' } });
  const bridge = lookupLinkSync(fd, BRIDGE, { op: 'getLink', target: BRIDGE }).index;
  const port = lookupLinkSync(fd, PORT, { op: 'getLink', target: PORT }).index;
  setLinkSync(fd, port, { master: bridge }, PORT);
  const out: GuardFeatureResult[] = [];
  const attempt = (feature: GuardFeature, fn: () => boolean) => {
    try {
      out.push(fn() ? { feature, ok: true } : { feature, ok: false, why: 'accepted but not in effect' });
    } catch (e) {
      out.push({ feature, ok: false, why: e instanceof Error ? e.message : String(e) });
    }
  };
  /** Sets one port flag as the guard does and reads it back: a kernel that does not know the flag ignores it. */
  const flag = (key: 'isolated' | 'locked' | 'mab', type: number) => () => {
    setPortFlagsSync(fd, port, [[type, 1]], PORT);
    const m = exchangeSync(fd, requestMessage(RTM_GETLINK, 0, getLinkBody(port)), { op: 'getLink', target: PORT }).replies.find((r) => r.type === RTM_NEWLINK);
    return m !== undefined && bridgePortData(decodeLink(m.payload).attrs.linkinfo)?.[key] === 1;
  };
  attempt('isolated', flag('isolated', IFLA_BRPORT_ISOLATED));
  attempt('locked', flag('locked', IFLA_BRPORT_LOCKED));
  attempt('mab', flag('mab', IFLA_BRPORT_MAB));
  attempt('sticky FDB', () => {
    addFdbSync(fd, { ifindex: port, mac: PROBE_MAC, sticky: true });
    return fdbDumpSync(fd, { bridge }).some((e) => e.ifindex === port && e.mac === PROBE_MAC && e.sticky && e.static);
  });
  attempt('clsact', () => {
    addClsactSync(fd, port);
    return qdiscsSync(fd, port).some((q) => q.kind === 'clsact');
  });
  attempt('cls_bpf', () => {
    addBpfFilterSync(fd, port, compileGuard({ serverGuard: true }));
    return hasGuardFilterSync(fd, port);
  });
  return out;
}
