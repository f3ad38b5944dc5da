import type { Command } from '../command.js';
import { migrateCommand } from './migrate.js';

/** Every `pgferry` command, in the order `--help` lists them. Add new ones here. */
export const commands: readonly Command[] = [migrateCommand];
