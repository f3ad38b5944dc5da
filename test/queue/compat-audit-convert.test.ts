// convert_archive_partitioned as PGMQ's SQL reports it (pgmq.sql 1.11.1, and the
// expected output of its base regression test): an archive that is already
// partitioned, or that does not exist, is a NOTICE and a normal return, not an
// error, and both notices carry PGMQ's stray "s" after the table name (its
// RAISE format is 'Table %s …', where only % is a placeholder).
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { expectSqlError } from '../support/sql-errors.js';
import { QueueNotFoundError } from '../../src/index.js';

const db = useTestDatabase();
const S = db.queueSchema;

/** Runs one statement on its own connection and returns the notices it raised. */
async function notices(sql: string): Promise<string[]> {
  const client = await db.pool.connect();
  const seen: string[] = [];
  client.on('notice', (n) => seen.push(`${n.severity}: ${n.message}`));
  try {
    await client.query(sql);
  } finally {
    client.release();
  }
  return seen;
}

describe('convert_archive_partitioned notices (PGMQ quirks)', () => {
  it('an already partitioned archive: NOTICE "Table a_<name>s is already partitioned", no error', async () => {
    await db.sql(`SELECT ${S}.create('conv_twice')`);
    expect(await notices(`SELECT ${S}.convert_archive_partitioned('conv_twice')`)).toEqual([]);
    expect(await notices(`SELECT ${S}.convert_archive_partitioned('conv_twice')`)).toEqual([
      'NOTICE: Table a_conv_twices is already partitioned',
    ]);
    // The name is lower-cased as in the table name.
    await db.sql(`SELECT ${S}.create('ConvCased')`);
    await db.sql(`SELECT ${S}.convert_archive_partitioned('ConvCased', '1 hour', '2 hours')`);
    expect(await notices(`SELECT ${S}.convert_archive_partitioned('ConvCased')`)).toEqual([
      'NOTICE: Table a_convcaseds is already partitioned',
    ]);
  });

  it('a missing archive: NOTICE "Table a_<name>s does not exists", returns normally, creates nothing', async () => {
    expect(await notices(`SELECT ${S}.convert_archive_partitioned('never_made')`)).toEqual([
      'NOTICE: Table a_never_mades does not exists',
    ]);
    const rows = await db.sql(
      `SELECT relname FROM pg_class WHERE relname LIKE '%never_made%' ORDER BY 1`,
    );
    expect(rows).toEqual([]);
  });

  it('still checks the name first (P0001), and a NULL name fails as in PGMQ (22004)', async () => {
    await expectSqlError(
      db.sql(`SELECT ${S}.convert_archive_partitioned('bad;name')`),
      'P0001',
      "queue name contains invalid characters: $, ;, --, or \\'",
    );
    await expectSqlError(db.sql(`SELECT ${S}.convert_archive_partitioned(NULL)`), '22004');
  });

  it('the TypeScript client keeps its typed error for a missing queue', async () => {
    await expect(db.queueClient().convertArchivePartitioned('nope_ts')).rejects.toBeInstanceOf(
      QueueNotFoundError,
    );
  });
});
