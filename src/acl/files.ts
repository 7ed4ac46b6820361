/**
 * What an ACL evaluation records about each file it looked at: the loader fills these in, errors
 * and explanations carry them. A module of its own, below both.
 * @module
 */
import type { AclSyntaxError } from './parse.js';

/** What happened to a file the evaluation looked at. */
export type AclFileStatus =
  /** read to the end */
  | 'read'
  /** read up to a syntax error; the rest of the file was ignored (as in C) */
  | 'partial'
  /** does not exist: an include is skipped silently; the main file is fatal */
  | 'missing'
  /** the caller may not read it: an include is skipped silently; the main file is fatal */
  | 'unreadable'
  /** a directory: reads as empty (as in C) */
  | 'directory'
  /** hardened evaluation: not under root's sole control; fatal */
  | 'insecure'
  /** already being read further up the include chain; fatal (qbh deviation) */
  | 'cycle'
  /** nested deeper than `ACL_MAX_DEPTH` (load.ts); fatal (qbh deviation) */
  | 'too-deep'
  /** read refused by a size or count limit, or not a regular file, or an I/O error; fatal */
  | 'error';

/** A file the evaluation looked at. Strings are byte strings. */
export interface AclFileRecord {
  path: string;
  status: AclFileStatus;
  /** 0 for the main file, 1 for its includes, … */
  depth: number;
  /** Why it was skipped or refused, for people (display text, not bytes). */
  detail?: string;
  /** The include line that named it, and the path as written there (absent for the main file). */
  includedFrom?: { file: string; line: number; text: string; path: string };
  /** The syntax error that ended reading it (status `partial`, or the fatal main-file error). */
  error?: AclSyntaxError;
}

