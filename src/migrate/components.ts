import type { Queryable } from '../driver/types.js';
import type { MigrationSource } from './types.js';
import { MigrationError } from '../errors.js';
import { migrations as queueMigrations } from './generated/queue.js';
import { migrations as tasksMigrations } from './generated/tasks.js';
import { migrations as busMigrations } from './generated/bus.js';
import { migrations as streamMigrations } from './generated/stream.js';
import { refuseForeignPgque } from '../stream/preflight.js';

/**
 * An installable part of pgferry: one SQL engine in its own schema, with its
 * own numbered migrations and version table.
 */
export interface Component {
  readonly name: ComponentName;
  readonly defaultSchema: string;
  readonly migrations: readonly MigrationSource[];
  /** Components that must be installed first (their schemas are available as variables). */
  readonly requires: readonly ComponentName[];
  /** Refuses to install over something that is not ours. Runs inside the migration transaction. */
  readonly preflight?: (db: Queryable, schema: string) => Promise<void>;
}

export type ComponentName = 'queue' | 'bus' | 'tasks' | 'stream';

async function refuseForeignPgmq(db: Queryable, schema: string): Promise<void> {
  const ext = await db.query<{ extversion: string }>(
    `SELECT e.extversion FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
      WHERE e.extname = 'pgmq' AND n.nspname = $1`,
    [schema],
  );
  if (ext.rows.length > 0) {
    throw new MigrationError(
      'PGFERRY_EXTENSION_CONFLICT',
      `schema "${schema}" belongs to the pgmq extension (version ${ext.rows[0]!.extversion}); ` +
        `pgferry will not install over it. Either keep using the extension, or install pgferry ` +
        `into another schema (migrate({ schemas: { queue: 'pgferry_pgmq' } }) or ` +
        `\`pgferry migrate --queue-schema pgferry_pgmq\`), or drop the extension first ` +
        `(DROP EXTENSION pgmq CASCADE deletes its queues).`,
    );
  }
  const foreign = await db.query(
    `SELECT 1 FROM pg_tables t
      WHERE t.schemaname = $1 AND t.tablename = 'meta'
        AND NOT EXISTS (SELECT 1 FROM pg_tables v WHERE v.schemaname = $1 AND v.tablename = '_pgferry_migrations')`,
    [schema],
  );
  if (foreign.rows.length > 0) {
    throw new MigrationError(
      'PGFERRY_FOREIGN_SCHEMA',
      `schema "${schema}" already holds a PGMQ installation that pgferry did not make ` +
        `(a meta table without pgferry's version table); pgferry will not modify it. ` +
        `Install pgferry into another schema, or move that installation away first.`,
    );
  }
}

export const components: Readonly<Record<ComponentName, Component>> = {
  queue: {
    name: 'queue',
    defaultSchema: 'pgmq',
    migrations: queueMigrations,
    requires: [],
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
    preflight: refuseForeignPgque,
  },
};

/** Install order: every component after the ones it requires. */
export const componentOrder: readonly ComponentName[] = ['queue', 'bus', 'tasks', 'stream'];
