// Headers through the isolated bus (sql/bus/0004_headers.sql): the
// four-argument bus_publish stores a checked W3C trace context with every
// peer's copy, bus_subscribe_with_headers returns it, and the old
// three-argument callers (pipecat's) resolve exactly as before.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { useTestDatabase } from '../support/db.js';
import { InvalidArgumentError, mapError } from '../../src/errors.js';
import { busHeaders } from '../../src/bus/isolated.js';
import { makeBusLogin } from './helpers.js';
import { testClient } from '../support/connections.js';

const db = useTestDatabase();
let login: Awaited<ReturnType<typeof makeBusLogin>>;
let c: pg.Client;
const CH = 'headers-ch';
const TP = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

beforeAll(async () => {
  login = await makeBusLogin(db.url);
  c = testClient({ connectionString: login.url });
  await c.connect();
});

afterAll(async () => {
  await c?.end();
  await login?.drop();
});

async function join(channel = CH): Promise<string> {
  return (await c.query<{ q: string }>('SELECT public.bus_join($1) AS q', [channel])).rows[0]!.q;
}

async function take(
  queue: string,
  channel = CH,
): Promise<{ msg_id: string; message: unknown; headers: unknown }[]> {
  const res = await c.query<{ msg_id: string; message: unknown; headers: unknown }>(
    'SELECT * FROM public.bus_subscribe_with_headers($1, $2, 30, 10, 0)',
    [queue, channel],
  );
  for (const r of res.rows)
    await c.query('SELECT public.bus_archive($1, $2, $3)', [queue, channel, r.msg_id]);
  return res.rows;
}

describe('bus_publish with headers', () => {
  it('stores the trace context with every peer copy and returns it to the member', async () => {
    const [sender, p1, p2] = [await join(), await join(), await join()];
    const headers = { traceparent: TP, tracestate: 'vendor=abc,other=1' };
    const ids = await c.query<{ ids: string[] }>(
      'SELECT public.bus_publish($1, $2, $3, $4) AS ids',
      [CH, sender, JSON.stringify({ hi: 1 }), JSON.stringify(headers)],
    );
    expect(ids.rows[0]!.ids).toHaveLength(2);
    for (const q of [p1, p2]) {
      expect((await take(q)).map((r) => [r.message, r.headers])).toEqual([[{ hi: 1 }, headers]]);
    }
    // NULL, JSON null and {} mean no headers.
    for (const h of [null, 'null', '{}']) {
      await c.query('SELECT public.bus_publish($1, $2, $3, $4)', [CH, sender, '{"n":1}', h]);
    }
    expect((await take(p1)).map((r) => r.headers)).toEqual([null, null, null]);
    for (const q of [sender, p1, p2]) await c.query('SELECT public.bus_leave($1, $2)', [q, CH]);
  });

  it('keeps three-argument callers unambiguous: untyped PREPARE, named arguments, bus_subscribe columns', async () => {
    const [sender, peer] = [await join(), await join()];
    // Untyped parameters: a DEFAULTed fourth argument would make this ambiguous (42725).
    await c.query('PREPARE pub3 AS SELECT public.bus_publish($1, $2, $3)');
    await c.query(`EXECUTE pub3('${CH}', '${sender}', '{"v":3}')`);
    await c.query('PREPARE pub4 AS SELECT public.bus_publish($1, $2, $3, $4)');
    await c.query(`EXECUTE pub4('${CH}', '${sender}', '{"v":4}', '{"traceparent":"${TP}"}')`);
    await c.query('SELECT public.bus_publish(p_channel => $1, p_my_queue => $2, p_message => $3)', [
      CH,
      sender,
      '{"v":"named"}',
    ]);
    await c.query('DEALLOCATE pub3');
    await c.query('DEALLOCATE pub4');
    // bus_subscribe keeps its two columns (pipecat unpacks (msg_id, message)).
    const old = await c.query('SELECT * FROM public.bus_subscribe($1, $2, 0, 10, 0)', [peer, CH]);
    expect(old.fields.map((f) => f.name)).toEqual(['msg_id', 'message']);
    expect(old.rows.map((r: { message: unknown }) => r.message)).toEqual([
      { v: 3 },
      { v: 4 },
      { v: 'named' },
    ]);
    expect((await take(peer)).map((r) => r.headers)).toEqual([null, { traceparent: TP }, null]);
    for (const q of [sender, peer]) await c.query('SELECT public.bus_leave($1, $2)', [q, CH]);
  });

  it('refuses headers other than a W3C trace context with PF501, sending nothing', async () => {
    const [sender, peer] = [await join(), await join()];
    const bad: unknown[] = [
      [TP],
      '"x"',
      { traceparent: TP, 'x-pgferry-task': 'other' },
      { tenant: 'acme' },
      { traceparent: 1 },
      { traceparent: TP.toUpperCase() },
      { traceparent: `${TP}-extra` },
      { traceparent: `ff${TP.slice(2)}` },
      { traceparent: "00-'; DROP TABLE x; --" },
      { traceparent: TP, tracestate: 'a'.repeat(513) },
      { traceparent: TP, tracestate: 'a=\n1' },
      { traceparent: TP, tracestate: { nested: true } },
    ];
    for (const h of bad) {
      const err = await c
        .query('SELECT public.bus_publish($1, $2, $3, $4)', [
          CH,
          sender,
          '{"no":1}',
          typeof h === 'string' ? h : JSON.stringify(h),
        ])
        .then(() => undefined)
        .catch((e: unknown) => mapError(e));
      expect([h, err]).toEqual([h, expect.any(InvalidArgumentError)]);
      expect(err).toMatchObject({ sqlState: 'PF501' });
    }
    // Over 1024 bytes in all (each value alone would pass).
    const big = { traceparent: TP, tracestate: 'k=' + 'v'.repeat(500), extra: 'x'.repeat(600) };
    await expect(
      c.query('SELECT public.bus_publish($1, $2, $3, $4)', [CH, sender, '{}', JSON.stringify(big)]),
    ).rejects.toMatchObject({ code: 'PF501', message: /1024 bytes/ });
    expect(await take(peer)).toEqual([]);
    for (const q of [sender, peer]) await c.query('SELECT public.bus_leave($1, $2)', [q, CH]);
  });

  it('the backend sends only what the server accepts (busHeaders)', () => {
    expect(busHeaders(null)).toBeNull();
    expect(busHeaders({ tenant: 'acme' })).toBeNull();
    expect(busHeaders({ traceparent: 'nope', tracestate: 'a=1' })).toBeNull();
    expect(busHeaders({ traceparent: TP, tracestate: 'a=1', tenant: 'acme' })).toEqual({
      traceparent: TP,
      tracestate: 'a=1',
    });
    // A tracestate the server would refuse is dropped, as W3C allows.
    expect(busHeaders({ traceparent: TP, tracestate: 'a'.repeat(513) })).toEqual({
      traceparent: TP,
    });
  });
});
