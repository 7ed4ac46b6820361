import type { Command } from '../command.js';
export const aclCommands: Command[] = [];
