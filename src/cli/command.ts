/**
 * What a subcommand is: its usage text, and a run function that returns one plain object plus the
 * way to show it as text. The dispatcher prints either the object as JSON or the text: one print
 * path (iproute2's rule), so the table can never say something the JSON does not.
 * @module
 */
import type { CliIo } from './io.js';

/** The result of a command: the object, how a person reads it, and the exit status. */
export interface Output<T = unknown> {
  /** The object `--json` prints. `undefined`: the command prints nothing in that mode. */
  value: T;
  /** Text for a person, made from `value`. Empty: print nothing (mutations are quiet, like `ip`). */
  text: (value: T) => string;
  /** Print JSON rather than text. */
  json: boolean;
  /** JSON over several indented lines (`-p`, as iproute2's); else one line, also on a terminal. */
  pretty?: boolean;
  /** Default 0. */
  exitCode?: number;
}

/** One subcommand. */
export interface Command {
  /** Words after `qbh`, e.g. `bridge list`. */
  name: string;
  /** One line for `qbh help`. */
  summary: string;
  /** The usage line(s), e.g. `qbh bridge list [--json] [-d|--details]`. */
  usage: string;
  /** Option descriptions for `--help`, already formatted. */
  options?: string;
  /**
   * Runs with the arguments after the command words. Returns the output, or nothing when the
   * command wrote its own (a stream such as `monitor`) and only an exit code remains.
   */
  run(argv: string[], io: CliIo): Promise<Output<any> | number>;
}

/** The full `--help` text of a command. */
export function helpText(cmd: Command): string {
  return `usage: ${cmd.usage}\n\n${cmd.summary}\n${cmd.options ? `\n${cmd.options.replace(/\n*$/, '\n')}` : ''}`;
}

/** The output options a command parsed: `--json`, and `--pretty` for the JSON. */
export interface OutputFlags {
  json?: boolean | undefined;
  pretty?: boolean | undefined;
}

/** Builds an Output; `flags` are the parsed `--json`/`--pretty` (or just whether to print JSON). */
export function output<T>(value: T, flags: OutputFlags | boolean | undefined, text: (value: T) => string, exitCode = 0): Output<T> {
  const f = typeof flags === 'object' ? flags : { json: flags };
  return { value, json: f.json === true, pretty: f.pretty === true, text, exitCode };
}
