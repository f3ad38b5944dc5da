import { inject } from 'vitest';
import pg from 'pg';
import { readFile } from 'node:fs/promises';
import type { Driver } from '../../src/driver/types.js';
import { PostgresJsDriver } from '../../src/driver/postgres.js';
import { PGLITE_QUERY_OPTIONS, PGliteDriver } from '../../src/driver/pglite.js';
import { toTextParams } from '../../src/driver/text-params.js';
import { testDriverName } from './driver-name.js';
import { testPool } from './connections.js';

export { testDriverName, type TestDriverName } from './driver-name.js';

/** The test database as seen through a non-default driver. */
export interface TestDriverDb {
  /** Replaces the server pool (pglite only). */
  pool?: pg.Pool;
  /** Replaces raw SQL (pglite only: it must reach the same database as the driver). */
  sql?<R>(text: string, params?: unknown[]): Promise<R[]>;
  driver(): Driver;
  close(): Promise<void>;
}

/** Opens the selected driver's view of the test database; undefined for `pg`. */
export async function openTestDriverDb(url: string): Promise<TestDriverDb | undefined> {
  switch (testDriverName()) {
    case 'pg':
      return undefined;
    case 'postgres':
      return {
        driver: () => new PostgresJsDriver({ connectionString: url, maxConnections: 10 }),
        close: async () => undefined,
      };
    case 'pglite':
      return openPGlite();
  }
}

/**
 * A PGlite instance loaded from the migrated data dir that global setup
 * dumped once (loading a dump takes a fraction of migrating again).
 */
async function openPGlite(): Promise<TestDriverDb> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { createPgConfig } = await import('@electric-sql/pglite/node-postgres');
  const dump = await readFile(inject('pgliteTemplate'));
  const db = await PGlite.create({ loadDataDir: new Blob([dump]) });
  const pool = testPool({ ...(createPgConfig(db) as unknown as pg.PoolConfig), max: 1 });
  return {
    pool,
    // Through PGlite's own query/exec, so raw SQL queues behind open
    // transactions like the code under test (instead of running inside
    // them), with node-postgres's conventions and its unmapped errors.
    sql: async <R>(text: string, params: unknown[] = []) => {
      if (params.length === 0) {
        const all = await db.exec(text, PGLITE_QUERY_OPTIONS as never);
        return (all[all.length - 1]?.rows ?? []) as R[];
      }
      return (await db.query(text, toTextParams(params), PGLITE_QUERY_OPTIONS as never))
        .rows as R[];
    },
    driver: () => new PGliteDriver({ db }),
    close: () => db.close(),
  };
}
