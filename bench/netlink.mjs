// Netlink benchmarks (not a test): decode throughput of a 10 000-link dump, and listLinks() at
// 1000 and 10 000 links against `ip -j -d link show` in the same run. Runs in a network namespace
// of its own (re-executes itself under `unshare -n`); needs root and a build (`npm run build`).
//   node bench/netlink.mjs [--sizes 1000,10000] [--runs 7]
import { execFileSync, spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';

if (process.env.QBH_BENCH_NETNS !== '1') {
  const r = spawnSync('unshare', ['-n', process.execPath, ...process.argv.slice(1)], { stdio: 'inherit', env: { ...process.env, QBH_BENCH_NETNS: '1' } });
  process.exit(r.status ?? 1);
}

const { values } = parseArgs({ options: { sizes: { type: 'string', default: '1000,10000' }, runs: { type: 'string', default: '7' } } });
const sizes = values.sizes.split(',').map(Number);
const runs = Number(values.runs);

const { Rtnl } = await import('../dist/index.js');
const { decodeMessages, decodeLink, splitMessages } = await import('../dist/netlink/message.js');
const { IFLA_SHOWN } = await import('../dist/netlink/present.js');
const { rawLinkDump } = await import('./lib.mjs');

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (ns) => Number(ns) / 1e6;
const time = async (fn) => {
  const t0 = process.hrtime.bigint();
  await fn();
  return ms(process.hrtime.bigint() - t0);
};

let have = 0;
/** Grows the namespace to `n` persistent taps, as cheaply as iproute2 allows. */
function growTo(n) {
  const cmds = [];
  for (let i = have; i < n; i++) cmds.push(`tuntap add bt${i} mode tap`);
  if (cmds.length) execFileSync('ip', ['-batch', '-'], { input: cmds.join('\n') });
  have = n;
}


const rtnl = await Rtnl.open();
console.log(`listLinks() vs ip -j -d link show, ${runs} runs each, interleaved; medians`);
for (const n of sizes) {
  growTo(n);
  const ours = [];
  const theirs = [];
  for (let i = 0; i < runs; i++) {
    ours.push(await time(() => rtnl.listLinks()));
    theirs.push(await time(() => execFileSync('ip', ['-j', '-d', 'link', 'show'], { maxBuffer: 1 << 30 })));
  }
  const o = median(ours);
  const t = median(theirs);
  console.log(`  ${String(n + 1).padStart(6)} links: qbh listLinks ${o.toFixed(1)} ms, ip -j -d ${t.toFixed(1)} ms, ratio ${(o / t).toFixed(2)}x`);
}

const datagrams = await rawLinkDump();
const bytes = datagrams.reduce((s, d) => s + d.length, 0);
const links = datagrams.flatMap((d) => decodeMessages(d)).filter((m) => m.kind === 'link').length;
const decodeRuns = [];
for (let i = 0; i < runs; i++) decodeRuns.push(await time(() => datagrams.forEach((d) => decodeMessages(d))));
const d = median(decodeRuns);
console.log(`decode: ${links} links in ${datagrams.length} datagrams (${(bytes / 1e6).toFixed(1)} MB): ${d.toFixed(1)} ms median, ` +
  `${Math.round(links / (d / 1000))} links/s, ${(bytes / 1e6 / (d / 1000)).toFixed(0)} MB/s`);
const shownRuns = [];
for (let i = 0; i < runs; i++) shownRuns.push(await time(() => datagrams.forEach((g) => splitMessages(g).forEach((m) => m.type === 16 && decodeLink(m.payload, IFLA_SHOWN)))));
const s = median(shownRuns);
console.log(`listing decode (the attributes listLinks() prints, IFLA_SHOWN): ${s.toFixed(1)} ms median, ` +
  `${Math.round(links / (s / 1000))} links/s, ${(bytes / 1e6 / (s / 1000)).toFixed(0)} MB/s`);
rtnl.close();
