// test/package.test.ts's preparation: the README's install commands, as written there (`npm pack`
// in a copy of this tree — its prepack builds the prebuilt addon — then `npm install -g
// ./qbh-VERSION.tgz` into a fresh prefix), then the tarball as a dependency of a scratch project,
// the installs with a PATH that holds node, npm, sh and a few coreutils only — no cc, g++, make or
// python3, so an install that tried to compile would fail.
//
// Imported BEFORE ./harness.js: it runs in the test's first process, in the host's network
// namespace, because npm fetches the dependencies (node-gyp-build, ip-address, node-addon-api) from
// the registry; nothing here touches an interface. The harness then re-executes the test file in
// its namespaces, which finds the results through QBH_PACKAGE_DIR.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The README's install commands: the first `sh` block under its "## Installing" heading. */
export interface ReadmeInstall {
  /** Every command line of the block, comments and `sudo ` dropped. */
  lines: string[];
  /** The `npm pack` line and the `npm install -g ./qbh-….tgz` line, as argv, and the pack line's `NAME=value` words. */
  pack: string[];
  packEnv: Record<string, string>;
  install: string[];
}

/** Reads the install commands from README.md, so the test runs what the README says. */
export function readmeInstall(readme = readFileSync(join(ROOT, 'README.md'), 'utf8')): ReadmeInstall {
  const section = readme.slice(readme.indexOf('\n## Installing\n'));
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
  const lines = block
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').replace(/^sudo /, '').trim())
    .filter((l) => l !== '');
  const words = (re: RegExp) => lines.find((l) => re.test(l))?.split(/\s+/) ?? [];
  const packLine = words(/^(\w+=\S* )*npm pack\b/);
  const packEnv = Object.fromEntries(packLine.filter((w) => /^\w+=/.test(w)).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]));
  return { lines, pack: packLine.filter((w) => !/^\w+=/.test(w)), packEnv, install: words(/^npm install -g \S+\.tgz$/) };
}

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
/** The same settings as npm's environment variables, and where a global install goes. */
const INSTALL_ENV = (prefix: string): NodeJS.ProcessEnv => ({
  npm_config_prefix: prefix,
  npm_config_audit: 'false',
  npm_config_fund: 'false',
  npm_config_prefer_offline: 'true',
  npm_config_foreground_scripts: 'true',
  npm_config_loglevel: 'info',
});

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
  const npmRun = (args: string[], cwd: string, path = bare, extra: NodeJS.ProcessEnv = {}): { stdout: string; log: string } => {
    const r = spawnSync('npm', args, { cwd, env: { ...env, PATH: path, ...extra }, encoding: 'utf8', timeout: 300_000 });
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
    // The README's commands, word for word (a `sudo` dropped: the test is root). Packing is the
    // build machine's job (compilers, strip, the cross compiler): the system PATH.
    const readme = readmeInstall();
    if (readme.pack.length === 0 || readme.install.length === 0) throw new Error(`README.md's install block has no npm pack or npm install -g ./….tgz line: ${JSON.stringify(readme.lines)}`);
    npmRun(readme.pack.slice(1), prepared.src, process.env.PATH, readme.packEnv);
    prepared.tarball = join(prepared.src, readme.install.at(-1)!);
    prepared.files = execFileSync('tar', ['-tzf', prepared.tarball], { encoding: 'utf8' })
      .split('\n')
      .filter((f) => f !== '' && !f.endsWith('/'))
      .map((f) => f.replace(/^package\//, ''));
    prepared.size = statSync(prepared.tarball).size;
    // The install's prefix and log level through npm's environment, so its command line is the README's.
    prepared.globalLog = npmRun(readme.install.slice(1), prepared.src, bare, INSTALL_ENV(prepared.prefix)).log;
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
