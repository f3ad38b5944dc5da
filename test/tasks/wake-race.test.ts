import { describe, expect, it } from 'vitest';
import type pg from 'pg';
import { defineTask } from '../../src/tasks/define.js';
import { eventually, useTestDatabase } from '../support/db.js';
import { connections } from '../support/connections.js';
import { sleep, taskClient } from './helpers.js';

// The wake-up handshake between idle() (a worker going to sleep sets
// queues.waiting under the exclusive wait lock) and the insert trigger
// (_wake_on_insert: under the shared wait lock, clears the flag and NOTIFYs)
// replayed across sessions. Each test ends with a worker asleep (the flag
// set by idle()) and a committed job: a notification must have been sent,
// else the worker sleeps through the job until its poll interval.
const db = useTestDatabase();
const T = 'pgferry_tasks';

async function setup(name: string): Promise<{
  heard: () => Promise<string[]>;
  c: pg.Client[];
}> {
  const t = defineTask<{ i: number }>({ name, handler: () => undefined });
  await taskClient(db).ensure(t);
  const c = await connections(db, 5);
  const listener = c[4]!;
  const got: string[] = [];
  listener.on('notification', (n) => got.push(n.payload ?? ''));
  await listener.query(`LISTEN ${T}_wake`);
  /** The notifications for `name` sent so far (a marker of our own fences them). */
  const heard = async (): Promise<string[]> => {
    const marker = `marker_${got.length}_${Math.random()}`;
    await db.sql(`SELECT pg_notify('${T}_wake', $1)`, [marker]);
    await eventually(() => got.includes(marker));
    return got.filter((g) => g === name);
  };
  return { heard, c };
}

const enqueue = (c: pg.Client, name: string) =>
  c.query(`SELECT * FROM ${T}.enqueue($1, '{"i":1}'::jsonb)`, [name]);

/** Resolves once session `pid` waits for a lock, or `done` settled. */
async function blockedOrDone(pid: number, done: Promise<unknown>): Promise<void> {
  let settled = false;
  void done.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 400 && !settled; i++) {
    const r = await db.sql<{ w: string | null }>(
      'SELECT wait_event_type w FROM pg_stat_activity WHERE pid = $1',
      [pid],
    );
    if (r[0]?.w === 'Lock') return;
    await sleep(10);
  }
  if (!settled) throw new Error(`session ${pid} neither waited for a lock nor finished`);
}

describe('tasks: wake-ups under concurrent sessions', () => {
  it('an insert that skipped the flag because another insert held it, which then rolled back, still notifies', async () => {
    const { heard, c } = await setup('wr_rollback');
    const [worker, a, b] = c;
    await worker!.query(`SELECT ${T}.idle('wr_rollback')`); // a worker goes to sleep
    // A: an insert whose trigger takes the flag row (clearing it), not committed.
    await a!.query('BEGIN');
    await enqueue(a!, 'wr_rollback');
    // B: an insert meanwhile; its trigger skips the locked row. Committed.
    await enqueue(b!, 'wr_rollback');
    await a!.query('ROLLBACK'); // A's NOTIFY and its clearing go with it
    const flag = await db.sql<{ waiting: boolean }>(
      `SELECT waiting FROM ${T}.queues WHERE queue_name = 'wr_rollback'`,
    );
    expect(flag[0]!.waiting).toBe(true); // the worker is still asleep …
    expect(await heard()).toEqual(['wr_rollback']); // … and B's job must wake it
  });

  it('a REPEATABLE READ insert whose snapshot predates idle() notifies', async () => {
    const { heard, c } = await setup('wr_rr_old');
    const [worker, r] = c;
    await r!.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    await r!.query('SELECT 1'); // the snapshot: nobody waits yet
    await worker!.query(`SELECT ${T}.idle('wr_rr_old')`); // a worker goes to sleep
    await worker!.query(`SELECT * FROM ${T}.fetch('wr_rr_old', 10, 30000)`); // its one look: nothing
    await enqueue(r!, 'wr_rr_old');
    await r!.query('COMMIT');
    expect(await heard()).toEqual(['wr_rr_old']);
  });

  it('a REPEATABLE READ insert does not fail when another insert cleared the flag after its snapshot', async () => {
    const { heard, c } = await setup('wr_rr_cleared');
    const [worker, r, b] = c;
    await worker!.query(`SELECT ${T}.idle('wr_rr_cleared')`);
    await r!.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    await r!.query('SELECT 1'); // the snapshot: the flag is set
    await enqueue(b!, 'wr_rr_cleared'); // clears it (and notifies)
    // Before migration 8: could not serialize access due to concurrent update (40001).
    await enqueue(r!, 'wr_rr_cleared');
    await r!.query('COMMIT');
    expect((await heard()).length).toBeGreaterThanOrEqual(1);
    const n = await db.sql<{ n: number }>(`SELECT count(*)::int n FROM pgmq.q_wr_rr_cleared`);
    expect(n[0]!.n).toBe(2);
  });

  it('idle() does not wait for a registry row held by another transaction, so inserts do not wait behind it', async () => {
    const { c } = await setup('wr_held');
    const [worker, admin, e] = c;
    // An administrator pauses the task in a transaction still open.
    await admin!.query('BEGIN');
    await admin!.query(`SELECT ${T}.pause('wr_held')`);
    const pid = Number((await worker!.query('SELECT pg_backend_pid() p')).rows[0].p);
    const idling = worker!.query(`SELECT ${T}.idle('wr_held')`);
    await blockedOrDone(pid, idling);
    // Before migration 8, idle() waited for the row holding the exclusive wait
    // lock, and every insert into the task waited for idle().
    await e!.query(`SET lock_timeout = '1s'`);
    const inserted = await enqueue(e!, 'wr_held').then(
      () => 'ok',
      (err: Error) => err.message,
    );
    await admin!.query('ROLLBACK');
    await idling;
    expect(inserted).toBe('ok');
  });
});

describe('tasks: idle() and a transaction that holds the registry row and enqueues', () => {
  it('do not deadlock (before migration 8 the enqueue failed with 40P01)', async () => {
    const { c } = await setup('wr_pause_enqueue');
    const [worker, admin] = c;
    for (const x of [worker!, admin!]) await x.query(`SET deadlock_timeout = '100ms'`);
    await admin!.query('BEGIN');
    await admin!.query(`SELECT ${T}.pause('wr_pause_enqueue')`);
    const pid = Number((await worker!.query('SELECT pg_backend_pid() p')).rows[0].p);
    const idling = worker!.query(`SELECT ${T}.idle('wr_pause_enqueue')`).then(
      () => 'ok',
      (e: Error) => e.message,
    );
    await blockedOrDone(pid, idling);
    const enqueued = await enqueue(admin!, 'wr_pause_enqueue').then(
      () => 'ok',
      (e: Error) => e.message,
    );
    await admin!.query('COMMIT');
    expect([enqueued, await idling]).toEqual(['ok', 'ok']);
  });
});

describe('tasks: updates that make jobs runnable at once wake sleeping workers', () => {
  it('bulk_retry of retrying jobs and hand_back notify (a sleeper set its alarm for the old run time)', async () => {
    const { heard, c } = await setup('wr_updates');
    const [worker, other] = c;
    await enqueue(other!, 'wr_updates');
    await enqueue(other!, 'wr_updates');
    const leased = (
      await other!.query<{ msg_id: string; read_ct: number }>(
        `SELECT msg_id, read_ct FROM ${T}.fetch('wr_updates', 2, 600000)`,
      )
    ).rows;
    expect(leased).toHaveLength(2);
    // One fails and waits an hour for its retry; the other stays leased.
    await other!.query(`SELECT ${T}.retry('wr_updates', $1, $2, 3600000, '{}'::jsonb)`, [
      leased[0]!.msg_id,
      leased[0]!.read_ct,
    ]);
    // A worker sleeps: its alarm is the hour-long retry or the lease.
    await worker!.query(`SELECT ${T}.idle('wr_updates')`);
    expect(await heard()).toEqual([]);
    // An operator runs the retrying job now.
    await other!.query(`SELECT ${T}.bulk_retry('wr_updates', '{retrying}')`);
    expect(await heard()).toEqual(['wr_updates']);
    // The worker sleeps again; the other worker stops and hands its job back.
    await worker!.query(`SELECT ${T}.idle('wr_updates')`);
    await other!.query(
      `SELECT ${T}.hand_back('wr_updates', ARRAY[$1]::bigint[], ARRAY[$2]::integer[])`,
      [leased[1]!.msg_id, leased[1]!.read_ct],
    );
    expect(await heard()).toEqual(['wr_updates', 'wr_updates']);
  });
});
