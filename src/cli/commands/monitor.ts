import type { Command } from '../command.js';
export const monitorCommands: Command[] = [];
