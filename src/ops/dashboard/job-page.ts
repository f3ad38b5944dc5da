// A job's page: its state, per-attempt history, progress and result, flow
// links and the dead letters it is linked with. Every read goes through the
// engines' clients on the read driver (a replica when given).
import { H } from '../../tasks/headers.js';
import type { JobAttempt } from '../../tasks/history.js';
import type { StoredError } from '../../tasks/outcome-errors.js';
import { browseJobs, browseMessages, type BrowsedMessage } from '../browse.js';
import { html, Html, table, td } from './html.js';
import { button, csrfField, enc, u, type PageContext, type Rendered } from './page-parts.js';

/** Header written on a job rescheduled from a dead letter: the original job's id. */
const RESCHEDULED_FROM_MSG_ID = 'x-pgferry-rescheduled-from-msg-id';

const num = (v: unknown): number | null => {
  const n = typeof v === 'number' || typeof v === 'string' ? Number(v) : NaN;
  return Number.isSafeInteger(n) && n > 0 ? n : null;
};

export async function jobDetail(
  c: PageContext,
  task: string,
  id: number,
): Promise<Rendered | null> {
  const [j] = await browseJobs(c.ops.read, c.ops.schemas.tasks, task, { id });
  if (!j) return null;
  const h = j.headers ?? {};
  const [attempts, outcome] = await Promise.all([
    c.ops.tasks.history(task, id),
    c.ops.tasks.result(task, id),
  ]);
  const children = h[H.flow] ? await c.ops.tasks.childResults(task, id) : [];
  const parent = h[H.parent] as { task?: unknown; id?: unknown } | undefined;
  const dl = await deadLetter(c, task, num(h[H.deadLetterId]));
  const fromDl = await deadLetter(c, task, num(h[H.rescheduledFrom]));
  const fromJob = num(h[RESCHEDULED_FROM_MSG_ID]);
  const death = outcome.error ?? (h[H.error] as StoredError | undefined) ?? null;
  const jobLink = (t: string, n: number) =>
    html`<a href="${u(c, `tasks/${enc(t)}/jobs/${n}`)}"
      >job ${n}${t === task ? '' : ` of ${t}`}</a
    >`;
  const dlLink = (d: LinkedDeadLetter) =>
    html`<a
      href="${u(c, `queues/${enc(task + '_dlq')}?id=${d.msg.msgId}${d.archived ? '&archive=1' : ''}`)}"
      data-dead-letter="${d.msg.msgId}"
      >dead letter ${d.msg.msgId}</a
    >`;
  const links: Html[] = [];
  if (dl) {
    const as = num(dl.msg.headers?.[H.rescheduledAs]);
    links.push(
      html`<li>
        died into ${dlLink(dl)} in ${task}_dlq
        ${dl.archived ? (as ? html`, requeued as ${jobLink(task, as)}` : ' (gone from the queue)') : ' (waiting there)'}
      </li>`,
    );
  } else if (num(h[H.deadLetterId]))
    links.push(html`<li>died into dead letter ${String(h[H.deadLetterId])} (purged)</li>`);
  if (num(h[H.rescheduledFrom]))
    links.push(
      html`<li>
        requeued from
        ${fromDl ? dlLink(fromDl) : `dead letter ${String(h[H.rescheduledFrom])} (purged)`}${fromJob ? html`, which was ${jobLink(task, fromJob)}` : ''}
      </li>`,
    );
  const pTask = typeof parent?.task === 'string' ? parent.task : null;
  const pId = num(parent?.id);
  if (pTask && pId) links.push(html`<li>child of flow parent ${jobLink(pTask, pId)}</li>`);
  return {
    title: `Job ${id} of ${task}`,
    active: 'tasks',
    body: html`<p><span class="badge ${j.state}" id="job-state" data-live>${j.state}</span></p>
      ${
        c.writable
          ? html`<form
              method="post"
              action="${u(c, `tasks/${enc(task)}/actions`)}"
              id="job-actions"
            >
              ${csrfField(c)}<input type="hidden" name="id" value="${id}" />
              <input type="hidden" name="back" value="job" />
              ${button(c, 'retry', 'Retry')}${button(c, 'cancel', 'Cancel')}${button(c, 'delete', 'Delete')}
            </form>`
          : html``
      }
      <table id="job-summary" data-live>
        <tbody>
          ${row('attempts', j.readCount)} ${row('enqueued at', j.enqueuedAt)}
          ${row('run at / lease until', j.visibleAt)} ${row('last started', j.lastReadAt ?? '–')}
          ${row('finished at', j.archivedAt ?? '–')}
          ${row('progress', outcome.progress === undefined ? '–' : JSON.stringify(outcome.progress))}
        </tbody>
      </table>
      ${
        links.length
          ? html`<ul id="job-links">
              ${links}
            </ul>`
          : html``
      }
      <h2>Attempts</h2>
      ${attemptsTable(attempts ?? [])}
      ${
        outcome.state === 'completed'
          ? html`<h2>Result</h2>
              <pre id="job-result">${resultText(outcome.result)}</pre>`
          : html``
      }
      ${
        death && (j.state === 'dead' || j.state === 'cancelled')
          ? html`<h2>${j.state === 'cancelled' ? 'Cancelled with' : 'Died of'}</h2>
              <pre id="job-error">${errorText(death)}</pre>`
          : html``
      }
      ${
        children.length
          ? html`<h2>Flow children</h2>
              ${table(
                'job-children',
                ['child', 'state', 'result / error'],
                children.map((ch) => [
                  html`<td>${jobLink(ch.task, ch.id)}</td>`,
                  html`<td>
                    <span class="badge ${ch.state ?? ''}">${ch.state ?? 'not finished'}</span>
                  </td>`,
                  html`<td>
                    <code
                      >${ch.error ? errorLine(ch.error) : ch.result === undefined ? '' : JSON.stringify(ch.result).slice(0, 200)}</code
                    >
                  </td>`,
                ]),
              )}`
          : html``
      }
      <h2>Input</h2>
      <pre>${JSON.stringify(j.message, null, 2)}</pre>
      <h2>Headers</h2>
      <pre>${JSON.stringify(h, null, 2)}</pre>`,
  };
}

const row = (k: string, v: unknown): Html =>
  html`<tr>
    <th>${k}</th>
    <td>${v}</td>
  </tr>`;

/** One row per attempt: outcome, timings, the error with its stack folded. */
function attemptsTable(attempts: readonly JobAttempt[]): Html {
  return table(
    'job-attempts',
    ['#', 'outcome', 'started', 'finished', 'duration', 'error'],
    attempts.map((a) => [
      td(a.attempt),
      html`<td><span class="badge ${a.outcome}">${a.outcome}</span></td>`,
      td(a.startedAt ?? '–'),
      td(a.finishedAt ?? '–'),
      html`<td class="n">${duration(a.startedAt, a.finishedAt)}</td>`,
      html`<td>
        ${
          a.error
            ? html`${errorLine(a.error)}${
                a.error.stack
                  ? html`<details id="stack-${a.attempt}">
                      <summary>stack</summary>
                      <pre class="stack">${a.error.stack}</pre>
                    </details>`
                  : html``
              }`
            : a.outcome === 'lost'
              ? html`<span class="muted">no report: the worker died or lost the lease</span>`
              : html``
        }
      </td>`,
    ]),
  );
}

export function duration(from: Date | null, to: Date | null): string {
  if (!from || !to) return '–';
  const ms = to.getTime() - from.getTime();
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(2)} s`;
  return `${(ms / 60_000).toFixed(1)} min`;
}

const resultText = (r: unknown): string =>
  r === undefined ? '(none stored)' : JSON.stringify(r, null, 2);

function errorLine(e: StoredError): string {
  return `${e.class ?? e.name ?? 'Error'}: ${e.message ?? ''}`;
}

/** The stack when there is one (it starts with the class and message), else class: message. */
function errorText(err: StoredError): string {
  if (typeof err.stack === 'string' && err.stack) return err.stack;
  return errorLine(err);
}

interface LinkedDeadLetter {
  msg: BrowsedMessage;
  /** Archived: requeued (x-pgferry-rescheduled-as) or otherwise gone from the queue. */
  archived: boolean;
}

/** A task's dead letter by id, waiting in `<task>_dlq` or archived there; null when purged. */
async function deadLetter(
  c: PageContext,
  task: string,
  id: number | null,
): Promise<LinkedDeadLetter | null> {
  if (id === null) return null;
  for (const archived of [false, true]) {
    const [msg] = await browseMessages(c.ops.read, c.ops.schemas.queue, task + '_dlq', {
      id,
      archive: archived,
      limit: 1,
    });
    if (msg) return { msg, archived };
  }
  return null;
}
