import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { eventually, useTestDatabase } from '../support/db.js';
import { Bus, IsolatedBackend } from '../../src/bus/index.js';
import { collect, makeBusLogin } from './helpers.js';
import { testClient } from '../support/connections.js';

// Everything here runs as a real LOGIN role whose only privilege is
// membership in pgferry_bus, the role the migration granted EXECUTE on the
// bus functions.
const db = useTestDatabase();
let login: Awaited<ReturnType<typeof makeBusLogin>>;
let asBus: pg.Client;
const Q = (): string => db.queueSchema;

beforeAll(async () => {
  login = await makeBusLogin(db.url);
  asBus = testClient({ connectionString: login.url });
  await asBus.connect();
});

afterAll(async () => {
  await asBus?.end();
  await login?.drop();
});

async function sqlState(text: string, params: unknown[] = []): Promise<string | undefined> {
  try {
    await asBus.query(text, params);
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  }
}

async function join(channel: string): Promise<string> {
  return (await asBus.query<{ q: string }>('SELECT public.bus_join($1) AS q', [channel])).rows[0]!
    .q;
}

async function count(table: string): Promise<number> {
  return Number((await db.sql<{ n: string }>(`SELECT count(*) AS n FROM ${table}`))[0]!.n);
}

describe('the isolated bus, as a role holding only the bus grant', () => {
  it('works end to end through IsolatedBackend', async () => {
    const members = [0, 1, 2].map(() => {
      const backend = db.track(new IsolatedBackend({ connectionString: login.url }));
      const bus = new Bus<{ from: number }>({ backend, channel: 'pipecat:acme/v2' });
      db.track({ close: () => bus.stop() });
      return bus;
    });
    for (const m of members) await m.start();
    const got = members.map((m) => collect(m));
    await Promise.all(members.map((m, from) => m.publish({ from })));
    await eventually(() => got.every((g) => g.length === 2));
    got.forEach((g, me) =>
      expect(g.map((x) => x.message.from).sort()).toEqual([0, 1, 2].filter((f) => f !== me)),
    );
    // Server-allocated, opaque, real queue-engine queues.
    for (const m of members) {
      expect(m.queue).toMatch(/^bus_[0-9a-f]{32}$/);
      expect(
        await db.sql(`SELECT 1 FROM ${Q()}.list_queues() WHERE queue_name = $1`, [m.queue]),
      ).toHaveLength(1);
    }
    for (const m of members) await m.stop();
  });

  it('holds EXECUTE on exactly the bus functions and nothing else', async () => {
    const fns = await db.sql<{
      proname: string;
      secdef: boolean;
      config: string[] | null;
      public_exec: boolean;
      bus_exec: boolean;
    }>(
      `SELECT p.proname, p.prosecdef AS secdef, p.proconfig AS config,
              has_function_privilege('public', p.oid, 'EXECUTE') AS public_exec,
              has_function_privilege('pgferry_bus', p.oid, 'EXECUTE') AS bus_exec
         FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
          AND (p.proname LIKE 'bus\\_%' OR p.proname LIKE '\\_pgferry\\_bus\\_%')
        ORDER BY p.proname`,
    );
    const api = fns.filter((f) => f.proname.startsWith('bus_'));
    expect(api.map((f) => f.proname)).toEqual([
      'bus_archive',
      'bus_archive_many',
      'bus_join',
      'bus_leave',
      'bus_peek',
      'bus_publish',
      'bus_publish',
      'bus_read',
      'bus_subscribe',
      'bus_subscribe_with_headers',
    ]);
    for (const f of api) {
      expect(f.secdef).toBe(true);
      expect(f.bus_exec).toBe(true);
      expect(f.config).toEqual(['search_path=pg_catalog, pg_temp']);
    }
    // Helpers: not definer, not callable by the bus role; and PUBLIC has nothing.
    for (const f of fns) {
      expect(f.public_exec).toBe(false);
      if (!f.proname.startsWith('bus_')) {
        expect(f.secdef).toBe(false);
        expect(f.bus_exec).toBe(false);
      }
    }
    // No other definer function anywhere is callable by it.
    const definers = await db.sql<{ f: string }>(
      `SELECT p.oid::regprocedure::text AS f FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND has_function_privilege($1, p.oid, 'EXECUTE')
          AND has_schema_privilege($1, n.oid, 'USAGE')
        ORDER BY 1`,
      [login.role],
    );
    expect(definers.map((d) => d.f).sort()).toEqual([
      'bus_archive(text,text,bigint)',
      'bus_archive_many(text,text,bigint[])',
      'bus_join(text)',
      'bus_leave(text,text)',
      'bus_peek(text,text,integer,bigint[],bigint[])',
      'bus_publish(text,text,jsonb)',
      'bus_publish(text,text,jsonb,jsonb)',
      'bus_read(text,text,integer,integer,bigint[])',
      'bus_subscribe(text,text,integer,integer,integer)',
      'bus_subscribe_with_headers(text,text,integer,integer,integer)',
    ]);
    // No table/sequence grants, no membership in other roles.
    expect(
      await db.sql(
        `SELECT 1 FROM information_schema.role_table_grants WHERE grantee = 'pgferry_bus'`,
      ),
    ).toEqual([]);
    expect(
      await db.sql(`SELECT 1 FROM pg_auth_members WHERE member = 'pgferry_bus'::regrole`),
    ).toEqual([]);
    // A role without the grant cannot call them at all.
    const outsider = await makeBusLogin(db.url, 'pg_monitor');
    const c = testClient({ connectionString: outsider.url });
    await c.connect();
    try {
      await expect(c.query(`SELECT public.bus_join('x')`)).rejects.toMatchObject({ code: '42501' });
    } finally {
      await c.end();
      await outsider.drop();
    }
  });

  it('cannot call any queue-engine function or read any table', async () => {
    const victim = await join('victim-channel');
    await asBus.query(`SELECT public.bus_publish('victim-channel', $1, '{"x":1}')`, [
      await join('victim-channel'),
    ]);
    for (const stmt of [
      `SELECT * FROM ${Q()}.list_queues()`,
      `SELECT * FROM ${Q()}.read('${victim}', 30, 10)`,
      `SELECT ${Q()}.send('${victim}', '{}'::jsonb)`,
      `SELECT ${Q()}.archive('${victim}', 1::bigint)`,
      `SELECT ${Q()}.drop_queue('${victim}')`,
      `SELECT ${Q()}."create"('mine')`,
      `SELECT * FROM ${Q()}.q_${victim}`,
      `SELECT * FROM ${Q()}.meta`,
      `SELECT * FROM public._pgferry_bus_member`,
      `SELECT * FROM public._pgferry_bus_config`,
      `UPDATE public._pgferry_bus_config SET member_ttl_seconds = 1`,
      `SELECT public._pgferry_bus_reap(100)`,
      `SELECT public._pgferry_bus_grant('pgferry_bus')`,
      `SELECT public._pgferry_bus_channel_hash('victim-channel')`,
      `SELECT public._pgferry_bus_wake_channel('${victim}', 'victim-channel')`,
      `SELECT public._pgferry_bus_touch('${victim}', 0)`,
      `SELECT public._pgferry_bus_check_headers('{}')`,
    ]) {
      expect([stmt, await sqlState(stmt)]).toEqual([stmt, '42501']);
    }
    expect(await count(`${Q()}.q_${victim}`)).toBe(1);
  });

  it("cannot read, archive or leave another member's queue even knowing its name", async () => {
    const archiveMany = async (
      q: string | null,
      ch: string | null,
      ids: (number | null)[] | null,
    ): Promise<number[]> =>
      (
        await asBus.query<{ id: string }>(
          `SELECT a AS id FROM public.bus_archive_many($1, $2, $3::bigint[]) a`,
          [q, ch, ids],
        )
      ).rows.map((r) => Number(r.id));
    const victim = await join('secret-a');
    const sender = await join('secret-a');
    const mine = await join('other-b');
    await asBus.query(`SELECT public.bus_publish('secret-a', $1, '{"secret":1}')`, [sender]);
    // The queue's name is visible in pg_class to everyone; that is all.
    expect(
      (await asBus.query(`SELECT 1 FROM pg_class WHERE relname = $1`, [`q_${victim}`])).rows,
    ).toHaveLength(1);
    const id = Number(
      (await db.sql<{ id: string }>(`SELECT msg_id AS id FROM ${Q()}.q_${victim}`))[0]!.id,
    );

    for (const ch of ['other-b', 'secret-b', '', 'Secret-A', 'secret-a ']) {
      expect(
        await sqlState(`SELECT * FROM public.bus_subscribe($1, $2, 30, 10, 0)`, [victim, ch]),
      ).toBe('PF502');
      expect(
        (await asBus.query(`SELECT public.bus_archive($1, $2, $3) AS ok`, [victim, ch, id])).rows[0]
          .ok,
      ).toBe(false);
      expect(await archiveMany(victim, ch, [id])).toEqual([]);
      await asBus.query(`SELECT public.bus_leave($1, $2)`, [victim, ch]);
      expect(await sqlState(`SELECT public.bus_publish($1, $2, '{}')`, [ch, victim])).toBe('PF502');
    }
    for (const [q, ch] of [
      [null, 'secret-a'],
      [victim, null],
      ['', 'secret-a'],
      ['bus_00000000000000000000000000000000', 'secret-a'],
    ]) {
      expect(await sqlState(`SELECT * FROM public.bus_subscribe($1, $2, 30, 10, 0)`, [q, ch])).toBe(
        'PF502',
      );
      expect(
        (await asBus.query(`SELECT public.bus_archive($1, $2, $3) AS ok`, [q, ch, id])).rows[0].ok,
      ).toBe(false);
      expect(await archiveMany(q ?? null, ch ?? null, [id])).toEqual([]);
      await asBus.query(`SELECT public.bus_leave($1, $2)`, [q, ch]);
    }
    // Nothing changed: the victim's message is still there, unread, and its queue exists.
    const rows = await db.sql<{ read_ct: number }>(`SELECT read_ct FROM ${Q()}.q_${victim}`);
    expect(rows).toEqual([{ read_ct: 0 }]);
    expect(await count(`${Q()}.a_${victim}`)).toBe(0);
    // Its rightful owner reads it; a second archive says false.
    const got = await asBus.query(`SELECT * FROM public.bus_subscribe($1, 'secret-a', 30, 10, 0)`, [
      victim,
    ]);
    expect(got.rows).toEqual([{ msg_id: String(id), message: { secret: 1 } }]);
    expect(
      (await asBus.query(`SELECT public.bus_archive($1, 'secret-a', $2) AS ok`, [victim, id]))
        .rows[0].ok,
    ).toBe(true);
    expect(await archiveMany(victim, 'secret-a', [id])).toEqual([]);
    // The batch form: the ids archived, each once; unknown and NULL ids left out.
    const [id2] = (
      await asBus.query<{ ids: string[] }>(
        `SELECT public.bus_publish('secret-a', $1, '{"secret":2}') AS ids`,
        [sender],
      )
    ).rows[0]!.ids.map(Number);
    expect(await archiveMany(victim, 'secret-a', [id2!, 999999, null, id2!])).toEqual([id2]);
    expect(await archiveMany(victim, 'secret-a', [id2!])).toEqual([]);
    expect(await archiveMany(victim, 'secret-a', [])).toEqual([]);
    expect(await archiveMany(victim, 'secret-a', null)).toEqual([]);
    expect(
      (await asBus.query(`SELECT public.bus_archive($1, 'secret-a', $2) AS ok`, [victim, id]))
        .rows[0].ok,
    ).toBe(false);
    expect(
      (await asBus.query(`SELECT public.bus_archive($1, 'secret-a', 999999) AS ok`, [victim]))
        .rows[0].ok,
    ).toBe(false);
    void mine;
  });

  it('a queue of channel A cannot be used on channel B', async () => {
    const a1 = await join('chan-A');
    const a2 = await join('chan-A');
    const b1 = await join('chan-B');
    expect(await sqlState(`SELECT public.bus_publish('chan-B', $1, '{"x":1}')`, [a1])).toBe(
      'PF502',
    );
    expect(
      await sqlState(`SELECT * FROM public.bus_subscribe($1, 'chan-B', 30, 10, 0)`, [a1]),
    ).toBe('PF502');
    expect(await sqlState(`SELECT public.bus_publish('chan-A', $1, '{"x":1}')`, [b1])).toBe(
      'PF502',
    );
    await asBus.query(`SELECT public.bus_leave($1, 'chan-B')`, [a1]);
    expect(await count(`${Q()}.q_${a2}`)).toBe(0);
    expect(await count(`${Q()}.q_${b1}`)).toBe(0);
    expect((await db.sql(`SELECT 1 FROM ${Q()}.meta WHERE queue_name = $1`, [a1])).length).toBe(1);
    // On its own channel, it works, and reaches only its peer (never itself).
    const ids = (
      await asBus.query(`SELECT public.bus_publish('chan-A', $1, '{"x":2}') AS ids`, [a1])
    ).rows[0].ids;
    expect(ids).toHaveLength(1);
    expect(await count(`${Q()}.q_${a2}`)).toBe(1);
    expect(await count(`${Q()}.q_${a1}`)).toBe(0);
  });

  it('cannot see queue names of a channel it has not joined', async () => {
    const hidden = await join('hidden-channel');
    const mine = await join('public-channel');
    // No function returns another member's queue name; bus_publish returns message ids only.
    const res = await asBus.query(`SELECT public.bus_publish('public-channel', $1, '{}') AS ids`, [
      mine,
    ]);
    expect(res.rows[0].ids).toEqual([]);
    expect(await sqlState(`SELECT * FROM public._pgferry_bus_member`)).toBe('42501');
    expect(await sqlState(`SELECT queue_name FROM ${Q()}.meta`)).toBe('42501');
    // Queue names say nothing about the channel.
    expect(hidden).not.toContain('hidden');
    // The registry stores only a hash of the channel, not its text.
    const reg = await db.sql<{ row: string }>(
      `SELECT r::text AS row FROM public._pgferry_bus_member r`,
    );
    expect(reg.some((r) => r.row.includes('hidden-channel'))).toBe(false);
  });

  it('cannot inject SQL through channel or queue arguments', async () => {
    const evil = [
      `x'); DROP TABLE public._pgferry_bus_member; --`,
      `"; DROP SCHEMA ${Q()} CASCADE; --`,
      `%`,
      `_`,
      `%_%`,
      `bus_%`,
      `\\'; SELECT pg_sleep(5); --`,
      `q_x" ; DELETE FROM ${Q()}.meta; --`,
      'x'.repeat(10_000),
    ];
    const plain = await join('plain');
    const plainPeer = await join('plain');
    const members = new Map<string, string[]>();
    for (const ch of evil) members.set(ch, [await join(ch), await join(ch)]);
    for (const [ch, [a, b]] of members) {
      const ids = (
        await asBus.query(`SELECT public.bus_publish($1, $2, $3::jsonb) AS ids`, [
          ch,
          a,
          JSON.stringify({ ch }),
        ])
      ).rows[0].ids;
      expect(ids).toHaveLength(1);
      const got = await asBus.query(`SELECT message FROM public.bus_subscribe($1, $2, 30, 10, 0)`, [
        b,
        ch,
      ]);
      expect(got.rows).toEqual([{ message: { ch } }]);
      // Queue arguments that are SQL or patterns match nothing.
      expect(
        await sqlState(`SELECT * FROM public.bus_subscribe($1, $2, 30, 10, 0)`, [ch, ch]),
      ).toBe('PF502');
      expect(
        await sqlState(`SELECT public.bus_publish($1, $2, '{}')`, [ch, `${a}' OR '1'='1`]),
      ).toBe('PF502');
      await asBus.query(`SELECT public.bus_leave($1, $2)`, [`%`, ch]);
    }
    // '%' and '_' are channels of their own, never patterns: 'plain' got nothing.
    expect(await count(`${Q()}.q_${plainPeer}`)).toBe(0);
    expect(await count(`${Q()}.q_${plain}`)).toBe(0);
    // Everything still stands.
    expect(await count('public._pgferry_bus_member')).toBeGreaterThanOrEqual(2 + evil.length * 2);
    expect((await db.sql(`SELECT 1 FROM ${Q()}.meta WHERE queue_name = $1`, [plain])).length).toBe(
      1,
    );
  });

  it('is not fooled by a TEMP table shadowing the registry', async () => {
    const victim = await join('temp-victim');
    await asBus.query(
      `CREATE TEMP TABLE _pgferry_bus_member (queue_name text, channel_hash bytea, joined_at timestamptz, lease_until timestamptz)`,
    );
    await asBus.query(
      `INSERT INTO pg_temp._pgferry_bus_member VALUES ($1, sha256(convert_to('attacker', 'UTF8')), now(), now() + interval '1 hour')`,
      [victim],
    );
    expect(
      await sqlState(`SELECT * FROM public.bus_subscribe($1, 'attacker', 30, 10, 0)`, [victim]),
    ).toBe('PF502');
    await asBus.query(`SELECT public.bus_leave($1, 'attacker')`, [victim]);
    expect((await db.sql(`SELECT 1 FROM ${Q()}.meta WHERE queue_name = $1`, [victim])).length).toBe(
      1,
    );
    await asBus.query(`DROP TABLE pg_temp._pgferry_bus_member`);
  });
});
