/**
 * Where a command's output goes, so that the CLI runs in-process (tests, embedding) as well as
 * from `bin/qbh`. Colour and progress only when the stream is a terminal and NO_COLOR is unset.
 * @module
 */

/** A sink for text: process.stdout, or a buffer in tests. */
export interface TextSink {
  write(text: string): unknown;
}

/** The streams and environment a command sees. */
export interface CliIo {
  stdout: TextSink;
  stderr: TextSink;
  /** stdout is a terminal: tables may use colour. */
  stdoutIsTTY: boolean;
  /** stderr is a terminal: long operations may show progress there. */
  stderrIsTTY: boolean;
  env: NodeJS.ProcessEnv;
  /** Aborted on Ctrl-C (SIGINT/SIGTERM): long-running commands (monitor) stop cleanly. */
  signal?: AbortSignal;
}

/** The real process streams. */
export function processIo(signal?: AbortSignal): CliIo {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdoutIsTTY: process.stdout.isTTY === true,
    stderrIsTTY: process.stderr.isTTY === true,
    env: process.env,
    ...(signal ? { signal } : {}),
  };
}

/** Colour helpers that do nothing unless stdout is a terminal and NO_COLOR is unset (no-color.org). */
export function palette(io: CliIo): { green(s: string): string; red(s: string): string; yellow(s: string): string; bold(s: string): string; dim(s: string): string } {
  const on = io.stdoutIsTTY && io.env.NO_COLOR === undefined && io.env.TERM !== 'dumb';
  const wrap = (code: number) => (s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);
  return { green: wrap(32), red: wrap(31), yellow: wrap(33), bold: wrap(1), dim: wrap(2) };
}

/** Progress on stderr, only on a terminal; a no-op otherwise, so pipes and logs stay clean. */
export function progress(io: CliIo, text: string): { done(end?: string): void } {
  if (!io.stderrIsTTY) return { done() {} };
  io.stderr.write(`${text}…`);
  return {
    done(end = 'done') {
      io.stderr.write(` ${end}\n`);
    },
  };
}

/** Left-aligned columns separated by two spaces; no borders, so the output greps and cuts. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}
