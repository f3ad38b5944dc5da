/// <reference lib="dom" />
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { useTestDatabase, eventually } from '../support/db.js';
import { Ops } from '../../src/ops/ops.js';
import { startDashboard, type RunningDashboard } from '../../src/ops/dashboard/server.js';
import { defineTask } from '../../src/tasks/define.js';
import { taskClient, worker } from '../tasks/helpers.js';

/** Never download a browser: Debian's chromium only. */
export const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
// PGFERRY_SCREENSHOTS=docs/images writes the screenshots of docs/dashboard.md.
const shots = process.env.PGFERRY_SCREENSHOTS;

const db = useTestDatabase();
let browser: Browser;
let dash: RunningDashboard;
const user = { username: 'ops', password: 'browser-pw' };

beforeAll(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  dash = await startDashboard({
    port: 0,
    ops: db.track(new Ops({ connectionString: db.url, schemas: { queue: db.queueSchema } })),
    allowWrites: true,
    refreshMs: 300,
    auth: { basic: user },
  });
});
afterAll(async () => {
  await dash?.close();
  await browser?.close();
});

async function open(path: string): Promise<Page> {
  const ctx = await browser.newContext({
    httpCredentials: user,
    viewport: { width: 1280, height: 800 },
  });
  const page = await ctx.newPage();
  const res = await page.goto(dash.url + path);
  expect(res?.status()).toBe(200);
  return page;
}

const slow = defineTask({
  name: 'b_work',
  handler: async (input: { ms: number }) => new Promise((r) => setTimeout(r, input.ms)),
});
const broken = defineTask({
  name: 'b_broken',
  maxRetries: 0,
  handler: async () => {
    const e = new TypeError('cannot reach the mail server');
    // A stack without this machine's paths (it shows in the docs' screenshot).
    e.stack = `${e.name}: ${e.message}\n    at sendWelcome (app/mail.ts:12:9)\n    at handler (app/tasks.ts:40:5)`;
    throw e;
  },
});

describe('dashboard in a real browser', () => {
  it('refuses a browser without credentials or with wrong ones', async () => {
    for (const creds of [undefined, { username: 'ops', password: 'wrong' }]) {
      const ctx = await browser.newContext(creds ? { httpCredentials: creds } : {});
      const page = await ctx.newPage();
      const statuses: number[] = [];
      page.on('response', (r) => statuses.push(r.status()));
      const res = await page.goto(dash.url).catch((e: Error) => e);
      if (res instanceof Error) {
        // Headless chromium answers a challenge it has no credentials for with this error.
        expect(res.message).toMatch(/ERR_INVALID_AUTH_CREDENTIALS/);
      } else {
        expect(res?.status()).toBe(401);
        expect(await page.textContent('body')).toBe('authentication required');
      }
      expect(statuses.every((s) => s === 401)).toBe(true);
      expect((await page.request.get(dash.url + 'metrics')).status()).toBe(401);
      await ctx.close();
    }
  });

  it('loads every page; live numbers change as jobs run', async () => {
    const q = db.queueClient();
    await q.createQueue('b_orders');
    await q.sendBatch('b_orders', [{ sku: 'a' }, { sku: 'b' }]);
    await db.sql(`SELECT pgque.create_queue('b_events')`);
    await db.sql(`SELECT pgque.subscribe('b_events', 'b_reader')`);
    await db.sql(`SELECT bus_join('b-channel')`);
    const client = taskClient(db);
    for (let i = 0; i < 5; i++) await client.enqueue(slow, { ms: 50 });

    const page = await open('');
    expect(await page.textContent('h1')).toBe('Overview');
    expect(Number(await page.textContent('#ov-jobs-queued'))).toBe(5);
    for (const [path, h1] of [
      ['queues', 'Queues'],
      ['queues/b_orders', 'Queue b_orders'],
      ['tasks', 'Tasks'],
      ['tasks/b_work', 'Task b_work'],
      ['streams', 'Streams'],
      ['bus', 'Bus'],
    ] as const) {
      const p = await open(path);
      expect(await p.textContent('h1')).toBe(h1);
      if (shots)
        await p.screenshot({
          path: `${shots}/dashboard-${path.replace('/', '-')}.png`,
          fullPage: true,
        });
      await p.context().close();
    }
    const w = worker(db, { tasks: [slow] });
    await w.start();
    // The open page refreshes itself: the queued count falls to 0 without a reload.
    await page.waitForFunction(
      () => document.getElementById('ov-jobs-queued')?.textContent === '0',
      null,
      {
        timeout: 30_000,
      },
    );
    expect(Number(await page.evaluate(() => document.body.dataset.refreshed))).toBeGreaterThan(0);
    await w.stop();
    if (shots) await page.screenshot({ path: `${shots}/dashboard-overview.png`, fullPage: true });
    await page.context().close();
  });

  it('deletes and archives selected messages, retries a dead job', async () => {
    const q = db.queueClient();
    await q.createQueue('b_act');
    const [m1, m2, m3] = await q.sendBatch('b_act', [{ n: 1 }, { n: 2 }, { n: 3 }]);
    const page = await open('queues/b_act');
    await page.check(`input[name=id][value="${m1}"]`);
    await page.click('button[data-action=delete]');
    await page.waitForSelector('#flash');
    expect(await page.textContent('#flash')).toBe('deleted 1 of 1');
    await page.check(`input[name=id][value="${m2}"]`);
    await page.click('button[data-action=archive]');
    await page.waitForFunction(
      () => document.getElementById('flash')?.textContent === 'archived 1 of 1',
    );
    const left = await db.sql<{ msg_id: string }>(`SELECT msg_id FROM ${db.queueSchema}.q_b_act`);
    expect(left.map((r) => Number(r.msg_id))).toEqual([m3]);
    // Search by payload field.
    await page.fill('input[name=where]', 'n=3');
    await page.click('#search button');
    await page.waitForURL(/where=n%3D3/);
    expect(await page.locator('table#messages tbody input[name=id]').count()).toBe(1);
    await page.context().close();

    const client = taskClient(db);
    const job = await client.enqueue(broken, {});
    const w = worker(db, { tasks: [broken] });
    await w.start();
    await eventually(
      async () => (await client.getJob('b_broken', job.id))?.state === 'dead',
      20_000,
    );
    await w.stop();
    const jp = await open(`tasks/b_broken/jobs/${job.id}`);
    expect(await jp.textContent('#job-state')).toBe('dead');
    expect(await jp.textContent('#job-error')).toContain('cannot reach the mail server');
    if (shots) await jp.screenshot({ path: `${shots}/dashboard-job.png`, fullPage: true });
    await jp.context().close();
    const tp = await open('tasks/b_broken?state=dead');
    await tp.check(`input[name=id][value="${job.id}"]`);
    await tp.click('button[data-action=retry]');
    await tp.waitForFunction(
      () => document.getElementById('flash')?.textContent === 'retry: 1 of 1 done',
    );
    expect((await client.deadLetters('b_broken').list()).length).toBe(0);
    await tp.context().close();
  });
});
