#!/usr/bin/env node
// Bundles the three programs into one CommonJS file each, so they start without the ESM loader and
// a module graph (docs/helper.md, "Start-up"):
//   src/helper/run.ts → dist/qemu-bridge-helper.cjs   (bin/qemu-bridge-helper links to it)
//   src/cli/main.ts   → dist/qbh.cjs                  (bin/qbh links to it)
//   src/cli/qbhd.ts   → dist/qbhd.cjs                 (bin/qbhd links to it; qbhd.service runs it)
// Each is split into a small loader (dist/NAME.cjs), the body and a V8 code cache for it
// (scripts/code-cache.mjs; what it saves per attach: docs/performance.md, "Changes kept").
// The native addon is not bundled: it loads from build/Release or prebuilds/linux-ARCH relative to
// the package root (src/native.ts, addonPath), and the bundles sit in dist/, one level below the
// root like every other module (src/root.ts).
import { build } from 'esbuild';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { helperShebang } from './launcher.mjs';
import { bodyId, groupLoader, loader, wrapBody, writeAtomic, writeCodeCache } from './code-cache.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// ip-address is in no bundle: src/netlink/cidr.ts requires it at run time, on the first address
// parsed, from the package's node_modules: its module body alone was a measurable share of every
// `qbh` command (docs/performance.md, "Listing").
// The helper never parses an address; `external` keeps it out should a static import come back.
// The helper may hold CAP_NET_ADMIN: it starts with an empty environment under this very node
// (scripts/launcher.mjs); the install step rewrites that line for the installing machine's node.
const targets = [
  // The helper speaks rtnetlink through src/netlink/link-requests.ts on the wire core (wire.ts): the
  // generic codec in its bundle made each attach slower to deserialise and run (docs/performance.md,
  // "Helper attach"), so a change that brings any of it back fails the build rather than slowing
  // every VM start unnoticed.
  {
    entry: 'src/helper/run.ts', out: 'qemu-bridge-helper.cjs', from: 'src/helper', external: ['ip-address'], shebang: helperShebang(process.execPath, process.env.QBH_BUILD_HELPER_ENV ?? ''), flags: [],
    forbidden: ['src/netlink/rtnl.ts', 'src/netlink/attr.ts', 'src/netlink/tables.ts', 'src/netlink/fast-objects.ts', 'src/netlink/message.ts', 'src/netlink/present.ts', 'src/netlink/socket.ts', 'src/tun/tap.ts'],
  },
  { entry: 'src/cli/main.ts', out: 'qbh.cjs', from: 'src/cli', external: [], shebang: '#!/usr/bin/env node', flags: [] },
  // A long-running daemon: V8's young generation capped at 1 MiB semi-spaces keeps its RSS well
  // below the default's after a few thousand requests, with no loss of throughput (measured:
  // docs/daemon.md, "Measurements"). qbhd.service names node and this flag itself (an absolute
  // interpreter, no PATH).
  { entry: 'src/cli/qbhd.ts', out: 'qbhd.cjs', from: 'src/cli/qbhd.ts', external: [], shebang: '#!/usr/bin/env -S node --max-semi-space-size=1', flags: ['--max-semi-space-size=1'] },
];

// dist/qbh is also split by its first argument: `qbh bridge …` reads, deserialises and runs a body
// with the bridge commands alone (src/cli/groups.ts), a third of the whole CLI's; anything else
// runs the whole one. The list is read from the source, as the bodies are.
const groupsModule = await build({ absWorkingDir: root, entryPoints: ['src/cli/groups.ts'], bundle: true, write: false, platform: 'node', format: 'esm', logLevel: 'warning' });
const { COMMAND_GROUPS, groupEntry } = await import(`data:text/javascript,${encodeURIComponent(groupsModule.outputFiles[0].text)}`);
targets[1].groups = COMMAND_GROUPS.map((g) => ({ word: g.word, stdin: { contents: groupEntry(g), resolveDir: join(root, 'src', 'cli'), sourcefile: `src/cli/${g.word}-group.ts`, loader: 'ts' } }));

/** The paths whose file URL is `file://` + the path: every pathToFileURL would return it unchanged. */
const FILE_URL = String.raw`/^(\/(?!\.\.?(\/|$))[\w.@+-]+)+$/`;

/**
 * In a bundle, `createRequire(import.meta.url)` is the bundle's own require: the loader's, for a
 * module in dist/ (scripts/code-cache.mjs), which resolves exactly as one made for that URL would.
 * Without loading node:module, whose public module pulls in the ESM loader and source maps.
 */
const OWN_REQUIRE = {
  name: 'own-require',
  setup(b) {
    b.onResolve({ filter: /^(node:)?module$/ }, (args) =>
      args.namespace === 'qbh' ? { path: 'node:module', external: true } : { path: 'own-require', namespace: 'qbh' },
    );
    b.onLoad({ filter: /^own-require$/, namespace: 'qbh' }, () => ({
      contents: "export const createRequire = (url) => (url === __qbh_import_meta_url ? require : require('node:module').createRequire(url));",
      loader: 'js',
    }));
  },
};

/**
 * Bundles one body (`entry`, or `stdin` source) as `base`.ID.body.cjs with its code cache; returns ID.
 * Throws if the body would hold a module of `forbidden`.
 */
async function writeBody(base, { entry, stdin }, external, flags, forbidden = []) {
  const result = await build({
    absWorkingDir: root,
    ...(stdin ? { stdin } : { entryPoints: [entry] }),
    outfile: `${base}.cjs`,
    bundle: true,
    external,
    plugins: [OWN_REQUIRE],
    write: false,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    // Fewer bytes to read and parse at every start; messages are string literals and stay as they are.
    minify: true,
    legalComments: 'none',
    logLevel: 'warning',
    metafile: forbidden.length > 0,
    // import.meta.url does not exist in CommonJS: stand in the bundle's own file URL.
    define: { 'import.meta.url': '__qbh_import_meta_url' },
    // A plain absolute path (no `.`/`..` segment, nothing a URL escapes) is its file URL as it is,
    // without pathToFileURL's first call, a measurable share of a `qbh bridge list` (docs/performance.md,
    // "Listing").
    banner: {
      js: ["'use strict';", `var __qbh_import_meta_url = ${FILE_URL}.test(__filename) ? 'file://' + __filename : require('node:url').pathToFileURL(__filename).href;`].join('\n'),
    },
  });
  const present = forbidden.filter((f) => result.metafile?.inputs[f] !== undefined);
  if (present.length > 0) throw new Error(`bundle: ${basename(base)} must not hold ${present.join(', ')} (see the comment on its target)`);
  const body = wrapBody(result.outputFiles[0].text);
  const id = bodyId(body);
  writeAtomic(`${base}.${id}.body.cjs`, body, 0o644);
  if (!writeCodeCache(`${base}.${id}.body.cjs`, `${base}.${id}.code-cache`, process.execPath, flags)) {
    console.warn(`bundle: no V8 code cache for ${basename(base)}.${id}.body.cjs (this node rejects its own): it starts without one`);
  }
  return id;
}

for (const { entry, out, from, external, shebang, flags, groups = [], forbidden = [] } of targets) {
  const outfile = join(root, 'dist', out);
  mkdirSync(dirname(outfile), { recursive: true });
  const base = outfile.slice(0, -'.cjs'.length);
  // Bodies and caches first, the loader that names them last (renamed into place): a program
  // started meanwhile runs the old set or the new one. Then the old sets go.
  const id = await writeBody(base, { entry }, external, flags, forbidden);
  const groupIds = {};
  for (const g of groups) groupIds[g.word] = await writeBody(base, g, external, flags);
  const text = groups.length > 0 ? groupLoader(id, groupIds) : loader(id);
  writeAtomic(outfile, [shebang, `// Generated by scripts/bundle.mjs from ${from}: do not edit.`, text, ''].join('\n'), 0o755);
  const stem = out.slice(0, -'.cjs'.length);
  const current = new Set([id, ...Object.values(groupIds)]);
  for (const f of readdirSync(dirname(outfile))) {
    const m = /^[^.]+(\.[^.]+)?\.([0-9a-f]{16})\.(body\.cjs|code-cache)$/.exec(f);
    if (f.startsWith(`${stem}.`) && m && !current.has(m[2])) rmSync(join(dirname(outfile), f), { force: true });
  }
}
