/**
 * Argument parsing on node:util parseArgs (no CLI framework: commander 15 needs Node 22), and the
 * validators that turn a bad value into a usage error before anything touches the kernel.
 * @module
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { InvalidArgumentError, parseCidr } from '../index.js';
import { ifnameProblem, integerProblem, macProblem } from '../netlink/validate.js';
import { UsageError } from './errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/** Options every command accepts. */
export const COMMON_OPTIONS = {
  help: { type: 'boolean', short: 'h' },
} as const satisfies Options;

/** Options of commands that print objects: JSON on one line, or over several with `--pretty`. */
export const JSON_OPTION = {
  json: { type: 'boolean', short: 'j' },
  pretty: { type: 'boolean', short: 'p' },
} as const satisfies Options;

/**
 * Parses `argv` strictly; unknown options and missing values become a UsageError. `positionals` is
 * the list of names of the positional arguments the command wants (all required; `...` for a tail).
 */
export function parse<O extends Options>(argv: string[], options: O, positionals: { required: string[]; optional?: string[] }) {
  let parsed;
  try {
    // No arguments (`qbh bridge list`) and no option defaults: what parseArgs would return, without
    // loading it (node:util loads its parser on first use).
    const noDefaults = Object.values(options).every((o) => o.default === undefined);
    parsed =
      argv.length === 0 && noDefaults
        ? { values: Object.create(null) as Record<string, never>, positionals: [] }
        : parseArgs({ args: argv, options: { ...COMMON_OPTIONS, ...options }, allowPositionals: true, strict: true });
  } catch (e) {
    // parseArgs messages read "Unknown option '--x'. To specify a positional argument starting with a '-'…"
    const msg = (e as Error).message.replace(/\. To specify a positional.*$/s, '');
    throw new UsageError(msg.charAt(0).toLowerCase() + msg.slice(1));
  }
  const values = parsed.values as { [K in keyof O]?: O[K] extends { type: 'string'; multiple: true } ? string[] : O[K] extends { type: 'string' } ? string : boolean } & { help?: boolean };
  const args = parsed.positionals;
  const max = positionals.required.length + (positionals.optional?.length ?? 0);
  if (args.length < positionals.required.length) {
    throw new UsageError(`missing ${positionals.required.slice(args.length).join(' ')}`);
  }
  if (args.length > max) throw new UsageError(`unexpected argument "${args[max]}"`);
  return { values, args };
}

/**
 * An interface name as the kernel accepts it (dev_valid_name): 1–15 bytes, not "." or "..",
 * no "/", ":" or whitespace. The API's own check, so the words are the same.
 */
export function ifname(name: string, what = 'interface name'): string {
  const problem = ifnameProblem(name, what);
  if (problem !== undefined) throw new UsageError(problem);
  return name;
}

/** A non-negative integer option value, in the API's words when it is out of range. */
export function integer(text: string, option: string, min = 0, max = 0xffffffff): number {
  const problem = /^\d+$/.test(text) ? integerProblem(Number(text), option, min, max) : integerProblem(text, option, min, max);
  if (problem !== undefined) throw new UsageError(problem);
  return Number(text);
}

/** A MAC address, `aa:bb:cc:dd:ee:ff`. */
export function mac(text: string): string {
  const problem = macProblem(text);
  if (problem !== undefined) throw new UsageError(problem);
  return text.toLowerCase();
}

/** A CIDR address (`10.0.0.1/24`, `fd00::1/64`), checked by the API's own parser. */
export function cidr(text: string): string {
  try {
    parseCidr(text);
  } catch (e) {
    throw e instanceof InvalidArgumentError ? new UsageError(e.problem) : e;
  }
  return text;
}
