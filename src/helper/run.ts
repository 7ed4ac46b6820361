/**
 * The executable's entry point (bundled into dist/qemu-bridge-helper.cjs by
 * scripts/bundle.mjs): run {@link helperMain} on the raw argv bytes and exit with its status.
 * Anything unexpected is still exit status 1, never 0 and never a stack trace on QEMU's terminal.
 * @module
 */
import { writeSync } from 'node:fs';
import { rawArgs } from './argv.js';
import { EXIT_FAILURE, helperMain } from './main.js';

function internalError(err: unknown): number {
  try {
    writeSync(2, `qbh: internal error: ${err instanceof Error ? err.message : String(err)}\n`);
  } catch {
    // stderr is gone; the status still says it failed
  }
  return EXIT_FAILURE;
}

// SIGUSR1 would open Node's inspector on 127.0.0.1:9229, where any local user could run code with
// this process's CAP_NET_ADMIN: a listener of our own keeps it shut (the launcher installs one even
// earlier, before the bundle loads; scripts/launcher.mjs).
process.on('SIGUSR1', () => undefined);

helperMain(rawArgs()).then(
  (status) => process.exit(status),
  (err: unknown) => process.exit(internalError(err)),
);
