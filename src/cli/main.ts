/**
 * The `qbh` program: `bin/qbh` imports this. Runs the dispatcher on the process's argv and
 * streams; Ctrl-C aborts long-running commands (monitor) so they stop cleanly.
 * @module
 */
import { processIo } from './io.js';
import { run } from './run.js';

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
// A closed pipe (`qbh monitor | head`) ends the program quietly, like other Unix tools.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

// No top-level await: this file is also bundled as CommonJS (dist/qbh.cjs) for a fast start.
void run(process.argv.slice(2), processIo(abort.signal)).then((code) => {
  process.exitCode = code;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
});
