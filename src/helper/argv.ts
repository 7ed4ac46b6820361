/**
 * The helper's command line, exactly as the C helper scans it: `--use-vnet`, `--br=`,
 * `--fd=` (atoi), scanned left to right, last one wins, anything else is a usage error at once.
 * Arguments are bytes: a bridge name is measured and compared as the C helper does, with `strlen`.
 */
import { readFileSync } from 'node:fs';
import { sameBytes, startsWithBytes } from '../attach/names.js';

/** The C helper's usage line, printed for every argv error. */
export const USAGE_MESSAGE = 'Usage: qemu-bridge-helper [--use-vnet] --br=bridge --fd=unixfd\n';

/** What a valid command line asks for. */
export interface HelperArgs {
  /** `--use-vnet`: ask for IFF_VNET_HDR (QEMU always passes it; libvirt for virtio NICs). */
  useVnet: boolean;
  /** `--br=NAME`, the bytes after `=` (may be empty). */
  bridge: Buffer;
  /** `--fd=N` through atoi: the unix socket to send the tap fd on (not checked until the send, as in C). */
  fd: number;
  /** qbh extension `--ifname=NAME`: the tap's name (default: the kernel picks `tap%d`). */
  ifname: Buffer | null;
}

const USE_VNET = Buffer.from('--use-vnet');
const BR = Buffer.from('--br=');
const FD = Buffer.from('--fd=');
const IFNAME = Buffer.from('--ifname=');

const hasPrefix = (arg: Buffer, prefix: Buffer): boolean => startsWithBytes(arg, prefix, false);

/** C's `isspace` in the C locale: space, \t, \n, \v, \f, \r. */
function isCSpace(c: number | undefined): boolean {
  return c === 0x20 || (c !== undefined && c >= 0x09 && c <= 0x0d);
}

/**
 * glibc's `atoi`: `(int) strtol(s, NULL, 10)`. Leading whitespace is skipped, one sign is accepted,
 * digits are read up to the first non-digit; nothing is an error (`""`, `"abc"` → 0). strtol clamps
 * to the range of a 64-bit long, and the cast to int keeps the low 32 bits (`"99999999999999999999"`
 * → LONG_MAX → -1).
 */
export function atoi(s: Buffer): number {
  let i = 0;
  while (isCSpace(s[i])) i++;
  let negative = false;
  if (s[i] === 0x2b /* + */ || s[i] === 0x2d /* - */) negative = s[i++] === 0x2d;
  let value = 0n;
  const LIMIT = 1n << 64n; // beyond any long: enough to clamp correctly
  for (; i < s.length; i++) {
    const c = s[i]!;
    if (c < 0x30 || c > 0x39) break;
    if (value < LIMIT) value = value * 10n + BigInt(c - 0x30);
  }
  if (negative) value = -value;
  const LONG_MAX = (1n << 63n) - 1n;
  const LONG_MIN = -(1n << 63n);
  if (value > LONG_MAX) value = LONG_MAX;
  if (value < LONG_MIN) value = LONG_MIN;
  return Number(BigInt.asIntN(32, value));
}

/**
 * Parses the arguments after argv[0]. Returns null for a usage error: an unknown argument (later
 * ones are not looked at), or `--br`/`--fd` missing, or `--fd` whose value is -1 ("missing" in C).
 */
export function parseHelperArgs(args: readonly Buffer[]): HelperArgs | null {
  let useVnet = false;
  let bridge: Buffer | null = null;
  let fd = -1;
  let ifname: Buffer | null = null;
  for (const arg of args) {
    if (sameBytes(arg, USE_VNET)) useVnet = true;
    else if (hasPrefix(arg, BR)) bridge = arg.subarray(BR.length);
    else if (hasPrefix(arg, FD)) fd = atoi(arg.subarray(FD.length));
    else if (hasPrefix(arg, IFNAME)) ifname = arg.subarray(IFNAME.length);
    else return null;
  }
  if (bridge === null || fd === -1) return null;
  return { useVnet, bridge, fd, ifname: ifname !== null && ifname.length > 0 ? ifname : null };
}

/**
 * The process's arguments after the script, as the bytes the caller passed. Node decodes argv as
 * UTF-8, which would turn a byte ≥ 0x80 that is not valid UTF-8 into U+FFFD (three bytes) and change
 * a name's length and identity; /proc/self/cmdline keeps the bytes. Falls back to process.argv.
 */
export function rawArgs(argv: readonly string[] = process.argv): Buffer[] {
  const count = argv.length - 2;
  const args = argv.slice(2);
  const decoded = args.map((a) => Buffer.from(a, 'utf8'));
  // Every invalid sequence decodes to U+FFFD: without one, the arguments were valid UTF-8 and
  // re-encoding gives back the very bytes (no /proc read at every attach).
  if (!args.some((a) => a.includes('\uFFFD'))) return decoded;
  let cmdline: Buffer;
  try {
    cmdline = readFileSync('/proc/self/cmdline');
  } catch {
    return decoded;
  }
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < cmdline.length; i++) {
    if (cmdline[i] === 0) {
      parts.push(cmdline.subarray(start, i));
      start = i + 1;
    }
  }
  if (count < 0 || parts.length < count) return decoded;
  const raw = parts.slice(parts.length - count);
  // Trust the raw bytes only where they decode to what Node saw.
  for (let i = 0; i < count; i++) if (raw[i]!.toString('utf8') !== argv[i + 2]) return decoded;
  return raw;
}
