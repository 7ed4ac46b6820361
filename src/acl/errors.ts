import { QbhError } from '../errors.js';
import type { AclFileRecord } from './load.js';

/** What kind of failure an {@link AclError} reports. */
export type AclErrorCode =
  /** the bridge name is 16 bytes or longer (checked before the ACL is read) */
  | 'name'
  /** a syntax error in the main ACL file (the C helper's `failed to parse default acl file`) */
  | 'parse'
  /** the main ACL file is missing or the caller cannot read it (same C message) */
  | 'unreadable'
  /** qbh deviation: an include names a file that is already being read */
  | 'cycle'
  /** qbh deviation: includes nested deeper than 32 levels */
  | 'depth'
  /** qbh deviation: more include lines or bytes than the evaluator is willing to read */
  | 'limit'
  /** qbh hardening: an ACL file or a directory above it could be changed by someone other than root */
  | 'insecure'
  /** qbh deviation: an ACL path names a FIFO, socket or device, or reading it failed midway */
  | 'io'
  /** the caller's identity given to the evaluator is incomplete or inconsistent */
  | 'credentials';

/**
 * The one error type of the ACL layer. Fatal ACL conditions (the C helper exits 1 after printing
 * `stderr`) and bad input to the evaluator are reported with it; the parser throws nothing else.
 * @category Errors
 */
export class AclError extends QbhError {
  override readonly name = 'AclError';
  /** Machine-readable kind of failure. */
  declare readonly code: AclErrorCode;
  /** The file the failure is about (as written or resolved), if any. */
  readonly file: string | undefined;
  /** 1-based line in `file`, for syntax errors and include problems. */
  readonly line: number | undefined;
  /**
   * Every byte the helper prints to stderr for this outcome, in order: messages from included files
   * read before the failure, then the failure itself. Byte-identical to the C helper's except for the
   * qbh deviations (cycle, depth, limit, insecure, io), which print one line of their own.
   */
  readonly stderr: Buffer;
  /** Files looked at before the failure, in the order they were met. */
  readonly files: readonly AclFileRecord[];

  /** @internal */
  constructor(
    code: AclErrorCode,
    message: string,
    details: { file?: string; line?: number; stderr?: Buffer; files?: readonly AclFileRecord[] } = {},
  ) {
    super(message, { code, op: 'acl', target: details.file });
    this.file = details.file;
    this.line = details.line;
    this.stderr = details.stderr ?? Buffer.alloc(0);
    this.files = details.files ?? [];
  }
}
