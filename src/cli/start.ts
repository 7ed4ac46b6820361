/**
 * What `bin/qbh` does around the dispatcher: runs it on the process's argv and streams, sets the
 * exit status, and lets Ctrl-C abort long-running commands (monitor) so they stop cleanly. Shared
 * by main.ts (every command) and the per-group bodies of dist/qbh (scripts/bundle.mjs, groups.ts).
 * @module
 */
import type { CliIo } from './io.js';
import { StdioSink } from './stdio.js';

/** Runs `run` on process.argv as the `qbh` program. */
export function startCli(run: (argv: string[], io: CliIo) => Promise<number>): void {
  const abort = new AbortController();
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals) => {
    // A second Ctrl-C stops at once, whatever is still pending.
    if (interrupted) process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
    interrupted = true;
    abort.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A closed pipe (`qbh monitor | head`) ends the program quietly, like other Unix tools. (A direct
  // write that fails hands over to Node's stream, which reports the EPIPE here: stdio.ts.)
  const onStdoutError = (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  };

  // processIo() (io.ts) for this process, but with process.stdout and process.stderr made only if
  // they are needed: a terminal, or a write that fails.
  const stdout = new StdioSink(1, () => process.stdout.on('error', onStdoutError));
  const stderr = new StdioSink(2, () => process.stderr);
  const io: CliIo = {
    stdout,
    stderr,
    get stdoutIsTTY() {
      return stdout.isTTY;
    },
    get stderrIsTTY() {
      return stderr.isTTY;
    },
    env: process.env,
    signal: abort.signal,
  };

  void run(process.argv.slice(2), io).then((code) => {
    process.exitCode = code;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  });
}
