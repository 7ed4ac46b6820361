import type { Command } from '../command.js';
export const doctorCommands: Command[] = [];
