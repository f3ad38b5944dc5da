import type pg from 'pg';
import { openClient } from './harness.js';

// The floor under publish → delivered for a bus whose members each have a
// queue table, on this server at this pacing: plain SQL with nothing else in
// the path. The publisher inserts one row into each peer's table and
// NOTIFYs, in one durable transaction; one LISTEN connection hears it (as the
// members of one process share one); each peer then reads its table with a
// SELECT on its own connection. "Delivered" is each peer's reply. Any bus
// that keeps messages durable in per-member tables pays at least this.

export async function fanoutFloor(
  url: string,
  members: number,
  count: number,
  pause: () => Promise<void>,
): Promise<number[]> {
  const peers = members - 1;
  const clients: pg.Client[] = [];
  const connect = async (): Promise<pg.Client> => {
    const c = await openClient(url);
    clients.push(c);
    return c;
  };
  try {
    const publisher = await connect();
    const listener = await connect();
    const readers: pg.Client[] = [];
    for (let i = 0; i < peers; i++) readers.push(await connect());
    const tables = readers.map((_, i) => `bench_bus_floor_${i}`);
    for (const t of tables) {
      await publisher.query(
        `CREATE TABLE ${t} (id bigserial PRIMARY KEY, sent_at float8 NOT NULL, body jsonb NOT NULL)`,
      );
    }
    const publish = {
      name: 'bench_bus_floor_publish',
      text: `WITH ${tables.map((t, i) => `i${i} AS (INSERT INTO ${t} (sent_at, body) VALUES ($1, '{}') RETURNING id)`).join(', ')}
             SELECT pg_notify('bench_bus_floor', '') FROM ${tables.map((_, i) => `i${i}`).join(', ')}`,
    };
    const last = tables.map(() => 0);
    const latencies: number[] = [];
    let onDelivered: (() => void) | undefined;
    let outstanding = 0;
    listener.on('notification', () => {
      readers.forEach((r, i) => {
        outstanding++;
        void r
          .query<{ id: string; sent_at: number }>({
            name: `bench_bus_floor_read_${i}`,
            text: `SELECT id, sent_at, body FROM ${tables[i]} WHERE id > $1 ORDER BY id LIMIT 100`,
            values: [last[i]],
          })
          .then((res) => {
            const now = performance.now();
            for (const row of res.rows) {
              last[i] = Number(row.id);
              latencies.push(now - Number(row.sent_at));
            }
            if (--outstanding === 0) onDelivered?.();
          });
      });
    });
    await listener.query('LISTEN bench_bus_floor');
    const once = async (): Promise<void> => {
      const delivered = new Promise<void>((r) => (onDelivered = r));
      await publisher.query({ ...publish, values: [performance.now()] });
      await delivered;
    };
    for (let i = 0; i < 3; i++) await once(); // statements prepared on each connection
    latencies.length = 0;
    for (let i = 0; i < count; i++) {
      await pause();
      await once();
    }
    return latencies.sort((a, b) => a - b);
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }
}
