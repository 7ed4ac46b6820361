import './harness.js';
import t from 'tap';
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { sh } from './harness.js';
import { openTap, closeTap, type Tap } from '../src/tun/index.js';

// A second namespace holds the veth peer; a small python3 AF_PACKET program there plays the far host.
sh('ip', 'link', 'add', 'br0', 'type', 'bridge');
sh('ip', 'link', 'set', 'br0', 'up');
sh('ip', 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1');
sh('ip', 'link', 'set', 'v0', 'master', 'br0', 'up');
// A tmpfs keeps the namespace file in this test's mount namespace (`ip netns add` would otherwise
// leave an empty file in the host's /run/netns); where the host has no /run/netns, the tmpfs goes
// over /run itself, so not even the directory is made on the host.
if (!fs.existsSync('/run/netns')) sh('mount', '-t', 'tmpfs', 'qbh-test-run', '/run');
sh('mkdir', '-p', '/run/netns');
sh('mount', '-t', 'tmpfs', 'qbh-test-netns', '/run/netns');
sh('ip', 'netns', 'add', 'peer');
sh('ip', 'link', 'set', 'v1', 'netns', 'peer');
sh('ip', '-n', 'peer', 'link', 'set', 'v1', 'up');

const PYTHON = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const ETHERTYPE = 0x88b5; // IEEE local experimental: nothing else on the wire uses it
const VNET_HDR_LEN = 10; // struct virtio_net_hdr; the default TUNSETVNETHDRSZ

const PEER = `
import socket, sys, select, time
mode, marker = sys.argv[1], bytes.fromhex(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(${ETHERTYPE}))
s.bind(('v1', 0))
print('ready', flush=True)
deadline = time.time() + 10
if mode == 'recv':
    while time.time() < deadline:
        r, _, _ = select.select([s], [], [], 0.2)
        if r:
            f = s.recv(65536)
            if marker in f:
                print(f.hex(), flush=True)
                sys.exit(0)
    sys.exit(1)
else:
    frame = b'\\xff' * 6 + b'\\x02\\x00\\x00\\x00\\x00\\x99' + (${ETHERTYPE}).to_bytes(2, 'big') + marker + b'\\x00' * 40
    while time.time() < deadline:
        s.send(frame)
        if sys.stdin in select.select([sys.stdin], [], [], 0.1)[0]:
            sys.exit(0)
    sys.exit(1)
`;

function peer(mode: 'recv' | 'send', marker: Buffer) {
  const p = spawn('ip', ['netns', 'exec', 'peer', PYTHON, '-c', PEER, mode, marker.toString('hex')], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const ready = (async () => {
    while (!out.includes('ready')) await Promise.race([once(p.stdout, 'data'), once(p, 'exit').then(() => { throw new Error('peer exited'); })]);
  })();
  const exit = once(p, 'exit').then(([code]) => ({ code: code as number, out }));
  return { p, ready, exit };
}

function frame(marker: Buffer): Buffer {
  const f = Buffer.alloc(64);
  f.fill(0xff, 0, 6); // broadcast: the bridge floods it to v0
  Buffer.from([0x02, 0, 0, 0, 0, 0x42]).copy(f, 6);
  f.writeUInt16BE(ETHERTYPE, 12);
  marker.copy(f, 14);
  return f;
}

/** Reads frames from a non-blocking tap fd until one carries the marker, or the deadline passes. */
async function readFrame(tap: Tap, marker: Buffer, ms: number): Promise<Buffer | undefined> {
  const buf = Buffer.alloc(65536);
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    let n = 0;
    try {
      n = fs.readSync(tap.fds[0]!, buf);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      await sleep(10);
      continue;
    }
    const f = buf.subarray(0, n);
    if (f.includes(marker)) return Buffer.from(f);
  }
  return undefined;
}

for (const vnetHdr of [false, true]) {
  t.test(`frames cross both ways, vnet_hdr ${vnetHdr ? 'on' : 'off'}`, async (t) => {
    const tap = await openTap({ bridge: 'br0', vnetHdr, nonBlocking: true });
    t.teardown(() => closeTap(tap));
    const hdr = Buffer.alloc(vnetHdr ? VNET_HDR_LEN : 0); // flags 0, gso_type VIRTIO_NET_HDR_GSO_NONE

    const out = Buffer.from(`qbh-out-${vnetHdr}`);
    const rx = peer('recv', out);
    await rx.ready;
    const sent = frame(out);
    const timer = setInterval(() => fs.writeSync(tap.fds[0]!, Buffer.concat([hdr, sent])), 50);
    const got = await rx.exit.finally(() => clearInterval(timer));
    t.equal(got.code, 0, 'the peer received the frame written to the tap');
    t.equal(got.out.trim().split('\n').pop()!.slice(0, 128), sent.toString('hex'), 'byte for byte, without the vnet header');

    const back = Buffer.from(`qbh-back-${vnetHdr}`);
    const tx = peer('send', back);
    await tx.ready;
    const f = await readFrame(tap, back, 10_000);
    tx.p.stdin.end('done\n');
    await tx.exit;
    t.ok(f, 'the frame the peer sent was read from the tap fd');
    const eth = f!.subarray(hdr.length);
    t.equal(eth.readUInt16BE(12), ETHERTYPE, vnetHdr ? 'after a 10-byte virtio_net_hdr, an Ethernet header' : 'a bare Ethernet frame');
    t.same([...eth.subarray(0, 6)], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    t.equal(eth.subarray(14, 14 + back.length).toString(), back.toString());
    if (vnetHdr) t.same([...f!.subarray(0, VNET_HDR_LEN)], Array(VNET_HDR_LEN).fill(0), 'an all-zero virtio_net_hdr (no offload)');
  });
}
