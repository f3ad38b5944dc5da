import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { migrate, TimeoutError } from '../../src/index.js';
import { MIGRATE_QUERY_TIMEOUT_MS } from '../../src/migrate/connect.js';
import { testClient } from '../support/connections.js';

// migrate() without a driver makes its own, with a statement deadline of its
// own (long by default: a migration may rebuild a table or wait for another
// migrator), which `queryTimeoutMs` sets.

const db = useTestDatabase();

describe("the migrator's statement deadline", () => {
  it('is 10 minutes by default, and queryTimeoutMs ends a migrator stuck behind another one', async () => {
    expect(MIGRATE_QUERY_TIMEOUT_MS).toBe(600_000);
    const other = testClient({ connectionString: db.url });
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query(`SELECT pg_advisory_xact_lock(hashtext('pgferry.migrate'))`);
      const started = Date.now();
      await expect(
        migrate({ connectionString: db.url, queryTimeoutMs: 500, components: ['queue'] }),
      ).rejects.toBeInstanceOf(TimeoutError);
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      await other.query('ROLLBACK').catch(() => undefined);
      await other.end();
    }
  });
});
