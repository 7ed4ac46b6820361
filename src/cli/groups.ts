/**
 * The command groups dist/qbh carries as bodies of their own (scripts/bundle.mjs): `qbh WORD …`
 * loads, reads the code cache of and runs only WORD's commands (dispatch.ts over that list), not
 * the whole CLI. Every command whose first word is WORD must be in that list, and only those:
 * test/cli-groups.test.ts checks it against run.ts's `commands`. Anything else (other commands,
 * help, --version, the completion scripts' `__complete`, a mistyped command) runs main.ts with
 * every command.
 * @module
 */

/** A group: its first word, and the module (relative to src/cli) and export of its commands. */
export interface CommandGroup {
  word: string;
  module: string;
  exportName: string;
}

/**
 * Only `bridge` for now: each body carries its own copy of the API and netlink code, and its code
 * cache is shipped (test/package.test.ts keeps the tarball under 1 MiB). Every command
 * group of its own would add a body and a cache to the tarball; a group is one more row here when it pays.
 */
export const COMMAND_GROUPS: readonly CommandGroup[] = [{ word: 'bridge', module: './commands/bridge.js', exportName: 'bridgeCommands' }];

/** The entry point of `group`'s body, as TypeScript source for esbuild (resolved from src/cli). */
export function groupEntry(group: CommandGroup): string {
  return [
    `import { ${group.exportName} } from '${group.module}';`,
    "import { dispatch } from './dispatch.js';",
    "import { startCli } from './start.js';",
    `startCli((argv, io) => dispatch(${group.exportName}, argv, io));`,
    '',
  ].join('\n');
}
