import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { InvalidArgumentError, PgferryError } from '../../errors.js';
import { browseJobs, type BrowsedJob } from '../browse.js';
import { runJobAction, type JobAction } from '../job-actions.js';
import { runBulk } from './bulk-page.js';
import { runQueueAction, type QueueAction } from '../queue-actions.js';
import { Ops, type OpsOptions } from '../ops.js';
import { PROMETHEUS_CONTENT_TYPE, renderMetrics } from '../prometheus.js';
import { queueStats } from '../queue-stats.js';
import { newSeries, sampler } from './samples.js';
import type { TaskMetrics } from '../task-metrics.js';
import type { JobState } from '../../tasks/client.js';
import { page } from './html.js';
import * as pages from './pages.js';

export interface DashboardAuth {
  /** Accept `Authorization: Bearer <token>` (scrapers, proxies that inject it). */
  bearerToken?: string;
  /** Accept HTTP basic auth with these credentials (browsers prompt for it). */
  basic?: { username: string; password: string };
}

export interface DashboardOptions extends OpsOptions {
  /** Use this Ops (its pools) instead of making one from the connection options. */
  ops?: Ops;
  /** Path the dashboard is mounted at. Default '/'. */
  basePath?: string;
  /** Credentials; without any, every request is let in (bind to localhost, the default of startDashboard). */
  auth?: DashboardAuth;
  /** Enables the actions (delete, archive, requeue, retry, cancel, replay). Default false: read-only. */
  allowWrites?: boolean;
  /** How often open pages refresh their numbers, in ms (0: never). Default 5000. */
  refreshMs?: number;
  /** In-process task counters to include in /metrics. */
  taskMetrics?: TaskMetrics;
}

export type NodeHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  next?: (err?: unknown) => void,
) => void;

export interface DashboardHandler extends NodeHandler {
  readonly ops: Ops;
  /** Closes the pools the handler made (not a given `ops`). */
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 1 << 20;

/**
 * The dashboard as a Node request handler (`(req, res, next?)`): mount it on
 * any http server, Express, Fastify or Hono app under `basePath`. Requests
 * outside `basePath` go to `next()` (or get a 404 without one).
 */
export function dashboardHandler(options: DashboardOptions = {}): DashboardHandler {
  const ops = options.ops ?? new Ops(options);
  const base = normaliseBase(options.basePath ?? '/');
  const writable = options.allowWrites ?? false;
  const refreshMs = options.refreshMs ?? 5000;
  if (!Number.isInteger(refreshMs) || refreshMs < 0)
    throw new InvalidArgumentError('refreshMs must be a non-negative integer');
  const auth = options.auth ?? {};
  if (auth.bearerToken !== undefined && auth.bearerToken.length < 8)
    throw new InvalidArgumentError('the dashboard bearer token must be at least 8 characters');
  const csrf = randomBytes(16).toString('hex');
  const series = newSeries();
  const addSample = sampler(series);
  let sampledAt = 0;

  const sample = async (): Promise<void> => {
    const now = Date.now();
    if (now - sampledAt < Math.max(1000, refreshMs / 2)) return;
    sampledAt = now;
    addSample(await queueStats(ops.read, ops.schemas.queue), now);
  };

  const handle = async (
    req: IncomingMessage,
    res: ServerResponse,
    next?: (err?: unknown) => void,
  ) => {
    const full = (req as { originalUrl?: string }).originalUrl ?? req.url ?? '/';
    const url = new URL(full, 'http://localhost');
    const path = url.pathname === base.slice(0, -1) ? base : url.pathname;
    if (!path.startsWith(base)) {
      if (next) return next();
      return send(res, 404, 'text/plain; charset=utf-8', 'not found');
    }
    if (!authorised(req, auth)) {
      res.setHeader(
        'www-authenticate',
        auth.basic ? 'Basic realm="pgferry", charset="UTF-8"' : 'Bearer realm="pgferry"',
      );
      return send(res, 401, 'text/plain; charset=utf-8', 'authentication required');
    }
    const rest = path.slice(base.length).replace(/\/+$/, '');
    const seg = rest === '' ? [] : rest.split('/').map(decodeURIComponent);
    if (req.method === 'POST') return post(req, res, seg);
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return send(res, 405, 'text/plain', 'method not allowed');
    if (seg[0] === 'metrics' && seg.length === 1)
      return send(
        res,
        200,
        PROMETHEUS_CONTENT_TYPE,
        await renderMetrics(ops, options.taskMetrics ? { taskMetrics: options.taskMetrics } : {}),
      );
    const c: pages.PageContext = {
      ops,
      base,
      writable,
      csrf,
      series,
      refresh: req.headers['x-pgferry-refresh'] === '1',
    };
    const installed = await ops.components();
    let r: pages.Rendered | null = null;
    if (installed.queue) await sample();
    if (seg.length === 0) r = await pages.overview(c);
    else if (seg[0] === 'queues' && installed.queue) {
      if (seg.length === 1) r = await pages.queues(c);
      else if (seg.length === 2) r = await pages.queueDetail(c, seg[1]!, url.searchParams);
    } else if (seg[0] === 'tasks' && installed.tasks) {
      if (seg.length === 1) r = await pages.tasks(c, url.searchParams);
      else if (seg.length === 2) r = await pages.taskDetail(c, seg[1]!, url.searchParams);
      else if (seg.length === 4 && seg[2] === 'jobs' && /^\d+$/.test(seg[3]!))
        r = await pages.jobDetail(c, seg[1]!, Number(seg[3]));
    } else if (seg[0] === 'streams' && seg.length === 1 && installed.stream)
      r = await pages.streams(c);
    else if (seg[0] === 'bus' && seg.length === 1 && installed.bus) r = await pages.bus(c);
    if (!r)
      return send(
        res,
        404,
        'text/html; charset=utf-8',
        page(
          { base, title: 'Not found', active: '', refreshMs: 0, writable, installed },
          pages.notFound(),
        ),
      );
    send(
      res,
      200,
      'text/html; charset=utf-8',
      page(
        {
          base,
          title: r.title,
          active: r.active,
          refreshMs,
          writable,
          installed,
          flash: url.searchParams.get('flash') ?? undefined,
        },
        r.body,
      ),
    );
  };

  const post = async (req: IncomingMessage, res: ServerResponse, seg: string[]) => {
    if (!writable)
      return send(
        res,
        403,
        'text/plain; charset=utf-8',
        'the dashboard is read-only (start it with write access enabled)',
      );
    const form = await readForm(req);
    const given = Buffer.from(form.get('csrf') ?? '');
    if (given.length !== csrf.length || !timingSafeEqual(given, Buffer.from(csrf)))
      return send(
        res,
        403,
        'text/plain; charset=utf-8',
        'bad or missing form token; reload the page',
      );
    const action = form.get('action') ?? '';
    const ids = form
      .getAll('id')
      .map(Number)
      .filter((n) => Number.isSafeInteger(n) && n > 0);
    let back = base;
    let msg: string;
    if (seg[0] === 'queues' && seg.length === 3 && seg[2] === 'actions') {
      const q = seg[1]!;
      back = `${base}queues/${encodeURIComponent(q)}`;
      if (!/^(delete|archive|requeue)$/.test(action))
        return send(res, 400, 'text/plain', 'unknown action');
      msg = ids.length
        ? await runQueueAction(ops, q, action as QueueAction, ids)
        : 'nothing selected';
    } else if (
      seg[0] === 'tasks' &&
      seg.length === 3 &&
      seg[2] === 'actions' &&
      /^(pause|resume)$/.test(action)
    ) {
      back = `${base}tasks`;
      const changed = await ops.writeTasks[action as 'pause' | 'resume'](seg[1]!);
      msg = `${seg[1]}: ${changed ? `${action}d` : `already ${action}d`}`;
    } else if (seg[0] === 'tasks' && seg.length === 3 && seg[2] === 'bulk') {
      back = `${base}tasks`;
      msg = await runBulk(ops, seg[1]!, form);
    } else if (seg[0] === 'tasks' && seg.length === 3 && seg[2] === 'actions') {
      const task = seg[1]!;
      back = `${base}tasks/${encodeURIComponent(task)}`;
      if (!['retry', 'cancel', 'delete'].includes(action))
        return send(res, 400, 'text/plain', 'unknown action');
      let jobs: BrowsedJob[] = [];
      if (form.get('scope') === 'filter') {
        const state = (form.get('state') || undefined) as JobState | undefined;
        const f = pages.filterFrom(new URLSearchParams({ where: form.get('where') ?? '' }));
        if (!state && !f.payload)
          return send(res, 400, 'text/plain', 'a filter action needs a state or a payload search');
        jobs = await browseJobs(ops.write, ops.schemas.tasks, task, {
          ...f,
          ...(state ? { state } : {}),
          limit: 1000,
        });
      } else
        for (const id of ids)
          jobs.push(...(await browseJobs(ops.write, ops.schemas.tasks, task, { id })));
      const r = await runJobAction(ops, action as JobAction, task, jobs);
      msg = `${action}: ${r.filter((x) => x.outcome === 'done').length} of ${r.length} done`;
      // From a job's page: back there, with what happened to the job.
      if (form.get('back') === 'job' && ids.length === 1 && r[0]) {
        msg = `${action}: ${r[0].outcome} (${r[0].detail})`;
        if (action !== 'delete' || r[0].outcome !== 'done') back = `${back}/jobs/${ids[0]}`;
      }
    } else if (seg[0] === 'streams' && seg[1] === 'actions' && action === 'replay') {
      back = `${base}streams`;
      let n = 0;
      for (const id of ids) {
        await ops.writeStreams.requeueDeadLetter(id);
        n++;
      }
      msg = `replayed ${n}`;
    } else return send(res, 404, 'text/plain', 'no such action');
    res.writeHead(303, { location: `${back}?flash=${encodeURIComponent(msg)}` });
    res.end();
  };

  const handler = ((req, res, next) => {
    handle(req, res, next).catch((err: unknown) => {
      if (res.headersSent) return res.destroy();
      const bad = err instanceof PgferryError;
      send(
        res,
        bad ? 400 : 500,
        'text/plain; charset=utf-8',
        `${bad ? (err as PgferryError).code + ': ' : ''}${err instanceof Error ? err.message : String(err)}`,
      );
    });
  }) as DashboardHandler;
  Object.defineProperty(handler, 'ops', { value: ops });
  handler.close = async () => {
    if (!options.ops) await ops.close();
  };
  return handler;
}

function normaliseBase(b: string): string {
  if (!b.startsWith('/')) throw new InvalidArgumentError(`basePath must start with "/", got ${b}`);
  return b.endsWith('/') ? b : b + '/';
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function authorised(req: IncomingMessage, auth: DashboardAuth): boolean {
  if (auth.bearerToken === undefined && auth.basic === undefined) return true;
  const h = req.headers.authorization ?? '';
  const sp = h.indexOf(' ');
  const scheme = h.slice(0, sp).toLowerCase();
  const value = h.slice(sp + 1).trim();
  if (scheme === 'bearer' && auth.bearerToken !== undefined) return same(value, auth.bearerToken);
  if (scheme === 'basic' && auth.basic) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i < 0) return false;
    // Compare both parts (no early exit on the user name).
    const u = same(decoded.slice(0, i), auth.basic.username);
    const p = same(decoded.slice(i + 1), auth.basic.password);
    return u && p;
  }
  return false;
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, {
    'content-type': type,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'content-security-policy':
      "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; form-action 'self'",
    'referrer-policy': 'no-referrer',
  });
  res.end(body);
}

/**
 * The form of a POST. A body parser mounted before the dashboard (Express's
 * `express.urlencoded()`) has read the request already: take its `req.body`,
 * or say so instead of waiting for a body that will never come.
 */
async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  if (!req.readableEnded) return new URLSearchParams(await readBody(req));
  const parsed = (req as { body?: unknown }).body;
  if (!parsed || typeof parsed !== 'object' || Buffer.isBuffer(parsed))
    throw new InvalidArgumentError(
      'the request body was already read by something mounted before the dashboard; mount the dashboard before body parsers',
    );
  const form = new URLSearchParams();
  for (const [k, v] of Object.entries(parsed))
    for (const x of [v].flat()) if (typeof x === 'string') form.append(k, x);
  return form;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new InvalidArgumentError('request body too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
