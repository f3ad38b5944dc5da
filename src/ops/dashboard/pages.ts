import { Cron } from 'croner';
import { H } from '../../tasks/headers.js';
import { browseJobs, browseMessages, JOB_STATES, type BrowseFilter } from '../browse.js';
import { busStats, cronStats, streamStats, taskStats } from '../engine-stats.js';
import type { Ops } from '../ops.js';
import { queueStats, type QueueStat } from '../queue-stats.js';
import type { JobState } from '../../tasks/client.js';
import { age, html, Html, sparkline, table, td, tl, tn } from './html.js';

/** What every page needs. */
export interface PageContext {
  ops: Ops;
  /** Base path ending in '/'. */
  base: string;
  writable: boolean;
  csrf: string;
  /** Recent depth samples per queue (for the sparklines). */
  history: Map<string, number[]>;
  /** Recent send rates (messages/s) per queue. */
  rates: Map<string, number[]>;
}

export interface Rendered {
  title: string;
  active: string;
  body: Html;
}

const u = (c: PageContext, path: string): string => c.base + path;
const enc = encodeURIComponent;

function card(id: string, label: string, value: unknown): Html {
  return html`<div class="card">
    <span class="muted">${label}</span><b id="${id}" data-live>${value}</b>
  </div>`;
}

function csrfField(c: PageContext): Html {
  return html`<input type="hidden" name="csrf" value="${c.csrf}" />`;
}

function button(c: PageContext, action: string, label: string): Html {
  return c.writable
    ? html`<button type="submit" name="action" value="${action}" data-action="${action}">
        ${label}
      </button> `
    : html``;
}

function queueRows(c: PageContext, qs: QueueStat[]): Html[][] {
  return qs.map((q) => [
    tl(u(c, `queues/${enc(q.queue)}`), q.queue),
    tn(`${q.depthExact ? '' : '~'}${q.depth}`),
    html`<td>${sparkline(c.history.get(q.queue) ?? [], `depth of ${q.queue}`)}</td>`,
    sendRate(c, q.queue),
    tn(age(q.oldestAgeSeconds)),
    tn(q.inFlight),
    tn(q.delayed),
    tn(q.deadLetters),
    tn(`~${q.archivedEstimate}`),
  ]);
}
function sendRate(c: PageContext, queue: string): Html {
  const r = c.rates.get(queue) ?? [];
  const last = r.length ? r[r.length - 1]!.toFixed(1) : '–';
  return html`<td class="n">${sparkline(r, `sent per second to ${queue}`)} ${last}</td>`;
}

const QUEUE_HEAD = [
  'queue',
  'depth',
  'depth trend',
  'sent/s',
  'oldest',
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

export function filterFrom(q: URLSearchParams): BrowseFilter {
  const obj = (key: string): Record<string, unknown> | undefined => {
    const raw = q.get(key)?.trim();
    if (!raw) return undefined;
    const eq = raw.indexOf('=');
    if (eq < 1) return { [raw]: true }; // bare field: nothing sensible; caught as a shape mismatch
    const path = raw.slice(0, eq).split('.');
    let value: unknown = raw.slice(eq + 1);
    try {
      value = JSON.parse(value as string);
    } catch {
      // a bare word
    }
    for (const k of path.reverse()) value = { [k]: value };
    return value as Record<string, unknown>;
  };
  const id = q.get('id') ? Number(q.get('id')) : undefined;
  const after = q.get('after') ? Number(q.get('after')) : undefined;
  const payload = obj('where');
  const headers = obj('header');
  return {
    ...(id !== undefined ? { id } : {}),
    ...(after !== undefined ? { afterId: after } : {}),
    ...(payload ? { payload } : {}),
    ...(headers ? { headers } : {}),
    limit: 100,
  };
}

function searchForm(q: URLSearchParams, extra: Html = html``): Html {
  return html`<form method="get" id="search">
    id <input name="id" size="6" value="${q.get('id') ?? ''}" /> payload
    <input name="where" placeholder="field.path=value" value="${q.get('where') ?? ''}" /> header
    <input name="header" placeholder="name=value" value="${q.get('header') ?? ''}" />
    ${extra}<button type="submit">search</button>
  </form>`;
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
  const rows = msgs.map((m) => [
    html`<td><input type="checkbox" name="id" value="${m.msgId}" /></td>`,
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
      <p class="muted">
        partitioned: ${s.partitioned} · unlogged: ${s.unlogged} · insert notifications:
        ${s.notifyInsert} · fast metrics: ${s.fastMetrics} · dead-letter queue:
        ${s.deadLetterQueue ?? 'none'}${s.maxReadCount ? ` after ${s.maxReadCount} reads` : ''}${isDlq ? ' · this is a dead-letter queue' : ''}
      </p>
      ${searchForm(q, html`<label><input type="checkbox" name="archive" value="1" ${new Html(archive ? 'checked' : '')} /> archive</label> `)}
      <form method="post" action="${u(c, `queues/${enc(name)}/actions`)}">
        ${csrfField(c)}
        ${archive ? html`` : html`${button(c, 'delete', 'Delete selected')}${button(c, 'archive', 'Archive selected')}${isDlq ? button(c, 'requeue', 'Requeue selected to their queue') : html``}`}
        ${table('messages', ['', 'id', 'reads', 'enqueued', archive ? 'archived' : 'visible at', 'message', 'headers'], rows, false)}
      </form>`,
  };
}

export async function tasks(c: PageContext): Promise<Rendered> {
  const ts = await taskStats(c.ops);
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
    body: html`${table(
        'task-table',
        ['task', 'queued', 'scheduled', 'running', 'retrying', 'dead', 'finished (est.)', 'oldest'],
        ts.map((t) => [
          tl(u(c, `tasks/${enc(t.task)}`), t.task),
          tn(t.queued),
          tn(t.scheduled),
          tn(t.running),
          tn(t.retrying),
          tn(t.dead),
          tn(t.archivedEstimate),
          tn(age(t.oldestAgeSeconds)),
        ]),
      )}
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
      <p class="muted">Pausing and resuming a task queue is not available yet.</p>`,
  };
}

export async function taskDetail(
  c: PageContext,
  task: string,
  q: URLSearchParams,
): Promise<Rendered | null> {
  const [t] = (await taskStats(c.ops)).filter((x) => x.task === task);
  if (!t) return null;
  const state = (q.get('state') || undefined) as JobState | undefined;
  const jobs = await browseJobs(c.ops.read, c.ops.schemas.queue, task, {
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
      ${searchForm(q, stateSelect)}
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

export async function jobDetail(
  c: PageContext,
  task: string,
  id: number,
): Promise<Rendered | null> {
  const [j] = await browseJobs(c.ops.read, c.ops.schemas.queue, task, { id });
  if (!j) return null;
  const h = j.headers ?? {};
  const err = (h[H.error] ?? h[H.lastError]) as Record<string, unknown> | undefined;
  const dlId = h[H.deadLetterId];
  const dl =
    typeof dlId === 'number' || typeof dlId === 'string'
      ? await c.ops.tasks.deadLetters(task).get(Number(dlId))
      : null;
  return {
    title: `Job ${id} of ${task}`,
    active: 'tasks',
    body: html`<p><span class="badge ${j.state}" id="job-state" data-live>${j.state}</span></p>
      <table>
        <tbody>
          <tr>
            <th>attempts</th>
            <td>${j.readCount}</td>
          </tr>
          <tr>
            <th>enqueued at</th>
            <td>${j.enqueuedAt}</td>
          </tr>
          <tr>
            <th>run at / lease until</th>
            <td>${j.visibleAt}</td>
          </tr>
          <tr>
            <th>last started</th>
            <td>${j.lastReadAt ?? '–'}</td>
          </tr>
          <tr>
            <th>finished at</th>
            <td>${j.archivedAt ?? '–'}</td>
          </tr>
          <tr>
            <th>dead letter</th>
            <td>
              ${dl ? html`id ${dl.id} in ${task}_dlq, failed ${dl.failedAt}, ${dl.attempts} attempts` : dlId ? `id ${String(dlId)} (rescheduled or purged)` : '–'}
            </td>
          </tr>
        </tbody>
      </table>
      <h2>Input</h2>
      <pre>${JSON.stringify(j.message, null, 2)}</pre>
      ${
        err
          ? html`<h2>Error</h2>
              <pre id="job-error">${errorText(err)}</pre>`
          : html``
      }
      <h2>Headers</h2>
      <pre>${JSON.stringify(h, null, 2)}</pre>`,
  };
}

export async function streams(c: PageContext): Promise<Rendered> {
  const s = await streamStats(c.ops);
  const dlq = [];
  for (const st of s.streams)
    for (const d of await c.ops.streams.dlqInspect(st.queueName, { limit: 50 }))
      dlq.push({ stream: st.queueName, d });
  return {
    title: 'Streams',
    active: 'streams',
    body: html`${table(
        'stream-table',
        [
          'stream',
          'ticker lag',
          'new events',
          'events/s',
          'last tick',
          'paused',
          'external ticker',
        ],
        s.streams.map((q) => [
          td(q.queueName),
          tn(age(q.tickerLagSeconds)),
          tn(q.newEvents),
          tn(q.eventsPerSecond?.toFixed(2)),
          tn(q.lastTickId),
          td(q.paused),
          td(q.externalTicker),
        ]),
      )}
      <h2>Consumers</h2>
      ${table(
        'consumer-table',
        [
          'stream',
          'consumer',
          'lag',
          'last seen',
          'pending events',
          'batch in flight',
          'last tick',
        ],
        s.consumers.map((x) => [
          td(x.queueName),
          td(x.consumerName),
          tn(age(x.lagSeconds)),
          tn(age(x.lastSeenSeconds)),
          tn(x.pendingEvents),
          tn(x.currentBatch),
          tn(x.lastTick),
        ]),
      )}
      <h2>Dead letters</h2>
      <form method="post" action="${u(c, 'streams/actions')}">
        ${csrfField(c)}${button(c, 'replay', 'Replay selected')}${table(
          'stream-dlq',
          ['', 'dead letter', 'stream', 'event', 'type', 'reason', 'failed at', 'data'],
          dlq.map(({ stream, d }) => [
            html`<td><input type="checkbox" name="id" value="${d.dlId}" /></td>`,
            tn(d.dlId),
            td(stream),
            tn(d.evId),
            td(d.evType),
            td(d.reason),
            td(d.time),
            html`<td><code>${(d.evData ?? '').slice(0, 160)}</code></td>`,
          ]),
          false,
        )}
      </form>`,
  };
}

export async function bus(c: PageContext): Promise<Rendered> {
  const b = await busStats(c.ops);
  return {
    title: 'Bus',
    active: 'bus',
    body: html`<p class="muted">
        The bus stores channels only as their sha256 (knowing the name is the capability), so
        channels are listed by hash.
      </p>
      ${table(
        'bus-table',
        ['channel (sha256)', 'members', 'live', 'oldest member since'],
        b.map((x) => [
          html`<td><code>${x.channelHash}</code></td>`,
          tn(x.members),
          tn(x.live),
          td(x.oldestJoinedAt),
        ]),
      )}`,
  };
}

export function notFound(): Html {
  return html`<p>No such page (or that engine is not installed).</p>`;
}

/** The stack when there is one (it starts with the class and message), else class: message. */
function errorText(err: Record<string, unknown>): string {
  if (typeof err.stack === 'string' && err.stack) return err.stack;
  return `${String(err.class ?? err.name ?? 'Error')}: ${String(err.message ?? '')}`;
}
