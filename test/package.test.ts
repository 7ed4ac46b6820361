// The package as a user gets it (test/package-lib.ts packs and installs it, with no compiler on
// PATH): the installed programs run — qbh, its completion and doctor, the man pages, QEMU attached
// through the installed helper — and a strict TypeScript consumer (node16 and bundler resolution)
// and a CommonJS script use the API.
import { prepared, readmeInstall } from './package-lib.js';
import './harness.js';
import t from 'tap';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ipj, privateEtcQemu, sh } from './harness.js';
import { ROOT } from './helper-lib.js';

const p = prepared();
t.teardown(() => rmSync(p.dir, { recursive: true, force: true }));
if (p.error !== undefined) throw new Error(`packing or installing failed: ${p.error}`);
const { bare, src, prefix, globalLog, consumer } = p;
const installed = join(prefix, 'lib', 'node_modules', 'qbh');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

t.test('the tarball: programs, types, prebuilt addon, man pages; no tests, sources or maps', async (t) => {
  const files = p.files;
  for (const f of ['package.json', 'README.md', 'CHANGELOG.md', 'dist/index.js', 'dist/index.d.ts', 'dist/qbh.cjs', 'dist/qbhd.cjs', 'dist/qemu-bridge-helper.cjs', 'prebuilds/linux-x64/qbh.node', 'native/qbh.cc', 'binding.gyp', 'scripts/launcher.mjs', 'man/qbh.1', 'man/qemu-bridge-helper.8', 'contrib/systemd/qbhd.service']) {
    t.ok(files.includes(f), f);
  }
  t.same(files.filter((f) => /^(test|src|bench|\.ci)\/|\.map$|\.test\.|fixtures|tsconfig|package-lock/.test(f)), [], 'nothing for development only');
  // V8 code caches are made for one node's exact version and flags: the install step makes them for
  // the installing node (scripts/launcher.mjs), none ship.
  t.same(files.filter((f) => f.endsWith('.code-cache')), [], 'no code caches shipped');
  t.ok(p.size < 1024 * 1024, `packed size ${p.size} bytes, ${files.length} files`);
  const x64 = readelfMachine(join(src, 'prebuilds', 'linux-x64', 'qbh.node'));
  t.match(x64, /X86-64/);
  // The README's pack is QBH_PREBUILDS=host: this machine's binary only (.ci/run packs a release
  // tarball, with the arm64 one, and checks its ELF machine).
  t.equal(readmeInstall().packEnv.QBH_PREBUILDS, 'host');
  t.same(files.filter((f) => f.startsWith('prebuilds/')), [`prebuilds/linux-${process.arch}/qbh.node`]);
});

t.test("the README's install block: what this test ran, for this version, and nothing from the registry", async (t) => {
  const readme = readmeInstall();
  t.equal(readme.lines[0], 'npm ci', 'from a clone: npm ci first (the tree copied here stands for it)');
  t.same([...readme.pack], ['npm', 'pack'], 'npm pack, as run here');
  t.same(readme.install, ['npm', 'install', '-g', `./qbh-${VERSION}.tgz`], "the tarball npm pack names for this package.json's version");
  t.equal(p.tarball, join(src, `qbh-${VERSION}.tgz`));
  t.notOk(readme.lines.some((l) => /npm (install|i) (-g )?qbh\b/.test(l)), 'no install of the name qbh from the registry (not published)');
  const mentions = readFileSync(join(ROOT, 'README.md'), 'utf8').match(/npm install -g qbh\b.{0,20}/g) ?? [];
  t.equal(mentions.length, 1, 'named once in the README…');
  t.match(mentions[0], /^npm install -g qbh` fails \(404\)/, '…as what fails');
});

t.test('a pack that cannot build the arm64 prebuild fails, unless QBH_PREBUILDS=host says so', async (t) => {
  // The cross compiler hidden: a PATH with node only. The check comes before any build.
  const r = spawnSync(process.execPath, [join(src, 'scripts', 'prebuilds.mjs')], { cwd: src, env: { PATH: bare }, encoding: 'utf8' });
  t.equal(r.status, 1);
  t.match(r.stderr, /^prebuilds: cannot build prebuilds\/linux-arm64: no aarch64-linux-gnu-g\+\+ on PATH \(apt-get install g\+\+-aarch64-linux-gnu\); .*QBH_PREBUILDS=host npm pack packs this machine's binary only\.\n$/);
  t.ok(existsSync(join(src, 'prebuilds', `linux-${process.arch}`, 'qbh.node')), 'nothing removed: it stopped before touching prebuilds/');
  const bad = spawnSync(process.execPath, [join(src, 'scripts', 'prebuilds.mjs')], { cwd: src, env: { PATH: bare, QBH_PREBUILDS: 'arm' }, encoding: 'utf8' });
  t.equal(bad.status, 1);
  t.match(bad.stderr, 'QBH_PREBUILDS=arm is not understood');
});

function readelfMachine(file: string): string {
  return execFileSync('readelf', ['-h', file], { encoding: 'utf8' }).match(/Machine:\s*(.*)/)![1]!;
}

/** Runs an installed program with the system PATH (it needs ip, not compilers) and no npm variables. */
function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(cmd, args, { cwd: '/', env: { PATH: SYSTEM_PATH, ...env }, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

t.test('global install without compilers: nothing compiled, the prebuilt addon loads', async (t) => {
  for (const tool of ['cc', 'gcc', 'g++', 'c++', 'make', 'python3']) {
    t.not(spawnSync('sh', ['-c', `command -v ${tool}`], { env: { PATH: bare } }).status, 0, `no ${tool} on the install PATH`);
  }
  t.match(globalLog, /node-gyp-build && node scripts\/launcher\.mjs/, 'the install script ran');
  t.notMatch(globalLog, /gyp info|gyp ERR|node-gyp rebuild|CXX\(target\)/, 'node-gyp never ran');
  t.notOk(existsSync(join(installed, 'build')), 'no build/ in the installed package');
  t.notOk(existsSync(join(installed, 'test')), 'no tests installed');
  const maps = execFileSync('find', [installed, '-name', '*.map', '-not', '-path', '*/node_modules/*'], { encoding: 'utf8' });
  t.equal(maps, '', 'no source maps');
  // The addon qbh loads is the one node-gyp-build would pick for this machine.
  const loaded = run(process.execPath, ['--input-type=module', '-e', `import('${installed}/dist/native.js').then((m) => console.log(m.addonPath()))`]);
  t.equal(loaded.stdout.trim(), join(installed, 'prebuilds', `linux-${process.arch}`, 'qbh.node'), loaded.stderr);
  const ngb = run(process.execPath, ['-e', `console.log(require('${installed}/node_modules/node-gyp-build').resolve('${installed}'))`]);
  t.equal(ngb.stdout.trim(), loaded.stdout.trim(), "node-gyp-build's own choice");
  // The helper's #! names this machine's node (scripts/launcher.mjs ran at install).
  const first = readFileSync(join(installed, 'dist', 'qemu-bridge-helper.cjs'), 'utf8').split('\n')[0]!;
  t.ok(first.startsWith(`#!/usr/bin/env -S -i ${realpathSync(process.execPath)} `), first);
  // …and made a V8 code cache for every body each loader names (qbh has one per command group).
  const dist = join(installed, 'dist');
  const bodies = readdirSync(dist).filter((f) => f.endsWith('.body.cjs'));
  t.ok(bodies.length >= 4, `${bodies.length} bodies`);
  for (const b of bodies) t.ok(existsSync(join(dist, b.replace(/\.body\.cjs$/, '.code-cache'))), `a code cache for ${b}`);
});

t.test('the installed qbh: --version, bridge list, completion, doctor names the installed helper', async (t) => {
  const qbh = join(prefix, 'bin', 'qbh');
  t.same(run(qbh, ['--version']), { code: 0, stdout: `qbh ${VERSION}\n`, stderr: '' });
  sh('ip', 'link', 'add', 'pkbr0', 'type', 'bridge');
  const list = run(qbh, ['bridge', 'list', '--json']);
  t.equal(list.code, 0, list.stderr);
  t.same((JSON.parse(list.stdout) as { ifname: string }[]).map((b) => b.ifname), ['pkbr0']);
  const text = run(qbh, ['bridge', 'list']);
  t.match(text.stdout, /pkbr0/);
  t.match(run(qbh, ['completion', 'bash']).stdout, /complete -o default -F _qbh qbh/);
  // ip-address is required at run time, on the first address parsed (src/netlink/cidr.ts).
  t.match(run(qbh, ['bridge', 'create', 'pkbr9', '--address', '10.0.0.256/24']), { code: 2, stderr: /invalid address "10\.0\.0\.256\/24": not an IPv4 address/ });
  const doctor = run(qbh, ['doctor', '--helper', join(prefix, 'bin', 'qemu-bridge-helper'), '--json']);
  const check = (JSON.parse(doctor.stdout) as { checks: { check: string; summary: string }[] }).checks.find((c) => c.check === 'qemu-helper');
  t.equal(check?.summary, `helper ${join(prefix, 'bin', 'qemu-bridge-helper')} → ${join(installed, 'dist', 'qemu-bridge-helper.cjs')} is qbh ${VERSION}`);
});

t.test('installed with scripts blocked (--ignore-scripts): the prebuilt addon still loads', async (t) => {
  const qbh = join(p.noScripts, 'bin', 'qbh');
  t.same(run(qbh, ['--version']), { code: 0, stdout: `qbh ${VERSION}\n`, stderr: '' });
  sh('ip', 'link', 'add', 'pkbr3', 'type', 'bridge');
  const list = run(qbh, ['bridge', 'show', 'pkbr3', '--json']);
  t.equal(list.code, 0, list.stderr);
  t.match(JSON.parse(list.stdout), { ifname: 'pkbr3' });
  const usage = run(join(p.noScripts, 'bin', 'qemu-bridge-helper'), []);
  t.match(usage, { code: 1, stderr: /^Usage: qemu-bridge-helper / }, "the helper runs with the packing machine's node");
  sh('ip', 'link', 'del', 'pkbr3');
});

t.test('man qbh and man qemu-bridge-helper from the prefix', async (t) => {
  for (const [page, section, title] of [['qbh', '1', 'QBH'], ['qemu-bridge-helper', '8', 'QEMU-BRIDGE-HELPER']] as const) {
    t.ok(existsSync(join(prefix, 'share', 'man', `man${section}`, `${page}.${section}`)), `npm linked ${page}.${section}`);
    const r = run('man', [page], { MANPATH: join(prefix, 'share', 'man'), MANPAGER: 'cat', PAGER: 'cat', MANWIDTH: '80', LANG: 'C.UTF-8' });
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, new RegExp(`^${title}\\(${section}\\)`), `${page}(${section}) renders`);
    t.match(r.stdout, /NAME\n/);
  }
});

t.test("QEMU attaches to a bridge through the installed qemu-bridge-helper", async (t) => {
  const etc = privateEtcQemu();
  writeFileSync(join(etc, 'bridge.conf'), 'allow pkbr1\n', { mode: 0o644 });
  sh('ip', 'link', 'add', 'pkbr1', 'type', 'bridge');
  sh('ip', 'link', 'set', 'pkbr1', 'up');
  const helper = join(prefix, 'bin', 'qemu-bridge-helper');
  const qemu = spawn('qemu-system-x86_64', ['-machine', 'none', '-nodefaults', '-display', 'none', '-monitor', 'none', '-S', '-netdev', `bridge,id=n0,br=pkbr1,helper=${helper}`], {
    env: { PATH: SYSTEM_PATH },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  qemu.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise((resolve) => qemu.on('exit', resolve));
  let ports: { ifname: string }[] = [];
  for (const deadline = Date.now() + 20_000; Date.now() < deadline && qemu.exitCode === null; ) {
    ports = ipj('link', 'show', 'master', 'pkbr1');
    if (ports.length > 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  t.equal(qemu.exitCode, null, `QEMU runs: ${stderr}`);
  t.match(ports, [{ ifname: /^tap\d+$/ }], 'a tap on pkbr1');
  qemu.kill('SIGKILL');
  await exited;
  t.notMatch(stderr, /bridge helper failed/);
});

// The consumer's own Node types (a real project has @types/node among its devDependencies).
mkdirSync(join(consumer, 'node_modules', '@types'), { recursive: true });
symlinkSync(join(ROOT, 'node_modules', '@types', 'node'), join(consumer, 'node_modules', '@types', 'node'));

t.test('as a dependency: no compile; node_modules/.bin programs run', async (t) => {
  t.notMatch(p.dependencyLog, /gyp info|gyp ERR|CXX\(target\)/, 'node-gyp never ran');
  t.notOk(existsSync(join(consumer, 'node_modules', 'qbh', 'build')));
  t.same(run(join(consumer, 'node_modules', '.bin', 'qbh'), ['--version']), { code: 0, stdout: `qbh ${VERSION}\n`, stderr: '' });
  t.match(run(join(consumer, 'node_modules', '.bin', 'qbh'), ['bridge', 'create', 'pkbr9', '--address', 'fd00::g/64']), { code: 2, stderr: /not an IPv6 address/ }, 'ip-address resolves from the consumer');
  const usage = run(join(consumer, 'node_modules', '.bin', 'qemu-bridge-helper'), []);
  t.match(usage, { code: 1, stderr: /^Usage: qemu-bridge-helper / });
});

const CONSUMER_TS = `import { listBridges, QbhError, type Bridge } from 'qbh';

export async function names(): Promise<string[]> {
  const bridges: Bridge[] = await listBridges();
  return bridges.map((b) => \`\${b.ifname} \${b.operstate} mtu \${b.mtu}\`);
}
export const isQbhError = (e: unknown): e is QbhError => e instanceof QbhError && typeof e.code === 'string';
export async function misspelt(): Promise<unknown> {
  const [b] = await listBridges();
  // @ts-expect-error closed result types: a misspelt key does not compile
  return b?.opperstate;
}
`;

for (const [resolution, module] of [['node16', 'node16'], ['bundler', 'esnext']] as const) {
  t.test(`a strict TypeScript consumer, moduleResolution ${resolution}`, async (t) => {
    const project = join(consumer, `ts-${resolution}`);
    mkdirSync(project);
    symlinkSync(join(consumer, 'node_modules'), join(project, 'node_modules'));
    writeFileSync(join(project, 'package.json'), JSON.stringify({ type: 'module', private: true }));
    writeFileSync(join(project, 'index.ts'), CONSUMER_TS);
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { strict: true, module, moduleResolution: resolution, target: 'es2022', noEmit: true, types: ['node'] }, files: ['index.ts'] }),
    );
    const r = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project], { encoding: 'utf8' });
    t.equal(r.status, 0, r.stdout + r.stderr);
  });
}

t.test("a CommonJS script loads the ESM package with import()", async (t) => {
  writeFileSync(join(consumer, 'script.cjs'), "import('qbh').then((qbh) => qbh.listBridges()).then((bs) => console.log(bs.map((b) => b.ifname).join(',')));\n");
  sh('ip', 'link', 'add', 'pkbr2', 'type', 'bridge');
  const r = spawnSync(process.execPath, [join(consumer, 'script.cjs')], { cwd: consumer, env: { PATH: SYSTEM_PATH }, encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  t.ok(r.stdout.trim().split(',').includes('pkbr2'), r.stdout);
  t.ok(readdirSync(join(consumer, 'node_modules')).includes('qbh'));
});

t.test("require('qbh') from CommonJS: the ES module where this Node can require() one, else one clear message", async (t) => {
  writeFileSync(join(consumer, 'require.cjs'), "const { listBridges, helperPath } = require('qbh');\nlistBridges().then((bs) => console.log(bs.map((b) => b.ifname).join(','), helperPath()));\n");
  sh('ip', 'link', 'add', 'pkbr4', 'type', 'bridge');
  const node = (...args: string[]) => spawnSync(process.execPath, args, { cwd: consumer, env: { PATH: SYSTEM_PATH }, encoding: 'utf8' });
  const canRequireEsm = node('-e', "require('node:process').exit(typeof require('node:module').findPackageJSON === 'function' || process.features.require_module ? 0 : 1)").status === 0;
  const [bridges, helper] = node(join(consumer, 'require.cjs')).stdout.trim().split(' ');
  if (canRequireEsm) {
    t.ok(bridges?.split(',').includes('pkbr4'), 'require() gives the API');
    // The package's own helper, wherever the package manager put it.
    t.equal(helper, join(realpathSync(join(consumer, 'node_modules', 'qbh')), 'dist', 'qemu-bridge-helper.cjs'));
  }
  // A Node that cannot require() an ES module (or is told not to): one line saying to use import().
  const flag = process.allowedNodeEnvironmentFlags.has('--no-experimental-require-module') ? ['--no-experimental-require-module'] : [];
  const old = node(...flag, join(consumer, 'require.cjs'));
  t.equal(old.status, 1);
  t.match(old.stderr, "qbh is an ES module, and this Node cannot require() one (Node 20.19 or 22.12 and later can). From CommonJS, load it with import(): `const { listBridges } = await import('qbh')`");
  t.notMatch(old.stderr, /ERR_PACKAGE_PATH_NOT_EXPORTED/);
  sh('ip', 'link', 'del', 'pkbr4');
});

t.test('a CommonJS TypeScript project: `import { listBridges } from "qbh"` compiles to require() and runs', async (t) => {
  const project = join(consumer, 'ts-cjs');
  mkdirSync(project);
  symlinkSync(join(consumer, 'node_modules'), join(project, 'node_modules'));
  writeFileSync(join(project, 'package.json'), JSON.stringify({ type: 'commonjs', private: true }));
  writeFileSync(join(project, 'index.ts'), "import { listBridges } from 'qbh';\nlistBridges().then((bs) => console.log(bs.length >= 0 ? 'ok' : 'no'));\n");
  writeFileSync(
    join(project, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { strict: true, module: 'commonjs', moduleResolution: 'node10', target: 'es2022', outDir: 'out', types: ['node'] }, files: ['index.ts'] }),
  );
  const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project], { encoding: 'utf8' });
  t.equal(tsc.status, 0, tsc.stdout + tsc.stderr);
  t.match(readFileSync(join(project, 'out', 'index.js'), 'utf8'), /require\("qbh"\)/, 'the import became require()');
  const flag = process.allowedNodeEnvironmentFlags.has('--no-experimental-require-module') ? ['--no-experimental-require-module'] : [];
  const r = spawnSync(process.execPath, [...flag, join(project, 'out', 'index.js')], { cwd: project, env: { PATH: SYSTEM_PATH }, encoding: 'utf8' });
  t.equal(r.status, 1);
  t.match(r.stderr, /qbh is an ES module, and this Node cannot require\(\) one/, 'the clear message, not ERR_PACKAGE_PATH_NOT_EXPORTED');
});
