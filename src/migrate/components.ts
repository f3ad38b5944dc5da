import type { Queryable } from '../driver/types.js';
import type { MigrationSource } from './types.js';
import { migrations as queueMigrations } from './generated/queue.js';
import { migrations as tasksMigrations } from './generated/tasks.js';
import { migrations as busMigrations } from './generated/bus.js';
import { migrations as streamMigrations } from './generated/stream.js';
import { refuseForeignPgmq, refuseForeignPgque } from './preflight.js';

/**
 * An installable part of pgferry: one SQL engine in its own schema, with its
 * own numbered migrations (recorded under its name in the schema's version
 * table, which it may share with other components).
 */
export interface Component {
  readonly name: ComponentName;
  readonly defaultSchema: string;
  readonly migrations: readonly MigrationSource[];
  /** Components that must be installed first (their schemas are available as variables). */
  readonly requires: readonly ComponentName[];
  /** Components that may not share its schema (their SQL APIs define the same function names). */
  readonly conflicts?: readonly ComponentName[];
  /** Refuses to install over something that is not ours. Runs inside the migration transaction. */
  readonly preflight?: (db: Queryable, schema: string) => Promise<void>;
}

export type ComponentName = 'queue' | 'bus' | 'tasks' | 'stream';

export const components: Readonly<Record<ComponentName, Component>> = {
  queue: {
    name: 'queue',
    defaultSchema: 'pgmq',
    migrations: queueMigrations,
    requires: [],
    conflicts: ['stream'],
    preflight: refuseForeignPgmq,
  },
  // The isolated bus's SECURITY DEFINER wrappers (docs/bus.md). `public` by
  // default because pipecat's wire format names public.bus_*.
  bus: {
    name: 'bus',
    defaultSchema: 'public',
    migrations: busMigrations,
    requires: ['queue'],
  },
  // Typed background jobs on the queue engine (docs/tasks.md).
  tasks: {
    name: 'tasks',
    defaultSchema: 'pgferry_tasks',
    migrations: tasksMigrations,
    requires: ['queue'],
  },
  // The PgQue-compatible event-stream engine (docs/stream.md).
  stream: {
    name: 'stream',
    defaultSchema: 'pgque',
    migrations: streamMigrations,
    requires: [],
    conflicts: ['queue'],
    preflight: refuseForeignPgque,
  },
};

/** Install order: every component after the ones it requires. */
export const componentOrder: readonly ComponentName[] = ['queue', 'bus', 'tasks', 'stream'];

/** The newest migration version a component ships (its highest number). */
export function latestVersion(c: Component): number {
  return c.migrations.reduce((max, m) => Math.max(max, m.version), 0);
}
