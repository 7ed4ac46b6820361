/**
 * What the helper does when it holds a privilege its caller lacks: run behind a setuid or setgid
 * wrapper (effective ids not the real ones), or with capabilities while its real uid is not root
 * (an ambient capability, a file-capability wrapper). Any other process of the caller's uid may then
 * signal it, and the files it reads must be the ones its caller may read (docs/helper.md, "Trust model").
 * @module
 */
import { readFileSync } from 'node:fs';
import { native } from '../native.js';

/**
 * The node flags that keep SIGUSR1 from ever opening Node's inspector, one of which the helper's
 * `#!` line passes (scripts/launcher.mjs writes the line; the two lists must agree):
 * `--disable-sigusr1` (Node 22.14+, 23.7+: no handler at all), or, for older nodes, an inspector
 * address no resolver accepts (an IPv6 scope `/`, which no interface name can hold).
 */
export const SIGUSR1_SHUT_FLAGS: readonly string[] = ['--disable-sigusr1', '--inspect-port=[::%/]'];

/** The helper's one line when it would run privileged with SIGUSR1 not shut out. */
export const SIGUSR1_OPEN_MESSAGE =
  'qbh: refusing to run with privileges the caller lacks on a node started without --disable-sigusr1 ' +
  'or --inspect-port=[::%/] (a SIGUSR1 would open an inspector any process of the caller could use); ' +
  'start the helper through its own #! line (bin/qemu-bridge-helper), see qemu-bridge-helper(8)\n';

/** The permitted capability set of this process (`CapPrm` in /proc/self/status). */
function capPermitted(): bigint {
  const m = /^CapPrm:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'latin1'));
  // Unreadable or unparsable: assume the worst.
  return m === null ? -1n : BigInt(`0x${m[1]}`);
}

/**
 * Whether this process holds anything its real uid and gid do not: other effective ids (setuid or
 * setgid), or capabilities (effective or permitted) while the real uid is not root.
 */
export function heldBeyondCaller(): boolean {
  if (process.geteuid!() !== process.getuid!() || process.getegid!() !== process.getgid!()) return true;
  return process.getuid!() !== 0 && (native.capEffective() !== 0n || capPermitted() !== 0n);
}

/**
 * The line to refuse with, or null to go on: a helper that holds a privilege its caller lacks runs
 * only when node was started with one of {@link SIGUSR1_SHUT_FLAGS}. Checked first thing, but after
 * Node's own start-up: this cannot close the window, only refuse to work through it, so the
 * supported start (the `#!` line) always carries the flag and never reaches the check's slow part.
 */
export function privilegeRefusal(execArgv: readonly string[] = process.execArgv): string | null {
  if (execArgv.some((a) => SIGUSR1_SHUT_FLAGS.includes(a))) return null;
  return heldBeyondCaller() ? SIGUSR1_OPEN_MESSAGE : null;
}

/**
 * Runs `read` with the caller's real uid and gid as the effective ones (supplementary groups are
 * the caller's already), then switches back: behind a setuid-root or setgid wrapper the ACL files
 * are opened as the caller, so the kernel decides what the caller may read, as the C helper does
 * after its privilege drop. Without a wrapper (effective ids = real ids) `read` just runs. A switch
 * that fails throws (the helper then fails closed); the ids are switched process-wide (glibc's
 * setresuid applies to every thread).
 */
export function asCaller<T>(read: () => T): T {
  const [ruid, rgid, euid, egid] = [process.getuid!(), process.getgid!(), process.geteuid!(), process.getegid!()];
  if (euid === ruid && egid === rgid) return read();
  // The gid first and back last: switching it needs the root euid (or the gid being a real or
  // saved one), and whatever step fails, the ones before it are undone.
  process.setegid!(rgid);
  try {
    process.seteuid!(ruid);
    try {
      return read();
    } finally {
      process.seteuid!(euid);
    }
  } finally {
    process.setegid!(egid);
  }
}
