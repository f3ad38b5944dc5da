import type { Command } from '../command.js';
import { migrateCommand } from './migrate.js';
import { devCommand } from './dev.js';
import { demoCommand } from './demo.js';
import { tickerCommand } from './stream-ticker.js';
import { workerCommand } from './worker.js';
import { dlqCommand } from './tasks-dlq.js';
import { queuesCommand } from './queues.js';
import { jobsCommand } from './jobs.js';
import { streamsCommand } from './streams.js';
import { dashboardCommand } from './dashboard.js';

/** Every `pgferry` command, in the order `--help` lists them. Add new ones here. */
export const commands: readonly Command[] = [
  migrateCommand,
  devCommand,
  demoCommand,
  tickerCommand,
  workerCommand,
  dlqCommand,
  queuesCommand,
  jobsCommand,
  streamsCommand,
  dashboardCommand,
];
