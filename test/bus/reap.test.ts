import { describe, expect, it } from 'vitest';
import { eventually, useTestDatabase } from '../support/db.js';
import { Bus, IsolatedBackend, configureBus, reapBusMembers } from '../../src/bus/index.js';
import { collect } from './helpers.js';
import { testClient } from '../support/connections.js';

// Own file: it shortens the member TTL for the whole database.
const db = useTestDatabase();

async function queueExists(name: string): Promise<boolean> {
  return (
    (await db.sql(`SELECT 1 FROM ${db.queueSchema}.meta WHERE queue_name = $1`, [name])).length ===
    1
  );
}

describe('reaping members that vanished without bus_leave', () => {
  it('drops the queue of a member whose connection was killed, while live members stay', async () => {
    await configureBus(db.pool, { memberTtlSeconds: 3 });
    const live = [0, 1].map(() => {
      const backend = db.track(new IsolatedBackend({ connectionString: db.url }));
      // Reads (and so heartbeats) at least every second, well inside the 3 s TTL.
      const bus = new Bus<number>({ backend, channel: 'reap', maxPollSeconds: 1 });
      db.track({ close: () => bus.stop() });
      return bus;
    });
    for (const b of live) await b.start();
    const got = collect(live[1]!);

    // The crashing member: joins on its own connection, then the connection dies.
    const crash = testClient({ connectionString: db.url });
    await crash.connect();
    const pid = (await crash.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const dead = (await crash.query<{ q: string }>(`SELECT public.bus_join('reap') AS q`)).rows[0]!
      .q;
    await db.sql('SELECT pg_terminate_backend($1)', [pid]);

    expect(await live[0]!.publish(1)).toBe(2);
    expect(await queueExists(dead)).toBe(true);
    // Once its lease ran out, publishes skip it and reap its queue.
    await eventually(
      async () => {
        await live[0]!.publish(2);
        return !(await queueExists(dead));
      },
      15_000,
      200,
    );
    expect(
      await db.sql(`SELECT 1 FROM public._pgferry_bus_member WHERE queue_name = $1`, [dead]),
    ).toEqual([]);
    // The live members were never reaped and still exchange messages.
    for (const b of live) expect(await queueExists(b.queue!)).toBe(true);
    const before = got.length;
    expect(await live[0]!.publish(3)).toBe(1);
    await eventually(() => got.length > before && got.some((g) => g.message === 3));
    expect(live.every((b) => b.stats.rejoins === 0)).toBe(true);
  });

  it('reapBusMembers drops expired members on demand, and a reaped bus joins again', async () => {
    await configureBus(db.pool, { memberTtlSeconds: 3600 });
    const backend = db.track(new IsolatedBackend({ connectionString: db.url }));
    const bus = new Bus<number>({ backend, channel: 'reap-2', maxPollSeconds: 1 });
    db.track({ close: () => bus.stop() });
    await bus.start();
    const first = bus.queue!;
    // Expire and reap in one transaction, so the live reader cannot renew its
    // lease in between; retried while the reader holds its queue in a read
    // (the reaper never waits for a busy queue).
    await eventually(
      async () => {
        const c = await db.pool.connect();
        try {
          await c.query('BEGIN');
          await c.query(
            `UPDATE public._pgferry_bus_member SET lease_until = now() - interval '1 second' WHERE queue_name = $1`,
            [first],
          );
          const n = await reapBusMembers(c);
          await c.query('COMMIT');
          return n === 1;
        } finally {
          c.release();
        }
      },
      10_000,
      50,
    );
    expect(await queueExists(first)).toBe(false);
    await eventually(() => bus.stats.rejoins === 1 && bus.queue !== first, 10_000);
    expect(await queueExists(bus.queue!)).toBe(true);
  });
});
