/**
 * The `qbh` dispatcher over a set of commands: finds the command named by the leading words of
 * argv, handles `--help`, runs it, and prints its one object as JSON or text. Errors become one
 * line on stderr: exit 1 for a failed operation, 2 for a usage mistake (with the usage line), never
 * a stack for either. run.ts runs it over every command; dist/qbh also runs it over one group's
 * commands alone (scripts/bundle.mjs, groups.ts), which answers any argv whose first word is that
 * group's exactly as the whole set does: every name and help text it consults starts with that word.
 * @module
 */
import { closeDefaultHandle } from '../index.js';
import { helpText, type Command } from './command.js';
import { CliError, UsageError, isOperationalError } from './errors.js';
import type { CliIo } from './io.js';
import { version } from './version.js';

const GROUPS: Record<string, string> = {
  bridge: 'manage bridges (list, show, create, delete, attach, detach)',
  tap: "manage tap devices, QEMU's and persistent ones (list, show, create, delete)",
  acl: 'explain what the bridge helper ACL allows',
  monitor: 'print link, address and bridge-port events as they happen',
  doctor: 'check this machine is set up for qemu-bridge-helper',
};

/** `qbh help`, listing `commands`. */
export function generalHelp(commands: Command[]): string {
  const width = Math.max('help [COMMAND]'.length, ...commands.map((c) => c.name.length));
  return [
    'usage: qbh COMMAND [ARGS...] [--help]',
    '',
    'Manage Linux bridges and taps for QEMU, and check the bridge helper set-up.',
    '',
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    `  ${'help [COMMAND]'.padEnd(width)}  show help for a command`,
    '',
    'options: --version, --help. `qbh COMMAND --help` shows the options of a command.',
    'Before COMMAND, as with ip: -j, --json  JSON output; -p, --pretty  indented JSON; -d, --details.',
    'Words may be shortened to a unique prefix (`qbh br li`); `ls` is list; `qbh bridge` alone lists.',
    'Exit status: 0 success, 1 the operation failed (or: denied, a doctor check failed), 2 usage error.',
    '',
  ].join('\n');
}

/** Other names of a command's last word, as iproute2 has them (`ip link ls`). */
const ALIASES: Record<string, string> = { ls: 'list', lst: 'list' };

/**
 * Options given before the command, as `ip -j -p -d link`, and the command option each stands for;
 * iproute2's single-dash long forms too. A command that has no such option ignores it, as ip does.
 */
const GLOBAL_OPTIONS: Record<string, string> = {
  '-j': '--json',
  '--json': '--json',
  '-json': '--json',
  '-p': '--pretty',
  '--pretty': '--pretty',
  '-pretty': '--pretty',
  '-d': '--details',
  '--details': '--details',
  '-details': '--details',
};

/** The options before the command, as completion offers them. */
export const GLOBAL_FLAGS = ['-j', '--json', '-p', '--pretty', '-d', '--details'];

/** `word`, or the one of `names` it is an alias or a unique prefix of; several: ambiguous. */
export function matchWord(word: string, names: readonly string[]): { name?: string; ambiguous?: string[] } {
  if (names.includes(word)) return { name: word };
  if (Object.hasOwn(ALIASES, word) && names.includes(ALIASES[word]!)) return { name: ALIASES[word]! };
  if (word === '' || word.startsWith('-')) return {};
  const found = names.filter((n) => n.startsWith(word));
  return found.length === 1 ? { name: found[0]! } : found.length > 1 ? { ambiguous: found } : {};
}

/** The outcome of reading a command off argv: the command, or its group, or what went wrong. */
export interface Lookup {
  cmd?: Command;
  /** The arguments after the command words. */
  rest: string[];
  /** The group named (`bridge`) when no command of it was. */
  group?: string;
  /** A usage error: an ambiguous abbreviation. */
  error?: string;
}

/**
 * The command named by the leading words of argv: whole words, aliases (`ls`) or unique prefixes
 * (`qbh br li`), as iproute2 reads `ip li sh`. A group alone, or followed by an option other than
 * --help, is its `list` (`qbh bridge` as `ip link`).
 */
export function lookup(commands: Command[], argv: string[]): Lookup {
  const first = argv[0];
  if (first === undefined) return { rest: argv };
  const firsts = [...new Set(commands.map((c) => c.name.split(' ')[0]!))];
  const m = matchWord(first, firsts);
  if (m.ambiguous) return { rest: argv, error: `"${first}" is ambiguous: ${m.ambiguous.join(', ')}` };
  if (m.name === undefined) return { rest: argv };
  const word = m.name;
  const single = commands.find((c) => c.name === word);
  if (single) return { cmd: single, rest: argv.slice(1) };
  const seconds = commands.filter((c) => c.name.startsWith(`${word} `)).map((c) => c.name.slice(word.length + 1));
  const second = argv[1];
  const list = seconds.includes('list') ? commands.find((c) => c.name === `${word} list`) : undefined;
  if (second === undefined || (second.startsWith('-') && second !== '--help' && second !== '-h')) {
    return list ? { cmd: list, rest: argv.slice(1) } : { rest: argv.slice(1), group: word };
  }
  const s = matchWord(second, seconds);
  if (s.ambiguous) return { rest: argv.slice(1), group: word, error: `"${second}" is ambiguous: ${s.ambiguous.map((n) => `${word} ${n}`).join(', ')}` };
  const cmd = s.name === undefined ? undefined : commands.find((c) => c.name === `${word} ${s.name}`);
  return cmd ? { cmd, rest: argv.slice(2) } : { rest: argv.slice(1), group: word };
}

/** Splits the options before the command off argv (`qbh -j -p bridge list`). */
export function globalOptions(argv: string[]): { options: string[]; rest: string[] } {
  const options: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (Object.hasOwn(GLOBAL_OPTIONS, a)) options.push(GLOBAL_OPTIONS[a]!);
    else if (/^-[jpd]{2,}$/.test(a)) for (const c of a.slice(1)) options.push(GLOBAL_OPTIONS[`-${c}`]!);
    else break;
  }
  return { options: [...new Set(options)], rest: argv.slice(i) };
}

/** The options of `cmd` among `options` (the ones before the command): a command without one ignores it. */
function accepted(cmd: Command, options: string[]): string[] {
  return options.filter((o) => new RegExp(`(?<![\\w-])${o}(?![\\w-])`).test(cmd.usage));
}

function groupHelp(commands: Command[], group: string): string {
  const cmds = commands.filter((c) => c.name === group || c.name.startsWith(`${group} `));
  return `qbh ${group}: ${GROUPS[group]}\n\nusage:\n${cmds.map((c) => `  ${c.usage}`).join('\n')}\n\n\`qbh ${group} COMMAND --help\` shows the options of a command.\n`;
}

/** `--help` or `-h` before a `--`. */
function wantsHelp(argv: string[]): boolean {
  for (const a of argv) {
    if (a === '--') return false;
    if (a === '--help' || a === '-h') return true;
  }
  return false;
}

/**
 * Runs `qbh ARGV` over `commands` and returns the exit status. Never throws for anything a user
 * can cause, and never calls process.exit.
 */
export async function dispatch(commands: Command[], argv: string[], io: CliIo): Promise<number> {
  const out = (s: string) => io.stdout.write(s);
  const err = (s: string) => io.stderr.write(s);
  const { options, rest: words } = globalOptions(argv);
  const first = words[0];
  if (first === undefined) {
    err(generalHelp(commands));
    return 2;
  }
  if (first === '--version' || first === '-V' || first === 'version') {
    out(`qbh ${version()}\n`);
    return 0;
  }
  if (first === 'help' || first === '--help' || first === '-h') {
    const topic = words.slice(1);
    if (topic.length === 0) {
      out(generalHelp(commands));
      return 0;
    }
    const { cmd, group, error } = lookup(commands, topic);
    // One word naming a group (`help bridge`) is the group's help, not its list's.
    if (cmd && (topic.length > 1 || !cmd.name.includes(' '))) out(helpText(cmd));
    else if (group || cmd) out(groupHelp(commands, group ?? cmd!.name.split(' ')[0]!));
    else {
      err(`qbh: ${error ?? `no command "${topic.join(' ')}"`}\nusage: qbh help [COMMAND]\n`);
      return 2;
    }
    return 0;
  }
  const { cmd, rest: after, group, error } = lookup(commands, words);
  if (!cmd) {
    if (group) {
      if (error) {
        err(`qbh: ${error}\n${groupHelp(commands, group)}`);
        return 2;
      }
      if (after.length === 0 || wantsHelp(after)) {
        (after.length === 0 ? err : out)(groupHelp(commands, group));
        return after.length === 0 ? 2 : 0;
      }
      err(`qbh: no command "${group} ${after[0]}"\n${groupHelp(commands, group)}`);
      return 2;
    }
    if (error) err(`qbh: ${error}\nusage: qbh COMMAND [ARGS...] [--help]\n`);
    else err(`qbh: no command "${first}"; \`qbh help\` lists them\nusage: qbh COMMAND [ARGS...] [--help]\n`);
    return 2;
  }
  const rest = [...accepted(cmd, options), ...after];
  if (wantsHelp(rest)) {
    out(helpText(cmd));
    return 0;
  }
  try {
    const result = await cmd.run(rest, io);
    if (typeof result === 'number') return result;
    if (result.json) {
      if (result.value !== undefined) out(`${JSON.stringify(result.value, null, result.pretty ? 2 : undefined)}\n`);
    } else {
      const text = result.text(result.value);
      if (text) out(text.endsWith('\n') ? text : `${text}\n`);
    }
    return result.exitCode ?? 0;
  } catch (e) {
    if (e instanceof UsageError) {
      err(`qbh: ${cmd.name}: ${e.message}\nusage: ${e.usage ?? cmd.usage}\n`);
      return 2;
    }
    if (e instanceof CliError) {
      err(`qbh: ${e.message}\n`);
      return e.exitCode;
    }
    if (isOperationalError(e)) {
      err(`qbh: ${cmd.name}: ${(e as Error).message}\n`);
      return 1;
    }
    // A bug in qbh, not a user's mistake: say so, with the stack for the report.
    err(`qbh: internal error in "${cmd.name}": ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 70;
  } finally {
    closeDefaultHandle();
  }
}
