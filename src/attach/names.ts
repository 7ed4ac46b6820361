/**
 * Names as bytes: `--br` and `--ifname` arrive as argv bytes (the helper) or as JSON text (the
 * daemon), and the ACL compares bytes as the C helper does; the tap layer takes text. These are the
 * two conversions between them, shared by the helper, the daemon's client and the attach steps.
 * @module
 */
import { EINVAL } from '../errors.js';
import { TapError } from '../tun/errors.js';

/**
 * Whether `a` holds the bytes of `b` from offset 0 (all of `a` when `whole`). A loop, not
 * Buffer#equals/compare: those are JavaScript Node compiles on first use, for a few short names.
 */
export function startsWithBytes(a: Uint8Array, b: Uint8Array, whole: boolean): boolean {
  if (a.length < b.length || (whole && a.length !== b.length)) return false;
  for (let i = 0; i < b.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Byte-for-byte equality of two byte strings. */
export const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => startsWithBytes(a, b, true);

/** Whether `bytes` is valid UTF-8: decoding and encoding it again gives the same bytes. */
export function isUtf8(bytes: Buffer): boolean {
  return sameBytes(Buffer.from(bytes.toString('utf8'), 'utf8'), bytes);
}

/**
 * An interface name from argv bytes, as the text the tap layer takes. Bytes that are not UTF-8
 * would be changed on the way to the kernel (to U+FFFD) and could name another bridge than the one
 * the ACL allowed: refused (a qbh deviation; the C helper passes the bytes through).
 */
export function utf8Name(what: 'bridge' | 'tap', bytes: Buffer): string {
  const text = bytes.toString('utf8');
  if (!sameBytes(Buffer.from(text, 'utf8'), bytes)) {
    throw new TapError({ step: 'validate', errno: EINVAL, detail: `${what} name \`${text}' is not valid UTF-8` });
  }
  return text;
}
