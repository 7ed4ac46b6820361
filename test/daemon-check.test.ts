// A check says what a tap request would do (issue 20, finding 9): the daemon's `check` request and
// `qbh acl check` find the bridge through the kernel as a tap request does, so an altname of a denied
// bridge is denied by all three. Private netns, mount ns, /etc/qemu and /run/qbh (harness).
import './harness.js';
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { privateEtcQemu, privateRunQbh, sh } from './harness.js';
import { CLEAN, NOBODY, ROOT, SOCKET, handOff, startDaemon, taps, type Daemon } from './daemon-lib.js';

execFileSync(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs')], { stdio: 'inherit' });
privateEtcQemu();
privateRunQbh();
// lan0 is an altname of br0: `allow lan0` names the device br0 denies.
writeFileSync('/etc/qemu/bridge.conf', 'allow lan0\ndeny br0\nallow br1\n', { mode: 0o644 });
sh('ip', 'link', 'add', 'br0', 'type', 'bridge');
sh('ip', 'link', 'property', 'add', 'dev', 'br0', 'altname', 'lan0');
sh('ip', 'link', 'add', 'br1', 'type', 'bridge');

/** A check request as uid 65534, the reply parsed (a Python client: one JSON line each way). */
function ask(line: string): any {
  const py = `import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(${JSON.stringify(SOCKET)})\ns.sendall(sys.argv[1].encode()+b"\\n")\nb=b""\nwhile not b.endswith(b"\\n"):\n  c=s.recv(65536)\n  if not c: break\n  b+=c\nprint(b.decode(),end="")`;
  const r = spawnSync(CLEAN[0]!, [...CLEAN.slice(1), ...NOBODY, 'python3', '-c', py, line], { encoding: 'utf8' });
  return JSON.parse(r.stdout);
}

let daemon: Daemon;
t.before(async () => {
  daemon = await startDaemon();
});
t.teardown(async () => {
  await daemon.stop();
});

t.test('an altname of a denied bridge: tap, check request and qbh acl check all deny', async (t) => {
  const tap = handOff(['--use-vnet', '--br=lan0', '--fd=3']);
  t.equal(tap.stderr, 'access denied by acl file\n', 'the tap request');
  const one = ask('{"v":1,"op":"check","bridge":"lan0"}');
  t.match(one.bridge, { name: 'lan0', allowed: false, reason: /^denied: "deny br0" at \/etc\/qemu\/bridge.conf:2 \(br0 is another name of the device "lan0" names\)/ }, 'the check request');
  t.same(ask('{"v":1,"op":"check"}').bridges, ['br1'], 'the list: lan0 is br0, denied');
  const cli = spawnSync(join(ROOT, 'bin', 'qbh'), ['acl', 'check', '--bridge', 'lan0', '--user', 'nobody'], { encoding: 'utf8' });
  t.equal(cli.status, 1, 'qbh acl check');
  t.match(cli.stdout, /^denied: "deny br0"/);
  t.same(taps(), []);
});

t.test('and they agree where it is allowed', async (t) => {
  t.equal(handOff(['--use-vnet', '--br=br1', '--fd=3']).status, 0);
  t.match(ask('{"v":1,"op":"check","bridge":"br1"}').bridge, { allowed: true });
  t.equal(spawnSync(join(ROOT, 'bin', 'qbh'), ['acl', 'check', '--bridge', 'br1', '--user', 'nobody']).status, 0);
});
