// test/package.test.ts's preparation: `npm pack` of a copy of this tree (its prepack builds the
// prebuilt addon), then the tarball installed globally into a fresh prefix and as a dependency of a
// scratch project, both with a PATH that holds node, npm, sh and a few coreutils only — no cc, g++,
// make or python3, so an install that tried to compile would fail.
//
// Imported BEFORE ./harness.js: it runs in the test's first process, in the host's network
// namespace, because npm fetches the dependencies (node-gyp-build, ip-address, node-addon-api) from
// the registry; nothing here touches an interface. The harness then re-executes the test file in
// its namespaces, which finds the results through QBH_PACKAGE_DIR.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** What the preparation left for the test. */
export interface Prepared {
  dir: string;
  /** The PATH without compilers the installs ran with. */
  bare: string;
  tarball: string;
  /** `npm pack --json`'s file list and size. */
  files: string[];
  size: number;
  /** The scratch copy that was packed (its prebuilds/ are the tarball's). */
  src: string;
  /** The global install's prefix, and its log. */
  prefix: string;
  globalLog: string;
  /** A global install with `--ignore-scripts` (npm's allowScripts blocking qbh's install step). */
  noScripts: string;
  /** The scratch project that depends on the tarball, and its install log. */
  consumer: string;
  dependencyLog: string;
  /** Set when a step failed: the test reports it instead of running. */
  error?: string;
}

const BARE_COMMANDS = ['node', 'npm', 'sh', 'env', 'cat', 'ls', 'mkdir', 'rm', 'cp', 'mv', 'ln', 'chmod', 'readlink', 'dirname', 'basename', 'uname'];
/** npm install flags: only the dependencies come from the registry (from the cache when it has them). */
const INSTALL = ['--no-audit', '--no-fund', '--prefer-offline', '--foreground-scripts', '--loglevel', 'info'];

function prepare(): Prepared {
  const dir = mkdtempSync(join(tmpdir(), 'qbh-package-'));
  const bare = join(dir, 'path');
  mkdirSync(bare);
  for (const cmd of BARE_COMMANDS) symlinkSync(execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim(), join(bare, cmd));
  // The caller's environment (registry, CA certificates, proxy) with the bare PATH; none of npm's
  // own variables from `npm test`, and none of tap's loader hooks.
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: bare };
  for (const k of Object.keys(env)) if (k.startsWith('npm_') || k === 'NODE_OPTIONS' || k.startsWith('TAP')) delete env[k];
  /** Runs npm; returns its stdout and the whole log (stdout and stderr). */
  const npmRun = (args: string[], cwd: string, path = bare): { stdout: string; log: string } => {
    const r = spawnSync('npm', args, { cwd, env: { ...env, PATH: path }, encoding: 'utf8', timeout: 300_000 });
    const log = `${r.stdout}${r.stderr}`;
    if (r.status !== 0) throw new Error(`npm ${args.join(' ')} exited ${r.status}:\n${log}`);
    return { stdout: r.stdout, log };
  };
  const npm = (args: string[], cwd: string): string => npmRun(args, cwd).log;
  const prepared: Prepared = { dir, bare, tarball: '', files: [], size: 0, src: join(dir, 'src'), prefix: join(dir, 'prefix'), globalLog: '', noScripts: join(dir, 'no-scripts'), consumer: join(dir, 'consumer'), dependencyLog: '' };
  try {
    // A copy of the tree without its build outputs: the tree's own build/ and dist/, which other
    // test files load meanwhile, are never rebuilt under them.
    mkdirSync(prepared.src);
    execFileSync('sh', ['-c', `tar -c --exclude=./node_modules --exclude=./build --exclude=./dist --exclude=./prebuilds --exclude=./.git --exclude=./.tap . | tar -x -C '${prepared.src}'`], { cwd: ROOT });
    symlinkSync(join(ROOT, 'node_modules'), join(prepared.src, 'node_modules'));
    // Packing is the build machine's job (compilers, strip, the cross compiler): the system PATH.
    // prepack and prepare print on stdout too: the JSON is the last thing, from a line "[" on.
    const out = npmRun(['pack', '--pack-destination', dir, '--json'], prepared.src, process.env.PATH).stdout;
    const json = JSON.parse(out.slice(out.search(/^\[$/m))) as { filename: string; files: { path: string }[]; size: number }[];
    prepared.tarball = join(dir, json[0]!.filename);
    prepared.files = json[0]!.files.map((f) => f.path);
    prepared.size = json[0]!.size;
    prepared.globalLog = npm(['install', '-g', '--prefix', prepared.prefix, ...INSTALL, prepared.tarball], dir);
    npm(['install', '-g', '--prefix', prepared.noScripts, '--ignore-scripts', ...INSTALL, prepared.tarball], dir);
    mkdirSync(prepared.consumer);
    writeFileSync(join(prepared.consumer, 'package.json'), JSON.stringify({ name: 'qbh-consumer', version: '1.0.0', private: true, type: 'module' }));
    prepared.dependencyLog = npm(['install', ...INSTALL, prepared.tarball], prepared.consumer);
  } catch (e) {
    prepared.error = (e as Error).message;
  }
  return prepared;
}

if (process.env.QBH_TEST_NETNS !== '1') {
  const p = prepare();
  writeFileSync(join(p.dir, 'prepared.json'), JSON.stringify(p));
  process.env.QBH_PACKAGE_DIR = p.dir;
}

/** The preparation's results (in the namespaced process that runs the tests). */
export function prepared(): Prepared {
  const dir = process.env.QBH_PACKAGE_DIR;
  if (dir === undefined || !readdirSync(dir).includes('prepared.json')) throw new Error('test/package-lib.ts must be imported before ./harness.js');
  return JSON.parse(readFileSync(join(dir, 'prepared.json'), 'utf8')) as Prepared;
}
