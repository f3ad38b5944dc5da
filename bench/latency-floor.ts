import { openClient } from './harness.js';

// The floor under enqueue → start latency for any job queue that is woken by
// LISTEN/NOTIFY and leases durably, on this server at this pacing: plain SQL
// with nothing else in the path. The producer inserts a row and NOTIFYs in
// one durable transaction; a LISTEN connection hears it; a worker connection
// leases that row by id (an UPDATE, durable commit); "start" is the lease's
// reply. Every job queue on Postgres that keeps its jobs durable pays at
// least this (graphile-worker and pgferry both do these steps and more).
// On a machine whose idle cores take long to wake, this floor is most of the
// latency at ~200 jobs/s.

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Sends `n` jobs ~200/s with jitter; `send(sentAt)` enqueues one job carrying its send time. */
export async function paced(n: number, send: (sentAt: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < n; i++) {
    await wait(2 + Math.random() * 6);
    await send(performance.now());
  }
}

export interface FloorFigures {
  /** Producer: INSERT + NOTIFY with its durable commit, call → reply (ms). */
  insert: number[];
  /** Send → the lease of that row returned to the worker (ms). */
  start: number[];
}

export async function latencyFloor(url: string, n: number): Promise<FloorFigures> {
  const [producer, listener, worker] = await Promise.all([
    openClient(url),
    openClient(url),
    openClient(url),
  ]);
  const insert: number[] = [];
  const start: number[] = [];
  try {
    await producer.query(
      `CREATE TABLE bench_floor (id bigserial PRIMARY KEY, sent_at float8 NOT NULL, leased boolean NOT NULL DEFAULT false)`,
    );
    const lease = {
      name: 'bench_floor_lease',
      text: `UPDATE bench_floor SET leased = true WHERE id = $1 AND NOT leased RETURNING sent_at`,
    };
    let pending = 0;
    listener.on('notification', (msg) => {
      pending++;
      void worker.query({ ...lease, values: [msg.payload] }).then((r) => {
        const sent = Number((r.rows[0] as { sent_at: number } | undefined)?.sent_at);
        if (Number.isFinite(sent)) start.push(performance.now() - sent);
        pending--;
      });
    });
    await listener.query('LISTEN bench_floor');
    const send = {
      name: 'bench_floor_send',
      text: `WITH i AS (INSERT INTO bench_floor (sent_at) VALUES ($1) RETURNING id)
             SELECT pg_notify('bench_floor', i.id::text) FROM i`,
    };
    const run = async (count: number): Promise<void> => {
      await paced(count, async (t) => {
        await producer.query({ ...send, values: [t] });
        insert.push(performance.now() - t);
      });
      for (let i = 0; i < 500 && (start.length < count || pending > 0); i++) await wait(10);
    };
    // Warm-up (statements prepared on each connection), not counted.
    await run(5);
    insert.length = 0;
    start.length = 0;
    await run(n);
    if (start.length < n) throw new Error(`latency floor: ${start.length} of ${n} leases returned`);
  } finally {
    await Promise.all([producer.end(), listener.end(), worker.end()]);
  }
  return { insert, start };
}
