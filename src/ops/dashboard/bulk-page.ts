// Bulk actions by filter on the tasks page: pick a task, an operation, states
// and a payload / header filter; the dashboard counts the matching jobs on
// the read driver and asks for confirmation; confirming runs
// TaskClient.retryJobs / cancelJobs / deleteJobs on the primary.
import { InvalidArgumentError, PgferryError } from '../../errors.js';
import type { BulkOperation, JobFilter } from '../../tasks/bulk.js';
import type { JobState } from '../../tasks/client.js';
import { JOB_STATES } from '../browse.js';
import { countBulk } from '../bulk-count.js';
import type { Ops } from '../ops.js';
import { html, Html } from './html.js';
import { csrfField, enc, filterFrom, u, type PageContext } from './page-parts.js';

const OPS: readonly BulkOperation[] = ['retry', 'cancel', 'delete'];
const OP_HELP: Record<BulkOperation, string> = {
  retry: 'retry: dead (their dead letters are requeued as new jobs) and retrying (run now)',
  cancel: 'cancel: queued, scheduled, running, retrying (default: all but running)',
  delete: 'delete: any state, live or finished (give the states)',
};

/** The bulk filter a form or query gives: operation, states, payload and header containment. */
export function bulkFilter(q: URLSearchParams): { op: BulkOperation; filter: JobFilter } {
  const op = q.get('op') as BulkOperation;
  if (!OPS.includes(op))
    throw new InvalidArgumentError(
      `the operation must be retry, cancel or delete, got ${String(op)}`,
    );
  const states = q.getAll('state').filter((s) => s !== '') as JobState[];
  const { payload, headers } = filterFrom(q);
  return {
    op,
    filter: {
      ...(states.length ? { state: states } : {}),
      ...(payload ? { payload } : {}),
      ...(headers ? { headers } : {}),
    },
  };
}

/**
 * When asked (`bulk=1`), the confirmation with the count of matching jobs (not
 * recounted on live refreshes, which do not replace it); and the bulk form
 * (write mode only).
 */
export async function bulkSection(
  c: PageContext,
  q: URLSearchParams,
  tasks: readonly string[],
): Promise<{ confirm: Html; form: Html }> {
  const asked = q.get('bulk') === '1' && !c.refresh;
  const confirm = asked ? await confirmation(c, q, tasks) : html``;
  if (!c.writable) return { confirm, form: html`` };
  const task = q.get('task') ?? '';
  const op = q.get('op') ?? 'retry';
  const chosen = new Set(q.getAll('state'));
  const sel = (on: boolean) => new Html(on ? 'selected' : '');
  const form = html`<h2>Bulk action by filter</h2>
    <form method="get" action="${u(c, 'tasks')}" id="bulk-form">
      <input type="hidden" name="bulk" value="1" />
      <select name="op">
        ${OPS.map((o) => html`<option ${sel(o === op)}>${o}</option>`)}
      </select>
      jobs of
      <select name="task">
        ${tasks.map((t) => html`<option ${sel(t === task)}>${t}</option>`)}
      </select>
      in states
      ${JOB_STATES.map(
        (s) =>
          html`<label
            ><input
              type="checkbox"
              name="state"
              value="${s}"
              ${new Html(chosen.has(s) ? 'checked' : '')}
            />
            ${s}</label
          > `,
      )}
      payload
      <input name="where" placeholder="field.path=value" value="${q.get('where') ?? ''}" /> header
      <input name="header" placeholder="name=value" value="${q.get('header') ?? ''}" />
      <button type="submit" data-action="bulk-preview">Preview</button>
    </form>
    <p class="muted">
      ${OPS.map((o) => OP_HELP[o]).join(' · ')}. No state checked: the operation's default.
    </p>`;
  return { confirm, form };
}

async function confirmation(
  c: PageContext,
  q: URLSearchParams,
  tasks: readonly string[],
): Promise<Html> {
  const task = q.get('task') ?? '';
  let text: string;
  let count: Awaited<ReturnType<typeof countBulk>> | null = null;
  let op: BulkOperation | null = null;
  let filter: JobFilter = {};
  try {
    if (!tasks.includes(task)) throw new InvalidArgumentError(`no task ${JSON.stringify(task)}`);
    ({ op, filter } = bulkFilter(q));
    count = await countBulk(c.ops.read, c.ops.schemas, op, task, filter);
    const n = `${count.capped ? 'more than ' : ''}${count.count}`;
    text = `${op} ${n} job${count.count === 1 ? '' : 's'} of ${task} in states ${count.states.join(', ')}${filter.payload ? ` with payload ${JSON.stringify(filter.payload)}` : ''}${filter.headers ? ` with headers ${JSON.stringify(filter.headers)}` : ''}`;
  } catch (err) {
    if (!(err instanceof PgferryError)) throw err;
    text = err.message;
  }
  const runnable = c.writable && count !== null && count.count > 0;
  return html`<div class="confirm" id="bulk-confirm">
    <span id="bulk-summary" data-count="${count?.count ?? ''}">${text}</span>
    ${
      runnable
        ? html`<form method="post" action="${u(c, `tasks/${enc(task)}/bulk`)}" class="inline">
            ${csrfField(c)}<input type="hidden" name="op" value="${op}" />
            ${count!.states.map((s) => html`<input type="hidden" name="state" value="${s}" />`)}
            <input type="hidden" name="where" value="${q.get('where') ?? ''}" />
            <input type="hidden" name="header" value="${q.get('header') ?? ''}" />
            <input type="hidden" name="expected" value="${count!.count}" />
            <button type="submit" data-action="bulk-confirm">Confirm: ${op} ${count!.count}</button>
            <a href="${u(c, 'tasks')}">cancel</a>
          </form>`
        : html`<span class="muted"
            >${c.writable ? '' : ' — read-only: start the dashboard with write access to run it'}</span
          >`
    }
  </div>`;
}

/** Runs a confirmed bulk action on the primary; returns the flash message. */
export async function runBulk(ops: Ops, task: string, form: URLSearchParams): Promise<string> {
  const { op, filter } = bulkFilter(form);
  const t = ops.writeTasks;
  const n =
    op === 'retry'
      ? await t.retryJobs(task, filter)
      : op === 'cancel'
        ? await t.cancelJobs(task, filter)
        : await t.deleteJobs(task, filter);
  const expected = form.get('expected');
  return `${op} ${task}: ${n} job${n === 1 ? '' : 's'}${expected !== null && Number(expected) !== n ? ` (${expected} matched when confirmed)` : ''}`;
}
