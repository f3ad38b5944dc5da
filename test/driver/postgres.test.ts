import { afterAll, beforeAll } from 'vitest';
import pg from 'pg';
import postgres from 'postgres';
import { PostgresJsDriver } from '../../src/driver/postgres.js';
import { postgresJsExecutor } from '../../src/driver/adapters.js';
import { useTestDatabase } from '../support/db.js';
import { exerciseDriver } from './conformance.js';
import { serverTarget } from './server-target.js';
import { testPool } from '../support/connections.js';

const db = useTestDatabase();
let admin: pg.Pool;
let foreign: postgres.Sql;
beforeAll(() => {
  admin = testPool({ connectionString: db.url, max: 3 });
  foreign = postgres(db.url, { max: 2, onnotice: () => undefined });
});
afterAll(async () => {
  await foreign.end();
  await admin.end();
});

exerciseDriver('postgres (postgres.js)', () =>
  serverTarget(admin, {
    makeDriver: ({ applicationName, maxConnections }) =>
      new PostgresJsDriver({
        connectionString: db.url,
        maxConnections,
        postgresOptions: { connection: { application_name: applicationName } },
      }),
    // The caller's own postgres.js transaction, through the one-line adapter.
    foreignTransaction: async (fn) =>
      (await foreign.begin((tx) => fn(postgresJsExecutor(tx)))) as Awaited<ReturnType<typeof fn>>,
  }),
);
