// The elected ticker: one leader per database (a lease row), takeover
// when the leader dies, and delivery in milliseconds from an idle system via
// request_tick + the send-side wake-up, not via polling.
import { describe, expect, it } from 'vitest';
import { Consumer, StreamClient, Ticker } from '../../src/stream/index.js';
import { eventually, useTestDatabase } from '../support/db.js';
import { S } from './helpers.js';

const db = useTestDatabase();

function ticker(opts: ConstructorParameters<typeof Ticker>[0] = {}): Ticker {
  const t = new Ticker({ connectionString: db.url, electionIntervalMs: 100, ...opts });
  db.track({ close: () => t.stop() });
  return t;
}

describe('Ticker', () => {
  it('elects exactly one leader; another takes over when it stops or its connection dies', async () => {
    const changes: [number, boolean][] = [];
    // A lease of a minute (renewed every 20 s): no lease expires during this
    // test, however slow the machine, so a takeover below can only come
    // from the clean stop handing the lease on.
    const tickers = [0, 1, 2].map((i) =>
      ticker({ leaseMs: 60_000, onLeaderChange: (l) => void changes.push([i, l]) }),
    );
    tickers.forEach((t) => t.start());
    await eventually(() => tickers.filter((t) => t.isLeader).length === 1, 20_000);
    // stays single-leader
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 50));
      expect(tickers.filter((t) => t.isLeader).length).toBe(1);
    }
    const first = tickers.find((t) => t.isLeader)!;
    await first.stop();
    // Well within the 40 s or more left of the stopped leader's lease.
    await eventually(() => tickers.filter((t) => t.isLeader).length === 1, 20_000, 10);
    const second = tickers.indexOf(tickers.find((t) => t.isLeader)!);
    expect(tickers[second]).not.toBe(first);
    const [lease] = await db.sql<{ holder: string }>(`select holder from ${S}.ticker_lease`);
    expect(lease!.holder).toBe(tickers[second]!.id);
    // kill the leader's session from outside, as a crash would
    changes.length = 0;
    const [{ n }] = (await db.sql(
      `select count(pg_terminate_backend(pid))::int as n from pg_stat_activity
        where application_name = 'pgferry ticker ' || $1`,
      [tickers[second]!.id],
    )) as [{ n: number }];
    expect(n).toBe(1);
    await eventually(() => changes.some(([i, l]) => i === second && !l), 20_000, 5); // it noticed
    // someone leads again (here the same ticker, reconnected: its lease is still valid)
    await eventually(() => tickers.filter((t) => t.isLeader).length === 1, 20_000, 10);
    await Promise.all(tickers.map((t) => t.stop()));
    expect(tickers.filter((t) => t.isLeader).length).toBe(0);
  });

  it('a leader that died without stopping is replaced only once its lease has expired', async () => {
    // A lease held by a ticker that is gone (its process died), expiring in 1.5 s.
    const [gone] = await db.sql<{ expires: string }>(
      `insert into ${S}.ticker_lease (holder, expires_at) values ('gone', clock_timestamp() + interval '1.5 seconds')
       on conflict (id) do update set holder = excluded.holder, expires_at = excluded.expires_at
       returning expires_at::text as expires`,
    );
    // Its own lease lasts a minute: no renewal below rewrites the time it took the lease at.
    const t = ticker({ leaseMs: 60_000 });
    await t.start(); // its first election round is done
    // Not leader while the old lease is valid (server clock; on a slow
    // machine the loop may find it expired at once, then the check below
    // still holds).
    for (;;) {
      const led = t.isLeader;
      const [now] = await db.sql<{ valid: boolean }>(
        `select clock_timestamp() < $1::timestamptz as valid`,
        [gone!.expires],
      );
      if (!now!.valid) break;
      expect(led).toBe(false);
      await new Promise((r) => setTimeout(r, 20));
    }
    await eventually(() => t.isLeader, 20_000, 20);
    // It took the lease only after the old one had expired.
    const [row] = await db.sql<{ holder: string; after: boolean }>(
      `select holder, expires_at - interval '60 seconds' > $1::timestamptz as after from ${S}.ticker_lease`,
      [gone!.expires],
    );
    expect(row).toEqual({ holder: t.id, after: true });
    await t.stop();
    expect((await db.sql(`select holder from ${S}.ticker_lease`)).length).toBe(0);
  });

  it('start() resolves once running (after its first election round), run() at stop', async () => {
    const [a, b] = [ticker(), ticker()];
    await a.start();
    expect(a.isLeader).toBe(true); // alone: its first round won the lock
    await b.start(); // a follower is running too
    expect(b.isLeader).toBe(false);
    expect(b.health().state).toBe('running');
    let ended = false;
    const running = a.run().then(() => (ended = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(ended).toBe(false);
    await a.stop();
    await running;
    await b.stop();
  });

  it('ticks adaptively: a stream with new events is ticked at once, an idle one is not', async () => {
    const sc = new StreamClient({ connectionString: db.url });
    db.track(sc);
    await sc.createStream('adaptive');
    // The idle rule ticks a new stream once more at once; after that an idle
    // tick waits at least ticker_max_lag / 2: an hour here, so every later
    // tick in this test is one for new events, however slow the machine.
    await db.sql(
      `select ${S}.set_queue_config('adaptive', 'ticker_max_lag', '2 hours'),
              ${S}.set_queue_config('adaptive', 'ticker_idle_period', '2 hours')`,
    );
    const t = ticker({ minIntervalMs: 2, maxIntervalMs: 100 });
    t.start();
    await eventually(() => t.isLeader, 20_000);
    await eventually(async () => (await sc.streamInfo('adaptive'))[0]!.lastTickId! >= 2, 20_000, 5);
    const before = (await sc.streamInfo('adaptive'))[0]!.lastTickId!;
    await sc.send('adaptive', 1);
    // (newEvents cannot tell: a stream's first event is no growth of its sequence.)
    await eventually(
      async () => (await sc.streamInfo('adaptive'))[0]!.lastTickId! > before,
      20_000,
      5,
    );
    const after = (await sc.streamInfo('adaptive'))[0]!.lastTickId!;
    expect(after).toBeGreaterThan(before);
    // idle: several loop rounds (100 ms apart at most) and no tick per round;
    // at most one more, for the event if the tick above ran while its send
    // had not committed yet
    await new Promise((r) => setTimeout(r, 300));
    expect((await sc.streamInfo('adaptive'))[0]!.lastTickId! - after).toBeLessThanOrEqual(1);
    await t.stop();
  });

  it('a waiting consumer gets a send at once although neither the ticker nor the consumer would poll for minutes', async () => {
    const sc = new StreamClient({ connectionString: db.url });
    db.track(sc);
    await sc.createStream('wake');
    // The ticker's rounds 10 minutes apart (its lease renewed as rarely) and a
    // 10-minute poll: within this test only the wake-up path (the send's
    // NOTIFY to the ticker, the tick's NOTIFY to the consumer) can deliver.
    const t = ticker({ minIntervalMs: 600_000, maxIntervalMs: 600_000, leaseMs: 1_800_000 });
    t.start();
    await eventually(() => t.isLeader, 20_000);
    const got: number[] = [];
    const c = new Consumer<number>({
      connectionString: db.url,
      stream: 'wake',
      name: 'w',
      ticker: false,
      pollIntervalMs: 600_000,
      handleSignals: false,
    });
    db.track({ close: () => c.stop() });
    c.on('*', (m) => void got.push(m.payload));
    void c.start();
    // A send wakes the ticker while a consumer's wait (request_tick) is current.
    const waiting = async () =>
      (
        await db.sql<{ n: number }>(
          `select count(*)::int as n from ${S}._waiter where until > now() + interval '1 second'`,
        )
      )[0]!.n > 0;
    for (let i = 0; i < 5; i++) {
      await eventually(waiting, 20_000);
      await sc.send('wake', i);
      await eventually(() => got.length === i + 1, 20_000, 2);
    }
    expect(got).toEqual([0, 1, 2, 3, 4]);
    await c.stop();
    await t.stop();
  });

  it('a role without the admin role does not campaign (it would win the lock and fail every round)', async () => {
    const role = `t_tick_reader_${Date.now().toString(36)}`;
    await db.sql(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'; GRANT pgque_reader TO ${role}`);
    db.track({
      close: async () => void (await db.sql(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined)),
    });
    const u = new URL(db.url);
    u.username = role;
    u.password = 'pw';
    let weakLed = false;
    const weak = ticker({
      connectionString: u.toString(),
      onLeaderChange: (l) => void (weakLed ||= l),
    });
    const strong = ticker();
    await weak.start(); // its first round is done (it would have claimed the free lease there)
    strong.start();
    await eventually(() => strong.isLeader, 20_000);
    expect(weakLed).toBe(false); // never held the lock, not even before the strong one started
    await Promise.all([weak.stop(), strong.stop()]);
  });
});
