import { describe, expect, it } from 'vitest';
import { defineTask } from '../../src/tasks/define.js';
import { useTestDatabase } from '../support/db.js';
import { connections } from '../support/connections.js';
import { taskClient } from './helpers.js';

// idle() and an insert in progress (sql/tasks/0008_idle_waits.sql), on
// separate server connections.
const db = useTestDatabase();
const T = 'pgferry_tasks';

const waiting = async (name: string): Promise<boolean> =>
  (await db.sql(`SELECT waiting FROM ${T}.queues WHERE queue_name = $1`, [name]))[0]!.waiting ===
  true;

describe('tasks: idle() with an insert in progress', () => {
  it('waits for the insert to commit, then sets the flag (the look after it sees the job)', async () => {
    const t = defineTask({ name: 'idle_wait', handler: () => undefined });
    await taskClient(db).ensure(t);
    const [producer, worker] = await connections(db, 2);
    const thisDb = `(SELECT oid FROM pg_database WHERE datname = current_database())`;
    /** One round: true when idle() waited for the insert and set the flag. */
    const round = async (): Promise<boolean> => {
      await db.sql(`UPDATE ${T}.queues SET waiting = false WHERE queue_name = 'idle_wait'`);
      // The producer inserts (its trigger takes the wait lock shared), waits
      // until idle() queues for the lock, and commits at once, server-side.
      const inserting = producer!.query(`DO $$
        DECLARE deadline timestamptz := clock_timestamp() + interval '2 seconds';
        BEGIN
          INSERT INTO ${db.queueSchema}.q_idle_wait (vt, message) VALUES (clock_timestamp(), '{}');
          LOOP
            EXIT WHEN clock_timestamp() > deadline OR EXISTS (SELECT 1 FROM pg_locks
              WHERE locktype = 'advisory' AND NOT granted AND database = ${thisDb});
            PERFORM pg_sleep(0.0002);
          END LOOP;
          COMMIT;
        END $$`);
      // idle() once the insert holds the lock.
      for (let i = 0; i < 400; i++) {
        const held = await db.sql(`SELECT 1 FROM pg_locks WHERE locktype = 'advisory'
          AND mode = 'ShareLock' AND granted AND database = ${thisDb}`);
        if (held.length > 0) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      const { rows } = await worker!.query(`SELECT ${T}.idle('idle_wait') AS r`);
      await inserting;
      // On a CPU-starved machine the commit may come after the 3 ms: then
      // the old answer ("look again in a moment", no flag).
      if (rows[0].r !== null) {
        expect(await waiting('idle_wait')).toBe(false);
        return false;
      }
      expect(await waiting('idle_wait')).toBe(true);
      return true;
    };
    let waited = false;
    for (let i = 0; i < 5 && !waited; i++) waited = await round();
    // Before this migration idle() never waited: "look again in 3 ms", no flag.
    expect(waited).toBe(true);
  });

  it('an insert still open after the short wait: look again in a moment, no flag', async () => {
    const t = defineTask({ name: 'idle_open', handler: () => undefined });
    await taskClient(db).ensure(t);
    const [producer, worker] = await connections(db, 2);
    await producer!.query('BEGIN');
    await producer!.query(
      `INSERT INTO ${db.queueSchema}.q_idle_open (vt, message) VALUES (clock_timestamp(), '{}')`,
    );
    try {
      const { rows } = await worker!.query(
        `SELECT extract(epoch FROM ${T}.idle('idle_open') - clock_timestamp()) * 1000 AS ms,
                current_setting('lock_timeout') AS lt`,
      );
      expect(Number(rows[0].ms)).toBeLessThanOrEqual(1);
      expect(rows[0].lt).toBe('0'); // the short lock timeout does not outlive idle()
      expect(await waiting('idle_open')).toBe(false);
      // An insert may go on meanwhile (idle() waits a few ms at most, and not here any more).
      await db.sql(
        `INSERT INTO ${db.queueSchema}.q_idle_open (vt, message) VALUES (clock_timestamp(), '{}')`,
      );
    } finally {
      await producer!.query('COMMIT');
    }
  });
});
