#!/usr/bin/env node
// The helper's first line: how the kernel starts it. The helper may hold CAP_NET_ADMIN (root, or an
// ambient capability from its caller), and Node reads NODE_OPTIONS (--inspect, --require, …),
// NODE_EXTRA_CA_CERTS, OPENSSL_CONF and the like before any JavaScript runs, so the only place to
// shut them out is the exec itself (docs/helper.md, "Trust model"):
//
//   #!/usr/bin/env -S -i /abs/node -e '<bootstrap>'
//
// - `env -i`: an empty environment for node, whatever the caller had;
// - an absolute node, fixed when the package is built or installed: never found through PATH;
// - the bootstrap, run before the bundle loads: a SIGUSR1 listener (SIGUSR1 would otherwise open an
//   inspector on 127.0.0.1:9229 that any local user can connect to), then the bundle run as the main
//   module inside try/catch, so that a bundle or addon that cannot be loaded (EMFILE at a low fd
//   limit) prints one line and exits 1 instead of a stack trace. process.argv stays [node, script, args…].
//   Not require(): -e code is a module named [eval] in the caller's working directory, and require()
//   from it first looks for a package.json in that directory and each one above it, whose "exports"
//   can name any file to load instead (a package `"name": ""` matches every absolute path): with the
//   helper's privileges, from wherever QEMU was started. runMain loads the file with no parent module,
//   as `node FILE` does.
//
// Run directly (`node scripts/launcher.mjs`, the package's install step), it rewrites the first line
// of dist/qemu-bridge-helper.cjs for the node that runs it: a package built on one machine gets
// the installing machine's node. It remakes the bundles' V8 code caches for that node too (a cache
// made by another node is rejected, harmlessly, and the program merely starts slower: code-cache.mjs).
import { readFileSync, renameSync, writeFileSync, existsSync, chmodSync } from 'node:fs';
import { loaderId, writeCodeCache } from './code-cache.mjs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

// argv[1] is the path QEMU exec'd, maybe relative to its cwd: resolved, or the loader would take
// `bin/x` for a package name. The message's first line only (/.*/ stops at the first line break):
// the loader appends its stack. Terse: the whole #! line must fit in what the kernel reads.
const BOOTSTRAP =
  'process.on("SIGUSR1",()=>0);' +
  'try{require("module").runMain(require("path").resolve(process.argv[1]))}' +
  'catch(e){require("fs").writeSync(2,"qbh: "+/.*/.exec(e.message)+"\\n");process.exit(1)}';

/** Linux reads at most this many bytes of a `#!` line (BINPRM_BUF_SIZE), newline included. */
const SHEBANG_MAX = 256;

/**
 * The helper's `#!` line for the node at `nodePath` (absolute). Throws if it cannot be written safely.
 * `fixedEnv` (NAME=VALUE words) is set for node inside the empty environment: only CI's sanitizer
 * build uses it (QBH_BUILD_HELPER_ENV, read at build time by scripts/bundle.mjs, never at run time),
 * to preload libasan into the helper it tests.
 */
export function helperShebang(nodePath, fixedEnv = '') {
  if (!nodePath.startsWith('/')) throw new Error(`the helper's node must be an absolute path, not ${nodePath}`);
  // env -S splits on blanks and reads quotes, backslashes and ${…}: keep the path free of all of them.
  if (!/^[A-Za-z0-9/._+@-]+$/.test(nodePath)) throw new Error(`node's path ${nodePath} has characters env -S would interpret`);
  if (!/^([A-Z_]+=[A-Za-z0-9/._+@:=,-]+( |$))*$/.test(fixedEnv)) throw new Error(`the helper's fixed environment ${fixedEnv} is not NAME=VALUE words env -S reads as they are`);
  const env = fixedEnv === '' ? '' : `${fixedEnv.trim()} `;
  const line = `#!/usr/bin/env -S -i ${env}${nodePath} -e '${BOOTSTRAP}'`;
  if (line.length + 1 <= SHEBANG_MAX) return line;
  // A long node path: still an empty environment and a fixed node; the bundle's own entry installs
  // the SIGUSR1 listener (a little later), and a bundle that cannot load prints Node's trace.
  const plain = `#!/usr/bin/env -S -i ${env}${nodePath}`;
  if (env !== '' && plain.length + 1 <= SHEBANG_MAX) return plain;
  if (plain.length + 1 > SHEBANG_MAX) throw new Error(`node's path ${nodePath} is too long for a #! line (Linux reads ${SHEBANG_MAX} bytes)`);
  process.emitWarning(`node's path is long: the helper starts without its bootstrap (docs/helper.md, "Trust model")`);
  return plain;
}

/** Replaces the first line of `file` with the helper's shebang for `nodePath` (atomically). */
export function writeHelperShebang(file, nodePath = process.execPath) {
  const text = readFileSync(file, 'utf8');
  const rest = text.startsWith('#!') ? text.slice(text.indexOf('\n') + 1) : text;
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${helperShebang(nodePath)}\n${rest}`, { mode: 0o755 });
  chmodSync(tmp, 0o755);
  renameSync(tmp, file);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
  const file = join(dist, 'qemu-bridge-helper.cjs');
  if (existsSync(file)) writeHelperShebang(file);
  for (const [name, flags] of [['qemu-bridge-helper', []], ['qbh', []], ['qbhd', ['--max-semi-space-size=1']]]) {
    const loader = join(dist, `${name}.cjs`);
    const id = existsSync(loader) ? loaderId(readFileSync(loader, 'utf8')) : undefined;
    if (id !== undefined) writeCodeCache(join(dist, `${name}.${id}.body.cjs`), join(dist, `${name}.${id}.code-cache`), process.execPath, flags);
  }
}
