/**
 * The one error family of qbh: every error the library throws is a {@link QbhError}, so a caller
 * writes one `instanceof` and reads `code`, `op` and `target` whatever layer failed (netlink, tap,
 * ACL, input checks). The layers' own classes ({@link NetlinkError}, {@link TapError},
 * {@link AclError}) extend it and add their fields. Imports no code but node:fs (the helper
 * bundles it); the ACL's codes are named by a type-only import.
 * @module
 */
import { readFileSync, statSync } from 'node:fs';
import type { constants } from 'node:os';

/**
 * An errno name as the kernel and libc spell it: 'EEXIST', 'ENODEV', 'EPERM'… (`E<n>` for a
 * number Node has no name for). A typo such as 'ENODEVV' is not one, so comparing with it fails
 * to compile.
 */
export type ErrnoCode = keyof typeof constants.errno | 'EXFULL' | `E${number}`;

/*
 * The errno values qbh names in its code (Linux numbering, include/uapi/asm-generic/errno*.h): the
 * one place they are spelled as numbers. Node's `os.constants.errno` has them too, but loading
 * node:os costs the helper's start-up; errnoName (src/netlink/errors.ts) maps any value to its name.
 */
/** Operation not permitted. */
export const EPERM = 1;
/** I/O error; also what qbh reports for a failure that carries no errno at all. */
export const EIO = 5;
/** Bad file descriptor: a closed socket. */
export const EBADF = 9;
/** Try again. */
export const EAGAIN = 11;
/** Permission denied. */
export const EACCES = 13;
/** Device or resource busy: under IFF_TUN_EXCL, the name is taken. */
export const EBUSY = 16;
/** File exists. */
export const EEXIST = 17;
/** No such device. */
export const ENODEV = 19;
/** Invalid argument. */
export const EINVAL = 22;
/** Too many levels of symbolic links: rtnetlink's answer to enslaving a bridge to a bridge. */
export const ELOOP = 40;
/** Exchange full: a bridge's 1024 ports (Node's errno table leaves it out). */
export const EXFULL = 54;
/** Protocol error. */
export const EPROTO = 71;
/** Message too long. */
export const EMSGSIZE = 90;
/** Operation not supported: enslaving to a device that takes no ports. */
export const EOPNOTSUPP = 95;
/** Cannot assign requested address: a MAC the device refuses. */
export const EADDRNOTAVAIL = 99;
/** No buffer space available: a netlink receive buffer overrun. */
export const ENOBUFS = 105;
/** Connection timed out. */
export const ETIMEDOUT = 110;

/** What kind of failure an `AclError` (src/acl/errors.ts) reports. */
export type AclErrorCode =
  /** the bridge name is 16 bytes or longer (checked before the ACL is read) */
  | 'name'
  /** a syntax error in the main ACL file (the C helper's `failed to parse default acl file`) */
  | 'parse'
  /** the main ACL file is missing or the caller cannot read it (same C message) */
  | 'unreadable'
  /** qbh deviation: an include names a file that is already being read */
  | 'cycle'
  /** qbh deviation: includes nested deeper than 32 levels */
  | 'depth'
  /** qbh deviation: more include lines or bytes than the evaluator is willing to read */
  | 'limit'
  /** qbh hardening: an ACL file or a directory above it could be changed by someone other than root */
  | 'insecure'
  /** qbh deviation: an ACL path names a FIFO, socket or device, or reading it failed midway */
  | 'io'
  /** the caller's identity given to the evaluator is incomplete or inconsistent */
  | 'credentials';

/** Every `code` a {@link QbhError} can have: an errno name, or an ACL failure kind. */
export type QbhErrorCode = ErrnoCode | AclErrorCode;

/** What a {@link QbhError} was made from. */
export interface QbhErrorInit {
  /** Machine-readable: an errno name ('EEXIST', 'EINVAL', 'ENOTEMPTY'…) or a layer's own code. */
  code: QbhErrorCode;
  /** The operation that failed, e.g. 'createBridge'. */
  op?: string | undefined;
  /** The object it acted on, e.g. 'br0'. */
  target?: string | undefined;
  /** What to do about it, when qbh knows ("this needs CAP_NET_ADMIN: run as root…"). */
  hint?: string | undefined;
  /** The underlying error. */
  cause?: unknown;
}

/**
 * The base class of every error qbh throws. `code` says what kind of failure (errno names such as
 * 'EEXIST', 'EINVAL', 'ENOTEMPTY', or a layer's own codes), `op` the operation, `target` the
 * object, `hint` what to do about it. The message names the object and the cause; the CLI prints
 * the same words.
 * @category Errors
 */
export class QbhError extends Error {
  override name = 'QbhError';
  /** Machine-readable kind of failure. */
  readonly code: QbhErrorCode;
  /** The operation that failed, e.g. 'createBridge'. */
  readonly op: string | undefined;
  /** The object it acted on, when there is one. */
  readonly target: string | undefined;
  /** What to do about it, when qbh knows. Already part of `message` for errors that have one. */
  readonly hint: string | undefined;
  /**
   * An error raised while undoing what the operation had done, after this one (which is the one
   * thrown: the first error is kept, the cleanup's attached).
   */
  cleanupError: unknown;

  constructor(message: string, init: QbhErrorInit) {
    super(message, init.cause !== undefined ? { cause: init.cause } : undefined);
    this.code = init.code;
    this.op = init.op;
    this.target = init.target;
    this.hint = init.hint;
  }
}

/**
 * The hint for a missing privilege, when this process lacks CAP_NET_ADMIN: the same words in the
 * API, the CLI and the daemon. An error raised where the capability is present, or where the mode
 * of /dev/net/tun refused, says that instead (`privilegeHint`).
 * @category Errors
 */
export const NEED_NET_ADMIN = 'this needs CAP_NET_ADMIN: run as root, or with the capability in the ambient set';

/** The hint for EPERM/EACCES when the process does hold CAP_NET_ADMIN: the capability is not what is missing. */
export const HAS_NET_ADMIN =
  'this process has CAP_NET_ADMIN, so something else refused: a network namespace owned by another user namespace, or a security module';

/** The tun device, whose mode decides who may open it (kernel: Documentation/networking/tuntap.rst). */
const TUN_DEVICE = '/dev/net/tun';
/** Bits of the capability sets (linux/capability.h). */
const CAP_DAC_OVERRIDE = 1n;
const CAP_NET_ADMIN = 12n;

/** This process's effective capabilities (the CapEff line of /proc/self/status); 0 when unreadable. */
function effectiveCapabilities(): bigint {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'latin1'));
    return m ? BigInt(`0x${m[1]}`) : 0n;
  } catch {
    return 0n;
  }
}

const holds = (caps: bigint, bit: bigint) => ((caps >> bit) & 1n) === 1n;

/**
 * Why opening `path` for reading and writing is refused by its mode for this process — e.g.
 * `/dev/net/tun is mode 0600 (owner 0:0), which uid 65534 may not open` — or null when the mode
 * allows it (or CAP_DAC_OVERRIDE passes over it, as for root). @internal
 */
export function tunModeRefusal(path = TUN_DEVICE): string | null {
  let st;
  try {
    st = statSync(path);
  } catch {
    return null;
  }
  if (holds(effectiveCapabilities(), CAP_DAC_OVERRIDE)) return null;
  const uid = process.geteuid?.() ?? -1;
  const gids = new Set([process.getegid?.() ?? -1, ...(process.getgroups?.() ?? [])]);
  const shift = uid === st.uid ? 6 : gids.has(st.gid) ? 3 : 0;
  const rw = (st.mode >> shift) & 0o6;
  if (rw === 0o6) return null;
  return `${path} is mode 0${(st.mode & 0o7777).toString(8)} (owner ${st.uid}:${st.gid}), which uid ${uid} may not open`;
}

/**
 * What to do about a refused privileged operation, true of the process it runs in: for EPERM or
 * EACCES, it reads the effective capability set and, for an open of /dev/net/tun (`opensTun`), the
 * node's mode. Undefined for other codes. @internal
 */
export function privilegeHint(code: string | undefined, opensTun = false): string | undefined {
  if (code !== 'EPERM' && code !== 'EACCES') return undefined;
  const netAdmin = holds(effectiveCapabilities(), CAP_NET_ADMIN);
  if (opensTun) {
    const refusal = tunModeRefusal();
    if (refusal === null) return `${TUN_DEVICE}'s mode allows this process: a security module or the device cgroup refused it`;
    const fix = `${refusal}: sudo chmod 0666 ${TUN_DEVICE}, the distributions' default (creating a tap still needs CAP_NET_ADMIN)`;
    return netAdmin ? fix : `${fix}; and this process lacks CAP_NET_ADMIN: run as root, or with the capability in the ambient set`;
  }
  return netAdmin ? HAS_NET_ADMIN : NEED_NET_ADMIN;
}

/** The fix qbh knows for an errno name, or undefined. @internal */
export function hintFor(code: string | undefined): string | undefined {
  return privilegeHint(code);
}

/**
 * Input refused before anything reached the kernel (a name over 15 bytes, a CIDR that does not
 * parse, an MTU or a queue count out of range): `code` is 'EINVAL', `op` the function, `target` the
 * object, and `problem` the words without the operation, which the CLI prints as its usage error:
 * `invalid bridge name "averyverylongname0": longer than 15 bytes`. The same mistake is this class,
 * in the same words, from every function that checks it (createBridge, setLink, openTap, openTaps,
 * recvFds…): the tap functions raise it too, not a TapError, and before anything is made.
 * @category Errors
 */
export class InvalidArgumentError extends QbhError {
  override name = 'InvalidArgumentError';
  /** What is wrong with the value, without the operation (`invalid MTU 10: expected 68-65535`). */
  readonly problem: string;

  constructor(problem: string, init: { op: string; target?: string | undefined }) {
    super(`${init.op}: ${problem}`, { code: 'EINVAL', op: init.op, target: init.target });
    this.problem = problem;
  }
}

/**
 * A bridge still has ports and the caller did not say what to do with them: `code` 'ENOTEMPTY',
 * `ports` their names. The message names them and the two ways on.
 * @category Errors
 */
export class BridgeNotEmptyError extends QbhError {
  override name = 'BridgeNotEmptyError';
  /** The ports the bridge still has. */
  readonly ports: readonly string[];

  /** @internal */
  constructor(bridge: string, ports: readonly string[], options: { force: string; withPorts: string }, op = 'deleteBridge') {
    const shown = ports.length > 5 ? `${ports.slice(0, 5).join(', ')}, …` : ports.join(', ');
    const hint = `${options.force} releases them, ${options.withPorts} deletes them too`;
    super(`cannot delete bridge ${bridge}: it still has ${ports.length} port${ports.length === 1 ? '' : 's'} (${shown}); ${hint}`, {
      code: 'ENOTEMPTY',
      op,
      target: bridge,
      hint,
    });
    this.ports = ports;
  }
}
