/**
 * `qbh`'s stdout and stderr without Node's stream machinery where it buys nothing. The first touch
 * of process.stdout or process.stderr loads net, stream and their helpers (a net.Socket for a pipe):
 * a tenth of a `qbh bridge list` through a pipe (docs/performance.md, "Listing"). A pipe, a
 * file, a socket or /dev/null is written with fs.writeSync instead, which is what Node's stream
 * does there anyway (stdio pipes, files and devices are synchronous on Linux). A terminal, a
 * closed fd or anything odd keeps Node's stream, and so does a write that fails (EPIPE, EAGAIN on
 * a non-blocking pipe): the failed text goes to the stream, which then reports or queues it
 * exactly as it always did.
 * @module
 */
import { fstatSync, writeSync } from 'node:fs';
import type { TextSink } from './io.js';

/** Linux's major number of /dev/null, /dev/zero, /dev/full (and /dev/mem, /dev/random…): no terminal. */
const MEM_MAJOR = 1;

/** The major number of a Linux device number (as glibc's gnu_dev_major). */
const deviceMajor = (rdev: number): number => ((rdev >>> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);

/** Stdout (fd 1) or stderr (fd 2), written directly while that works, through `stream()` after. */
export class StdioSink implements TextSink {
  private direct: boolean | undefined;
  private node: NodeJS.WriteStream | undefined;

  /** `stream` returns the process's Node stream for the fd: called once, on first need. */
  constructor(
    private readonly fd: 1 | 2,
    private readonly stream: () => NodeJS.WriteStream,
  ) {}

  /** The fd is a terminal (as the Node stream's isTTY says; a pipe or a file is not). */
  get isTTY(): boolean {
    return !this.writesDirectly() && this.nodeStream().isTTY === true;
  }

  write(text: string): boolean {
    if (!this.writesDirectly()) return this.nodeStream().write(text);
    const bytes = Buffer.from(text, 'utf8');
    let done = 0;
    try {
      while (done < bytes.length) done += writeSync(this.fd, bytes, done);
      return true;
    } catch {
      this.direct = false;
      return this.nodeStream().write(bytes.subarray(done));
    }
  }

  /**
   * A pipe, a regular file, a socket or a memory device (/dev/null, /dev/zero, /dev/full: major 1,
   * never a terminal). Node itself writes a character device that is not a terminal with
   * fs.writeSync too (its stream for one is a SyncWriteStream), but loads the stream modules first. Decided once.
   */
  private writesDirectly(): boolean {
    if (this.direct === undefined) {
      try {
        const st = fstatSync(this.fd);
        this.direct = st.isFIFO() || st.isFile() || st.isSocket() || (st.isCharacterDevice() && deviceMajor(st.rdev) === MEM_MAJOR);
      } catch {
        this.direct = false;
      }
    }
    return this.direct;
  }

  private nodeStream(): NodeJS.WriteStream {
    this.node ??= this.stream();
    return this.node;
  }
}
