// Revocation of taps the daemon handed out (docs/daemon.md "Revocation"). A tap fd is full control:
// its holder, uid 4242 with no capabilities, makes the tap persistent and its own (TUNSETPERSIST,
// TUNSETOWNER) and could attach to it again after closing it. On SIGHUP the daemon decides every
// live tap it made again and deletes those the ACL no longer allows, and those made persistent
// and left unattached; then neither the old fd nor a new TUNSETIFF gets the tap back.
// Private netns, mount ns, /etc/qemu, /run/qbh and a 0666 /dev/net/tun node (harness).
import './harness.js';
import t, { type Test } from 'tap';
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ipj, privateEtcQemu, privateRunQbh, sh } from './harness.js';
import { CLEAN, ROOT, SOCKET, logged, startDaemon, taps, until, type Daemon } from './daemon-lib.js';
import { attachTap } from '../src/attach/tap.js';
import { native } from '../src/native.js';
import { Rtnl } from '../src/netlink/rtnl.js';
import { PRUNE_MIN, TapRegistry } from '../src/daemon/revoke.js';
import type { Peer } from '../src/daemon/peer.js';

execFileSync(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs')], { stdio: 'inherit' });
privateEtcQemu();
privateRunQbh();
// This machine's /dev/net/tun is 0600; distributions ship 0666, which lets an owner attach again.
const devDir = join(process.env.QBH_TEST_SCRATCH!, 'dev');
mkdirSync(devDir, { mode: 0o700 });
sh('mknod', join(devDir, 'tun'), 'c', '10', '200');
chmodSync(join(devDir, 'tun'), 0o666);
sh('mount', '--bind', join(devDir, 'tun'), '/dev/net/tun');
for (const br of ['br0', 'br1']) sh('ip', 'link', 'add', br, 'type', 'bridge');

const ACL = '/etc/qemu/bridge.conf';
const setAcl = (lines: string[]) => writeFileSync(ACL, `${lines.join('\n')}\n`, { mode: 0o644 });

const as = (uid: number) => ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all'];

/**
 * A tap holder in Python: asks the daemon for a tap, keeps the fd, and runs one command per line
 * on it, answering one JSON line each: `persist` (TUNSETOWNER to itself + TUNSETPERSIST),
 * `read` (TUNGETIFF on the fd), `close`, `attach` (TUNSETIFF on a new /dev/net/tun fd, as its
 * owner may), `quit`. An OSError is answered as its errno name.
 */
const HOLDER = String.raw`
import errno, fcntl, json, os, socket, struct, sys
TUNSETIFF, TUNSETPERSIST, TUNSETOWNER, TUNGETIFF = 0x400454ca, 0x400454cb, 0x400454cc, 0x800454d2
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(json.dumps({"v": 1, "op": "tap", "bridge": sys.argv[2], "vnet_hdr": False}).encode() + b"\n")
data, fds, _, _ = socket.recv_fds(s, 65536, 1)
reply = json.loads(data); fd = fds[0] if fds else -1
print(json.dumps({"reply": reply, "fd": fd}), flush=True)
def ifreq(name): return name.encode().ljust(16, b"\0") + struct.pack("H", IFF_TAP | IFF_NO_PI) + bytes(22)
extra = []
for line in sys.stdin:
    cmd = line.strip()
    try:
        if cmd == "persist":
            fcntl.ioctl(fd, TUNSETOWNER, os.getuid()); fcntl.ioctl(fd, TUNSETPERSIST, 1); out = "ok"
        elif cmd == "read":
            out = fcntl.ioctl(fd, TUNGETIFF, bytes(40))[:16].rstrip(b"\0").decode()
        elif cmd == "close":
            os.close(fd); out = "ok"
        elif cmd == "attach":
            f = os.open("/dev/net/tun", os.O_RDWR); extra.append(f)
            fcntl.ioctl(f, TUNSETIFF, ifreq(reply["tap"])); out = "ok"
        elif cmd == "detach":
            for f in extra: os.close(f)
            extra = []; out = "ok"
        else:
            break
    except OSError as e:
        out = errno.errorcode.get(e.errno, str(e.errno))
    print(json.dumps(out), flush=True)
`;

/** One holder process, driven line by line. */
class Holder {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterableIterator<string>;
  tap = '';

  constructor(uid: number, bridge: string) {
    this.child = spawn(CLEAN[0]!, [...CLEAN.slice(1), ...as(uid), 'python3', '-c', HOLDER, SOCKET, bridge]);
    this.lines = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  private async next(): Promise<unknown> {
    const r = await this.lines.next();
    if (r.done) throw new Error('holder exited');
    return JSON.parse(r.value);
  }

  /** Waits for the daemon's reply; the tap's name. */
  async start(): Promise<string> {
    const first = (await this.next()) as { reply: { ok: boolean; tap?: string; message?: string }; fd: number };
    if (!first.reply.ok || first.fd < 0) throw new Error(`no tap: ${JSON.stringify(first.reply)}`);
    this.tap = first.reply.tap!;
    return this.tap;
  }

  async run(cmd: 'persist' | 'read' | 'close' | 'attach' | 'detach'): Promise<string> {
    this.child.stdin.write(`${cmd}\n`);
    return (await this.next()) as string;
  }

  async quit(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.stdin.end();
    await exited;
  }
}

interface TunLink {
  ifindex: number;
  ifname: string;
  master?: string;
  linkinfo?: { info_data?: { persist?: boolean; user?: string | number } };
}
const link = (name: string): TunLink | undefined => ipj<TunLink[]>('-d', 'link', 'show', 'type', 'tun').find((l) => l.ifname === name);

let daemon: Daemon;
/** SIGHUP, then the reload line it logs (the n-th one). */
async function reload(t: Test, n: number): Promise<string> {
  daemon.child.kill('SIGHUP');
  const re = /qbhd: reload: .*/g;
  t.ok(await until(() => (daemon.log().match(re)?.length ?? 0) >= n), 'the daemon logged its reload');
  return daemon.log().match(re)![n - 1]!;
}
let reloads = 0;

t.before(async () => {
  setAcl(['allow br0', 'allow br1']);
  daemon = await startDaemon();
});
t.teardown(async () => {
  await daemon.stop();
});

t.test('a persistent tap of a user the ACL now denies is deleted on SIGHUP; an allowed one is untouched', async (t) => {
  setAcl(['allow br0', 'allow br1']);
  const mallory = new Holder(4242, 'br0');
  const alice = new Holder(4243, 'br1');
  const mtap = await mallory.start();
  const atap = await alice.start();
  t.equal(await mallory.run('persist'), 'ok', 'the holder makes its tap persistent and its own: no capability needed');
  t.equal(link(mtap)?.linkinfo?.info_data?.persist, true);
  t.equal(String(link(mtap)?.linkinfo?.info_data?.user), '4242', 'owned by its holder');
  // What revocation is up against: closed, the tap stays, and its owner attaches to it again.
  t.equal(await mallory.run('close'), 'ok');
  t.equal(link(mtap)?.master, 'br0', 'the persistent tap outlives its fd, on the bridge');
  t.equal(await mallory.run('attach'), 'ok', 'its owner attaches to it again');
  const aliceBefore = link(atap)!;

  setAcl(['deny-user 4242 br0', 'allow br0', 'allow br1']);
  t.equal(link(mtap)?.master, 'br0', 'an ACL change alone takes nothing back');
  const line = await reload(t, ++reloads);
  t.equal(line, 'qbhd: reload: 1 tap revoked, 1 kept, 0 gone already');
  t.same(link(mtap), undefined, 'the denied tap is gone');
  t.ok(await logged(daemon, new RegExp(`qbhd: revoked uid=4242 gid=4242 .* bridge=br0 tap=${mtap} reason=acl rule=/etc/qemu/bridge.conf:1`)));
  t.notMatch(daemon.log(), new RegExp(`revoked uid=4243`), 'no revoked line for the allowed tap');
  t.same(link(atap), aliceBefore, 'the allowed tap is untouched (same ifindex, bridge, everything)');
  t.equal(await alice.run('read'), atap, "the allowed holder's fd still works");

  t.equal(await mallory.run('detach'), 'ok');
  t.equal(await mallory.run('attach'), 'EPERM', 'the revoked tap cannot be attached again (making it takes CAP_NET_ADMIN)');
  t.same(taps(), [atap]);
  await mallory.quit();
  await alice.quit();
});

t.test("the holder's own fd is dead after revocation", async (t) => {
  setAcl(['allow br0']);
  const h = new Holder(4242, 'br0');
  const tap = await h.start();
  t.equal(await h.run('read'), tap);
  setAcl(['allow br1']);
  // Alice's tap of the test before went with her fd: forgotten now.
  t.equal(await reload(t, ++reloads), 'qbhd: reload: 1 tap revoked, 0 kept, 1 gone already');
  t.same(link(tap), undefined);
  t.ok(await logged(daemon, new RegExp(`qbhd: revoked uid=4242 .* bridge=br0 tap=${tap} reason=acl rule=default-deny`)));
  t.equal(await h.run('read'), 'EBADFD', 'the fd the daemon handed out no longer reaches any tap');
  await h.quit();
});

t.test('a tap made persistent and left unattached is deleted even while allowed; one in use is kept', async (t) => {
  setAcl(['allow br0']);
  const left = new Holder(4242, 'br0');
  const kept = new Holder(4242, 'br0');
  const ltap = await left.start();
  const ktap = await kept.start();
  t.equal(await left.run('persist'), 'ok');
  t.equal(await left.run('close'), 'ok');
  t.equal(await kept.run('persist'), 'ok');
  t.equal(await reload(t, ++reloads), 'qbhd: reload: 1 tap revoked, 1 kept, 0 gone already');
  t.same(link(ltap), undefined, 'persistent, nobody attached: deleted');
  t.ok(await logged(daemon, new RegExp(`qbhd: revoked uid=4242 .* bridge=br0 tap=${ltap} reason=persistent rule=/etc/qemu/bridge.conf:1`)));
  t.equal(link(ktap)?.linkinfo?.info_data?.persist, true, 'persistent, still attached and allowed: kept');
  t.equal(await kept.run('close'), 'ok');
  await left.quit();
  await kept.quit();
  t.equal(await reload(t, ++reloads), 'qbhd: reload: 1 tap revoked, 0 kept, 0 gone already', 'once let go, it goes too');
  t.same(taps(), []);
});

t.test('revoking taps already gone is quiet; so is a reload with nothing handed out', async (t) => {
  setAcl(['allow br0']);
  const closed = new Holder(4242, 'br0');
  const deleted = new Holder(4242, 'br0');
  await closed.start();
  const dtap = await deleted.start();
  t.equal(await deleted.run('persist'), 'ok');
  await closed.quit(); // non-persistent: gone with its fd
  sh('ip', 'link', 'del', dtap); // deleted by someone else
  await deleted.quit();
  setAcl(['allow br1']);
  const before = daemon.log();
  t.equal(await reload(t, ++reloads), 'qbhd: reload: 0 taps revoked, 0 kept, 2 gone already');
  t.equal(await reload(t, ++reloads), 'qbhd: reload: 0 taps revoked, 0 kept, 0 gone already', 'forgotten: not counted again');
  const added = daemon.log().slice(before.length);
  t.notMatch(added, /revoked uid=|cannot revoke|error/, 'no revoked or error line');
  t.equal(daemon.child.exitCode, null, 'SIGHUP does not stop the daemon');
});

t.test('an ACL that cannot be read denies: every tap is revoked, as every new one is refused', async (t) => {
  setAcl(['allow br0']);
  const h = new Holder(4242, 'br0');
  const tap = await h.start();
  chmodSync(ACL, 0o666); // insecure: hardening refuses to decide on it
  t.equal(await reload(t, ++reloads), 'qbhd: reload: 1 tap revoked, 0 kept, 0 gone already');
  t.ok(await logged(daemon, new RegExp(`qbhd: revoked uid=4242 .* tap=${tap} reason=acl rule="error: `)));
  chmodSync(ACL, 0o644);
  await h.quit();
});

t.test("the daemon's memory of taps stays bounded by the taps alive", async (t) => {
  // The registry itself (the daemon's own object), fed as the server feeds it: 150 taps held, then
  // 350 made and closed at once, as QEMU runs come and go, with no reload in between.
  const LIVE = 150;
  const registry = new TapRegistry({ aclPath: ACL, log: (line) => t.fail(line) });
  const rtnl = Rtnl.openSync();
  const held: number[] = [];
  let largest = 0;
  const peer: Peer = { uid: 4242, person: 4242, gid: 4242, groups: [], ns: null, pid: 0, comm: '?', parentComm: '?', cwd: '/' };
  try {
    for (let i = 0; i < LIVE + 350; i++) {
      const tap = attachTap({ bridge: 'br0', vnetHdr: false, ifname: null, rtnl });
      registry.remember({ ifindex: tap.ifindex, name: tap.name, request: { op: 'tap', bridge: 'br0', vnetHdr: false, ifname: null }, peer });
      if (i < LIVE) held.push(tap.fd);
      else native.close(tap.fd);
      largest = Math.max(largest, registry.size);
    }
  } finally {
    for (const fd of held) native.close(fd);
    rtnl.close();
  }
  t.ok(largest <= Math.max(PRUNE_MIN, 2 * (LIVE + 1)), `at most twice the live taps remembered (largest ${largest})`);
  t.ok(largest >= LIVE, 'every live tap is remembered');
  t.same(taps(), []);
});
