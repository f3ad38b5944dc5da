import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { useFaultProxy } from '../support/fault-proxy.js';
import { TimeoutError } from '../../src/index.js';
import { PgDriver } from '../../src/driver/pg.js';

// A LISTEN connection whose network path goes silent (no reset, no FIN: a
// black hole) must not hold every later LISTEN behind its stuck statement:
// the statement's deadline discards it and the next LISTEN opens a new one.

const db = useTestDatabase();
const proxy = useFaultProxy(db);

describe('the LISTEN connection on a black-holed path', () => {
  it('times out, is discarded, and the next LISTEN works on a new connection', async () => {
    const driver = db.track(
      new PgDriver({ connectionString: proxy().url(db.url), queryTimeoutMs: 800 }),
    );
    await driver.listen('lf_a', () => undefined); // the LISTEN connection is open
    proxy().freezeExisting();
    await expect(driver.listen('lf_b', () => undefined)).rejects.toBeInstanceOf(TimeoutError);
    // The old path stays silent; a new connection gets through.
    const got: (string | undefined)[] = [];
    await driver.listen('lf_c', (payload) => got.push(payload));
    await db.sql(`SELECT pg_notify('lf_c', 'hello')`);
    const until = Date.now() + 10_000;
    while (!got.includes('hello') && Date.now() < until)
      await new Promise((r) => setTimeout(r, 20));
    expect(got).toContain('hello');
  });
});
