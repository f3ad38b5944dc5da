/// <reference lib="dom" />
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { useTestDatabase, eventually } from '../support/db.js';
import { Ops } from '../../src/ops/ops.js';
import { startDashboard, type RunningDashboard } from '../../src/ops/dashboard/server.js';
import { defineTask } from '../../src/tasks/define.js';
import { taskClient, worker } from '../tasks/helpers.js';
import { Ticker } from '../../src/stream/ticker.js';

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

const flaky = defineTask({
  name: 'b_flaky',
  maxRetries: 1,
  backoff: { kind: 'fixed', delayMs: 10 },
  handler: async (input: { to: string }, ctx) => {
    ctx.progress({ sent: ctx.job.attempt === 1 ? 0 : 1, of: 1 });
    if (ctx.job.attempt === 1) {
      const e = new Error('SMTP 421: try again later');
      e.stack = `${e.name}: ${e.message}\n    at deliver (app/mail.ts:31:11)\n    at handler (app/tasks.ts:52:5)`;
      throw e;
    }
    return { delivered: input.to };
  },
});
const bulky = defineTask({
  name: 'b_bulk',
  maxRetries: 0,
  handler: async (): Promise<void> => {
    throw new Error('payment provider down');
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

  it('charts task throughput and failure rate, message age, ticker leader and tick rate', async () => {
    const client = taskClient(db);
    await db.queueClient().createQueue('b_aged');
    await db.queueClient().send('b_aged', { waiting: true });
    for (let i = 0; i < 3; i++) await client.enqueue(broken, {});
    for (let i = 0; i < 3; i++) await client.enqueue(slow, { ms: 10 });
    // The open pages refresh themselves; every refresh (at most one a second) is a
    // sample of the charts. Let a few samples see the jobs waiting, then run them.
    const tasks = await open('tasks');
    const queues = await open('queues');
    await tasks.waitForFunction(() => Number(document.body.dataset.refreshed) >= 6, null, {
      timeout: 30_000,
    });
    const w = worker(db, { tasks: [slow, broken] });
    await w.start();
    const rate = (task: string) =>
      tasks.evaluate(
        (t) => document.querySelector(`[data-failure-rate="${t}"]`)?.textContent?.trim() ?? '',
        task,
      );
    // b_broken's jobs all die, b_work's all complete: the failure rates tell them apart.
    await tasks.waitForFunction(
      () =>
        document.querySelector('[data-failure-rate="b_work"]')?.textContent?.trim() === '0.0%' &&
        /^(?!0\.0%)\d+\.\d%$/.test(
          document.querySelector('[data-failure-rate="b_broken"]')?.textContent?.trim() ?? '',
        ) &&
        document.querySelector('svg[aria-label="jobs of b_broken dead-lettered per second"]'),
      null,
      { timeout: 30_000 },
    );
    await w.stop();
    const broke = Number((await rate('b_broken')).replace('%', ''));
    expect(broke).toBeGreaterThan(0);
    expect(broke).toBeLessThanOrEqual(100);
    expect(
      await tasks.locator('svg[aria-label="jobs of b_work finished per second"]').count(),
    ).toBe(1);
    if (shots) await tasks.screenshot({ path: `${shots}/dashboard-tasks.png`, fullPage: true });
    await tasks.context().close();
    // b_aged holds an unread message: its age is charted.
    await queues.waitForSelector('svg[aria-label="oldest message age in b_aged"]', {
      timeout: 30_000,
    });
    if (shots) await queues.screenshot({ path: `${shots}/dashboard-queues.png`, fullPage: true });
    await queues.context().close();

    await db.sql(`SELECT pgque.create_queue('b_ticks')`);
    let streams = await open('streams');
    expect(await streams.textContent('#ticker-leader')).toContain('No ticker is leading');
    await streams.context().close();
    const ticker = new Ticker({ connectionString: db.url, electionIntervalMs: 100 });
    ticker.start();
    try {
      await eventually(async () => ticker.isLeader, 20_000);
      await db.sql(`SELECT pgque.send('b_ticks', 'signup', '{"user": 1}'::jsonb)`);
      await db.sql(`SELECT pgque.force_next_tick('b_ticks')`);
      streams = await open('streams');
      await streams.waitForFunction(
        () =>
          /Ticker leader:\s+backend pid\s+\d+/.test(
            document.getElementById('ticker-leader')?.textContent ?? '',
          ),
        null,
        { timeout: 30_000 },
      );
      // ticks/min is the 5th-from-last column of the stream table.
      const ticksPerMinute = async () =>
        Number(
          await streams.evaluate(() => {
            const head = Array.from(document.querySelectorAll('#stream-table thead th')).map(
              (h) => h.textContent,
            );
            const row = Array.from(document.querySelectorAll('#stream-table tbody tr')).find(
              (r) => r.querySelector('td')?.textContent === 'b_ticks',
            );
            return row?.querySelectorAll('td')[head.indexOf('ticks/min')]?.textContent ?? '0';
          }),
        );
      await eventually(async () => (await ticksPerMinute()) > 0, 30_000);
      if (shots)
        await streams.screenshot({ path: `${shots}/dashboard-streams.png`, fullPage: true });
      await streams.context().close();
    } finally {
      await ticker.stop();
    }
  });

  it("shows a failed-then-completed job's attempts with the error stack", async () => {
    const client = taskClient(db);
    const job = await client.enqueue(flaky, { to: 'ada@example.com' });
    const w = worker(db, { tasks: [flaky] });
    await w.start();
    await eventually(
      async () => (await client.getJob(flaky, job.id))?.state === 'completed',
      20_000,
    );
    await w.stop();
    const page = await open(`tasks/b_flaky/jobs/${job.id}`);
    expect(await page.textContent('#job-state')).toBe('completed');
    const rows = page.locator('#job-attempts tbody tr');
    expect(await rows.count()).toBe(2);
    expect(await rows.nth(0).locator('.badge').textContent()).toBe('retry');
    expect(await rows.nth(1).locator('.badge').textContent()).toBe('completed');
    expect(await rows.nth(0).textContent()).toContain('Error: SMTP 421: try again later');
    // The stack is folded until asked for.
    const stack = page.locator('#stack-1 pre.stack');
    expect(await stack.isVisible()).toBe(false);
    await page.click('#stack-1 summary');
    expect(await stack.isVisible()).toBe(true);
    expect(await stack.textContent()).toContain('at deliver (app/mail.ts:31:11)');
    expect(await page.textContent('#job-result')).toContain('"delivered": "ada@example.com"');
    if (shots) await page.screenshot({ path: `${shots}/dashboard-job.png`, fullPage: true });
    await page.context().close();
  });

  it('retries the dead jobs matching a payload field by a confirmed bulk action', async () => {
    const client = taskClient(db);
    for (const plan of ['pro', 'pro', 'free']) await client.enqueue(bulky, { plan });
    const w = worker(db, { tasks: [bulky] });
    await w.start();
    await eventually(async () => (await client.deadLetters(bulky).count()) === 3, 20_000);
    await w.stop();
    const page = await open('tasks');
    await page.selectOption('#bulk-form select[name=op]', 'retry');
    await page.selectOption('#bulk-form select[name=task]', 'b_bulk');
    await page.check('#bulk-form input[name=state][value=dead]');
    await page.fill('#bulk-form input[name=where]', 'plan=pro');
    await page.click('button[data-action=bulk-preview]');
    await page.waitForSelector('#bulk-confirm');
    expect(await page.textContent('#bulk-summary')).toBe(
      'retry 2 jobs of b_bulk in states dead with payload {"plan":"pro"}',
    );
    if (shots) await page.screenshot({ path: `${shots}/dashboard-tasks-bulk.png`, fullPage: true });
    await page.click('button[data-action=bulk-confirm]');
    await page.waitForFunction(
      () => document.getElementById('flash')?.textContent === 'retry b_bulk: 2 jobs',
    );
    const left = await client.deadLetters(bulky).list();
    expect(left.map((d) => d.input)).toEqual([{ plan: 'free' }]);
    const requeued = await db.sql<{ plan: string }>(
      `SELECT message->>'plan' AS plan FROM ${db.queueSchema}.q_b_bulk`,
    );
    expect(requeued.map((r) => r.plan)).toEqual(['pro', 'pro']);
    await page.context().close();
  });

  it('refuses every action in read-only mode', async () => {
    const ro = await startDashboard({
      port: 0,
      ops: db.track(new Ops({ connectionString: db.url, schemas: { queue: db.queueSchema } })),
      refreshMs: 0,
      auth: { basic: user },
    });
    try {
      const ctx = await browser.newContext({ httpCredentials: user });
      const page = await ctx.newPage();
      await page.goto(`${ro.url}tasks?bulk=1&op=retry&task=b_bulk&state=dead`);
      expect(await page.textContent('header .ro')).toBe('read-only');
      // The count, but nothing to confirm; no bulk form, no pause buttons.
      expect(await page.textContent('#bulk-summary')).toBe('retry 1 job of b_bulk in states dead');
      expect(await page.locator('button[data-action]').count()).toBe(0);
      expect(await page.locator('#bulk-form').count()).toBe(0);
      const jobs = await open('tasks/b_bulk'); // the writable dashboard: its form token
      const csrf = await jobs.getAttribute('input[name=csrf]', 'value');
      await jobs.context().close();
      for (const [path, form] of [
        ['tasks/b_bulk/bulk', { op: 'retry', state: 'dead', csrf: csrf! }],
        ['tasks/b_bulk/actions', { action: 'pause', csrf: csrf! }],
      ] as const) {
        const res = await page.request.post(ro.url + path, { form });
        expect(res.status()).toBe(403);
        expect(await res.text()).toMatch(/read-only/);
      }
      expect(await taskClient(db).deadLetters(bulky).count()).toBe(1);
      expect(await taskClient(db).isPaused(bulky)).toBe(false);
      await ctx.close();
    } finally {
      await ro.close();
    }
  });
});
