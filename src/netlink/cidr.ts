/**
 * CIDR parsing for address operations, with ip-address. A module of its own so that processes that
 * never touch addresses (the helper) do not load it; and ip-address itself is required on the first
 * parse, not when this module loads: its module body parses dozens of Address6 constants,
 * which every `qbh` command paid at start because the CLI's argument checks import this module.
 * The bundles (scripts/bundle.mjs) leave that require to run time: dist/ resolves the package's
 * own dependency, as the ESM build does.
 * @module
 */
import { createRequire } from 'node:module';
import { InvalidArgumentError } from '../errors.js';
import { AF_INET, AF_INET6 } from './constants.js';

type IpAddress = typeof import('ip-address');
let ipAddress: IpAddress | undefined;
/** ip-address, loaded on first use. */
const loadIpAddress = (): IpAddress => (ipAddress ??= createRequire(import.meta.url)('ip-address') as IpAddress);

/** A parsed CIDR, ready for an ifaddrmsg. */
export interface Cidr {
  family: number;
  bytes: Buffer;
  prefixlen: number;
  text: string;
}

/**
 * Parses `10.0.0.1/24` or `2001:db8::1/64` with ip-address. A bare address silently gets a host
 * prefix (`10.0.0.1` is `10.0.0.1/32`, `2001:db8::1` is `/128`), as `ip addr add` does: write the
 * prefix to get a subnet route. Anything else throws an {@link InvalidArgumentError} (`code`
 * 'EINVAL') whose `problem` reads `invalid address "10.0.0.1/33": prefix length must be 0-32`.
 * `where` names the operation for the error (default `parseCidr`).
 * @category Addresses
 */
export function parseCidr(cidr: string, where: { op: string; target?: string } = { op: 'parseCidr' }): Cidr {
  if (typeof cidr !== 'string') throw new InvalidArgumentError(`invalid address ${String(cidr)}: expected a string such as 10.0.0.1/24`, { op: where.op, target: where.target });
  const [addr, len, extra] = cidr.split('/');
  const bad = (why: string) => new InvalidArgumentError(`invalid address "${cidr}": ${why}`, { op: where.op, target: where.target ?? cidr });
  if (addr === undefined || extra !== undefined) throw bad('expected ADDRESS/PREFIXLEN');
  const v6 = addr.includes(':');
  const max = v6 ? 128 : 32;
  const prefixlen = len === undefined ? max : /^\d{1,3}$/.test(len) ? Number(len) : NaN;
  if (!(prefixlen >= 0 && prefixlen <= max)) throw bad(`prefix length must be 0-${max}`);
  const { Address4, Address6 } = loadIpAddress();
  if (v6) {
    if (!Address6.isValid(addr) || addr.includes('%')) throw bad('not an IPv6 address');
    const n = new Address6(addr).bigInt();
    const bytes = Buffer.alloc(16);
    bytes.writeBigUInt64BE(n >> 64n, 0);
    bytes.writeBigUInt64BE(n & 0xffffffffffffffffn, 8);
    return { family: AF_INET6, bytes, prefixlen, text: cidr };
  }
  if (!Address4.isValid(addr) || !/^\d+\.\d+\.\d+\.\d+$/.test(addr)) throw bad('not an IPv4 address');
  return { family: AF_INET, bytes: Buffer.from(new Address4(addr).toArray()), prefixlen, text: cidr };
}

