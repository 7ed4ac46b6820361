/**
 * The qbhd wire protocol, version 1 (docs/daemon.md): one connection, one request, one reply.
 * Both are one line of JSON ending in `\n`; a tap reply carries the tap's fd as SCM_RIGHTS on the
 * same sendmsg. Everything a client sends is bytes until {@link parseRequest} has checked it:
 * size-capped, typed, versioned, and an unknown field is an error, never ignored.
 *
 * This module is shared by the daemon and by the helper's client, so it imports nothing but the
 * errno constants: the helper's daemon path must stay lean (no ACL, no netlink).
 * @module
 */
import { EACCES, EAGAIN, EINVAL, EIO, EMSGSIZE, EPROTO, ETIMEDOUT } from '../errors.js';

/** The protocol version this code speaks. A request with another `v` is refused. */
export const PROTOCOL_VERSION = 1;

/**
 * Where the daemon listens, and where the helper looks for it. Fixed: the helper may run with an
 * empty environment (QEMU's sandbox, a clean launcher), and a path from the environment or argv
 * would let a caller point it at a daemon of their own choosing.
 */
export const DAEMON_SOCKET = '/run/qbh/qbhd.sock';

/**
 * Largest request line, newline included. A valid request is under 150 bytes (a 15-byte bridge, a
 * 15-byte tap name); 4 KiB leaves room for whitespace a hand-written client may add, and caps what
 * one connection can make the daemon buffer.
 */
export const MAX_REQUEST_BYTES = 4096;

/** Largest reply line a client needs to accept: ACL messages from broken includes can add up. */
export const MAX_REPLY_BYTES = 64 * 1024;

/** errno values used in replies (Linux numbering), with the names clients may switch on. */
export const ERRNO = { EACCES, EAGAIN, EINVAL, EMSGSIZE, EPROTO, ETIMEDOUT, EIO } as const;

/** `{"v":1,"op":"tap",…}`: make a tap on `bridge` and send its fd. */
export interface TapRequest {
  op: 'tap';
  /** The bridge, as `--br=` gave it. */
  bridge: string;
  /** `--use-vnet`: IFF_VNET_HDR when the kernel supports it. */
  vnetHdr: boolean;
  /** The `--ifname=` extension: a name or `%d` template instead of the kernel's `tap%d`. */
  ifname: string | null;
}

/** `{"v":1,"op":"check"}`: create nothing; say what this peer may use (and, with `bridge`, why). */
export interface CheckRequest {
  op: 'check';
  bridge: string | null;
}

export type DaemonRequest = TapRequest | CheckRequest;

/** A request the daemon refuses before deciding anything. `errno` goes into the reply. */
export class ProtocolError extends Error {
  override name = 'ProtocolError';
  readonly errno: number;
  constructor(errno: number, message: string) {
    super(message);
    this.errno = errno;
  }
}

/** The fields each operation takes; anything else is an error (strict schema). */
const FIELDS: Record<DaemonRequest['op'], { required: string[]; optional: string[] }> = {
  tap: { required: ['v', 'op', 'bridge', 'vnet_hdr'], optional: ['ifname'] },
  check: { required: ['v', 'op'], optional: ['bridge'] },
};

/** Longest name accepted in a request, in UTF-8 bytes. Longer ones are refused here; 16…63 reach the ACL's own `too long` message. */
const MAX_NAME_BYTES = 63;

function name(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new ProtocolError(ERRNO.EINVAL, `"${field}" must be a string`);
  // A lone surrogate would become U+FFFD on the way to the kernel: another name than the one checked.
  if (Buffer.from(value, 'utf8').toString('utf8') !== value) throw new ProtocolError(ERRNO.EINVAL, `"${field}" is not valid Unicode`);
  if (value.includes('\0')) throw new ProtocolError(ERRNO.EINVAL, `"${field}" contains NUL`);
  if (Buffer.byteLength(value) > MAX_NAME_BYTES) throw new ProtocolError(ERRNO.EINVAL, `"${field}" is longer than ${MAX_NAME_BYTES} bytes`);
  return value;
}

/**
 * Parses one request line (without its `\n`). Throws {@link ProtocolError} for anything that is not
 * exactly a version-1 request: not JSON, not an object, another version, an unknown `op`, a missing,
 * unknown or mistyped field.
 */
export function parseRequest(line: Buffer): DaemonRequest {
  let value: unknown;
  try {
    value = JSON.parse(line.toString('utf8'));
  } catch {
    throw new ProtocolError(ERRNO.EPROTO, 'request is not a line of JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new ProtocolError(ERRNO.EPROTO, 'request is not a JSON object');
  const obj = value as Record<string, unknown>;
  if (obj.v !== PROTOCOL_VERSION) {
    throw new ProtocolError(ERRNO.EPROTO, `unsupported protocol version ${JSON.stringify(obj.v) ?? 'missing'} (this daemon speaks ${PROTOCOL_VERSION})`);
  }
  const op = obj.op;
  if (op !== 'tap' && op !== 'check') throw new ProtocolError(ERRNO.EINVAL, `unknown op ${JSON.stringify(op) ?? 'missing'} (tap, check)`);
  const { required, optional } = FIELDS[op];
  for (const key of Object.keys(obj)) {
    if (!required.includes(key) && !optional.includes(key)) throw new ProtocolError(ERRNO.EINVAL, `unknown field "${key}" in a ${op} request`);
  }
  for (const key of required) if (!(key in obj)) throw new ProtocolError(ERRNO.EINVAL, `missing field "${key}" in a ${op} request`);
  if (op === 'check') return { op, bridge: obj.bridge === undefined || obj.bridge === null ? null : name(obj.bridge, 'bridge') };
  if (typeof obj.vnet_hdr !== 'boolean') throw new ProtocolError(ERRNO.EINVAL, '"vnet_hdr" must be true or false');
  const ifname = obj.ifname === undefined || obj.ifname === null || obj.ifname === '' ? null : name(obj.ifname, 'ifname');
  return { op, bridge: name(obj.bridge, 'bridge'), vnetHdr: obj.vnet_hdr, ifname };
}

/** The request line a client sends. */
export function encodeRequest(req: DaemonRequest): Buffer {
  const body = req.op === 'tap' ? { v: PROTOCOL_VERSION, op: 'tap', bridge: req.bridge, vnet_hdr: req.vnetHdr, ...(req.ifname === null ? {} : { ifname: req.ifname }) } : { v: PROTOCOL_VERSION, op: 'check', ...(req.bridge === null ? {} : { bridge: req.bridge }) };
  return Buffer.from(`${JSON.stringify(body)}\n`);
}

/** A refusal or failure: `message` is what the helper prints to stderr, exactly (C helper texts). */
export interface ErrorReply {
  v: 1;
  ok: false;
  errno: number;
  message: string;
}

/** A tap was made; its fd rides on this reply (SCM_RIGHTS). */
export interface TapReply {
  v: 1;
  ok: true;
  op: 'tap';
  /** The tap's name (the fd's TUNGETIFF says the same, and its flags). */
  tap: string;
  /** Lines the helper prints although the tap was made (messages from broken includes), exactly. */
  message?: string;
}

/** What the peer may use, as the daemon sees it. */
export interface CheckReply {
  v: 1;
  ok: true;
  op: 'check';
  /** The daemon's package version. */
  daemon: string;
  /** The identity the kernel gave the daemon for this connection. */
  uid: number;
  gid: number;
  groups: number[];
  /** Bridges named in the ACL that this peer may use. */
  bridges: string[];
  /** True when a wildcard lets this peer use bridges the ACL does not name. */
  any: boolean;
  /** With `any`: bridges named in the ACL that are still denied. */
  except: string[];
  /** No decision possible (ACL missing, broken, insecure): `message` says why. */
  error?: string;
  /** With a `bridge` in the request: the decision and its reason (`allowed: "allow br0" at FILE:1`). */
  bridge?: { name: string; allowed: boolean; reason: string; message: string };
}

export type DaemonReply = ErrorReply | TapReply | CheckReply;

/** One reply line. */
export function encodeReply(reply: DaemonReply): Buffer {
  return Buffer.from(`${JSON.stringify(reply)}\n`);
}

/** An error reply. */
export function errorReply(errno: number, message: string): ErrorReply {
  return { v: PROTOCOL_VERSION, ok: false, errno, message: message.endsWith('\n') ? message : `${message}\n` };
}

/** Parses a reply line (client side). Throws a plain Error when it is not a version-1 reply. */
export function parseReply(line: Buffer): DaemonReply {
  const value = JSON.parse(line.toString('utf8')) as Partial<DaemonReply> | null;
  if (value === null || typeof value !== 'object' || value.v !== PROTOCOL_VERSION || typeof value.ok !== 'boolean') {
    throw new Error('the daemon sent a reply this client does not understand');
  }
  if (!value.ok) {
    const e = value as Partial<ErrorReply>;
    if (typeof e.errno !== 'number' || typeof e.message !== 'string') throw new Error('the daemon sent a malformed error reply');
  } else if (value.op === 'tap' && typeof (value as Partial<TapReply>).tap !== 'string') {
    throw new Error('the daemon sent a malformed tap reply');
  }
  return value as DaemonReply;
}
