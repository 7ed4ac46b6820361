// V8 code cache for the bundles (Node 20 has no module.enableCompileCache): a program's start is
// mostly compiling it, and the helper's goal leaves it little time above `node -e 0` for all its
// work (docs/performance.md, "Helper attach"). scripts/bundle.mjs splits each bundle in three:
//
//   dist/NAME.cjs              the #! line and the loader below: what QEMU, bin/ and units run;
//   dist/NAME.ID.body.cjs      the esbuild output, wrapped as `(function (exports, require, module,
//                              __filename, __dirname) {…})`, run by the loader with the loader's own
//                              module, require and __filename (so dist/ stays the bundle's directory);
//   dist/NAME.ID.code-cache    V8's compiled code for that body, made at build (and install) time.
//
// ID is a hash of the body, named in the loader: V8 checks a cache only against its own version,
// its flags and the source's LENGTH, so a body and a cache must never be paired by name alone (a
// rebuilt body of the same length would run the old body's bytecode). The loader is renamed into
// place last, so a program started during a rebuild runs one consistent set. A cache V8 rejects
// (another node, flags) is ignored and the body compiles as before.
//
// The cache is made eagerly (--no-lazy while compiling, then the flag put back so the cache carries
// the flag hash a plain `node` checks): every function is in it, not only the top level, which is
// what pays (measured on the helper's own JavaScript per attach, against a cache of the top level
// alone: docs/performance.md, "Changes kept" and "Tried and dropped"). The files sit beside the
// loader in dist/, written by the same build:
// they are trusted exactly as the bundle is, and nothing is read from the environment or the
// working directory (docs/helper.md, "Trust model").
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, renameSync, rmSync, writeFileSync } from 'node:fs';

/** The loader that stands in dist/NAME.cjs below its #! line, for the body with hash `id`. */
export const loader = (id) => [
  "'use strict';",
  '{',
  "  const fs = require('node:fs');",
  "  const vm = require('node:vm');",
  `  const base = __filename.slice(0, -'.cjs'.length) + '.${id}';`,
  "  const filename = base + '.body.cjs';",
  '  let cachedData;',
  '  try {',
  "    cachedData = fs.readFileSync(base + '.code-cache');",
  '  } catch {',
  '    // no cache: compile as usual',
  '  }',
  "  const script = new vm.Script(fs.readFileSync(filename, 'utf8'), { filename, cachedData });",
  '  script.runInThisContext()(exports, require, module, __filename, __dirname);',
  '}',
].join('\n');

/** The body's ID in the loader's text (for the install step, which remakes the cache). */
export const loaderId = (text) => /const base = __filename\.slice\(0, -'\.cjs'\.length\) \+ '\.([0-9a-f]+)';/.exec(text)?.[1];

/** Wraps a CommonJS bundle as the function expression the loader runs. */
export const wrapBody = (code) => `(function (exports, require, module, __filename, __dirname) {${code}\n})`;

// Run in a child with an empty environment: NODE_OPTIONS (or any V8 flag of the building process)
// would change the flags the cache is stamped with, and a plain `node` would reject it.
const MAKER = `
const fs = require('node:fs'), v8 = require('node:v8'), vm = require('node:vm');
const [body, out] = process.argv.slice(1);
const source = fs.readFileSync(body, 'utf8');
v8.setFlagsFromString('--no-lazy');
const script = new vm.Script(source, { filename: body });
v8.setFlagsFromString('--lazy');
fs.writeFileSync(out, script.createCachedData());
`;
// …and checked by a fresh node, as the loader will use it.
const CHECK = `
const fs = require('node:fs'), vm = require('node:vm');
const [body, cache] = process.argv.slice(1);
const s = new vm.Script(fs.readFileSync(body, 'utf8'), { filename: body, cachedData: fs.readFileSync(cache) });
process.exit(s.cachedDataRejected ? 3 : 0);
`;

/**
 * Writes `cache` for the wrapped body at `body`, for the node at `nodePath` run with `nodeFlags`
 * (as the program's #! line runs it: V8 flags are part of what the cache is checked against).
 * Returns false (and leaves no cache) if that node rejects its own cache.
 */
export function writeCodeCache(body, cache, nodePath = process.execPath, nodeFlags = []) {
  const tmp = `${cache}.${process.pid}.tmp`;
  const run = (code, ...args) => spawnSync(nodePath, [...nodeFlags, '-e', code, ...args], { env: {}, stdio: ['ignore', 'inherit', 'inherit'] }).status === 0;
  if (!run(MAKER, body, tmp) || !run(CHECK, body, tmp)) {
    rmSync(tmp, { force: true });
    return false;
  }
  chmodSync(tmp, 0o644); // whatever the umask: the helper may run as any user
  renameSync(tmp, cache);
  return true;
}

/** Writes `file` atomically (beside, then renamed over): a program started meanwhile sees the old or the new one. */
export function writeAtomic(file, data, mode) {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, data, { mode });
  chmodSync(tmp, mode); // the umask does not apply: the programs run as any user
  renameSync(tmp, file);
}

/** The ID that ties a body to its cache: the first 16 hex digits of its SHA-256. */
export const bodyId = (wrapped) => createHash('sha256').update(wrapped).digest('hex').slice(0, 16);

/**
 * The loader for a program split into bodies by its first argument (dist/qbh: src/cli/groups.ts):
 * `groups` maps a first word to the ID of its body, `id` is the body for everything else. The same
 * loader as `loader(id)` otherwise. A Map, so that no first word (`constructor`, `__proto__`) can
 * name anything but a listed body.
 */
export function groupLoader(id, groups) {
  const single = loader(id);
  const base = /^ {2}const base = .*$/m;
  if (!base.test(single)) throw new Error("groupLoader: loader() has no `const base = …` line to replace");
  return single.replace(
    base,
    [
      `  const groups = new Map(${JSON.stringify(Object.entries(groups))});`,
      `  const base = __filename.slice(0, -'.cjs'.length) + '.' + (groups.get(process.argv[2]) ?? '${id}');`,
    ].join('\n'),
  );
}

/** Every body ID a loader names (the install step remakes each one's cache). */
export const loaderIds = (text) => [...new Set(text.match(/(?<=['".])[0-9a-f]{16}(?=['"])/g) ?? [])];
