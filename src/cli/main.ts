/**
 * The `qbh` program: `bin/qbh` imports this. Runs the dispatcher on the process's argv and
 * streams; Ctrl-C aborts long-running commands (monitor) so they stop cleanly.
 * @module
 */
import type { CliIo } from './io.js';
import { run } from './run.js';
import { StdioSink } from './stdio.js';

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

// No top-level await: this file is also bundled as CommonJS (dist/qbh.cjs) for a fast start.
void run(process.argv.slice(2), io).then((code) => {
  process.exitCode = code;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
});
