// Bus members of one process whose clients have the same connection
// settings share one LISTEN connection (src/bus/wake-hub.ts). Each member
// here has its own QueueClient (its own pool); the safety-net re-read is an
// hour, so every delivery below came by a wake-up.
import { describe, expect, it } from 'vitest';
import { eventually, useTestDatabase } from '../support/db.js';
import { QueueClient } from '../../src/queue/client.js';
import { Bus, DirectBackend, IsolatedBackend } from '../../src/bus/index.js';
import { sharedListenConnections } from '../../src/bus/wake-hub.js';
import { PgDriver } from '../../src/driver/pg.js';
import { collect } from './helpers.js';

const db = useTestDatabase();

const HOUR = 3_600_000;

function client(applicationName?: string): QueueClient {
  const url = new URL(db.url);
  if (applicationName) url.searchParams.set('application_name', applicationName);
  return new QueueClient({ connectionString: url.href, schema: db.queueSchema, maxConnections: 2 });
}

async function member<T>(c: QueueClient, channel: string): Promise<Bus<T>> {
  const bus = new Bus<T>({ backend: new DirectBackend({ client: c }), channel, maxPollMs: HOUR });
  await bus.start();
  return bus;
}

/** Server sessions of this database whose last statement was a LISTEN. */
async function listeners(): Promise<number[]> {
  const rows = await db.sql<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE 'LISTEN %'`,
  );
  return rows.map((r) => r.pid);
}

describe('one LISTEN connection per process and settings', () => {
  it('members on separate clients share one listening session, and every one is woken', async () => {
    const clients = Array.from({ length: 5 }, () => client());
    const buses: Bus<number>[] = [];
    try {
      for (const c of clients) buses.push(await member<number>(c, 'hub-share'));
      expect(sharedListenConnections()).toBe(1);
      expect(await listeners()).toHaveLength(1);
      const got = buses.map((b) => collect(b));
      // Every member publishes at once: each gets the other four's messages.
      await Promise.all(buses.map((b, i) => b.publish(i)));
      await eventually(() => got.every((g) => g.length === 4), 5000);
      got.forEach((g, me) =>
        expect(g.map((x) => x.message).sort()).toEqual([0, 1, 2, 3, 4].filter((i) => i !== me)),
      );
    } finally {
      for (const b of buses) await b.stop();
      for (const c of clients) await c.close();
    }
    // The last member to leave closes it.
    expect(sharedListenConnections()).toBe(0);
    await eventually(async () => (await listeners()).length === 0);
  });

  it('a client closed before the others takes no wake-up of theirs with it', async () => {
    const [a, b, c] = [client(), client(), client()];
    const first = await member<number>(a, 'hub-close');
    const second = await member<number>(b, 'hub-close');
    const third = await member<number>(c, 'hub-close');
    try {
      // The first client's settings opened the shared connection; it goes away.
      await first.stop();
      await a.close();
      const got = collect(third);
      expect(await second.publish(1)).toBe(1);
      await eventually(() => got.length === 1, 3000);
    } finally {
      await second.stop();
      await third.stop();
      await b.close();
      await c.close();
    }
  });

  it('after the shared session is killed, it comes back and nothing sent meanwhile is missed', async () => {
    const clients = [client(), client(), client()];
    const buses: Bus<number>[] = [];
    try {
      for (const c of clients) buses.push(await member<number>(c, 'hub-kill'));
      const got = collect(buses[2]!);
      const [pid] = await listeners();
      await db.sql('SELECT pg_terminate_backend($1)', [pid]);
      // Sent while the LISTEN connection is down or coming back.
      expect(await buses[0]!.publish(1)).toBe(2);
      await eventually(() => got.length === 1, 5000);
      await eventually(async () => (await listeners()).length === 1, 5000);
      expect(await buses[1]!.publish(2)).toBe(2);
      await eventually(() => got.length === 2, 5000);
      expect(got.map((g) => g.message)).toEqual([1, 2]);
    } finally {
      for (const b of buses) await b.stop();
      for (const c of clients) await c.close();
    }
  });

  it('clients with different settings listen on different sessions', async () => {
    const [a, b] = [client('hub_one'), client('hub_two')];
    const x = await member<number>(a, 'hub-apart');
    const y = await member<number>(b, 'hub-apart');
    try {
      expect(sharedListenConnections()).toBe(2);
      expect(await listeners()).toHaveLength(2);
      const got = collect(y);
      await x.publish(5);
      await eventually(() => got.length === 1, 3000);
    } finally {
      await x.stop();
      await y.stop();
      await a.close();
      await b.close();
    }
  });

  it('isolated backends of one process share it too', async () => {
    const backends = [0, 1, 2].map(() => new IsolatedBackend({ connectionString: db.url }));
    const buses: Bus<number>[] = [];
    try {
      for (const be of backends) {
        const bus = new Bus<number>({ backend: be, channel: 'hub-iso', maxPollMs: HOUR });
        await bus.start();
        buses.push(bus);
      }
      expect(sharedListenConnections()).toBe(1);
      const got = buses.map((b) => collect(b));
      await Promise.all(buses.map((b, i) => b.publish(i)));
      await eventually(() => got.every((g) => g.length === 2), 5000);
    } finally {
      for (const b of buses) await b.stop();
      for (const be of backends) await be.close();
    }
  });
});

describe('PgDriver.listenEndpoint', () => {
  const key = (options: ConstructorParameters<typeof PgDriver>[0]): string | undefined => {
    const d = new PgDriver(options);
    const k = d.listenEndpoint()?.key;
    void d.close();
    return k;
  };

  it('is the same for the same settings and differs for others', () => {
    const url = 'postgres://u@h:5432/d';
    expect(key({ connectionString: url })).toBe(key({ connectionString: url, maxConnections: 3 }));
    expect(key({ connectionString: url })).not.toBe(key({ connectionString: `${url}x` }));
    expect(key({ connectionString: url })).not.toBe(
      key({ connectionString: url, poolConfig: { application_name: 'other' } }),
    );
    // Behind a transaction pooler the LISTEN connection is the direct URL.
    const pooled = {
      connectionString: 'postgres://u@pooler:6432/d',
      pooler: 'transaction' as const,
      listenConnectionString: url,
    };
    expect(key(pooled)).toBe(key({ connectionString: url }));
  });

  it('is undefined when LISTEN is unavailable or the settings cannot be compared', () => {
    expect(key({ connectionString: 'postgres://h/d', pooler: 'transaction' })).toBeUndefined();
    expect(
      key({ connectionString: 'postgres://h/d', poolConfig: { password: () => 'secret' } }),
    ).toBeUndefined();
  });
});
