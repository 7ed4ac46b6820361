/**
 * The `qbh` program: `bin/qbh` imports this. Runs the dispatcher over every command on the
 * process's argv and streams (start.ts). No top-level await: this file is also bundled as
 * CommonJS (dist/qbh.cjs) for a fast start.
 * @module
 */
import { run } from './run.js';
import { startCli } from './start.js';

startCli(run);
