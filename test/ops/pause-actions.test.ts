// `pgferry jobs pause|resume` and the dashboard's pause / resume action on the tasks page.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { Ops } from '../../src/ops/ops.js';
import { startDashboard } from '../../src/ops/dashboard/server.js';
import { defineTask } from '../../src/tasks/define.js';
import { useTestDatabase } from '../support/db.js';
import { taskClient } from '../tasks/helpers.js';

const db = useTestDatabase();
afterEach(() => vi.restoreAllMocks());

async function cli(args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const push = (...x: unknown[]) => void lines.push(x.join(' '));
  vi.spyOn(console, 'log').mockImplementation(push);
  vi.spyOn(console, 'error').mockImplementation(push);
  const code = await main([...args, '--url', db.url, '--queue-schema', db.queueSchema]);
  vi.restoreAllMocks();
  return { code, out: lines.join('\n') };
}

describe('pause and resume from the CLI and the dashboard', () => {
  it('pgferry jobs pause|resume <task>', async () => {
    const client = taskClient(db);
    const t = defineTask({ name: 'cli_pausable', handler: () => undefined });
    await client.ensure(t);
    expect(await cli(['jobs', 'pause', 'cli_pausable'])).toEqual({
      code: 0,
      out: 'cli_pausable: paused',
    });
    expect(await client.isPaused(t)).toBe(true);
    expect((await cli(['jobs', 'pause', 'cli_pausable'])).out).toBe('cli_pausable: already paused');
    const r = await cli(['jobs', 'resume', 'cli_pausable', '--json']);
    expect(JSON.parse(r.out)).toEqual({ task: 'cli_pausable', paused: false, changed: true });
    expect(await client.isPaused(t)).toBe(false);
    expect((await cli(['jobs', 'pause', 'cli_pausable', '12'])).code).toBe(2);
    expect((await cli(['jobs', 'pause', 'no_such_task'])).code).not.toBe(0);
  });

  it('the tasks page shows paused and pauses / resumes a task (writable dashboard only)', async () => {
    const client = taskClient(db);
    const t = defineTask({ name: 'dash_pausable', handler: () => undefined });
    await client.ensure(t);
    const ops = db.track(new Ops({ connectionString: db.url, schemas: { queue: db.queueSchema } }));
    const ro = db.track(await startDashboard({ port: 0, ops, refreshMs: 0 }));
    expect(await (await fetch(ro.url + 'tasks')).text()).not.toContain('data-action="pause"');
    const d = db.track(await startDashboard({ port: 0, ops, refreshMs: 0, allowWrites: true }));
    const page = await (await fetch(d.url + 'tasks')).text();
    expect(page).toContain('data-action="pause"');
    const csrf = /name="csrf" value="([0-9a-f]+)"/.exec(page)![1]!;
    const post = (action: string) =>
      fetch(d.url + 'tasks/dash_pausable/actions', {
        method: 'POST',
        redirect: 'manual',
        body: new URLSearchParams({ action, csrf }),
      });
    const res = await post('pause');
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/tasks?flash=dash_pausable%3A%20paused');
    expect(await client.isPaused(t)).toBe(true);
    const after = await (await fetch(d.url + 'tasks')).text();
    expect(after).toMatch(/data-paused="dash_pausable">\s*paused/);
    expect(after).toContain('data-action="resume"');
    const metrics = await (await fetch(d.url + 'metrics')).text();
    expect(metrics).toContain('pgferry_task_paused{task="dash_pausable"} 1');
    expect((await post('resume')).status).toBe(303);
    expect(await client.isPaused(t)).toBe(false);
  });
});
