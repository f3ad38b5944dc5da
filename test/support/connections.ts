import pg from 'pg';
import type { TestDb } from './db.js';

/**
 * Opens `n` separate server connections to the file's database (closed
 * after the file): for tests that prove behaviour across sessions.
 */
export async function connections(db: TestDb, n: number): Promise<pg.Client[]> {
  const clients = await Promise.all(
    Array.from({ length: n }, async () => {
      const c = new pg.Client({ connectionString: db.url });
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
