/**
 * `qbh` over every command: the dispatcher (dispatch.ts) with the whole command list, and the
 * completion scripts' question. `bin/qbh` for argv of no command group, tests, embedding.
 * @module
 */
import { closeDefaultHandle } from '../index.js';
import type { Command } from './command.js';
import { aclCommands } from './commands/acl.js';
import { daemonCommands } from './commands/daemon.js';
import { bridgeCommands } from './commands/bridge.js';
import { completeCommand, completionCommands } from './commands/completion.js';
import { doctorCommands } from './commands/doctor.js';
import { monitorCommands } from './commands/monitor.js';
import { tapCommands } from './commands/tap.js';
import { dispatch, generalHelp as generalHelpOf } from './dispatch.js';
import type { CliIo } from './io.js';
import { version } from './version.js';

/** Every command, in the order `qbh help` lists them. */
export const commands: Command[] = [
  ...bridgeCommands,
  ...tapCommands,
  ...aclCommands,
  ...monitorCommands,
  ...doctorCommands,
  ...daemonCommands,
  ...completionCommands,
];

export { version };

/** `qbh help`. */
export function generalHelp(): string {
  return generalHelpOf(commands);
}

/**
 * Runs `qbh ARGV` and returns the exit status. Never throws for anything a user can cause, and
 * never calls process.exit: `bin/qbh` does that, tests call this directly.
 */
export async function run(argv: string[], io: CliIo): Promise<number> {
  // The completion scripts' question (commands/completion.ts): not a command, not in the help.
  if (argv[0] === '__complete') {
    try {
      return await completeCommand(commands, argv.slice(1), io);
    } finally {
      closeDefaultHandle();
    }
  }
  return dispatch(commands, argv, io);
}
