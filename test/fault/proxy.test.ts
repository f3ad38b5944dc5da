import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { useTestDatabase } from '../support/db.js';
import { useFaultProxy } from '../support/fault-proxy.js';
import { testClient } from '../support/connections.js';

const db = useTestDatabase();
const proxy = useFaultProxy(db);

async function connect(): Promise<pg.Client> {
  const c = testClient({ connectionString: proxy().url(db.url) });
  await c.connect();
  return c;
}

describe('fault proxy', () => {
  it('forwards queries and rewrites the URL to itself', async () => {
    expect(new URL(proxy().url(db.url)).port).toBe(String(proxy().port));
    expect(new URL(proxy().url(db.url)).pathname).toBe(new URL(db.url).pathname);
    const c = await connect();
    try {
      const { rows } = await c.query<{ n: number }>('SELECT 41 + 1 AS n');
      expect(rows[0]!.n).toBe(42);
    } finally {
      await c.end();
    }
  });

  it('cut() breaks every open connection; new ones work', async () => {
    const c = await connect();
    proxy().cut();
    await expect(c.query('SELECT 1')).rejects.toThrow();
    const d = await connect();
    expect((await d.query('SELECT 1 AS one')).rows[0]).toEqual({ one: 1 });
    await d.end();
  });

  it('freeze() holds bytes both ways until thaw(); nothing is lost', async () => {
    const c = await connect();
    try {
      proxy().freeze();
      let done = false;
      const q = c.query<{ n: number }>('SELECT 7 AS n').then((r) => {
        done = true;
        return r;
      });
      // A new connection is accepted but cannot finish its handshake while frozen.
      let lateConnected = false;
      const late = testClient({ connectionString: proxy().url(db.url) });
      const lateConnect = late.connect().then(() => {
        lateConnected = true;
      });
      await new Promise((r) => setTimeout(r, 300));
      expect(done).toBe(false);
      expect(lateConnected).toBe(false);
      proxy().thaw();
      expect((await q).rows[0]!.n).toBe(7);
      await lateConnect;
      expect((await late.query('SELECT 1 AS one')).rows[0]).toEqual({ one: 1 });
      await late.end();
    } finally {
      proxy().thaw();
      await c.end();
    }
  });

  it('refuse(true) closes new connections at once; refuse(false) accepts again', async () => {
    proxy().refuse(true);
    try {
      const c = testClient({ connectionString: proxy().url(db.url) });
      await expect(c.connect()).rejects.toThrow();
    } finally {
      proxy().refuse(false);
    }
    const d = await connect();
    expect((await d.query('SELECT 1 AS one')).rows[0]).toEqual({ one: 1 });
    await d.end();
  });
});
