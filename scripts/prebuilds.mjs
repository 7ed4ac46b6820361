#!/usr/bin/env node
// Builds the addon's prebuilt binaries into prebuilds/ (the package's `prepack` step, so every
// tarball carries them): prebuilds/linux-x64/qbh.node and prebuilds/linux-arm64/qbh.node, the
// latter with Debian's cross compiler (g++-aarch64-linux-gnu). Without that compiler it fails
// before building anything: a tarball without the arm64 binary would make every arm64 install
// compile. QBH_PREBUILDS=host builds this machine's binary only (a tarball for this machine). The addon is N-API
// (NAPI_VERSION=8 in binding.gyp): one binary per platform and architecture serves every Node ≥ 20.
// An install that finds a binary for its machine compiles nothing (`node-gyp-build`, the install
// step); any other compiles build/Release as before. src/native.ts says which one loads.
//
// The build runs in a scratch copy of the sources, so the tree's own build/Release (which tests may
// be loading at that moment) is never rebuilt under them.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const prebuildify = join(root, 'node_modules', 'prebuildify', 'bin.js');

/** Is `cmd` an executable on PATH? */
function onPath(cmd) {
  return (process.env.PATH ?? '').split(':').some((d) => d !== '' && existsSync(join(d, cmd)));
}

// Cross builds: the compiler prefix Debian's cross toolchains use for each Node architecture.
const CROSS = { arm64: 'aarch64-linux-gnu' };

/** `QBH_PREBUILDS=host`: only this machine's architecture, on purpose. */
const HOST_ONLY = process.env.QBH_PREBUILDS === 'host';
if (process.env.QBH_PREBUILDS !== undefined && !HOST_ONLY) {
  console.error(`prebuilds: QBH_PREBUILDS=${process.env.QBH_PREBUILDS} is not understood (only "host": this machine's architecture only)`);
  process.exit(1);
}
const cross = Object.entries(CROSS).filter(([arch]) => arch !== process.arch && !HOST_ONLY);
const missing = cross.filter(([, prefix]) => !onPath(`${prefix}-g++`));
if (missing.length > 0) {
  const [arch, prefix] = missing[0];
  console.error(
    `prebuilds: cannot build prebuilds/linux-${arch}: no ${prefix}-g++ on PATH (apt-get install g++-${prefix}); ` +
      `a tarball without it makes every ${arch} install compile. QBH_PREBUILDS=host npm pack packs this machine's binary only.`,
  );
  process.exit(1);
}

const env = { ...process.env };
// node-gyp builds against the machine's own Node headers; there is no network to fetch them.
if (!env.npm_config_nodedir && existsSync('/usr/include/node/node_api.h')) env.npm_config_nodedir = '/usr';

// Never ship a binary from an earlier build of other sources.
rmSync(join(root, 'prebuilds'), { recursive: true, force: true });
const scratch = mkdtempSync(join(tmpdir(), 'qbh-prebuild-'));
try {
  for (const f of ['native', 'binding.gyp', 'package.json']) cpSync(join(root, f), join(scratch, f), { recursive: true });
  // binding.gyp asks node-addon-api for its include dir.
  symlinkSync(join(root, 'node_modules'), join(scratch, 'node_modules'));
  const build = (arch, extra = {}, args = []) =>
    execFileSync(process.execPath, [prebuildify, '--napi', '--strip', '--arch', arch, '--cwd', scratch, '--out', root, ...args], {
      cwd: scratch,
      env: { ...env, ...extra },
      stdio: ['ignore', 'inherit', 'inherit'],
    });

  build(process.arch);
  console.log(`prebuilds/linux-${process.arch}/qbh.node: built`);
  for (const [arch, prefix] of cross) {
    rmSync(join(scratch, 'build'), { recursive: true, force: true });
    build(arch, { CC: `${prefix}-gcc`, CXX: `${prefix}-g++`, LINK: `${prefix}-g++`, AR: `${prefix}-ar` }, ['--strip-bin', `${prefix}-strip`]);
    console.log(`prebuilds/linux-${arch}/qbh.node: built with ${prefix}-g++`);
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

// The package's version, so a reader of the log knows which sources these are.
console.log(`prebuilds for qbh ${JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version}`);
if (HOST_ONLY) console.error(`prebuilds: QBH_PREBUILDS=host: linux-${process.arch} only; other machines compile the addon at install`);
