/**
 * Users and groups for the ACL: the reader lives in src/users.ts, below every layer (the netlink
 * presenter prints tap owners by name with it too).
 * @module
 */
export { UserDb, readUserDb, type GroupEntry, type UserEntry } from '../users.js';
