/**
 * Revocation: what the daemon can take back of a tap it has handed out. A tap fd is full control
 * of its tap — its holder may, without any capability, make it persistent (TUNSETPERSIST), give it
 * to itself (TUNSETOWNER/TUNSETGROUP), close the fd and attach to it again later (TUNSETIFF as its
 * owner), and change its MAC (SIOCSIFHWADDR on the fd) — so an ACL change alone takes nothing
 * back. What the kernel does allow is deleting the device (RTM_DELLINK): every fd attached to it
 * is then dead (EBADFD) and TUNSETIFF cannot make it again without CAP_NET_ADMIN.
 *
 * So the daemon remembers each tap it made (ifindex, name, the request and the peer it decided
 * for) and, on a sweep ({@link TapRegistry.sweep}, run on SIGHUP), decides each live one again
 * with the same code as a new request; a tap no longer allowed is deleted, and so is one its
 * holder made persistent and left unattached. The memory is the kernel's list of links, not the
 * daemon's: a tap that is gone is forgotten at the next sweep or pruning, so what is kept is
 * bounded by the taps alive now.
 * @module
 */
import { Rtnl } from '../netlink/rtnl.js';
import { ENODEV } from '../errors.js';
import { NetlinkError } from '../netlink/errors.js';
import { infoData } from '../netlink/tables.js';
import type { LinkMessage } from '../netlink/message.js';
import { decideTap } from './decide.js';
import type { Peer } from './peer.js';
import type { TapRequest } from '../attach/protocol.js';
import { auditLine, auditValue } from './audit.js';

/** A tap the daemon made, as it was handed out. */
export interface HandedTap {
  /** The kernel's index for it: never changed by its holder, never reused while it exists. */
  ifindex: number;
  /** Its name when made (its holder cannot rename it: that takes CAP_NET_ADMIN). */
  name: string;
  /** The request it was made for, decided again at each sweep. */
  request: TapRequest;
  /** Whom it was made for, as the kernel identified them then. */
  peer: Peer;
}

/** What one sweep did. */
export interface SweepResult {
  /** Live taps the ACL still allows: left alone. */
  kept: number;
  /** Taps deleted now (one `revoked` audit line each). */
  revoked: number;
  /** Taps that were gone already (deleted by their holder, or their last fd closed): forgotten. */
  gone: number;
  /** Taps that could not be decided on or deleted (one error line each): kept for the next sweep. */
  failed: number;
}

/**
 * Remembered taps above which the next one made prunes the list against the kernel (one link
 * dump). It then waits for twice the taps still alive: the cost stays one dump per so many taps
 * made, and the list never holds more than twice the live taps (or this many).
 */
export const PRUNE_MIN = 256;

/** The IFLA_TUN_PERSIST bit of a tun link's IFLA_INFO_DATA. */
function persistent(link: LinkMessage): boolean {
  return infoData(link.attrs.linkinfo, 'tun')?.persist === 1;
}

/**
 * Whether any fd is attached to the tap: the kernel turns a tap's carrier on when a queue attaches
 * and off when the last one detaches (its holder can turn it off too, TUNSETCARRIER, which counts
 * as letting go).
 */
function attached(link: LinkMessage): boolean {
  return link.attrs.carrier === 1;
}

/** The taps one daemon has handed out, and their revocation. */
export class TapRegistry {
  private readonly taps = new Map<number, HandedTap>();
  private pruneAt = PRUNE_MIN;
  private readonly aclPath: string;
  private readonly log: (line: string) => void;

  /** `aclPath` as the server's; `log` the daemon's (one line per call). */
  constructor(options: { aclPath: string; log(line: string): void }) {
    this.aclPath = options.aclPath;
    this.log = options.log;
  }

  /** Taps remembered now (live, or gone since the last sweep or pruning). */
  get size(): number {
    return this.taps.size;
  }

  /** Remembers a tap just made (the server's `onTap`). */
  remember(tap: HandedTap): void {
    this.taps.set(tap.ifindex, tap);
    if (this.taps.size >= this.pruneAt) this.prune();
  }

  /** Forgets the taps that are gone, by one link dump; then waits for twice as many before the next. */
  private prune(): void {
    let rtnl: Rtnl | null = null;
    try {
      rtnl = Rtnl.openSync();
      const live = this.liveTaps(rtnl);
      for (const [ifindex, tap] of this.taps) if (live.get(ifindex)?.attrs.ifname !== tap.name) this.taps.delete(ifindex);
    } catch (err) {
      this.log(`qbhd: cannot list taps to forget those gone: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      rtnl?.close();
      this.pruneAt = Math.max(PRUNE_MIN, 2 * this.taps.size);
    }
  }

  private liveTaps(rtnl: Rtnl): Map<number, LinkMessage> {
    return new Map(rtnl.linkMessagesOfKindSync('tun', 'revoke').map((m) => [m.index, m]));
  }

  /**
   * Decides every live tap this daemon made again, as a new request for it would be decided now,
   * and deletes (RTM_DELLINK) each one that is no longer allowed (`reason=acl`), persistent or not,
   * and each one its holder made persistent and no fd holds any more (`reason=persistent`): one
   * `revoked` audit line each. Taps already gone are forgotten without a word. A decision that
   * cannot be made (the ACL missing, broken or insecure) denies, as it does for a new request.
   * Blocking from start to end, so that no request is decided half before, half after it.
   * Throws only if the kernel's list of links cannot be read (nothing is then changed).
   * Equivalent to `ip link del TAP` for each such tap.
   */
  sweep(): SweepResult {
    const out: SweepResult = { kept: 0, revoked: 0, gone: 0, failed: 0 };
    let rtnl: Rtnl | null = null;
    try {
      rtnl = Rtnl.openSync();
      const live = this.liveTaps(rtnl);
      for (const [ifindex, tap] of this.taps) {
        const link = live.get(ifindex);
        if (link === undefined || link.attrs.ifname !== tap.name) {
          this.taps.delete(ifindex);
          out.gone++;
          continue;
        }
        let decision;
        try {
          decision = decideTap(tap.request, this.aclPath, tap.peer, rtnl);
        } catch (err) {
          // Not the ACL's doing (a decision that cannot be made denies): the kernel, or a bug.
          out.failed++;
          this.log(`qbhd: cannot decide again for ${auditValue(tap.name)} (ifindex ${ifindex}) of uid ${tap.peer.person}: ${err instanceof Error ? err.message : String(err)}`);
          continue;
        }
        const reason = !decision.permitted ? 'acl' : persistent(link) && !attached(link) ? 'persistent' : null;
        if (reason === null) {
          out.kept++;
          continue;
        }
        try {
          rtnl.deleteLinkSync(ifindex, tap.name);
        } catch (err) {
          if (err instanceof NetlinkError && err.errno === ENODEV) {
            this.taps.delete(ifindex);
            out.gone++;
          } else {
            out.failed++;
            this.log(`qbhd: cannot revoke ${auditValue(tap.name)} (ifindex ${ifindex}) of uid ${tap.peer.person}: ${err instanceof Error ? err.message : String(err)}`);
          }
          continue;
        }
        this.taps.delete(ifindex);
        out.revoked++;
        const { bridge, ifname } = tap.request;
        this.log(auditLine(tap.peer, 'revoked', { bridge, ...(ifname === null ? {} : { ifname }), tap: tap.name, reason, rule: decision.rule }));
      }
    } finally {
      rtnl?.close();
      this.pruneAt = Math.max(PRUNE_MIN, 2 * this.taps.size);
    }
    return out;
  }
}
