// The helper fails closed, as QEMU and an observer of the kernel see it: a closed --fd is reported
// with the C message even when the helper's own netlink socket or tap lands on that number (a
// 1-byte sendmsg to its own netlink socket would succeed and the helper exit 0), and a denied
// bridge never has a tap made for it, not even for a moment (rtnetlink is watched meanwhile).
import './harness.js';
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { AS_NOBODY, CLEAN_ENV, HELPER, bundle, handOff, privateTunNode, runBare } from './helper-lib.js';
import { linkNames, privateEtcQemu, sh } from './harness.js';
import { monitor, type MonitorEvent } from '../src/netlink/monitor.js';

bundle();
privateEtcQemu(); // a tmpfs over /etc/qemu, in this test's mount namespace only
privateTunNode('/etc/qemu/.dev');
writeFileSync('/etc/qemu/bridge.conf', 'allow br0\nallow br1\ndeny br1\n', { mode: 0o644 });
sh('ip', 'link', 'add', 'br0', 'type', 'bridge');
sh('ip', 'link', 'add', 'br1', 'type', 'bridge');
sh('ip', 'link', 'add', 'br9', 'type', 'bridge');
const FIXTURES = new Set(linkNames());
const leftovers = () => linkNames().filter((n) => !FIXTURES.has(n));
const BAD_FD = 'failed to write fd to unix socket: Bad file descriptor\n';
const NOT_SOCKET = 'failed to write fd to unix socket: Socket operation on non-socket\n';
/** How far past the helper's first own fd the sweep goes (its netlink socket and tap come first). */
const SWEEP = 12;

t.test('--fd=N closed: the C message, exit 1, no tap — whatever fd the helper itself opens', async (t) => {
  // Which numbers the helper's own netlink socket(s) and /dev/net/tun get when N is closed: learned
  // from the real program under strace, so the sweep below provably covers them.
  const trace = '/etc/qemu/.strace';
  const traced = spawnSync('strace', ['-f', '-qq', '-e', 'trace=socket,openat', '-o', trace, ...CLEAN_ENV, HELPER, '--br=br0', '--fd=99'], { encoding: 'utf8' });
  t.equal(traced.stderr, BAD_FD, 'under strace too');
  const log = readFileSync(trace, 'utf8');
  const own = [
    ...[...log.matchAll(/socket\(AF_NETLINK, .*\) = (\d+)/g)].map((m) => Number(m[1])),
    ...[...log.matchAll(/openat\(.*"\/dev\/net\/tun", .*\) = (\d+)/g)].map((m) => Number(m[1])),
  ];
  t.ok(own.length >= 2, `the helper opened a netlink socket and the tun device (fds ${own.join(', ')})`);
  const first = Math.min(...own);
  t.ok(Math.max(...own) <= first + SWEEP, `all within ${first}…${first + SWEEP}, the numbers swept`);

  const wrong: string[] = [];
  for (let fd = 3; fd <= first + SWEEP; fd++) {
    for (const prefix of [[], AS_NOBODY]) {
      const r = await runBare(['--use-vnet', '--br=br0', `--fd=${fd}`], prefix);
      // Below the helper's first own fd sit Node's own descriptors (epoll, eventfd, pipes): open at
      // start, so the send is tried and fails on a non-socket (docs/helper.md, "Deviations").
      const ok = r.status === 1 && (r.stderr === BAD_FD || (fd < first && r.stderr === NOT_SOCKET));
      if (!ok) wrong.push(`--fd=${fd}${prefix.length ? ' as uid 65534' : ''}: exit ${r.status}, ${JSON.stringify(r.stderr)}`);
    }
  }
  t.same(wrong, [], `--fd=3…${first + SWEEP}, as root and as uid 65534: exit 1 with the C message every time`);
  t.same(leftovers(), [], 'no tap left behind');
});

/** Events until the marker link appears: everything the kernel announced while `act` ran. */
async function watch(act: () => void): Promise<MonitorEvent[]> {
  const it = monitor({ groups: ['link'] });
  const first = it.next(); // joins the groups synchronously, before `act` runs
  act();
  sh('ip', 'link', 'add', 'mark0', 'type', 'bridge');
  const evs: MonitorEvent[] = [];
  const timer = setTimeout(() => void it.return(undefined), 10_000);
  for (let r = await first; !r.done; r = await it.next()) {
    evs.push(r.value);
    if (r.value.type === 'link' && r.value.link.ifname === 'mark0') break;
  }
  clearTimeout(timer);
  await it.return(undefined);
  sh('ip', 'link', 'del', 'mark0');
  return evs;
}
const tunLinks = (evs: MonitorEvent[]) =>
  evs.flatMap((e) => (e.type === 'link' && e.link.linkinfo?.info_kind === 'tun' ? [e.link.ifname] : []));

t.test('a denied bridge: no tap exists at any moment (rtnetlink watched throughout)', async (t) => {
  const allowed = await watch(() => t.equal(handOff(['--br=br0', '--fd=3']).status, 0, 'control: br0 is allowed'));
  t.ok(tunLinks(allowed).length > 0, `control: the monitor sees the allowed tap come and go (${tunLinks(allowed).join(', ')})`);
  t.ok(allowed.some((e) => e.type === 'link' && e.link.ifname === 'mark0'), 'and the marker after it');

  const denied = await watch(() => {
    for (const [args, prefix, why] of [
      [['--use-vnet', '--br=br9', '--fd=3'], [], 'no rule allows br9'],
      [['--br=br1', '--fd=3'], [], 'deny br1 beats allow br1'],
      [['--use-vnet', '--br=br9', '--fd=3'], AS_NOBODY, 'as uid 65534'],
      [['--br=br1', '--fd=3', '--ifname=vm%d'], AS_NOBODY, 'with --ifname, as uid 65534'],
    ] as const) {
      const r = handOff([...args], [...prefix]);
      t.equal(r.status, 1, `${why}: exit 1`);
      t.equal(r.stderr, 'access denied by acl file\n', `${why}: the C message`);
      t.equal(r.fds, 0, `${why}: no fd`);
    }
  });
  t.same(tunLinks(denied), [], 'no RTM_NEWLINK for a tun device while the helper was denying');
  t.ok(denied.some((e) => e.type === 'link' && e.link.ifname === 'mark0'), 'the monitor was listening all along (it saw the marker)');
  t.same(leftovers(), []);
});
