/**
 * Byte strings: the ACL layer holds file contents, names and paths as JS strings with one character per
 * byte (latin1). The C helper works on bytes, so a name with bytes ≥ 0x80 must compare, measure and
 * print exactly as there (docs/qemu-bridge-helper.md, §4.3); UTF-8 decoding would change lengths and
 * comparisons.
 */

/** Converts text (encoded as UTF-8, as a user typed it) or raw bytes to a byte string. */
export function toByteString(value: string | Buffer): string {
  return typeof value === 'string' ? Buffer.from(value, 'utf8').toString('latin1') : value.toString('latin1');
}

/** The bytes a byte string stands for (for fs paths and stderr). */
export function byteStringBuffer(bytes: string): Buffer {
  return Buffer.from(bytes, 'latin1');
}

/** A byte string as a person reads it: decoded as UTF-8, invalid sequences as U+FFFD. */
export function displayBytes(bytes: string): string {
  // Pure ASCII needs no round trip; most names and paths are.
  for (let i = 0; i < bytes.length; i++) {
    if (bytes.charCodeAt(i) > 0x7f) return Buffer.from(bytes, 'latin1').toString('utf8');
  }
  return bytes;
}

/**
 * GLib's `g_ascii_isspace`: space, \t, \n, \f, \r; never a byte ≥ 0x80 (locale-independent
 * since 2019: docs/qemu-bridge-helper.md, §6). Not \v: GLib's table leaves VT out, unlike C's
 * isspace(); the real helper reads `allow br0\v` as the name "br0\v" and `\vallow br0` as the
 * command "\vallow" (observed; see docs/acl.md and test/acl-diff.test.ts).
 */
export function isAsciiSpace(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0c || code === 0x0d;
}
