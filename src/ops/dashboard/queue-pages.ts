// Overview and queue pages.
import { browseMessages } from '../browse.js';
import { busStats, streamStats, taskStats } from '../engine-stats.js';
import { queueStats, type QueueStat } from '../queue-stats.js';
import { age, html, Html, sparkline, table, td, tl, tn } from './html.js';
import { button, card, csrfField, enc, filterFrom, searchForm, u } from './page-parts.js';
import type { PageContext, Rendered } from './page-parts.js';

function queueRows(c: PageContext, qs: QueueStat[]): Html[][] {
  return qs.map((q) => [
    tl(u(c, `queues/${enc(q.queue)}`), q.queue),
    tn(`${q.depthExact ? '' : '~'}${q.depth}`),
    html`<td>${sparkline(c.series.depth.get(q.queue) ?? [], `depth of ${q.queue}`)}</td>`,
    rateCell(c.series.sent.get(q.queue), `sent per second to ${q.queue}`),
    html`<td class="n" data-chart="age">
      ${sparkline(c.series.age.get(q.queue) ?? [], `oldest message age in ${q.queue}`)}
      ${age(q.oldestAgeSeconds)}
    </td>`,
    tn(q.inFlight),
    tn(q.delayed),
    tn(q.deadLetters),
    tn(`~${q.archivedEstimate}`),
  ]);
}
/** A row of labelled sparklines with their last values. */
export function charts(id: string, list: [string, readonly number[] | undefined][]): Html {
  return html`<div class="cards charts" id="${id}" data-live>
    ${list.map(([label, v]) => {
      const last = v?.length ? Number(v[v.length - 1]!.toFixed(2)) : '–';
      return html`<div class="card" data-chart="${label}">
        <span class="muted">${label}</span>${sparkline(v ?? [], label)} <b>${last}</b>
      </div>`;
    })}
  </div>`;
}

/** A sparkline of a rate series with its last value. */
export function rateCell(values: readonly number[] | undefined, label: string): Html {
  const r = values ?? [];
  const last = r.length ? r[r.length - 1]!.toFixed(1) : '–';
  return html`<td class="n">${sparkline(r, label)} ${last}</td>`;
}

const QUEUE_HEAD = [
  'queue',
  'depth',
  'depth trend',
  'sent/s',
  'oldest (message age)',
  'in flight',
  'delayed',
  'dead letters',
  'archived',
];

export async function overview(c: PageContext): Promise<Rendered> {
  const has = await c.ops.components();
  const parts: Html[] = [];
  if (has.queue) {
    const qs = await queueStats(c.ops.read, c.ops.schemas.queue);
    const sum = (f: (q: QueueStat) => number | null) => qs.reduce((n, q) => n + (f(q) ?? 0), 0);
    parts.push(
      html`<h2>Queues</h2>
        <div class="cards">
          ${card('ov-queues', 'queues', qs.length)}${card(
            'ov-depth',
            'messages',
            sum((q) => q.depth),
          )}${card(
            'ov-inflight',
            'in flight',
            sum((q) => q.inFlight),
          )}${card(
            'ov-dead',
            'dead letters',
            sum((q) => q.deadLetters),
          )}
        </div>`,
    );
    if (has.tasks) {
      const ts = await taskStats(c.ops, qs);
      const t = (k: 'queued' | 'running' | 'retrying' | 'dead' | 'scheduled') =>
        ts.reduce((n, x) => n + x[k], 0);
      parts.push(
        html`<h2>Tasks</h2>
          <div class="cards">
            ${card('ov-tasks', 'tasks', ts.length)}${card('ov-jobs-queued', 'queued', t('queued'))}${card('ov-jobs-running', 'running', t('running'))}${card('ov-jobs-scheduled', 'scheduled', t('scheduled'))}${card('ov-jobs-retrying', 'retrying', t('retrying'))}${card('ov-jobs-dead', 'dead', t('dead'))}
          </div>`,
      );
    }
    parts.push(table('ov-queue-table', QUEUE_HEAD, queueRows(c, qs)));
  }
  if (has.stream) {
    const s = await streamStats(c.ops);
    const lag = Math.max(0, ...s.consumers.map((x) => x.lagSeconds ?? 0));
    parts.push(
      html`<h2>Streams</h2>
        <div class="cards">
          ${card('ov-streams', 'streams', s.streams.length)}${card('ov-consumers', 'consumers', s.consumers.length)}${card('ov-lag', 'max consumer lag', age(lag))}
        </div>`,
    );
  }
  if (has.bus) {
    const b = await busStats(c.ops);
    parts.push(
      html`<h2>Bus</h2>
        <div class="cards">
          ${card('ov-channels', 'channels', b.length)}${card(
            'ov-members',
            'members',
            b.reduce((n, x) => n + x.members, 0),
          )}
        </div>`,
    );
  }
  return { title: 'Overview', active: '', body: html`${parts}` };
}

export async function queues(c: PageContext): Promise<Rendered> {
  const qs = await queueStats(c.ops.read, c.ops.schemas.queue);
  return {
    title: 'Queues',
    active: 'queues',
    body: html`${table('queue-table', QUEUE_HEAD, queueRows(c, qs))}
      <p class="muted">
        ~ marks planner estimates (queues above 10,000 rows without fast metrics).
      </p>`,
  };
}

export async function queueDetail(
  c: PageContext,
  name: string,
  q: URLSearchParams,
): Promise<Rendered | null> {
  const [s] = await queueStats(c.ops.read, c.ops.schemas.queue, [name]);
  if (!s) return null;
  const archive = q.get('archive') === '1';
  const msgs = await browseMessages(c.ops.read, c.ops.schemas.queue, name, {
    ...filterFrom(q),
    archive,
  });
  const isDlq = (await queueStats(c.ops.read, c.ops.schemas.queue)).some(
    (x) => x.deadLetterQueue === name,
  );
  // A task's dead letters link back to the job that died (and the job that requeued them).
  const jobLinks = msgs.some((m) => m.headers?.['x-pgferry-original-msg-id'] !== undefined);
  const rows = msgs.map((m) => [
    html`<td><input type="checkbox" name="id" value="${m.msgId}" /></td>`,
    ...(jobLinks ? [deadLetterLinks(c, m.headers ?? {})] : []),
    tn(m.msgId),
    tn(m.readCount),
    td(m.enqueuedAt),
    td(archive ? m.archivedAt : m.visibleAt),
    html`<td><code>${JSON.stringify(m.message).slice(0, 200)}</code></td>`,
    html`<td><code>${JSON.stringify(m.headers).slice(0, 200)}</code></td>`,
  ]);
  return {
    title: `Queue ${name}`,
    active: 'queues',
    body: html`<div class="cards">
        ${card('q-depth', 'depth', `${s.depthExact ? '' : '~'}${s.depth}`)}${card('q-oldest', 'oldest', age(s.oldestAgeSeconds))}${card('q-inflight', 'in flight', s.inFlight)}${card('q-delayed', 'delayed', s.delayed)}${card('q-dead', 'dead letters', s.deadLetters ?? '–')}${card('q-archived', 'archived (est.)', s.archivedEstimate)}
      </div>
      ${charts('q-charts', [
        ['depth', c.series.depth.get(name)],
        ['sent/s', c.series.sent.get(name)],
        ['left/s', c.series.left.get(name)],
        ['oldest message age (s)', c.series.age.get(name)],
      ])}
      <p class="muted">
        partitioned: ${s.partitioned} · unlogged: ${s.unlogged} · insert notifications:
        ${s.notifyInsert} · fast metrics: ${s.fastMetrics} · dead-letter queue:
        ${s.deadLetterQueue ?? 'none'}${s.maxReadCount ? ` after ${s.maxReadCount} reads` : ''}${isDlq ? ' · this is a dead-letter queue' : ''}
      </p>
      ${searchForm(q, html`<label><input type="checkbox" name="archive" value="1" ${new Html(archive ? 'checked' : '')} /> archive</label> `)}
      <form method="post" action="${u(c, `queues/${enc(name)}/actions`)}">
        ${csrfField(c)}
        ${archive ? html`` : html`${button(c, 'delete', 'Delete selected')}${button(c, 'archive', 'Archive selected')}${isDlq ? button(c, 'requeue', 'Requeue selected to their queue') : html``}`}
        ${table('messages', ['', ...(jobLinks ? ['job'] : []), 'id', 'reads', 'enqueued', archive ? 'archived' : 'visible at', 'message', 'headers'], rows, false)}
      </form>`,
  };
}

/** The job a task's dead letter came from, and the job it was requeued as. */
function deadLetterLinks(c: PageContext, h: Record<string, unknown>): Html {
  const task = h['x-pgferry-original-queue'];
  const link = (id: unknown, label: string) =>
    typeof task === 'string' && (typeof id === 'number' || typeof id === 'string')
      ? html`<a
          href="${u(c, `tasks/${enc(task)}/jobs/${enc(String(id))}`)}"
          data-job-link="${String(id)}"
          >${label} ${String(id)}</a
        >`
      : html``;
  const as = h['x-pgferry-rescheduled-as'];
  return html`<td>
    ${link(h['x-pgferry-original-msg-id'], 'died as')}${as === undefined ? html`` : html`<br />${link(as, 'requeued as')}`}
  </td>`;
}
