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
    const tickers = [0, 1, 2].map((i) =>
      ticker({ onLeaderChange: (l) => void changes.push([i, l]) }),
    );
    tickers.forEach((t) => t.start());
    await eventually(() => tickers.filter((t) => t.isLeader).length === 1, 5000);
    // stays single-leader
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 50));
      expect(tickers.filter((t) => t.isLeader).length).toBe(1);
    }
    const first = tickers.find((t) => t.isLeader)!;
    await first.stop();
    const started = Date.now();
    await eventually(() => tickers.filter((t) => t.isLeader).length === 1, 5000, 10);
    expect(Date.now() - started).toBeLessThan(2000);
    const second = tickers.indexOf(tickers.find((t) => t.isLeader)!);
    expect(tickers[second]).not.toBe(first);
    // kill the leader's session from outside, as a crash would
    changes.length = 0;
    const [{ n }] = (await db.sql(
      `select count(pg_terminate_backend(pid))::int as n from pg_stat_activity
        where application_name = 'pgferry ticker ' || $1`,
      [tickers[second]!.id],
    )) as [{ n: number }];
    expect(n).toBe(1);
    await eventually(() => changes.some(([i, l]) => i === second && !l), 5000, 5); // it noticed
    await eventually(() => tickers.filter((t) => t.isLeader).length === 1, 5000, 10); // someone leads again
    await Promise.all(tickers.map((t) => t.stop()));
    expect(tickers.filter((t) => t.isLeader).length).toBe(0);
  });

  it('a leader that died without stopping is replaced only once its lease has expired', async () => {
    // A lease held by a ticker that is gone (its process died), expiring in 1.5 s.
    await db.sql(
      `insert into ${S}.ticker_lease (holder, expires_at) values ('gone', clock_timestamp() + interval '1.5 seconds')
       on conflict (id) do update set holder = excluded.holder, expires_at = excluded.expires_at`,
    );
    const t = ticker();
    t.start();
    await new Promise((r) => setTimeout(r, 500));
    expect(t.isLeader).toBe(false);
    await eventually(() => t.isLeader, 10_000, 20);
    const [row] = (await db.sql(`select holder from ${S}.ticker_lease`)) as [{ holder: string }];
    expect(row.holder).toBe(t.id);
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
    const t = ticker({ minIntervalMs: 2, maxIntervalMs: 100 });
    t.start();
    await eventually(() => t.isLeader, 5000);
    // The idle rule ticks a new stream once more at once; the next idle tick
    // waits at least ticker_max_lag / 2 (1.5 s).
    await eventually(async () => (await sc.streamInfo('adaptive'))[0]!.lastTickId! >= 2, 2000, 5);
    const before = (await sc.streamInfo('adaptive'))[0]!.lastTickId!;
    await sc.send('adaptive', 1);
    // (newEvents cannot tell: a stream's first event is no growth of its sequence.)
    await eventually(
      async () => (await sc.streamInfo('adaptive'))[0]!.lastTickId! > before,
      1000,
      5,
    );
    const after = (await sc.streamInfo('adaptive'))[0]!.lastTickId!;
    expect(after).toBeGreaterThan(before);
    // idle: the reference's back-off applies, no tick per loop round
    await new Promise((r) => setTimeout(r, 300));
    expect((await sc.streamInfo('adaptive'))[0]!.lastTickId! - after).toBeLessThanOrEqual(1);
    await t.stop();
  });

  it('a waiting consumer gets a send within milliseconds although the idle ticker sleeps for seconds', async () => {
    const sc = new StreamClient({ connectionString: db.url });
    db.track(sc);
    await sc.createStream('wake');
    // idle back-off up to 10 s and a 10 s poll: only the wake-up path can be fast
    const t = ticker({ minIntervalMs: 2, maxIntervalMs: 10_000 });
    t.start();
    await eventually(() => t.isLeader, 5000);
    const got: number[] = [];
    const c = new Consumer<number>({
      connectionString: db.url,
      stream: 'wake',
      name: 'w',
      ticker: false,
      pollIntervalMs: 10_000,
      handleSignals: false,
    });
    db.track({ close: () => c.stop() });
    c.on('*', (m) => void got.push(Date.now() - m.payload));
    void c.start();
    await eventually(
      async () =>
        (await db.sql<{ n: number }>(`select count(*)::int as n from ${S}._waiter`))[0]!.n > 0,
      5000,
    );
    await new Promise((r) => setTimeout(r, 1500)); // let the ticker back off
    for (let i = 0; i < 5; i++) {
      await sc.send('wake', Date.now());
      await eventually(() => got.length === i + 1, 2000, 2);
    }
    expect(Math.max(...got)).toBeLessThan(500);
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
    weak.start();
    await new Promise((r) => setTimeout(r, 300));
    strong.start();
    await eventually(() => strong.isLeader, 5000);
    expect(weakLed).toBe(false); // never held the lock, not even before the strong one started
    await Promise.all([weak.stop(), strong.stop()]);
  });
});
