import { describe, expect, it } from 'vitest';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { useTestDatabase } from '../support/db.js';
import { Ops } from '../../src/ops/ops.js';
import { dashboardHandler, type DashboardOptions } from '../../src/ops/dashboard/handler.js';
import { startDashboard } from '../../src/ops/dashboard/server.js';
import { InvalidArgumentError } from '../../src/errors.js';

const db = useTestDatabase();
const ops = () =>
  db.track(new Ops({ connectionString: db.url, schemas: { queue: db.queueSchema } }));

async function serve(options: DashboardOptions) {
  const d = await startDashboard({ port: 0, ops: ops(), refreshMs: 0, ...options });
  db.track(d);
  return d;
}

const csrfOf = (html: string): string => /name="csrf" value="([0-9a-f]+)"/.exec(html)![1]!;

describe('dashboard over HTTP', () => {
  it('binds 127.0.0.1 by default and serves pages, /metrics and 404s under its base path', async () => {
    const q = db.queueClient();
    await q.createQueue('d_http');
    await q.send('d_http', { a: 1 });
    const d = await serve({ basePath: '/ops' });
    expect(d.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/ops\/$/);
    const home = await fetch(d.url);
    expect(home.status).toBe(200);
    expect(home.headers.get('content-security-policy')).toContain("default-src 'none'");
    const body = await home.text();
    expect(body).toContain('href="/ops/queues"');
    expect(body).toContain('read-only');
    const qp = await (await fetch(d.url + 'queues/d_http')).text();
    expect(qp).toContain('{&quot;a&quot;:1}');
    // read-only: no action buttons
    expect(qp).not.toContain('data-action="delete"');
    const m = await fetch(d.url + 'metrics');
    expect(await m.text()).toContain('pgferry_queue_depth{queue="d_http"} 1');
    expect((await fetch(d.url + 'queues/nope_nope')).status).toBe(404);
    expect((await fetch(d.url.replace('/ops/', '/other'))).status).toBe(404);
  });

  it('refuses actions when read-only, and without the form token when writable', async () => {
    const q = db.queueClient();
    await q.createQueue('d_act');
    const id = await q.send('d_act', { b: 2 });
    const ro = await serve({});
    const r1 = await fetch(ro.url + 'queues/d_act/actions', {
      method: 'POST',
      body: new URLSearchParams({ action: 'delete', id: String(id) }),
    });
    expect(r1.status).toBe(403);
    const rw = await serve({ allowWrites: true });
    const page = await (await fetch(rw.url + 'queues/d_act')).text();
    expect(page).toContain('data-action="delete"');
    const bad = await fetch(rw.url + 'queues/d_act/actions', {
      method: 'POST',
      body: new URLSearchParams({ action: 'delete', id: String(id), csrf: 'x'.repeat(32) }),
    });
    expect(bad.status).toBe(403);
    expect((await q.metrics('d_act')).queueLength).toBe(1);
    const ok = await fetch(rw.url + 'queues/d_act/actions', {
      method: 'POST',
      redirect: 'manual',
      body: new URLSearchParams({ action: 'delete', id: String(id), csrf: csrfOf(page) }),
    });
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe('/queues/d_act?flash=deleted%201%20of%201');
    expect((await q.metrics('d_act')).queueLength).toBe(0);
  });

  it('lists stream dead letters and replays the selected ones', async () => {
    await db.sql(`SELECT pgque.create_queue('d_st'), pgque.subscribe('d_st', 'c')`);
    await db.sql(`SELECT pgque.set_queue_config('d_st', 'max_retries', '0')`);
    await db.sql(`SELECT pgque.send('d_st', '{"order":9}'::jsonb)`);
    await db.sql(`SELECT pgque.force_next_tick('d_st'), pgque.ticker('d_st')`);
    const [m] = await db.sql<Record<string, unknown>>(`SELECT * FROM pgque.receive('d_st', 'c')`);
    await db.sql(
      `SELECT pgque.nack($1, ROW($2, $1, $3, $4, $5, $6, NULL, NULL, NULL, NULL)::pgque.message, '0 seconds', 'bad order')`,
      [m!.batch_id, m!.msg_id, m!.type, m!.payload, m!.retry_count, m!.created_at],
    );
    await db.sql(`SELECT pgque.ack($1)`, [m!.batch_id]);
    const [dl] = await db.sql<{ dl_id: string }>(`SELECT dl_id FROM pgque.dlq_inspect('d_st')`);
    const d = await serve({ allowWrites: true });
    const page = await (await fetch(d.url + 'streams')).text();
    expect(page).toContain('bad order');
    expect(page).toContain(`name="id" value="${dl!.dl_id}"`);
    const res = await fetch(d.url + 'streams/actions', {
      method: 'POST',
      redirect: 'manual',
      body: new URLSearchParams({ action: 'replay', id: dl!.dl_id, csrf: csrfOf(page) }),
    });
    expect(res.status).toBe(303);
    expect(await db.sql(`SELECT * FROM pgque.dlq_inspect('d_st')`)).toEqual([]);
    // The replayed event is delivered again after the next tick.
    await db.sql(`SELECT pgque.force_next_tick('d_st'), pgque.ticker('d_st')`);
    const again = await db.sql<{ payload: string }>(
      `SELECT payload FROM pgque.receive('d_st', 'c')`,
    );
    expect(again.map((r) => JSON.parse(r.payload) as unknown)).toEqual([{ order: 9 }]);
  });

  it('asks for credentials: bearer token and basic auth', async () => {
    const d = await serve({
      auth: { bearerToken: 'secret-token-1', basic: { username: 'ops', password: 'pw' } },
    });
    const none = await fetch(d.url);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toContain('Basic');
    expect((await fetch(d.url, { headers: { authorization: 'Bearer wrong-token' } })).status).toBe(
      401,
    );
    expect(
      (await fetch(d.url + 'metrics', { headers: { authorization: 'Bearer secret-token-1' } }))
        .status,
    ).toBe(200);
    const basic = (u: string, p: string) => ({
      authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`,
    });
    expect((await fetch(d.url, { headers: basic('ops', 'nope') })).status).toBe(401);
    expect((await fetch(d.url, { headers: basic('ops', 'pw') })).status).toBe(200);
  });

  it('mounts in an existing server: Express-style originalUrl, next() outside the base path', async () => {
    const handler = dashboardHandler({ ops: ops(), basePath: '/admin/ferry', refreshMs: 0 });
    let passed = 0;
    const server = createServer((req, res) => {
      // What Express does for app.use('/admin/ferry', handler): req.url loses the prefix.
      const original = req.url!;
      if (original.startsWith('/admin/ferry')) {
        Object.assign(req, {
          originalUrl: original,
          url: original.slice('/admin/ferry'.length) || '/',
        });
      }
      handler(req, res, () => {
        passed++;
        res.end('app');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    db.track({ close: () => new Promise<void>((r) => server.close(() => r())) });
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const page = await (await fetch(base + '/admin/ferry/queues')).text();
    expect(page).toContain('<h1>Queues</h1>');
    expect(page).toContain('href="/admin/ferry/tasks"');
    expect(await (await fetch(base + '/elsewhere')).text()).toBe('app');
    expect(passed).toBe(1);
  });

  it('takes the form a body parser read first (Express), and says so when the body is gone', async () => {
    const q = db.queueClient();
    await q.createQueue('d_parsed');
    const [a, b, c] = await q.sendBatch('d_parsed', [{ n: 1 }, { n: 2 }, { n: 3 }]);
    const dashboard = dashboardHandler({ ops: ops(), basePath: '/admin', allowWrites: true });
    const listen = async (server: Server) => {
      await once(server.listen(0, '127.0.0.1'), 'listening');
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}/admin/`;
    };
    const app = express();
    app.use(express.urlencoded({ extended: false }));
    app.use('/admin', dashboard);
    const parsed = app.listen(0, '127.0.0.1');
    // a handler that drains the body without keeping it
    const drained = createServer((req, res) => {
      req.resume();
      req.once('end', () => dashboard(req, res));
    });
    try {
      for (const [url, ids, status] of [
        [await listen(parsed), [a!, b!], 303],
        [await listen(drained), [c!], 400],
      ] as const) {
        const page = await (await fetch(url + 'queues/d_parsed')).text();
        const form = new URLSearchParams({ action: 'delete', csrf: csrfOf(page) });
        for (const id of ids) form.append('id', String(id));
        const r = await fetch(url + 'queues/d_parsed/actions', {
          method: 'POST',
          redirect: 'manual',
          body: form,
        });
        expect(r.status).toBe(status);
        if (status === 303) expect(r.headers.get('location')).toContain('deleted%202%20of%202');
        else expect(await r.text()).toMatch(/^PGFERRY_\w+: the request body was already read/);
      }
    } finally {
      parsed.close();
      drained.close();
    }
    expect((await q.read('d_parsed', { qty: 10 })).map((m) => m.msgId)).toEqual([c]);
  });

  it('rejects bad options with typed errors', () => {
    expect(() => dashboardHandler({ ops: ops(), basePath: 'nope' })).toThrow(InvalidArgumentError);
    expect(() => dashboardHandler({ ops: ops(), auth: { bearerToken: 'short' } })).toThrow(
      InvalidArgumentError,
    );
  });
});
