/**
 * `qbhd`: the daemon's own entry point (dist/qbhd.cjs), the same as `qbh daemon ARGS…`, for a
 * systemd unit's ExecStart=. The first SIGTERM/SIGINT stops it cleanly; a second one at once.
 * @module
 */
import { processIo } from './io.js';
import { run } from './run.js';

const abort = new AbortController();
const onSignal = (sig: NodeJS.Signals) => {
  if (abort.signal.aborted) process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
  abort.abort();
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
// A reload (SIGHUP) that comes before the daemon has set up its own handler must not end it (Node's
// default): systemd counts that exit as clean and would not restart the service.
process.on('SIGHUP', () => undefined);

void run(['daemon', ...process.argv.slice(2)], processIo(abort.signal)).then((code) => {
  process.exitCode = code;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
});
