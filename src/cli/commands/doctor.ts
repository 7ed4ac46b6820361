/**
 * `qbh doctor`: is this machine set up for qemu-bridge-helper? One line per check, ✓, ! or ✗, and
 * for each ✗ or ! the command that fixes it. It checks what the set-up in use needs — the helper
 * making taps itself (CAP_NET_ADMIN: root, or an ambient capability), or asking the qbh daemon —
 * fails only on what that set-up lacks, and warns (exit 0) about what it does not use. Every check
 * is read-only: it looks at files and the process's own credentials, and never creates a link or
 * loads a module on the machine (as root, the port guard features are tried in a throwaway network
 * namespace of their own). The checks are a list of functions, so new ones slot in as features arrive.
 * @module
 */
import { accessSync, constants, openSync, closeSync, readFileSync, readSync, realpathSync, statSync, type Stats } from 'node:fs';
import { release, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { DEFAULT_ACL_FILE, displayBytes, evaluateAcl, processCredentials, unknownPrincipalRules } from '../../acl/index.js';
import type { AclCredentials, AclRule } from '../../acl/index.js';
import { allowedBridges, kernelAliases, type BridgeAllowance } from '../../attach/probe.js';
import { DAEMON_SOCKET, PROTOCOL_VERSION, type CheckReply } from '../../attach/protocol.js';
import { DaemonUnreachableError, askDaemon, daemonListening } from '../../helper/daemon-client.js';
import { hasNetAdmin, native } from '../../native.js';
import { Rtnl } from '../../netlink/rtnl.js';
import { PACKAGE_ROOT } from '../../root.js';
import { GUARD_FEATURES, probeGuardFeaturesSync, type GuardFeature } from '../../guard/probe.js';
import { JSON_OPTION, parse } from '../args.js';
import { output, type Command } from '../command.js';
import { UsageError } from '../errors.js';
import { version } from '../version.js';
import { palette, type CliIo } from '../io.js';

/** The outcome of one check. */
export interface CheckResult {
  /** Stable identifier, e.g. `tun-device`. */
  check: string;
  /** False for a failure: the set-up in use lacks this. */
  ok: boolean;
  /** What was found, one line. */
  summary: string;
  /** For a failure or a warning: the command or change that fixes it. */
  fix?: string;
  /** Set (with `ok`) for a warning: something this set-up does not use, or worth knowing. */
  warn?: true;
}

/** What the checks look at. Paths can be overridden (tests, other layouts); the checks only read them. */
export interface DoctorContext {
  aclPath: string;
  tunPath: string;
  /** Where QEMU looks for its default helper, or the helper the user named (`chosenHelper`). */
  helperPaths: string[];
  /** The paths are the helper QEMU is told to run (`--helper`), not QEMU's compiled-in defaults. */
  chosenHelper?: boolean;
  /** The qbh helper shipped with this package. */
  qbhHelper: string;
  credentials: AclCredentials;
  user: string;
  /** Where the qbh daemon listens (the helper's fixed path unless a test says otherwise). */
  daemonSocket?: string;
  /**
   * What the machine is set up for: `helper` (QEMU's bridge helper, direct or through the daemon;
   * the default) or `api` (scripts calling the API or `qbh` themselves, which need CAP_NET_ADMIN
   * and no ACL, daemon or helper).
   */
  purpose?: DoctorPurpose;
}

/** The set-ups `qbh doctor --for` checks. */
export const DOCTOR_PURPOSES = ['helper', 'api'] as const;
/** One of {@link DOCTOR_PURPOSES}. */
export type DoctorPurpose = (typeof DOCTOR_PURPOSES)[number];

/** The checks the API does not use: their failures are warnings under `--for api`. */
const HELPER_ONLY = new Set(['acl-file', 'acl-owner', 'acl-mode', 'acl-parse', 'acl-principals', 'acl-allows', 'daemon', 'qemu-helper']);

/** What the daemon said to a check request, asked once per doctor run. */
type DaemonProbe = { state: 'absent' } | { state: 'unreachable'; why: string } | { state: 'refused'; why: string } | { state: 'ok'; reply: CheckReply };

const probes = new WeakMap<DoctorContext, DaemonProbe>();

/** Asks the daemon what this user may use (a check request: it creates nothing). */
function probeDaemon(ctx: DoctorContext): DaemonProbe {
  let probe = probes.get(ctx);
  if (probe !== undefined) return probe;
  const path = ctx.daemonSocket ?? DAEMON_SOCKET;
  if (!daemonListening(path)) probe = { state: 'absent' };
  else {
    try {
      const { reply, fds } = askDaemon({ op: 'check', bridge: null }, { path, timeoutMs: 5000 });
      for (const fd of fds) native.close(fd);
      probe = reply.ok && reply.op === 'check' ? { state: 'ok', reply } : { state: 'refused', why: reply.ok ? 'an unexpected reply' : reply.message.trim() };
    } catch (e) {
      if (!(e instanceof DaemonUnreachableError)) throw e;
      probe = { state: 'unreachable', why: e.message.replace(/^qbh: /, '') };
    }
  }
  probes.set(ctx, probe);
  return probe;
}


/**
 * The set-up a helper started by this user would use: `direct` (it holds CAP_NET_ADMIN and makes
 * the tap itself), `daemon` (it lacks it and the qbh daemon answers), or `none` (neither).
 */
function setupOf(ctx: DoctorContext): 'direct' | 'daemon' | 'none' {
  if (hasNetAdmin()) return 'direct';
  return probeDaemon(ctx).state === 'ok' ? 'daemon' : 'none';
}

/** A failure turned into a warning: the set-up in use does not need what it checks. */
function unused(r: CheckResult, why: string): CheckResult {
  return { ...r, ok: true, warn: true, summary: `${r.summary} (${why})` };
}

/** A check: one or more results. */
export type DoctorCheck = (ctx: DoctorContext) => CheckResult | CheckResult[];

/** QEMU's compiled-in helper paths on common distributions (Debian, Fedora, source builds). */
export const QEMU_HELPER_PATHS = ['/usr/lib/qemu/qemu-bridge-helper', '/usr/libexec/qemu-bridge-helper', '/usr/local/libexec/qemu-bridge-helper'];

/** The tun device's numbers (Documentation/admin-guide/devices.txt: misc 10, minor 200). */
const TUN_MAJOR = 10;
const TUN_MINOR = 200;

const statOrNull = (path: string): Stats | null => {
  try {
    return statSync(path);
  } catch {
    return null;
  }
};
const exists = (path: string) => statOrNull(path) !== null;
const mode = (st: Stats) => `0${(st.mode & 0o7777).toString(8)}`;
const owner = (st: Stats) => `${st.uid}:${st.gid}`;

/** A kernel feature: built in or loaded (its /sys entry), else a module on disk that loads on first use. */
function kernelFeature(check: string, label: string, sysPaths: string[], module: string, fix: string): CheckResult {
  const present = sysPaths.find(exists);
  if (present) return { check, ok: true, summary: `${label}: present (${present})` };
  const dir = `/lib/modules/${release()}/kernel/${module}`;
  const ko = ['', '.xz', '.zst', '.gz'].map((z) => `${dir}.ko${z}`).find(exists);
  if (ko) return { check, ok: true, summary: `${label}: available as a module (${ko}), loaded on first use` };
  return {
    check,
    ok: false,
    summary: `${label}: not found (checked ${sysPaths.join(', ')} and ${dir}.ko)`,
    fix,
  };
}

const bridgeSupport: DoctorCheck = () =>
  kernelFeature('kernel-bridge', 'kernel bridge support', ['/sys/module/bridge'], 'net/bridge/bridge', 'sudo modprobe bridge (or use a kernel built with CONFIG_BRIDGE)');

const tunSupport: DoctorCheck = () =>
  kernelFeature('kernel-tun', 'kernel tun/tap support', ['/sys/class/misc/tun', '/sys/module/tun'], 'drivers/net/tun', 'sudo modprobe tun (or use a kernel built with CONFIG_TUN)');

const MKNOD_FIX = (p: string) => `sudo mkdir -p ${p.replace(/\/[^/]*$/, '') || '/'} && sudo mknod -m 0666 ${p} c ${TUN_MAJOR} ${TUN_MINOR}`;

const tunDevice: DoctorCheck = (ctx) => {
  const p = ctx.tunPath;
  const st = statOrNull(p);
  if (!st) return { check: 'tun-device', ok: false, summary: `${p}: missing`, fix: MKNOD_FIX(p) };
  const major = Math.floor(st.rdev / 256);
  const minor = st.rdev % 256;
  if (!st.isCharacterDevice() || major !== TUN_MAJOR || minor !== TUN_MINOR) {
    return {
      check: 'tun-device',
      ok: false,
      summary: `${p}: not the tun device (${st.isCharacterDevice() ? `char ${major}:${minor}` : 'not a character device'}; want char ${TUN_MAJOR}:${TUN_MINOR})`,
      fix: `sudo rm ${p} && ${MKNOD_FIX(p)}`,
    };
  }
  const results: CheckResult[] = [{ check: 'tun-device', ok: true, summary: `${p}: char ${major}:${minor}, mode ${mode(st)}, owner ${owner(st)}` }];
  try {
    accessSync(p, constants.R_OK | constants.W_OK);
    results.push({ check: 'tun-access', ok: true, summary: `${ctx.user} can open ${p} for reading and writing` });
  } catch {
    const fix = `sudo chmod 0666 ${p} (the distributions' default: creating a tap still needs CAP_NET_ADMIN)`;
    results.push(
      setupOf(ctx) === 'daemon'
        ? { check: 'tun-access', ok: true, summary: `${ctx.user} cannot open ${p} (mode ${mode(st)}, owner ${owner(st)}): not needed, the qbh daemon opens it for this user's helper` }
        : {
            check: 'tun-access',
            ok: false,
            summary: `${ctx.user} cannot open ${p} (mode ${mode(st)}, owner ${owner(st)}): a helper running as this user cannot create taps`,
            fix,
          },
    );
  }
  return results;
};

const ACL_EXAMPLE = (p: string) => `sudo mkdir -p ${p.replace(/\/[^/]*$/, '') || '/'} && echo 'allow br0' | sudo tee ${p} && sudo chmod 0644 ${p}`;

/**
 * The bridges the ACL allows the caller, by the probe the daemon's `check` uses (src/attach/probe.ts):
 * each bridge found through the kernel, so one denied by an altname is denied here too. No
 * rtnetlink (odd sandbox): decided on the names as the rules give them.
 */
function allowedHere(rules: readonly AclRule[], identity: AclCredentials): BridgeAllowance {
  let rtnl: Rtnl | null = null;
  try {
    rtnl = Rtnl.openSync();
  } catch {
    return allowedBridges(rules, identity);
  }
  try {
    return allowedBridges(rules, identity, kernelAliases(rtnl));
  } finally {
    rtnl.close();
  }
}

/**
 * The ACL as the helper run by this user reads it. On the daemon path the daemon decides, and the
 * `daemon` check says what it gives this user, so what this user cannot read or is not allowed
 * here is a warning, not a failure; the file's owner and mode always matter.
 */
const aclFile: DoctorCheck = (ctx) => {
  const results = aclChecks(ctx);
  if (setupOf(ctx) !== 'daemon') return results;
  return results.map((r) => (!r.ok && (r.check === 'acl-parse' || r.check === 'acl-allows') ? unused(r, "the qbh daemon decides for this user: see its line") : r));
};

function aclChecks(ctx: DoctorContext): CheckResult[] {
  const p = ctx.aclPath;
  const st = statOrNull(p);
  if (!st) {
    return [
      {
        check: 'acl-file',
        ok: false,
        summary: `ACL file ${p}: missing, so the helper denies every bridge ("failed to parse default acl file")`,
        fix: ACL_EXAMPLE(p),
      },
    ];
  }
  const results: CheckResult[] = [];
  const rootOwned = st.uid === 0;
  results.push(
    rootOwned
      ? { check: 'acl-owner', ok: true, summary: `ACL file ${p}: owned by root` }
      : { check: 'acl-owner', ok: false, summary: `ACL file ${p}: owned by uid ${st.uid}, not root: that user can allow any bridge`, fix: `sudo chown root:root ${p}` },
  );
  const writable = st.mode & 0o022;
  results.push(
    writable
      ? { check: 'acl-mode', ok: false, summary: `ACL file ${p}: mode ${mode(st)} lets ${st.mode & 0o002 ? 'every user' : 'its group'} change it`, fix: `sudo chmod go-w ${p}` }
      : { check: 'acl-mode', ok: true, summary: `ACL file ${p}: mode ${mode(st)}, not group- or world-writable` },
  );
  const v = evaluateAcl('qbh-doctor', { aclPath: p });
  if (v.fatal || !v.ruleSet) {
    const why = v.error?.message ?? v.stderr.toString('utf8').trim();
    results.push({
      check: 'acl-parse',
      ok: false,
      summary: `ACL file ${p}: the helper cannot use it as ${ctx.user}: ${why}`,
      fix: st.isFile() && !canRead(p) ? `sudo chmod 0644 ${p}` : `fix the file (qbh acl check --bridge BR --acl ${p} shows where)`,
    });
    return results;
  }
  const broken = v.ruleSet.files.filter((f) => f.status !== 'read');
  results.push(
    broken.length === 0
      ? { check: 'acl-parse', ok: true, summary: `ACL file ${p}: parses (${v.ruleSet.files.length} file${v.ruleSet.files.length === 1 ? '' : 's'}, ${v.ruleSet.rules.length} rule${v.ruleSet.rules.length === 1 ? '' : 's'})` }
      : {
          check: 'acl-parse',
          ok: false,
          summary: `ACL file ${p}: ${broken.map((f) => `${displayBytes(f.path)} ${f.status}${f.error ? ` at line ${f.error.line}: ${displayBytes(f.error.message).trim()}` : f.detail ? ` (${f.detail})` : ''}`).join('; ')}`,
          fix: `fix or remove the broken file${broken.length === 1 ? '' : 's'}; the helper skips what it cannot read`,
        },
  );
  const ghosts = unknownPrincipalRules(v.ruleSet.rules);
  if (ghosts.length > 0) {
    const shown = ghosts.map((r) => `${displayBytes(r.file)}:${r.line} "${displayBytes(r.text)}"`).join('; ');
    const denies = ghosts.some((r) => r.action === 'deny');
    results.push({
      check: 'acl-principals',
      ok: false,
      summary: `ACL file ${p}: rules name users or groups that do not exist: ${shown}${denies ? ' (a deny naming nobody denies every caller)' : ''}`,
      fix: 'correct the names, write numeric ids for directory-service accounts, or remove the rules',
    });
  }
  const allow = allowedHere(v.ruleSet.rules, ctx.credentials);
  const list = allow.any ? `every bridge${allow.except.length ? ` except ${allow.except.join(', ')}` : ''}` : allow.bridges.join(', ');
  results.push(
    list
      ? { check: 'acl-allows', ok: true, summary: `ACL allows ${ctx.user}: ${list}` }
      : { check: 'acl-allows', ok: false, summary: `ACL allows ${ctx.user} no bridge at all`, fix: `add a line such as "allow br0" to ${p}` },
  );
  return results;
}

function canRead(p: string): boolean {
  try {
    accessSync(p, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/** NoNewPrivs of this process: set, setuid and file capabilities are ignored for its children. */
function noNewPrivs(): boolean {
  try {
    return /^NoNewPrivs:\s*1$/m.test(readFileSync('/proc/self/status', 'utf8'));
  } catch {
    return false;
  }
}

const helperCapability: DoctorCheck = (ctx) => {
  const cap = hasNetAdmin();
  const nnp = noNewPrivs() ? ' (NoNewPrivs is set here, so setuid bits and file capabilities would be ignored too)' : '';
  if (ctx.purpose === 'api') {
    return cap
      ? { check: 'helper-capability', ok: true, summary: `${ctx.user} has CAP_NET_ADMIN: the API and qbh can create bridges and taps` }
      : {
          check: 'helper-capability',
          ok: false,
          summary: `${ctx.user} lacks CAP_NET_ADMIN: the API and qbh cannot create bridges or taps (the qbh daemon serves the helper only)`,
          fix: 'run the script as root, or with the capability in its ambient set (setpriv --inh-caps=+net_admin --ambient-caps=+net_admin, systemd AmbientCapabilities=CAP_NET_ADMIN)',
        };
  }
  if (cap) return { check: 'helper-capability', ok: true, summary: `${ctx.user} has CAP_NET_ADMIN: the helper can create taps and attach them` };
  if (probeDaemon(ctx).state === 'ok') {
    return { check: 'helper-capability', ok: true, summary: `${ctx.user} lacks CAP_NET_ADMIN: the helper asks the qbh daemon for its taps${nnp}` };
  }
  return {
    check: 'helper-capability',
    ok: false,
    summary: `${ctx.user} lacks CAP_NET_ADMIN and no qbh daemon answers: a helper started by this user's QEMU cannot create taps${nnp}`,
    fix: 'sudo systemctl enable --now qbhd.socket (the qbh daemon; or run `qbh daemon` as root), or start QEMU with CAP_NET_ADMIN in its ambient set; see qemu-bridge-helper(8)',
  };
};

/** The qbh daemon: its socket, whether it answers, its version, and the bridges it would give this user. */
const daemonCheck: DoctorCheck = (ctx) => {
  const path = ctx.daemonSocket ?? DAEMON_SOCKET;
  const probe = probeDaemon(ctx);
  const start = 'sudo systemctl enable --now qbhd.socket (or run `qbh daemon` as root)';
  switch (probe.state) {
    case 'absent':
      return hasNetAdmin()
        ? { check: 'daemon', ok: true, summary: `qbh daemon: no socket at ${path} (not needed: ${ctx.user} has CAP_NET_ADMIN)` }
        : { check: 'daemon', ok: false, summary: `qbh daemon: no socket at ${path}, so an unprivileged helper has nobody to ask`, fix: start };
    case 'unreachable': {
      const r: CheckResult = { check: 'daemon', ok: false, summary: `qbh daemon: ${probe.why}`, fix: 'sudo systemctl restart qbhd.socket qbhd.service; journalctl -u qbhd says why it stopped' };
      return hasNetAdmin() ? unused(r, `not used: ${ctx.user} has CAP_NET_ADMIN`) : r;
    }
    case 'refused': {
      const r: CheckResult = { check: 'daemon', ok: false, summary: `qbh daemon at ${path} refused a check: ${probe.why}`, fix: 'run the same qbh version as the daemon' };
      return hasNetAdmin() ? unused(r, `not used: ${ctx.user} has CAP_NET_ADMIN`) : r;
    }
    case 'ok': {
      const r = probe.reply;
      const head = `qbh daemon at ${path}: reachable, qbh ${r.daemon}, protocol ${PROTOCOL_VERSION}`;
      if (r.error !== undefined) return { check: 'daemon', ok: false, summary: `${head}; it cannot decide for ${ctx.user}: ${r.error}`, fix: `fix the ACL (sudo qbh acl check --bridge BR --user ${ctx.user} shows where)` };
      const list = r.any ? `every bridge${r.except.length ? ` except ${r.except.join(', ')}` : ''}` : r.bridges.join(', ');
      return list
        ? { check: 'daemon', ok: true, summary: `${head}; gives ${ctx.user} (uid ${r.uid}): ${list}` }
        : { check: 'daemon', ok: false, summary: `${head}; gives ${ctx.user} (uid ${r.uid}) no bridge`, fix: `add "allow BRIDGE" (or "allow-user ${ctx.user} BRIDGE") to the ACL` };
    }
  }
};

/** True when `path` is qbh's helper: the bundle's banner is in its first bytes. */
function isQbhHelper(path: string, qbhHelper: string): boolean {
  try {
    if (realpathSync(path) === realpathSync(qbhHelper)) return true;
  } catch {
    // qbh's own bundle may not be built: fall back to the banner
  }
  try {
    const fd = openSync(path, 'r');
    try {
      const head = Buffer.alloc(512);
      const n = readSync(fd, head, 0, head.length, 0);
      return head.subarray(0, n).toString('latin1').includes('from src/helper: do not edit');
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}

/**
 * The version of the qbh helper whose bundle is `bundle`: read from the package.json of the package
 * it belongs to (the bundle sits in dist/, one level below the package root). Only files are read:
 * the helper is never run, and takes no new flags.
 */
export function helperVersion(bundle: string): string | undefined {
  try {
    const pkg = JSON.parse(readFileSync(join(dirname(bundle), '..', 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
    return pkg.name === 'qbh' && typeof pkg.version === 'string' ? pkg.version : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Where QEMU and libvirt are told which helper to run: the fix for a helper that is not qbh's. A
 * distribution's helper is a packaged file (dpkg, rpm): overwriting it is undone by the next QEMU
 * update, so qbh never suggests it — a diversion moves the packaged file aside for good.
 */
function pointAtQbh(qbhHelper: string, path?: string): string {
  const divert = path === undefined ? '' : `; to make qbh QEMU's default on Debian: sudo dpkg-divert --local --rename --add ${path} && sudo ln -s ${qbhHelper} ${path}`;
  return `give QEMU -netdev bridge,br=BR,helper=${qbhHelper} (libvirt: bridge_helper = "${qbhHelper}" in qemu.conf)${divert}`;
}

/** The summary of a helper found at `p` that is qbh's. */
function qbhHelperSummary(label: string, p: string, real: string): string {
  const via = real === p ? '' : ` → ${real}`;
  const v = helperVersion(real);
  const which = v === undefined ? 'of unknown version (no package.json beside its bundle)' : v === version() ? v : `${v} (this qbh is ${version()})`;
  return `${label} ${p}${via} is qbh ${which}`;
}

function realOrSelf(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

/**
 * The helper QEMU runs. Named with `--helper` (the path given to QEMU's `helper=` or libvirt's
 * `bridge_helper`): it must be qbh's. QEMU's compiled-in default paths are used only when QEMU is
 * not told `helper=`: one that is another helper (the distribution's C one) is a warning.
 */
const qemuHelper: DoctorCheck = (ctx) => {
  if (ctx.chosenHelper) {
    return ctx.helperPaths.map((p): CheckResult => {
      if (!exists(p)) return { check: 'qemu-helper', ok: false, summary: `helper ${p}: missing`, fix: pointAtQbh(ctx.qbhHelper) };
      const real = realOrSelf(p);
      if (isQbhHelper(p, ctx.qbhHelper)) return { check: 'qemu-helper', ok: true, summary: qbhHelperSummary('helper', p, real) };
      return {
        check: 'qemu-helper',
        ok: false,
        summary: `helper ${p}${real === p ? '' : ` → ${real}`} is not qbh (another qemu-bridge-helper, e.g. the C one)`,
        fix: pointAtQbh(ctx.qbhHelper),
      };
    });
  }
  const found = ctx.helperPaths.filter(exists);
  if (found.length === 0) {
    return {
      check: 'qemu-helper',
      ok: true,
      warn: true,
      summary: `QEMU's default helper: none at ${ctx.helperPaths.join(', ')}, so QEMU needs helper= naming qbh's (\`qbh doctor --helper PATH\` checks it)`,
      fix: pointAtQbh(ctx.qbhHelper),
    };
  }
  return found.map((p): CheckResult => {
    const real = realOrSelf(p);
    if (isQbhHelper(p, ctx.qbhHelper)) return { check: 'qemu-helper', ok: true, summary: qbhHelperSummary("QEMU's default helper", p, real) };
    return {
      check: 'qemu-helper',
      ok: true,
      warn: true,
      summary: `QEMU's default helper ${p}${real === p ? '' : ` → ${real}`} is not qbh (another qemu-bridge-helper, e.g. the C one): QEMU runs qbh's only where told helper= (\`qbh doctor --helper PATH\` checks it)`,
      fix: pointAtQbh(ctx.qbhHelper, p),
    };
  });
};

/** What each guard feature is needed for (and, for tc's, the kernel option that brings it). */
const GUARD_FEATURE_NEEDS: Record<GuardFeature, string> = {
  isolated: 'guard word isolated',
  locked: 'guard words mac=… and mac=sticky',
  mab: 'guard word mac=sticky',
  'sticky FDB': 'guard words mac=… and mac=sticky',
  clsact: 'every guard word but isolated and mac=sticky (CONFIG_NET_SCH_INGRESS)',
  cls_bpf: 'every guard word but isolated and mac=sticky (CONFIG_NET_CLS_BPF)',
};

/**
 * Which port-guard features this kernel has: tried for real in a throwaway network namespace
 * (src/guard/probe.ts), which only root can make; nothing outside it is touched. A missing
 * feature is a warning: a guard that needs it is refused (no tap), never applied in part.
 */
const guardFeatures: DoctorCheck = () => {
  const check = 'guard-features';
  if (process.getuid?.() !== 0) {
    return { check, ok: true, summary: 'port guard features: not probed (the probe runs in a throwaway network namespace, which needs root: sudo qbh doctor)' };
  }
  let found;
  try {
    found = probeGuardFeaturesSync();
  } catch (e) {
    return { check, ok: true, warn: true, summary: `port guard features: could not probe: ${(e as Error).message}` };
  }
  const missing = found.filter((f) => !f.ok);
  if (missing.length === 0) return { check, ok: true, summary: `port guard features: ${GUARD_FEATURES.join(', ')} (probed in a throwaway network namespace)` };
  const have = found.filter((f) => f.ok).map((f) => f.feature);
  return {
    check,
    ok: true,
    warn: true,
    summary: `port guard features: missing ${missing.map((f) => `${f.feature} (${f.why ?? 'not in effect'})`).join(', ')}; present: ${have.join(', ') || 'none'}`,
    fix: `a newer kernel, or one built with what is missing: until then a guard using ${missing.map((f) => GUARD_FEATURE_NEEDS[f.feature]).join('; ')} is refused (no tap is handed out)`,
  };
};

/** Every check, in the order printed. Add a function here to add a check. */
export const DOCTOR_CHECKS: DoctorCheck[] = [bridgeSupport, tunSupport, tunDevice, aclFile, helperCapability, daemonCheck, qemuHelper, guardFeatures];

/** Runs the checks; a check that throws is reported as failed, never aborts the others. */
export function runDoctor(ctx: DoctorContext, checks: DoctorCheck[] = DOCTOR_CHECKS): CheckResult[] {
  const results = checks.flatMap((check) => {
    try {
      return check(ctx);
    } catch (e) {
      return [{ check: check.name || 'check', ok: false, summary: `check failed to run: ${(e as Error).message}` }];
    }
  });
  if (ctx.purpose !== 'api') return results;
  return results.map((r) => (!r.ok && HELPER_ONLY.has(r.check) ? unused(r, 'not used by the API') : r));
}

function currentUser(uid: number): string {
  try {
    return userInfo().username;
  } catch {
    return `uid ${uid}`;
  }
}

/** The doctor's report as text: ✓/✗ lines, each ✗ followed by its fix. */
function renderReport(results: CheckResult[], io: CliIo): string {
  const c = palette(io);
  const mark = (r: CheckResult) => (!r.ok ? c.red('✗') : r.warn ? c.yellow('!') : c.green('✓'));
  const lines = results.flatMap((r) => [`${mark(r)} ${r.summary}`, ...(r.fix && (!r.ok || r.warn) ? [`    fix: ${r.fix}`] : [])]);
  const failed = results.filter((r) => !r.ok).length;
  const warned = results.filter((r) => r.ok && r.warn).length;
  const warnings = warned === 0 ? '' : ` (${warned} warning${warned === 1 ? '' : 's'})`;
  lines.push(failed === 0 ? `all checks passed${warnings}` : `${failed} check${failed === 1 ? '' : 's'} failed${warnings}`);
  return lines.join('\n') + '\n';
}

const doctorCommand: Command = {
  name: 'doctor',
  summary: 'Check this machine is set up for the bridge helper: kernel, /dev/net/tun, ACL, capabilities, qbh daemon, QEMU, port guard features.',
  usage: 'qbh doctor [--for helper|api] [--acl FILE] [--tun PATH] [--helper PATH]... [--daemon-socket PATH] [--json]',
  options: `  --for helper    the set-up to check (the default): QEMU's bridge helper, making taps
                  itself (CAP_NET_ADMIN) or asking the qbh daemon
  --for api       scripts using the API or qbh itself: CAP_NET_ADMIN and /dev/net/tun;
                  the ACL, the daemon and the helper are only warned about
  --acl FILE      the ACL file to check (default ${DEFAULT_ACL_FILE})
  --tun PATH      the tun device to check (default /dev/net/tun)
  --helper PATH   the helper QEMU is told to run (its helper=, libvirt's
                  bridge_helper); repeatable. Without it, QEMU's default paths
                  ${QEMU_HELPER_PATHS.join(',\n                  ')}
                  are looked at, and one that is not qbh is only a warning
  --daemon-socket PATH
                  the qbh daemon's socket (default ${DAEMON_SOCKET}, where the helper asks)
  -j, --json      print {"ok": bool, "checks": [{"check", "ok", "summary", "fix"?, "warn"?}]}

It checks what the set-up in use needs: the helper making taps itself (CAP_NET_ADMIN) or asking
the qbh daemon. ✗ is something it lacks; ! (a warning) something it does not use, or worth
knowing. Every check only reads: nothing is created, loaded or changed, except that as root the
port guard features (isolated, locked, mab, sticky FDB, clsact, cls_bpf) are tried in a throwaway
network namespace that vanishes with the probe. Exit status 0 when nothing failed (warnings
included), 1 otherwise.`,
  async run(argv, io) {
    const { values } = parse(
      argv,
      { ...JSON_OPTION, for: { type: 'string' }, acl: { type: 'string' }, tun: { type: 'string' }, helper: { type: 'string', multiple: true }, 'daemon-socket': { type: 'string' } },
      { required: [] },
    );
    const purpose = values.for ?? 'helper';
    if (!(DOCTOR_PURPOSES as readonly string[]).includes(purpose)) throw new UsageError(`invalid --for "${purpose}": expected ${DOCTOR_PURPOSES.join(' or ')}`);
    const credentials = processCredentials();
    const ctx: DoctorContext = {
      aclPath: values.acl ?? DEFAULT_ACL_FILE,
      tunPath: values.tun ?? '/dev/net/tun',
      helperPaths: values.helper ?? QEMU_HELPER_PATHS,
      chosenHelper: values.helper !== undefined,
      qbhHelper: join(PACKAGE_ROOT, 'dist', 'qemu-bridge-helper.cjs'),
      credentials,
      user: currentUser(credentials.uid),
      daemonSocket: values['daemon-socket'] ?? DAEMON_SOCKET,
      purpose: purpose as DoctorPurpose,
    };
    const checks = runDoctor(ctx);
    const ok = checks.every((r) => r.ok);
    return output({ ok, checks }, values.json, (v) => renderReport(v.checks, io), ok ? 0 : 1);
  },
};

export const doctorCommands: Command[] = [doctorCommand];
