import type { SchemaNames } from '../../src/migrate/migrator.js';

/** The same server URL with another database name. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = '/' + database;
  return u.toString();
}

/**
 * Schemas the suite runs under. Default: the engines' defaults. The test
 * script runs the queue suite a second time with PGFERRY_TEST_QUEUE_SCHEMA
 * set, to prove nothing hard-codes `pgmq`.
 */
export function testSchemas(): SchemaNames {
  const out: SchemaNames = {};
  if (process.env.PGFERRY_TEST_QUEUE_SCHEMA) out.queue = process.env.PGFERRY_TEST_QUEUE_SCHEMA;
  return out;
}

export const queueSchema = (): string => process.env.PGFERRY_TEST_QUEUE_SCHEMA ?? 'pgmq';
