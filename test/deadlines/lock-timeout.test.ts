import { describe, expect, it } from 'vitest';
import type pg from 'pg';
import { useTestDatabase } from '../support/db.js';
import { connections } from '../support/connections.js';
import { LockTimeoutError, QueueClient, TimeoutError } from '../../src/index.js';
import { PgDriver } from '../../src/driver/pg.js';

const db = useTestDatabase();
const S = db.queueSchema;

/** A client whose lock waits end after 300 ms. */
function client(lockTimeoutMs = 300): QueueClient {
  return db.track(
    new QueueClient({
      driver: db.track(new PgDriver({ connectionString: db.url })),
      schema: S,
      lockTimeoutMs,
    }),
  );
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

/** Another session holds message `id`'s row lock until `release()`. */
async function holdRow(holder: pg.Client, queue: string, id: number): Promise<void> {
  await holder.query('BEGIN');
  await holder.query(`SELECT 1 FROM ${S}.q_${queue} WHERE msg_id = $1 FOR UPDATE`, [id]);
}

describe('lock waits end with LockTimeoutError (SQLSTATE 55P03), nothing changed', () => {
  it('delete, archive, set_vt and the …IfHeld forms on a message another transaction holds', async () => {
    const q = client();
    await q.createQueue('locked');
    const id = await q.send('locked', { n: 1 });
    const [read] = await q.read('locked', { visibilityTimeoutSeconds: 0 });
    const [holder] = await connections(db, 1);
    await holdRow(holder!, 'locked', id);
    try {
      const attempts: [string, () => Promise<unknown>][] = [
        ['delete', () => q.delete('locked', id)],
        ['delete[]', () => q.delete('locked', [id])],
        ['archive', () => q.archive('locked', id)],
        ['setVisibilityTimeout', () => q.setVisibilityTimeout('locked', id, 60)],
        ['deleteIfHeld', () => q.deleteIfHeld('locked', id, read!.readCount)],
        ['archiveIfHeld', () => q.archiveIfHeld('locked', id, read!.readCount)],
        [
          'setVisibilityTimeoutIfHeld',
          () => q.setVisibilityTimeoutIfHeld('locked', id, read!.readCount, 60),
        ],
        ['purgeQueue', () => q.purgeQueue('locked')],
      ];
      for (const [name, attempt] of attempts) {
        const err = await rejection(attempt());
        expect(err, name).toBeInstanceOf(LockTimeoutError);
        const e = err as LockTimeoutError;
        expect(e.code, name).toBe('PGFERRY_LOCK_TIMEOUT');
        expect(e.sqlState, name).toBe('55P03');
        expect(e.message, name).toMatch(/queue "locked".*locked by another transaction/);
        if (name !== 'purgeQueue') expect(e.message, name).toContain(`message ${id}`);
      }
    } finally {
      await holder!.query('ROLLBACK');
    }
    const rows = await db.sql<{ msg_id: string; read_ct: number }>(
      `SELECT msg_id, read_ct FROM ${S}.q_locked`,
    );
    expect(rows).toEqual([{ msg_id: String(id), read_ct: 1 }]);
    expect(await db.sql(`SELECT 1 FROM ${S}.a_locked`)).toEqual([]);
    // Once the lock is gone the same call succeeds.
    expect(await q.archive('locked', id)).toBe(true);
  });

  it('dropQueue gives up instead of queueing every later read and send behind it', async () => {
    const q = client();
    await q.createQueue('dropme');
    await q.send('dropme', 1);
    const [holder] = await connections(db, 1);
    await holder!.query('BEGIN');
    await holder!.query(`SELECT count(*) FROM ${S}.q_dropme`); // ACCESS SHARE until the end
    try {
      const err = await rejection(q.dropQueue('dropme'));
      expect(err).toBeInstanceOf(LockTimeoutError);
      expect((err as LockTimeoutError).message).toMatch(/queue "dropme" \(drop\)/);
      // Nothing waits behind an abandoned DROP: sends and reads go through.
      await q.send('dropme', 2);
      expect((await q.read('dropme', { qty: 5 })).length).toBe(2);
    } finally {
      await holder!.query('ROLLBACK');
    }
    expect(await q.dropQueue('dropme')).toBe(true);
  });

  it('lockTimeoutMs: 0 leaves the server setting (the delete waits for the holder)', async () => {
    const q = client(0);
    await q.createQueue('waits');
    const id = await q.send('waits', 1);
    const [holder] = await connections(db, 1);
    await holdRow(holder!, 'waits', id);
    let settled = false;
    const del = q.delete('waits', id).finally(() => (settled = true));
    // Proof that it waits: it is blocked on the holder's lock in pg_locks.
    for (let i = 0; i < 200; i++) {
      const [w] = await db.sql<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'`,
      );
      if (w!.n > 0) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(settled).toBe(false);
    await holder!.query('COMMIT');
    expect(await del).toBe(true);
  });

  it('the setting is per statement: a later statement on the same connection has the server default', async () => {
    const q = client();
    await q.createQueue('scoped');
    const id = await q.send('scoped', 1);
    await q.transaction(async (tx) => {
      const before = await tx.query<{ lock_timeout: string }>('SHOW lock_timeout');
      expect(before.rows[0]!.lock_timeout).toBe('0');
      await q.delete('scoped', id, { tx });
      // Inside the caller's transaction it lasts until the transaction ends (documented).
      const during = await tx.query<{ lock_timeout: string }>('SHOW lock_timeout');
      expect(during.rows[0]!.lock_timeout).toBe('300ms');
    });
    const driver = db.track(new PgDriver({ connectionString: db.url, maxConnections: 1 }));
    const q1 = db.track(new QueueClient({ driver, schema: S }));
    await q1.send('scoped', 2);
    const [m] = await q1.read('scoped');
    await q1.delete('scoped', m!.msgId);
    const after = await driver.query<{ lock_timeout: string }>('SHOW lock_timeout');
    expect(after.rows[0]!.lock_timeout).toBe('0');
  });
});

describe('statement_timeout (57014) is a TimeoutError', () => {
  it('a long-poll cut short by the server', async () => {
    const q = client();
    await q.createQueue('slow');
    const err = await rejection(
      q.transaction(async (tx) => {
        await tx.query(`SET LOCAL statement_timeout = '200ms'`);
        await q.readWithPoll('slow', { maxPollSeconds: 5, tx });
      }),
    );
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).code).toBe('PGFERRY_TIMEOUT');
    expect((err as TimeoutError).sqlState).toBe('57014');
  });
});
