/**
 * The executable's entry point (bundled into dist/qemu-bridge-helper.cjs by
 * scripts/bundle.mjs): run {@link helperMain} on the raw argv bytes and exit with its status.
 * Anything unexpected is still exit status 1, never 0 and never a stack trace on QEMU's terminal.
 * @module
 */
import { writeSync } from 'node:fs';
import { rawArgs } from './argv.js';
import { EXIT_FAILURE, helperMain } from './main.js';
import { privilegeRefusal } from './privilege.js';

function internalError(err: unknown): number {
  try {
    writeSync(2, `qbh: internal error: ${err instanceof Error ? err.message : String(err)}\n`);
  } catch {
    // stderr is gone; the status still says it failed
  }
  return EXIT_FAILURE;
}

// SIGUSR1 makes Node open an inspector on 127.0.0.1:9229, where any process of the caller's uid
// could run code with this process's privileges. The #! line shuts it out from Node's start on
// (scripts/launcher.mjs); a node started some other way, without that flag, is refused here if it
// holds a privilege its caller lacks. The listener only keeps later signals quiet: on a node with
// the unresolvable --inspect-port each one would print an `Unable to resolve` line.
const refusal = privilegeRefusal();
if (refusal !== null) {
  try {
    writeSync(2, refusal);
  } finally {
    process.exit(EXIT_FAILURE);
  }
}
process.on('SIGUSR1', () => undefined);

helperMain(rawArgs()).then(
  (status) => process.exit(status),
  (err: unknown) => process.exit(internalError(err)),
);
