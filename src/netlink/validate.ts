/**
 * Input checks that run before a request reaches the kernel, so a mistake gets a message that
 * names it (not the kernel's ERANGE "Attribute failed policy validation"), and nothing is half-made.
 * The CLI runs the same checks, so the same mistake reads the same in the API and in `qbh`.
 * @module
 */
import { InvalidArgumentError } from '../errors.js';

/** IFNAMSIZ - 1: the longest interface name the kernel takes (include/uapi/linux/if.h). */
export const MAX_IFNAME_BYTES = 15;
/** A bridge's MTU range: ETH_MIN_MTU to ETH_MAX_MTU (net/bridge/br_device.c sets max_mtu). */
export const BRIDGE_MIN_MTU = 68;
export const BRIDGE_MAX_MTU = 65535;

type Where = { op: string; target?: string | undefined };

/**
 * The problem with an interface name as the kernel's dev_valid_name sees it (1–15 bytes, not "."
 * or "..", no "/", ":" or whitespace), or undefined when it is fine.
 */
export function ifnameProblem(name: unknown, what = 'interface name'): string | undefined {
  if (typeof name !== 'string') return `invalid ${what} ${String(name)}: expected a string`;
  const bytes = Buffer.byteLength(name);
  if (bytes === 0) return `invalid ${what} "": empty`;
  if (bytes > MAX_IFNAME_BYTES) return `invalid ${what} "${name}": longer than ${MAX_IFNAME_BYTES} bytes`;
  if (name === '.' || name === '..' || /[/:\s]/.test(name)) return `invalid ${what} "${name}": "/", ":", whitespace, "." and ".." are not allowed`;
  return undefined;
}

/** Throws an {@link InvalidArgumentError} unless `name` is a valid interface name. */
export function checkIfname(name: unknown, where: Where, what = 'interface name'): string {
  const problem = ifnameProblem(name, what);
  if (problem !== undefined) throw new InvalidArgumentError(problem, { op: where.op, target: where.target ?? String(name) });
  return name as string;
}

/** A link reference: a valid name, or an ifindex (a positive 32-bit integer). */
export function checkLinkRef(ref: unknown, where: Where, what = 'interface name'): string | number {
  if (typeof ref === 'number') return checkInteger(ref, 'ifindex', 1, 0x7fffffff, where);
  return checkIfname(ref, where, what);
}

/** The problem with a whole number in [min, max], or undefined; `shown` is how the value was written. */
export function integerProblem(value: unknown, what: string, min: number, max: number, shown = String(value)): string | undefined {
  if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return undefined;
  return `invalid ${what} ${typeof value === 'string' ? `"${shown}"` : shown}: expected a whole number from ${min} to ${max}`;
}

/** Throws an {@link InvalidArgumentError} unless `value` is a whole number in [min, max]. */
export function checkInteger(value: unknown, what: string, min: number, max: number, where: Where): number {
  const problem = integerProblem(value, what, min, max);
  if (problem !== undefined) throw new InvalidArgumentError(problem, where);
  return value as number;
}

/** The problem with a MAC address (`aa:bb:cc:dd:ee:ff`), or undefined. */
export function macProblem(mac: unknown): string | undefined {
  if (typeof mac === 'string' && /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac)) return undefined;
  return `invalid MAC address ${typeof mac === 'string' ? `"${mac}"` : String(mac)}: expected aa:bb:cc:dd:ee:ff`;
}

/** Throws an {@link InvalidArgumentError} unless `mac` is `aa:bb:cc:dd:ee:ff`. */
export function checkMac(mac: unknown, where: Where): string {
  const problem = macProblem(mac);
  if (problem !== undefined) throw new InvalidArgumentError(problem, where);
  return mac as string;
}
