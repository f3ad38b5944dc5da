import { afterAll, beforeAll } from 'vitest';
import pg from 'pg';
import { PgDriver } from '../../src/driver/pg.js';
import { useTestDatabase } from '../support/db.js';
import { exerciseDriver } from './conformance.js';
import { serverTarget } from './server-target.js';
import { testPool } from '../support/connections.js';

const db = useTestDatabase();
let admin: pg.Pool;
beforeAll(() => {
  admin = testPool({ connectionString: db.url, max: 3 });
});
afterAll(() => admin.end());

exerciseDriver('pg', () =>
  serverTarget(admin, {
    makeDriver: ({ applicationName, maxConnections }) =>
      new PgDriver({
        connectionString: db.url,
        maxConnections,
        poolConfig: { application_name: applicationName },
      }),
    async foreignTransaction(fn) {
      // A node-postgres PoolClient is a foreign executor as it is.
      const client = await admin.connect();
      try {
        await client.query('BEGIN');
        const out = await fn(client);
        await client.query('COMMIT');
        return out;
      } catch (err) {
        await client.query('ROLLBACK');
        throw err;
      } finally {
        client.release();
      }
    },
  }),
);
