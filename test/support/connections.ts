import pg from 'pg';
import type { TestDb } from './db.js';

// A test's own pg pools and clients come from here, with an 'error'
// listener. node-postgres emits 'error' when the server ends a session the
// client is not querying on (DROP DATABASE … WITH (FORCE) after the file,
// which can reach a socket that pool.end() has not finished closing; a
// login's drop(); a test's pg_terminate_backend; a crashed server), and an
// 'error' without a listener is an uncaught exception that fails the run.
// Nothing is hidden from assertions: a query in flight still rejects with
// the error, and a later one with "not queryable".
const ignore = (): void => undefined;

/** A pg.Pool whose idle and checked-out connections may be ended under it. */
export function testPool(config: pg.PoolConfig): pg.Pool {
  const pool = new pg.Pool(config);
  pool.on('error', ignore);
  // pg-pool detaches its own listener from a checked-out client.
  pool.on('connect', (client) => client.on('error', ignore));
  return pool;
}

/** A pg.Client whose session may be ended under it. */
export function testClient(config: pg.ClientConfig): pg.Client {
  const client = new pg.Client(config);
  client.on('error', ignore);
  return client;
}

/**
 * Opens `n` separate server connections to the file's database (closed
 * after the file): for tests that prove behaviour across sessions.
 */
export async function connections(db: TestDb, n: number): Promise<pg.Client[]> {
  const clients = await Promise.all(
    Array.from({ length: n }, async () => {
      const c = testClient({ connectionString: db.url });
      c.on('notice', () => undefined);
      await c.connect();
      return c;
    }),
  );
  db.track({
    close: async () => void (await Promise.all(clients.map((c) => c.end().catch(() => undefined)))),
  });
  return clients;
}
