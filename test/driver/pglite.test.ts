import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PGlite } from '@electric-sql/pglite';
import { PGliteDriver } from '../../src/driver/pglite.js';
import { pgliteExecutor } from '../../src/driver/adapters.js';
import { ConnectionError } from '../../src/errors.js';
import { exerciseDriver } from './conformance.js';

// One in-memory PGlite for the file: the conformance cases need no migrations.
let db: PGlite;
beforeAll(async () => {
  db = await PGlite.create();
});
afterAll(() => db.close());

exerciseDriver('pglite', () => ({
  // One in-process session: no second connection, no backend to terminate,
  // and nothing is kept prepared between calls.
  capabilities: {
    separateSessions: false,
    terminateBackend: false,
    serverPreparedStatements: false,
  },
  admin: null,
  makeDriver: () => new PGliteDriver({ db }),
  foreignTransaction: (fn) => db.transaction((tx) => fn(pgliteExecutor(tx))),
}));

describe('PGliteDriver ownership', () => {
  it('creates, and closes, its own instance from a data dir; leaves a passed-in one open', async () => {
    const own = new PGliteDriver({ dataDir: 'memory://' });
    expect(
      (await own.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`)).rows[0]!
        .v,
    ).toMatch(/^\d+$/);
    const instance = await own.db();
    await own.close();
    expect(instance.closed).toBe(true);
    await expect(own.query('SELECT 1')).rejects.toBeInstanceOf(ConnectionError);

    const borrowed = new PGliteDriver({ db });
    await borrowed.query('SELECT 1');
    await borrowed.close();
    expect(db.closed).toBe(false);
    expect((await db.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });
});
