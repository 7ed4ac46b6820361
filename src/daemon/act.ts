/**
 * Acting and replying: the tap is made by the very call direct mode makes (attachTap, src/attach),
 * so the daemon's tap is the helper's tap, checks included; the reply carries its fd, and the daemon's own
 * copy is closed at once. The tap is non-persistent: if the client is gone before it reads the
 * reply, the kernel drops the fd in flight and the tap vanishes with it.
 * @module
 */
import { PROTOCOL_VERSION, encodeReply, errorReply, type DaemonReply, type TapRequest } from '../attach/protocol.js';
import type { ResolvedBridge } from '../attach/bridge.js';
import { attachTap } from '../attach/tap.js';
import type { PortGuard } from '../guard/policy.js';
import type { Rtnl } from '../netlink/rtnl.js';
import { native } from '../native.js';
import { TapError, helperMessage } from '../tun/errors.js';

/** A tap ready to send, or the C helper's message for the step that failed. */
export type TapOutcome = { ok: true; fd: number; name: string; ifindex: number } | { ok: false; errno: number; message: string };

/** EOPNOTSUPP: the daemon cannot enforce what the guard asks. */
const ERRNO_EOPNOTSUPP = 95;

/**
 * Makes the tap for an allowed request, on the device the decision was made for (`resolved`), with
 * the request's rtnetlink handle and the port guard the ACL decided (applied before the tap comes
 * up; `mac=sticky` only when `pinning`: the daemon's pinner runs). Never throws for a tap or guard
 * failure; anything else is a bug and propagates.
 */
export function makeTap(req: TapRequest, resolved: ResolvedBridge | null, rtnl: Rtnl, guard?: PortGuard, pinning = false): TapOutcome {
  if (guard?.mac === 'sticky' && !pinning) return { ok: false, errno: ERRNO_EOPNOTSUPP, message: `failed to apply guard on ${req.bridge}: mac=sticky needs qbhd's pinner, which is not running\n` };
  try {
    const tap = attachTap({ bridge: req.bridge, vnetHdr: req.vnetHdr, ifname: req.ifname, resolved, rtnl }, guard === undefined ? {} : { guard });
    return { ok: true, fd: tap.fd, name: tap.name, ifindex: tap.ifindex };
  } catch (err) {
    // A guard that could not be applied is a TapError of step `guard`: the tap is gone, nothing handed out.
    if (!(err instanceof TapError)) throw err;
    return { ok: false, errno: err.errno, message: `${helperMessage(err)}\n` };
  }
}

/**
 * Sends one reply on the connection's socket: one sendmsg, the line plus (for a tap) the fd as
 * SCM_RIGHTS, and closes the daemon's copy of that fd whatever happened. Returns the send error's
 * text, or null. MSG_NOSIGNAL (in the addon): a client that left is an error here, not a SIGPIPE.
 */
export function sendReply(sock: number, reply: DaemonReply, tapFd?: number): string | null {
  const line = encodeReply(reply);
  try {
    const sent = native.sendFds(sock, line, tapFd === undefined ? [] : [tapFd]);
    return sent === line.length ? null : `short write (${sent} of ${line.length} bytes)`;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    if (tapFd !== undefined) native.close(tapFd);
  }
}

/** The reply for a made tap. */
export function tapReply(name: string, message: string): DaemonReply {
  return { v: PROTOCOL_VERSION, ok: true, op: 'tap', tap: name, ...(message === '' ? {} : { message }) };
}

export { errorReply };
