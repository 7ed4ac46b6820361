import { QbhError, type AclErrorCode } from '../errors.js';
import type { AclFileRecord } from './files.js';

export type { AclErrorCode } from '../errors.js';

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
