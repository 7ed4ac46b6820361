/**
 * qemu-bridge-helper, the drop-in: QEMU (or libvirt) runs it with a unix socket at `--fd`, and it
 * sends back one tap on `--br`. This function reads top to bottom like the C helper's `main()`
 * (docs/helper.md): parse argv, check the name, check the ACL, make the tap, send its fd. Every message
 * is the C helper's, byte for byte; every failure is exit status 1; success prints nothing.
 * @module
 */
import { fstatSync } from 'node:fs';
import { bridgeNameError } from '../acl/evaluate.js';
import { tunModeRefusal } from '../errors.js';
import { hasNetAdmin, native } from '../native.js';
import { openRouteSocketSync } from '../netlink/wire.js';
import { TapError, helperMessage } from '../tun/errors.js';
import { authorizeTap } from '../attach/authorize.js';
import { utf8Name } from '../attach/names.js';
import { attachTap } from '../attach/tap.js';
import { USAGE_MESSAGE, parseHelperArgs } from './argv.js';
import { daemonAnswers, daemonListening, tapFromDaemon } from './daemon-client.js';
import { EXIT_FAILURE, handOff, printErr } from './handoff.js';
import { asCaller } from './privilege.js';

export { EXIT_FAILURE };

/**
 * The line printed when the ACL gives the port a sticky MAC guard and no qbh daemon answers: only
 * qbhd pins the MACs a sticky port learns, and without it the guest could never send a frame, so
 * the tap is not made (a guard never silently degrades).
 */
export function stickyWithoutDaemon(bridge: string): string {
  return `failed to apply guard on ${bridge}: mac=sticky needs qbhd running (it pins the guest's MAC)\n`;
}


/**
 * The line printed after the C helper's own `failed to create tun device: Operation not permitted`
 * when the process lacks CAP_NET_ADMIN and no qbh daemon listens: qbh never relies on setuid or
 * file capabilities.
 */
export const NO_CAPABILITY_HINT =
  'qbh: this helper is not setuid and has no file capabilities, and no qbh daemon listens on ' +
  '/run/qbh/qbhd.sock; start it (systemctl enable --now qbhd.socket) or run the helper with ' +
  'CAP_NET_ADMIN (as root, or in its ambient set), see qemu-bridge-helper(8)\n';

/**
 * The line printed after the C helper's `failed to open /dev/net/tun: Permission denied` when the
 * node's mode refused this user (with or without CAP_NET_ADMIN, which does not pass over a mode).
 */
export function tunModeHint(refusal: string): string {
  return `qbh: ${refusal}; make it 0666, the distributions' default (creating a tap still needs CAP_NET_ADMIN)\n`;
}


/**
 * Why sending on `fd` would fail, judged before the helper opens any fd of its own: a number that
 * is not open now could otherwise be taken by the helper's own netlink socket or tap later, and a
 * 1-byte sendmsg to a netlink socket succeeds — the fd would vanish and the helper exit 0.
 * Returns the errno text for a closed fd (as sendmsg would), else null.
 */
function closedFdError(fd: number): string | null {
  if (fd < 0) return 'Bad file descriptor';
  try {
    // bigint, as the ACL reader's fstat: Node compiles one Stats path on first use, not two.
    fstatSync(fd, { bigint: true });
    return null;
  } catch {
    return 'Bad file descriptor';
  }
}

/**
 * Runs the helper on the arguments after argv[0] (as bytes) and returns the exit status. Writes
 * only to stderr, and only on failure.
 */
export async function helperMain(args: readonly Buffer[]): Promise<number> {
  // 1. The command line: anything unexpected is a usage error, at once.
  const opts = parseHelperArgs(args);
  if (opts === null) {
    printErr(USAGE_MESSAGE);
    return EXIT_FAILURE;
  }
  const sendError = closedFdError(opts.fd);

  // 2. The bridge name, before the ACL is read (CVE-2019-13164); likewise a chosen tap name.
  for (const name of [opts.bridge, opts.ifname]) {
    const tooLong = name === null ? null : bridgeNameError(name);
    if (tooLong !== null) {
      printErr(tooLong);
      return EXIT_FAILURE;
    }
  }

  // 2b. No CAP_NET_ADMIN here, and the qbh daemon listens: it reads the ACL for this user and
  // makes the tap (steps 3 and 4); the hand-off is the same (docs/daemon.md).
  if (!hasNetAdmin() && daemonListening()) return tapFromDaemon(opts, sendError);

  // 3. The ACL, /etc/qemu/bridge.conf read with the caller's real ids (behind a setuid or
  // setgid wrapper the effective ids are switched to them for the read, as the C helper drops to
  // them), decided on every name the bridge goes by (an altname must not escape a deny) and on a
  // chosen tap name (allow-ifname).
  // The socket is closed on every path: helperMain may run many times in one process. Not an Rtnl:
  // the helper loads none of the generic netlink codec (src/netlink/link-requests.ts).
  const rtnl = { socket: { fd: openRouteSocketSync() } };
  let tap: { fd: number; name: string };
  try {
    const { verdict, resolved } = asCaller(() => authorizeTap(opts, rtnl));
    if (verdict.stderr.length > 0) printErr(verdict.stderr);
    if (!verdict.permitted) return EXIT_FAILURE;
    // 3b. The port guard the ACL gives this caller, applied before the tap comes up.
    const guard = verdict.guard?.guard;
    if (guard?.mac === 'sticky' && !daemonAnswers()) {
      printErr(stickyWithoutDaemon(opts.bridge.toString('utf8')));
      return EXIT_FAILURE;
    }

    // 4. The tap: tap%d, bridge MTU, MAC fe:…, enslaved, up, made directly: this needs
    // CAP_NET_ADMIN, and without it the C helper's own message is followed by what to do about it.
    try {
      tap = attachTap({ bridge: utf8Name('bridge', opts.bridge), vnetHdr: opts.useVnet, ifname: opts.ifname === null ? null : utf8Name('tap', opts.ifname), resolved, rtnl }, guard === undefined ? {} : { guard });
    } catch (err) {
      if (!(err instanceof TapError)) throw err;
      printErr(`${helperMessage(err)}\n`);
      if (!hasNetAdmin()) printErr(NO_CAPABILITY_HINT);
      const refusal = err.step === 'open' && err.code === 'EACCES' ? tunModeRefusal() : null;
      if (refusal !== null) printErr(tunModeHint(refusal));
      return EXIT_FAILURE;
    }
  } finally {
    native.close(rtnl.socket.fd);
  }

  // 5. The hand-off: one sendmsg, 1 byte 0x00 + one SCM_RIGHTS fd.
  return handOff(opts.fd, sendError, tap.fd);
}
