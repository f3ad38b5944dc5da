// Task, job and cron pages.
import { Cron } from 'croner';
import type { JobState } from '../../tasks/client.js';
import { browseJobs, JOB_STATES } from '../browse.js';
import { bulkSection } from './bulk-page.js';
import { cronStats, taskStats } from '../engine-stats.js';
import { age, html, Html, table, td, tl, tn } from './html.js';
import { charts, rateCell } from './queue-pages.js';
import { HISTORY, total } from './samples.js';
import { button, card, csrfField, enc, filterFrom, searchForm, u } from './page-parts.js';
import type { PageContext, Rendered } from './page-parts.js';

export async function tasks(c: PageContext, q: URLSearchParams): Promise<Rendered> {
  const ts = await taskStats(c.ops);
  const bulk = await bulkSection(
    c,
    q,
    ts.map((t) => t.task),
  );
  const crons = await cronStats(c.ops);
  const next = (p: string, tz: string | null): string => {
    try {
      return (
        new Cron(p, { ...(tz ? { timezone: tz } : {}), paused: true }).nextRun()?.toISOString() ??
        '–'
      );
    } catch {
      return 'invalid pattern';
    }
  };
  return {
    title: 'Tasks',
    active: 'tasks',
    body: html`${bulk.confirm}${table(
        'task-table',
        [
          'task',
          'queued',
          'scheduled',
          'running',
          'retrying',
          'dead',
          'finished (est.)',
          'oldest',
          'finished/s',
          'dead/s',
          'failure rate',
          'paused',
        ],
        ts.map((t) => [
          tl(u(c, `tasks/${enc(t.task)}`), t.task),
          tn(t.queued),
          tn(t.scheduled),
          tn(t.running),
          tn(t.retrying),
          tn(t.dead),
          tn(t.archivedEstimate),
          tn(age(t.oldestAgeSeconds)),
          ...taskRates(c, t.task),
          pauseCell(c, t.task, t.paused),
        ]),
      )}
      <p class="muted">
        finished/s: jobs leaving the task's queue (completed, cancelled or dead); dead/s: jobs moved
        to its dead-letter queue; failure rate: dead over finished across the charts' window (the
        last ${HISTORY} samples while this dashboard is open).
      </p>
      <h2>Cron schedules</h2>
      ${table(
        'cron-table',
        ['schedule', 'task', 'pattern', 'timezone', 'last occurrence', 'next run'],
        crons.map((s) => [
          td(s.name),
          td(s.task),
          td(s.pattern),
          td(s.timezone ?? 'UTC'),
          td(s.lastOccurrence),
          td(next(s.pattern, s.timezone)),
        ]),
      )}
      <p class="muted">
        Pause stops every worker from starting jobs of the task (running ones finish); resume lets
        them continue.
      </p>
      ${bulk.form}`,
  };
}

/** Paused or not, with the pause / resume button when the dashboard is writable. */
function pauseCell(c: PageContext, task: string, paused: boolean): Html {
  return html`<td data-paused="${task}">
    ${paused ? 'paused' : '–'}
    ${
      c.writable
        ? html`<form method="post" action="${u(c, `tasks/${enc(task)}/actions`)}">
            ${csrfField(c)}${button(c, paused ? 'resume' : 'pause', paused ? 'Resume' : 'Pause')}
          </form>`
        : html``
    }
  </td>`;
}

/** Throughput, dead-letter rate and failure rate of a task from the dashboard's samples. */
function taskRates(c: PageContext, task: string): Html[] {
  const left = c.series.left.get(task);
  const dead = c.series.sent.get(task + '_dlq');
  const done = total(left);
  const failed = total(dead);
  return [
    rateCell(left, `jobs of ${task} finished per second`),
    rateCell(dead, `jobs of ${task} dead-lettered per second`),
    html`<td class="n" data-failure-rate="${task}">
      ${done > 0 ? `${Math.min(100, (failed / done) * 100).toFixed(1)}%` : '–'}
    </td>`,
  ];
}

export async function taskDetail(
  c: PageContext,
  task: string,
  q: URLSearchParams,
): Promise<Rendered | null> {
  const [t] = (await taskStats(c.ops)).filter((x) => x.task === task);
  if (!t) return null;
  const state = (q.get('state') || undefined) as JobState | undefined;
  const jobs = await browseJobs(c.ops.read, c.ops.schemas.tasks, task, {
    ...filterFrom(q),
    ...(state ? { state } : {}),
  });
  const stateSelect = html`state
    <select name="state">
      <option value="">any</option>
      ${JOB_STATES.map((s) => html`<option ${new Html(s === state ? 'selected' : '')}>${s}</option>`)}
    </select> `;
  return {
    title: `Task ${task}`,
    active: 'tasks',
    body: html`<div class="cards">
        ${card('t-queued', 'queued', t.queued)}${card('t-scheduled', 'scheduled', t.scheduled)}${card('t-running', 'running', t.running)}${card('t-retrying', 'retrying', t.retrying)}${card('t-dead', 'dead', t.dead)}
      </div>
      ${charts('t-charts', [
        ['enqueued/s', c.series.sent.get(task)],
        ['finished/s', c.series.left.get(task)],
        ['dead/s', c.series.sent.get(task + '_dlq')],
        ['oldest job age (s)', c.series.age.get(task)],
      ])}
      ${searchForm(q, stateSelect)}
      ${
        c.writable
          ? html`<p>
              <a href="${u(c, `tasks?${bulkQuery(task, state, q)}#bulk-form`)}" id="bulk-link"
                >Bulk action by this filter (no limit, counted first)…</a
              >
            </p>`
          : html``
      }
      <form method="post" action="${u(c, `tasks/${enc(task)}/actions`)}">
        ${csrfField(c)} <input type="hidden" name="state" value="${state ?? ''}" /><input
          type="hidden"
          name="where"
          value="${q.get('where') ?? ''}"
        />
        ${button(c, 'retry', 'Retry selected')}${button(c, 'cancel', 'Cancel selected')}${button(c, 'delete', 'Delete selected')}${c.writable && (state || q.get('where')) ? html`<label><input type="checkbox" name="scope" value="filter" /> all matching the search (up to 1000)</label>` : html``}
        ${table(
          'jobs',
          ['', 'id', 'state', 'attempts', 'enqueued', 'run at', 'input'],
          jobs.map((j) => [
            html`<td><input type="checkbox" name="id" value="${j.msgId}" /></td>`,
            tl(u(c, `tasks/${enc(task)}/jobs/${j.msgId}`), j.msgId),
            html`<td><span class="badge ${j.state}">${j.state}</span></td>`,
            tn(j.readCount),
            td(j.enqueuedAt),
            td(j.visibleAt),
            html`<td><code>${JSON.stringify(j.message).slice(0, 160)}</code></td>`,
          ]),
          false,
        )}
      </form>`,
  };
}

/** The tasks page's bulk form, filled in with a task page's search. */
function bulkQuery(task: string, state: JobState | undefined, q: URLSearchParams): string {
  const p = new URLSearchParams({ task });
  if (state) p.append('state', state);
  for (const k of ['where', 'header']) if (q.get(k)) p.set(k, q.get(k)!);
  return p.toString();
}
