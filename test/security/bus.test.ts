// The isolated bus against its own members: a member reaches only its own
// queue (names read from pg_class, pg_stat_* or guessed change nothing), and
// bus_join is capped (typed error PF503, nothing created).
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { makeLogin, type Login } from '../support/logins.js';
import { mapError } from '../../src/errors.js';
import { BusLimitError, IsolatedBackend, configureBus } from '../../src/bus/index.js';
import { attempt } from './hostile.js';
import { testClient } from '../support/connections.js';

const db = useTestDatabase();
let alice: Login;
let mallory: Login;
let a: pg.Client;
let m: pg.Client;
const CH = 'pipecat:acme/v2';

async function open(url: string): Promise<pg.Client> {
  const c = testClient({ connectionString: url });
  c.on('notice', () => undefined);
  await c.connect();
  return c;
}

async function join(c: pg.Client, channel = CH): Promise<string> {
  return (await c.query<{ q: string }>('SELECT public.bus_join($1) AS q', [channel])).rows[0]!.q;
}

async function relCount(): Promise<number> {
  return Number((await db.sql<{ n: string }>(`SELECT count(*) AS n FROM pg_class`))[0]!.n);
}

beforeAll(async () => {
  alice = await makeLogin(db.url, ['pgferry_bus'], 'bus_alice');
  mallory = await makeLogin(db.url, ['pgferry_bus'], 'bus_mallory');
  a = await open(alice.url);
  m = await open(mallory.url);
});

afterAll(async () => {
  await a?.end();
  await m?.end();
  await alice?.drop();
  await mallory?.drop();
});

describe('a member of a channel against another member of it', () => {
  it('cannot use a queue whose name it read from pg_class, pg_stat_* or anywhere', async () => {
    const mine = await join(m);
    const theirs = await join(a);
    await a.query(`SELECT public.bus_publish($1, $2, '{"hello":1}'::jsonb)`, [CH, theirs]);
    await m.query(`SELECT public.bus_publish($1, $2, '{"for":"alice"}'::jsonb)`, [CH, mine]);

    // What mallory can learn: every bus queue's name, from the catalog.
    const seen = new Set<string>();
    for (const sql of [
      `SELECT substr(relname, 3) AS q FROM pg_class WHERE relname LIKE 'q\\_bus\\_%'`,
      `SELECT substr(relname, 3) AS q FROM pg_stat_all_tables WHERE relname LIKE 'q\\_bus\\_%'`,
      `SELECT substr(relname, 3) AS q FROM pg_statio_all_tables WHERE relname LIKE 'q\\_bus\\_%'`,
    ]) {
      for (const r of (await m.query<{ q: string }>(sql)).rows) seen.add(r.q);
    }
    expect(seen).toContain(theirs);
    // … but not from the registry
    for (const t of ['_pgferry_bus_member', '_pgferry_bus_config', '_pgferry_bus_join_rate'])
      expect(await attempt(m, `SELECT * FROM public.${t}`)).toBe('42501');
    expect(await attempt(m, `SELECT * FROM ${db.queueSchema}.q_${theirs}`)).toBe('42501');

    for (const q of [...seen].filter((x) => x !== mine)) {
      expect(
        await attempt(m, `SELECT * FROM public.bus_subscribe($1, $2, 30, 10, 0)`, [q, CH]),
      ).toBe('PF502');
      expect(
        await attempt(m, `SELECT public.bus_publish($1, $2, '{"spoof":1}'::jsonb)`, [CH, q]),
      ).toBe('PF502');
      for (let id = 1; id <= 3; id++) {
        const r = await m.query<{ ok: boolean }>('SELECT public.bus_archive($1, $2, $3) AS ok', [
          q,
          CH,
          id,
        ]);
        expect(r.rows[0]!.ok).toBe(false);
      }
      await m.query('SELECT public.bus_leave($1, $2)', [q, CH]);
    }
    // alice's queue and message are intact, and she still receives
    const got = await a.query<{ message: unknown }>(
      `SELECT message FROM public.bus_subscribe($1, $2, 30, 10, 0)`,
      [theirs, CH],
    );
    expect(got.rows.map((r) => r.message)).toEqual([{ for: 'alice' }]);
    // mallory still uses her own queue
    const hers = await m.query<{ message: unknown }>(
      `SELECT message FROM public.bus_subscribe($1, $2, 30, 10, 0)`,
      [mine, CH],
    );
    expect(hers.rows.map((r) => r.message)).toEqual([{ hello: 1 }]);
    await a.query('SELECT public.bus_leave($1, $2)', [theirs, CH]);
    await m.query('SELECT public.bus_leave($1, $2)', [mine, CH]);
  });

  it('cannot reach another member through the headers variants, nor inject headers', async () => {
    const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const headers = JSON.stringify({ traceparent: tp });
    const mine = await join(m);
    const theirs = await join(a);
    // alice's queue by name, valid headers: the same PF502 as without them
    expect(
      await attempt(m, `SELECT public.bus_publish($1, $2, '{"spoof":1}', $3)`, [
        CH,
        theirs,
        headers,
      ]),
    ).toBe('PF502');
    expect(
      await attempt(m, `SELECT * FROM public.bus_subscribe_with_headers($1, $2, 30, 10, 0)`, [
        theirs,
        CH,
      ]),
    ).toBe('PF502');
    // As alice's peer, mallory reaches alice only with a W3C trace context:
    // any other header (pgferry's own x-pgferry-*, a tenant, a huge value,
    // SQL in a key or value) is refused and nothing is sent.
    for (const h of [
      { 'x-pgferry-task': 'payroll' },
      { traceparent: tp, tenant: 'acme' },
      { traceparent: `x'); SELECT pg_sleep(60); --` },
      { [`'); DROP TABLE public._pgferry_bus_member; --`]: tp },
      { traceparent: tp, tracestate: 'x'.repeat(200_000) },
    ]) {
      expect(
        await attempt(m, `SELECT public.bus_publish($1, $2, '{"spoof":1}', $3)`, [
          CH,
          mine,
          JSON.stringify(h),
        ]),
      ).toBe('PF501');
    }
    await m.query(`SELECT public.bus_publish($1, $2, '{"ok":1}', $3)`, [CH, mine, headers]);
    const got = await a.query<{ message: unknown; headers: unknown }>(
      `SELECT message, headers FROM public.bus_subscribe_with_headers($1, $2, 30, 10, 0)`,
      [theirs, CH],
    );
    expect(got.rows).toEqual([{ message: { ok: 1 }, headers: { traceparent: tp } }]);
    expect(
      await db.sql(`SELECT owner_role FROM public._pgferry_bus_member WHERE queue_name = $1`, [
        theirs,
      ]),
    ).toEqual([{ owner_role: alice.role }]);
    await a.query('SELECT public.bus_leave($1, $2)', [theirs, CH]);
    await m.query('SELECT public.bus_leave($1, $2)', [mine, CH]);
  });

  it('cannot shadow the registry with a temporary table', async () => {
    const theirs = await join(a);
    await m.query(`CREATE TEMP TABLE _pgferry_bus_member (queue_name text, channel_hash bytea,
                     joined_at timestamptz, lease_until timestamptz, owner_role name)`);
    await m.query(
      `INSERT INTO pg_temp._pgferry_bus_member VALUES ($1, sha256(convert_to($2, 'UTF8')), now(), now() + interval '1 hour', session_user)`,
      [theirs, CH],
    );
    expect(
      await attempt(m, `SELECT * FROM public.bus_subscribe($1, $2, 30, 10, 0)`, [theirs, CH]),
    ).toBe('PF502');
    await m.query('DROP TABLE pg_temp._pgferry_bus_member');
    await a.query('SELECT public.bus_leave($1, $2)', [theirs, CH]);
  });
});

describe('bus_join caps', () => {
  afterEach(async () => {
    await db.sql(`UPDATE public._pgferry_bus_config SET member_ttl_seconds = DEFAULT,
                    max_members_per_channel = DEFAULT,
                    max_members_per_role = DEFAULT, max_joins_per_minute = DEFAULT,
                    max_joins_per_transaction = DEFAULT`);
    for (const c of [a, m]) await c.query('ROLLBACK').catch(() => undefined);
  });

  async function leaveAll(c: pg.Client, qs: string[], channel = CH): Promise<void> {
    for (const q of qs) await c.query('SELECT public.bus_leave($1, $2)', [q, channel]);
  }

  it('refuses the 17th join of one transaction (default), creating nothing', async () => {
    const before = await relCount();
    await a.query('BEGIN');
    for (let i = 0; i < 16; i++) await join(a, `tx-${i}`);
    const err = await a
      .query(`SELECT public.bus_join('tx-16')`)
      .then(() => undefined)
      .catch((e: unknown) => mapError(e));
    expect(err).toBeInstanceOf(BusLimitError);
    expect(err).toMatchObject({ code: 'PGFERRY_BUS_LIMIT', sqlState: 'PF503' });
    expect((err as Error).message).toMatch(/more than 16 bus_join calls in one transaction/);
    await a.query('ROLLBACK');
    expect(await relCount()).toBe(before);
    // Joins rolled back to a savepoint do not count; their relations went
    // with the subtransaction and only its xid and row locks stay (about 2
    // each, as for any write in a subtransaction: see docs/security.md).
    await a.query('BEGIN');
    for (let i = 0; i < 40; i++) {
      await a.query(`SAVEPOINT s${i}`);
      await join(a, `sp-${i}`);
      await a.query(`ROLLBACK TO SAVEPOINT s${i}`);
    }
    const locks = await a.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_locks WHERE pid = pg_backend_pid()`,
    );
    expect(locks.rows[0]!.n).toBeLessThan(40 * 3);
    await a.query('ROLLBACK');
    expect(await relCount()).toBe(before);
  });

  it('refuses joins over the per-minute rate of a role, not of another role', async () => {
    // Stay inside one clock minute (the window is the current minute).
    const s = new Date().getSeconds();
    if (s > 45) await new Promise((r) => setTimeout(r, (61 - s) * 1000));
    const [prior] = await db.sql<{ n: number }>(
      `SELECT coalesce((SELECT window_joins FROM public._pgferry_bus_join_rate
                         WHERE owner_role = $1 AND window_start = date_trunc('minute', clock_timestamp())), 0) AS n`,
      [alice.role],
    );
    await configureBus(db.pool, { maxJoinsPerMinute: prior!.n + 5 });
    const qs: string[] = [];
    for (let i = 0; i < 5; i++) {
      qs.push(await join(a, 'rate'));
      await a.query('SELECT public.bus_leave($1, $2)', [qs[i], 'rate']);
    }
    expect(await attempt(a, `SELECT public.bus_join('rate')`)).toBe('PF503');
    const other = await join(m, 'rate');
    await leaveAll(m, [other], 'rate');
  }, 30_000);

  it('refuses members over the per-role and per-channel caps until one leaves', async () => {
    await configureBus(db.pool, { maxMembersPerRole: 3, maxMembersPerChannel: 3 });
    const r1 = await join(a, 'r1');
    const r2 = await join(a, 'r2');
    const r3 = await join(a, 'r3');
    const err1 = await a.query(`SELECT public.bus_join('r4')`).catch((e: unknown) => mapError(e));
    expect(err1).toBeInstanceOf(BusLimitError);
    expect((err1 as Error).message).toMatch(/already has 3 members \(max_members_per_role\)/);
    // the TypeScript backend gets the typed error too
    const backend = new IsolatedBackend({ connectionString: alice.url });
    try {
      await expect(backend.join('r4')).rejects.toBeInstanceOf(BusLimitError);
    } finally {
      await backend.close();
    }
    await a.query('SELECT public.bus_leave($1, $2)', [r3, 'r3']);
    const full = await join(a, 'full');
    // channel "full": alice 1 + mallory 2 → a 4th member of the channel is refused
    const hers = [await join(m, 'full'), await join(m, 'full')];
    const err2 = await m.query(`SELECT public.bus_join('full')`).catch((e: unknown) => mapError(e));
    expect(err2).toBeInstanceOf(BusLimitError);
    expect((err2 as Error).message).toMatch(/channel already has 3 members/);
    expect(await join(m, 'other')).toMatch(/^bus_/);
    await a.query('SELECT public.bus_leave($1, $2)', [r1, 'r1']);
    await a.query('SELECT public.bus_leave($1, $2)', [r2, 'r2']);
    await a.query('SELECT public.bus_leave($1, $2)', [full, 'full']);
    await leaveAll(m, hers, 'full');
    await db.sql(`SELECT public._pgferry_bus_reap(1000)`);
    await db.sql(`DELETE FROM public._pgferry_bus_member WHERE owner_role = $1`, [mallory.role]);
    expect(
      await db.sql(
        `SELECT count(*)::int AS n FROM public._pgferry_bus_member WHERE owner_role IN ($1, $2)`,
        [alice.role, mallory.role],
      ),
    ).toEqual([{ n: 0 }]);
  });

  it('frees the place of a member whose session is gone once its lease ran out', async () => {
    await configureBus(db.pool, { maxMembersPerChannel: 1, memberTtlSeconds: 1 });
    const gone = await open(alice.url);
    const q = await join(gone, 'crash');
    const pid = (await gone.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    await db.sql('SELECT pg_terminate_backend($1)', [pid]);
    expect(await attempt(m, `SELECT public.bus_join('crash')`)).toBe('PF503');
    await new Promise((r) => setTimeout(r, 1500));
    const hers = await join(m, 'crash');
    expect(await db.sql(`SELECT 1 FROM ${db.queueSchema}.meta WHERE queue_name = $1`, [q])).toEqual(
      [],
    );
    await m.query('SELECT public.bus_leave($1, $2)', [hers, 'crash']);
  });

  it('keeps the caps settable only by the owner, and typed', async () => {
    expect(
      await attempt(m, `UPDATE public._pgferry_bus_config SET max_members_per_role = 100000`),
    ).toBe('42501');
    await expect(configureBus(db.pool, { maxMembersPerRole: 0 })).rejects.toMatchObject({
      code: 'PGFERRY_INVALID_ARGUMENT',
    });
    const long = 'c'.repeat(1_000_000);
    const q = await join(m, long);
    await m.query('SELECT public.bus_leave($1, $2)', [q, long]);
  });
});
