import './harness.js';
import t from 'tap';
import { ipj, sh } from './harness.js';
import { openTap, closeTap, destroyTaps, type Tap } from '../src/tun/index.js';

const N = 1000;
sh('ip', 'link', 'add', 'br0', 'type', 'bridge');
sh('ip', 'link', 'set', 'br0', 'up');
const taps = (): string[] => ipj<{ ifname: string }[]>('link', 'show', 'type', 'tun').map((l) => l.ifname);

t.test(`${N} taps opened on one bridge and closed leave nothing`, async (t) => {
  const t0 = performance.now();
  const open: Tap[] = [];
  for (let i = 0; i < N; i++) open.push(await openTap({ bridge: 'br0' }));
  const t1 = performance.now();
  t.equal(new Set(open.map((x) => x.name)).size, N, 'distinct names');
  const ports = ipj<{ ifname: string }[]>('link', 'show', 'master', 'br0');
  t.equal(ports.length, N, `all ${N} enslaved`);
  // Closing fds one by one costs the kernel a grace period per tap (docs/performance.md): close a sample
  // that way, and the rest with destroyTaps (one RTM_DELLINK for all).
  const ONE_BY_ONE = 100;
  for (const x of open.slice(0, ONE_BY_ONE)) closeTap(x);
  const t2 = performance.now();
  t.equal(taps().length, N - ONE_BY_ONE, 'closed taps are gone, the others stay');
  await destroyTaps(open.slice(ONE_BY_ONE));
  const t3 = performance.now();
  t.same(open.filter((x) => x.fds.length !== 0).map((x) => x.name), [], 'every tap object gave up its fds');
  t.same(taps(), [], 'no tap remains');
  t.same(ipj('link', 'show', 'master', 'br0'), [], 'no port remains');
  t.comment(
    `open+attach ${N}: ${(t1 - t0).toFixed(0)} ms; closeTap ${ONE_BY_ONE}: ${(t2 - t1).toFixed(0)} ms; ` +
      `destroyTaps ${N - ONE_BY_ONE}: ${(t3 - t2).toFixed(0)} ms`,
  );
});
