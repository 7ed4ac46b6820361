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
  tap: 'persistent tap devices: list, create, delete',
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
    'Exit status: 0 success, 1 the operation failed (or: denied, a doctor check failed), 2 usage error.',
    '',
  ].join('\n');
}

/** The command named by the leading words of argv, and the arguments after them. */
function lookup(commands: Command[], argv: string[]): { cmd?: Command; rest: string[]; group?: string } {
  for (const words of [2, 1]) {
    const name = argv.slice(0, words).join(' ');
    const cmd = commands.find((c) => c.name === name);
    if (cmd) return { cmd, rest: argv.slice(words) };
  }
  const first = argv[0];
  if (first !== undefined && Object.hasOwn(GROUPS, first)) return { rest: argv.slice(1), group: first };
  return { rest: argv };
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
  const first = argv[0];
  if (first === undefined) {
    err(generalHelp(commands));
    return 2;
  }
  if (first === '--version' || first === '-V' || first === 'version') {
    out(`qbh ${version()}\n`);
    return 0;
  }
  if (first === 'help' || first === '--help' || first === '-h') {
    const topic = argv.slice(1);
    if (topic.length === 0) {
      out(generalHelp(commands));
      return 0;
    }
    const { cmd, group } = lookup(commands, topic);
    if (cmd) out(helpText(cmd));
    else if (group) out(groupHelp(commands, group));
    else {
      err(`qbh: no command "${topic.join(' ')}"\nusage: qbh help [COMMAND]\n`);
      return 2;
    }
    return 0;
  }
  const { cmd, rest, group } = lookup(commands, argv);
  if (!cmd) {
    if (group) {
      if (rest.length === 0 || wantsHelp(rest)) {
        (rest.length === 0 ? err : out)(groupHelp(commands, group));
        return rest.length === 0 ? 2 : 0;
      }
      err(`qbh: no command "${group} ${rest[0]}"\n${groupHelp(commands, group)}`);
      return 2;
    }
    err(`qbh: no command "${first}"; \`qbh help\` lists them\nusage: qbh COMMAND [ARGS...] [--help]\n`);
    return 2;
  }
  if (wantsHelp(rest)) {
    out(helpText(cmd));
    return 0;
  }
  try {
    const result = await cmd.run(rest, io);
    if (typeof result === 'number') return result;
    if (result.json) {
      if (result.value !== undefined) out(`${JSON.stringify(result.value, null, io.stdoutIsTTY ? 2 : undefined)}\n`);
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
