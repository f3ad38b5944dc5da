import { afterAll, beforeAll, inject } from 'vitest';
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { PgDriver } from '../../src/driver/pg.js';
import type { Driver } from '../../src/driver/types.js';
import { QueueClient } from '../../src/queue/client.js';
import { queueSchema, withDatabase } from './urls.js';
import { openTestDriverDb, testDriverName, type TestDriverDb } from './test-driver.js';
import { testClient, testPool } from './connections.js';

export interface TestDb {
  /** URL of this file's own database (a clone of the migrated template). */
  url: string;
  /** Name of the queue engine's schema in this run. */
  queueSchema: string;
  /**
   * A plain pg pool on the database, for raw SQL in assertions. Under
   * PGFERRY_TEST_DRIVER=pglite: a pg pool of one connection onto the PGlite
   * instance (PGlite's own node-postgres adapter).
   */
  pool: pg.Pool;
  /** Runs raw SQL on `pool` (under pglite: on the PGlite instance, serialised with the driver's work). */
  sql<R extends pg.QueryResultRow = Record<string, unknown>>(
    text: string,
    params?: unknown[],
  ): Promise<R[]>;
  /** A queue client on the database, on the driver PGFERRY_TEST_DRIVER selects (closed after the file). */
  queueClient(): QueueClient;
  /**
   * A driver on the database (closed after the file): `pg` by default, or
   * postgres.js / PGlite when PGFERRY_TEST_DRIVER=postgres|pglite. Under
   * pglite, `url` still names a server database migrated the same way (for
   * tests that need a URL, e.g. other libraries), but it is not the PGlite one.
   */
  driver(): Driver;
  /** Registers something to close after the file. */
  track<T extends { close(): Promise<void> }>(thing: T): T;
}

/**
 * Gives the calling test file its own database, cloned from the migrated
 * template, and drops it (and everything the file opened) afterwards.
 */
export function useTestDatabase(): TestDb {
  const closers: { close(): Promise<void> }[] = [];
  let alt: TestDriverDb | undefined;
  const name = `${inject('templateDb')}_${randomBytes(4).toString('hex')}`;
  const admin = inject('adminUrl');
  const db = {
    url: withDatabase(admin, name),
    queueSchema: queueSchema(),
  } as TestDb;

  beforeAll(async () => {
    const c = testClient({ connectionString: admin });
    await c.connect();
    try {
      await c.query(`CREATE DATABASE ${name} TEMPLATE ${inject('templateDb')}`);
    } finally {
      await c.end();
    }
    alt = await openTestDriverDb(db.url);
    db.pool = alt?.pool ?? testPool({ connectionString: db.url, max: 4 });
  });

  afterAll(async () => {
    for (const c of closers.reverse()) await c.close();
    await db.pool?.end();
    await alt?.close();
    const c = testClient({ connectionString: admin });
    await c.connect();
    try {
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    } finally {
      await c.end();
    }
  });

  db.sql = async (text, params) =>
    alt?.sql ? alt.sql(text, params) : (await db.pool.query(text, params)).rows;
  db.track = (thing) => {
    closers.push(thing);
    return thing;
  };
  db.driver = () => db.track(alt ? alt.driver() : new PgDriver({ connectionString: db.url }));
  db.queueClient = () =>
    db.track(
      testDriverName() === 'pg'
        ? new QueueClient({ connectionString: db.url, schema: db.queueSchema })
        : new QueueClient({ driver: db.driver(), schema: db.queueSchema }),
    );
  return db;
}

/**
 * Polls `check` until it returns a truthy value or `timeoutMs` passes. The
 * default is generous (a wait, not a speed check: CI runs two files at once
 * on two cores, next to other work); a passing check returns at once.
 */
export async function eventually<T>(
  check: () => Promise<T> | T,
  timeoutMs = 10_000,
  stepMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
