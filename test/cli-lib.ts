// Shared by the CLI tests: runs qbh in-process, as bin/qbh would, with output captured.
import { run } from '../src/cli/run.js';

/** Runs `qbh ARGV` in-process with stdout/stderr captured (not terminals); returns exit code and output. */
export async function qbh(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(argv, {
    stdout: { write: (s: string) => out.push(s) },
    stderr: { write: (s: string) => err.push(s) },
    stdoutIsTTY: false,
    stderrIsTTY: false,
    env: {},
  });
  return { code, stdout: out.join(''), stderr: err.join('') };
}
