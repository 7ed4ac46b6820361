/**
 * src/acl: bridge.conf exactly as qemu-bridge-helper reads it — parse, evaluate, explain — plus
 * qbh's identity rules and hardening for a privileged evaluator. See docs/acl.md.
 */
export { AclError, type AclErrorCode } from './errors.js';
export { toByteString, displayBytes } from './bytes.js';
export {
  IFNAMSIZ,
  ACL_CHUNK_MAX,
  tokenizeAcl,
  nameTooLongMessage,
  type AclPrincipal,
  type AclStatement,
  type AclRuleStatement,
  type AclIncludeStatement,
  type AclIfnameStatement,
  type AclGuardStatement,
  type AclSyntaxError,
  type AclTokens,
  type TokenizeOptions,
} from './parse.js';
export {
  ACL_MAX_FILE_BYTES,
  ACL_LEASE_WAIT_MS,
  callerReader,
  credentialAccessMode,
  credentialReader,
  memoryReader,
  mayAccess,
  parsePosixAcl,
  type PosixAclEntry,
  type AclCredentials,
  type AclReader,
  type AclSource,
  type CredentialReaderOptions,
} from './read.js';
export {
  DEFAULT_ACL_FILE,
  ACL_MAX_DEPTH,
  ACL_MAX_INCLUDES,
  ACL_MAX_TOTAL_BYTES,
  loadAcl,
  type AclRule,
  type AclIfnameRule,
  type AclGuardRule,
  type AclRuleSet,
  type AclFileRecord,
  type AclFileStatus,
  type LoadOptions,
} from './load.js';
export {
  ACCESS_DENIED_MESSAGE,
  bridgeNameError,
  decideAcl,
  decideIfname,
  decideGuard,
  ifnameDeniedMessage,
  DEFAULT_IFNAME_PREFIXES,
  evaluateAcl,
  parseAcl,
  processCredentials,
  type AclDecision,
  type AclIfnameDecision,
  type AclGuardDecision,
  type DecideGuardOptions,
  type AclVerdict,
  type DecideOptions,
  type EvaluateAclOptions,
  type ParseAclOptions,
} from './evaluate.js';
export { checkAcl, unknownPrincipalRules, type AclCheck, type AclCaller, type AclFileInfo, type AclGuardInfo, type AclRuleRef, type CheckAclOptions } from './check.js';
export { UserDb, readUserDb, type UserEntry, type GroupEntry } from './users.js';
