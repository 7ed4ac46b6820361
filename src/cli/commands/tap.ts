import type { Command } from '../command.js';
export const tapCommands: Command[] = [];
