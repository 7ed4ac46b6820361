#!/usr/bin/env node
// The helper's first line: how the kernel starts it. The helper may hold CAP_NET_ADMIN (root, or an
// ambient capability from its caller), and Node reads NODE_OPTIONS (--inspect, --require, …),
// NODE_EXTRA_CA_CERTS, OPENSSL_CONF and the like before any JavaScript runs, so the only place to
// shut them out is the exec itself (docs/helper.md, "Trust model"):
//
//   #!/usr/bin/env -S -i /abs/node FLAG -e '<bootstrap>'
//
// - `env -i`: an empty environment for node, whatever the caller had;
// - an absolute node, fixed when the package is built or installed: never found through PATH;
// - FLAG shuts SIGUSR1 out. Node installs its own SIGUSR1 handler early in its start-up, before
//   any JavaScript, and that handler opens an inspector on 127.0.0.1:9229 that any process of the
//   caller's uid can connect to and run code in, with the helper's privileges; no listener set up
//   from JavaScript comes early enough, and blocking or ignoring the signal at exec does not help
//   (Node resets every disposition and unblocks it during its start-up). So: `--disable-sigusr1`
//   where the node has it (22.14+, 23.7+): no handler at all, the signal stays blocked. Older
//   nodes (20): `--inspect-port=[::%/]`, an inspector address that cannot be resolved — glibc
//   refuses the scope `/` (no interface can be named so) before any name service is asked — so
//   a SIGUSR1 makes Node print `Unable to resolve "::%/"` and listen nowhere;
//   src/helper/run.ts then installs a listener that keeps even that line away. Measured, both
//   ways: docs/helper.md, "Trust model";
// - the bootstrap, run before the bundle loads: the bundle run as the main module inside
//   try/catch, so that a bundle or addon that cannot be loaded (EMFILE at a low fd limit) prints
//   one line and exits 1 instead of a stack trace. process.argv stays [node, script, args…].
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
import { spawnSync } from 'node:child_process';
import { readFileSync, renameSync, writeFileSync, existsSync, chmodSync } from 'node:fs';
import { loaderIds, writeCodeCache } from './code-cache.mjs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

// argv[1] is the path QEMU exec'd, maybe relative to its cwd: resolved, or the loader would take
// `bin/x` for a package name. The message's first line only (/.*/ stops at the first line break):
// the loader appends its stack. Terse: the whole #! line must fit in what the kernel reads.
const BOOTSTRAP =
  'try{require("module").runMain(require("path").resolve(process.argv[1]))}' +
  'catch(e){require("fs").writeSync(2,"qbh: "+/.*/.exec(e.message)+"\\n");process.exit(1)}';

/** Linux reads at most this many bytes of a `#!` line (BINPRM_BUF_SIZE), newline included. */
const SHEBANG_MAX = 256;

/** Node's switch that installs no SIGUSR1 handler at all (Node 22.14+, 23.7+). */
export const DISABLE_SIGUSR1 = '--disable-sigusr1';

/**
 * For a node without {@link DISABLE_SIGUSR1}: the address a SIGUSR1 would open the inspector on is
 * one no resolver accepts (an IPv6 scope `/`, which no interface name can hold), so none opens.
 */
export const UNRESOLVABLE_INSPECT_PORT = '--inspect-port=[::%/]';

/**
 * The node flag that keeps SIGUSR1 from opening an inspector in the node at `nodePath`: asks that
 * node, with an empty environment, whether it takes {@link DISABLE_SIGUSR1}.
 */
export function sigusr1Flag(nodePath) {
  const probe = spawnSync(nodePath, [DISABLE_SIGUSR1, '-e', '0'], { env: {}, stdio: 'ignore' });
  return probe.status === 0 ? DISABLE_SIGUSR1 : UNRESOLVABLE_INSPECT_PORT;
}

/**
 * The helper's `#!` line for the node at `nodePath` (absolute). Throws if it cannot be written safely.
 * `fixedEnv` (NAME=VALUE words) is set for node inside the empty environment: only CI's sanitizer
 * build uses it (QBH_BUILD_HELPER_ENV, read at build time by scripts/bundle.mjs, never at run time),
 * to preload libasan into the helper it tests. `flag` is what shuts SIGUSR1 out (default: asked of
 * that node, {@link sigusr1Flag}).
 */
export function helperShebang(nodePath, fixedEnv = '', flag = sigusr1Flag(nodePath)) {
  if (!nodePath.startsWith('/')) throw new Error(`the helper's node must be an absolute path, not ${nodePath}`);
  // env -S splits on blanks and reads quotes, backslashes and ${…}: keep the path free of all of them.
  if (!/^[A-Za-z0-9/._+@-]+$/.test(nodePath)) throw new Error(`node's path ${nodePath} has characters env -S would interpret`);
  if (!/^([A-Z_]+=[A-Za-z0-9/._+@:=,-]+( |$))*$/.test(fixedEnv)) throw new Error(`the helper's fixed environment ${fixedEnv} is not NAME=VALUE words env -S reads as they are`);
  const env = fixedEnv === '' ? '' : `${fixedEnv.trim()} `;
  const line = `#!/usr/bin/env -S -i ${env}${nodePath} ${flag} -e '${BOOTSTRAP}'`;
  if (line.length + 1 <= SHEBANG_MAX) return line;
  // A long node path: still an empty environment, a fixed node and SIGUSR1 shut out; a bundle that
  // cannot load prints Node's trace. Never without the flag: a privileged helper would refuse to run.
  const plain = `#!/usr/bin/env -S -i ${env}${nodePath} ${flag}`;
  if (plain.length + 1 > SHEBANG_MAX) throw new Error(`node's path ${nodePath} is too long for a #! line (Linux reads ${SHEBANG_MAX} bytes)`);
  if (env === '') process.emitWarning(`node's path is long: the helper starts without its bootstrap (docs/helper.md, "Trust model")`);
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
    // Every body the loader names: dist/qbh has one per command group (scripts/bundle.mjs).
    const loader = join(dist, `${name}.cjs`);
    for (const id of existsSync(loader) ? loaderIds(readFileSync(loader, 'utf8')) : []) {
      writeCodeCache(join(dist, `${name}.${id}.body.cjs`), join(dist, `${name}.${id}.code-cache`), process.execPath, flags);
    }
  }
}
