import type * as Otel from '@opentelemetry/api';
import type { Headers } from '../queue/index.js';

/**
 * OpenTelemetry tracing (optional peer dependency `@opentelemetry/api`).
 * Nothing is imported until `enableTracing()`; until then every hook below is
 * one boolean test and a direct call. Span names, kinds and attributes follow
 * the OTel messaging semantic conventions; the trace context travels in the
 * message headers as W3C `traceparent` / `tracestate`.
 */
let api: typeof Otel | null = null;
let tracer: Otel.Tracer | null = null;

export const TRACEPARENT = 'traceparent';
export const TRACESTATE = 'tracestate';
const SYSTEM = 'pgferry';
const VERSION = '0.1.0';

export interface EnableTracingOptions {
  /** A TracerProvider to use instead of the global one (e.g. in tests). */
  tracerProvider?: unknown;
}

/**
 * Turns tracing on. Resolves to false (and stays off) when
 * `@opentelemetry/api` is not installed.
 */
export async function enableTracing(options: EnableTracingOptions = {}): Promise<boolean> {
  try {
    api = (await import('@opentelemetry/api')) as typeof Otel;
  } catch {
    api = null;
    tracer = null;
    return false;
  }
  const provider = (options.tracerProvider as Otel.TracerProvider | undefined) ?? api.trace;
  tracer = provider.getTracer(SYSTEM, VERSION);
  return true;
}

export function disableTracing(): void {
  api = null;
  tracer = null;
}

export function tracingEnabled(): boolean {
  return tracer !== null;
}

/** `traceparent` for a span context (W3C Trace Context, version 00). */
function traceparent(sc: Otel.SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 1).toString(16).padStart(2, '0')}`;
}

const TP = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The remote parent context carried in message headers, or the root context. */
function extract(a: typeof Otel, headers: Headers | null | undefined): Otel.Context {
  const tp = headers?.[TRACEPARENT];
  const m = typeof tp === 'string' ? TP.exec(tp) : null;
  if (!m || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return a.ROOT_CONTEXT;
  const ts = headers?.[TRACESTATE];
  return a.trace.setSpanContext(a.ROOT_CONTEXT, {
    traceId: m[1]!,
    spanId: m[2]!,
    traceFlags: parseInt(m[3]!, 16) & 1,
    isRemote: true,
    ...(typeof ts === 'string' && ts ? { traceState: a.createTraceState(ts) } : {}),
  });
}

function attrs(op: string, destination: string, extra: Otel.Attributes = {}): Otel.Attributes {
  return {
    'messaging.system': SYSTEM,
    'messaging.operation.type': op,
    'messaging.operation.name': op,
    'messaging.destination.name': destination,
    ...extra,
  };
}

function fail(a: typeof Otel, span: Otel.Span, err: unknown): void {
  span.recordException(err instanceof Error ? err : String(err));
  span.setStatus({
    code: a.SpanStatusCode.ERROR,
    message: err instanceof Error ? err.message : String(err),
  });
  span.setAttribute('error.type', err instanceof Error ? err.constructor.name : typeof err);
}

/** Runs `fn` as `span`'s work: an error is recorded on it (and rethrown); the span ends either way. */
async function inSpan<R>(a: typeof Otel, span: Otel.Span, fn: () => Promise<R>): Promise<R> {
  try {
    return await fn();
  } catch (err) {
    fail(a, span, err);
    throw err;
  } finally {
    span.end();
  }
}

/**
 * A PRODUCER span `send <destination>`, active while `fn` runs; `fn` gets the
 * span's trace context as headers (`traceparent`, `tracestate`), or null
 * when tracing is off.
 */
function producer<R>(
  destination: string,
  extra: Otel.Attributes,
  fn: (context: Headers | null) => Promise<R>,
  id?: (r: R) => number | string,
): Promise<R> {
  const a = api;
  const t = tracer;
  if (!a || !t) return fn(null);
  return t.startActiveSpan(
    `send ${destination}`,
    { kind: a.SpanKind.PRODUCER, attributes: attrs('send', destination, extra) },
    (span) =>
      inSpan(a, span, async () => {
        const h: Headers = { [TRACEPARENT]: traceparent(span.spanContext()) };
        const state = span.spanContext().traceState?.serialize();
        if (state) h[TRACESTATE] = state;
        const r = await fn(h);
        if (id) span.setAttribute('messaging.message.id', String(id(r)));
        return r;
      }),
  );
}

/**
 * A PRODUCER span `send <destination>` around a send; `fn` gets the headers
 * with this span's `traceparent` added (a copy: the caller's object is left
 * alone). `id` names the message id(s) for `messaging.message.id`.
 */
export function traceSend<R>(
  destination: string,
  headers: Headers | null | undefined,
  fn: (headers: Headers | null | undefined) => Promise<R>,
  id?: (r: R) => number | string,
): Promise<R> {
  return producer(destination, {}, (tc) => fn(tc ? { ...(headers ?? {}), ...tc } : headers), id);
}

/**
 * One PRODUCER span `send <destination>` around a batch send of `count`
 * messages; `fn` gets the span's trace context (null when tracing is off),
 * to add to every message's headers, so each message's consumer span is a
 * child of this one.
 */
export function traceSendBatch<R>(
  destination: string,
  count: number,
  fn: (context: Headers | null) => Promise<R>,
): Promise<R> {
  return producer(destination, { 'messaging.batch.message_count': count }, fn);
}

/** A CLIENT span `receive <destination>` around a read; records how many messages came. */
export async function traceReceive<R extends readonly unknown[]>(
  destination: string,
  fn: () => Promise<R>,
): Promise<R> {
  const a = api;
  const t = tracer;
  if (!a || !t) return fn();
  const span = t.startSpan(`receive ${destination}`, {
    kind: a.SpanKind.CLIENT,
    attributes: attrs('receive', destination),
  });
  return inSpan(a, span, async () => {
    const r = await fn();
    span.setAttribute('messaging.batch.message_count', r.length);
    return r;
  });
}

/** The process span of each running job, so the settle span can be its child. */
const processSpans = new WeakMap<object, Otel.Span>();

/** What process/settle spans need to know about a job. */
export interface TracedJob {
  id: number;
  /** The task (or bus channel): the span's destination. */
  task: string;
  /** The delivery count, when known. */
  attempt?: number;
  headers: Headers | null | undefined;
  /** The consumer group (`messaging.consumer.group.name`); default the task. */
  consumerGroup?: string;
}

/**
 * A CONSUMER span `process <task>` around a handler, a child of the span that
 * sent the job (its `traceparent` header), active while the handler runs so
 * the handler's own spans nest under it.
 */
export async function traceProcess<R>(job: TracedJob, fn: () => R | Promise<R>): Promise<R> {
  const a = api;
  const t = tracer;
  if (!a || !t) return fn();
  const span = t.startSpan(
    `process ${job.task}`,
    {
      kind: a.SpanKind.CONSUMER,
      attributes: attrs('process', job.task, {
        'messaging.message.id': String(job.id),
        ...(job.attempt === undefined ? {} : { 'messaging.message.delivery_count': job.attempt }),
        'messaging.consumer.group.name': job.consumerGroup ?? job.task,
      }),
    },
    extract(a, job.headers),
  );
  processSpans.set(job, span);
  return inSpan(a, span, async () => a.context.with(a.trace.setSpan(a.context.active(), span), fn));
}

export type SettleOutcome = 'ack' | 'retry' | 'dead_letter' | 'cancel';

/** A CLIENT span `settle <task>` (ack / retry / dead_letter / cancel), child of the job's process span. */
export function traceSettle(
  job: TracedJob,
  outcome: SettleOutcome,
  extra: Record<string, string | number | boolean> = {},
): void {
  const a = api;
  const t = tracer;
  if (!a || !t) return;
  const parent = processSpans.get(job);
  const ctx = parent ? a.trace.setSpan(a.ROOT_CONTEXT, parent) : extract(a, job.headers);
  t.startSpan(
    `settle ${job.task}`,
    {
      kind: a.SpanKind.CLIENT,
      attributes: attrs('settle', job.task, {
        'messaging.message.id': String(job.id),
        'pgferry.settle.outcome': outcome,
        ...extra,
      }),
    },
    ctx,
  ).end();
}

/** What a Worker offers for settle spans (its events). */
interface WorkerLike {
  on(event: 'job:success', l: (job: TracedJob) => void): unknown;
  on(event: 'job:retry', l: (job: TracedJob, err: unknown, delayMs: number) => void): unknown;
  on(event: 'job:dead', l: (job: TracedJob, err: unknown, id: number | null) => void): unknown;
  on(event: 'job:cancelled', l: (job: TracedJob) => void): unknown;
}

/** Settle spans from a worker's events (a no-op per event while tracing is off). */
export function traceWorkerOutcomes(worker: WorkerLike): void {
  worker.on('job:success', (job) => traceSettle(job, 'ack'));
  worker.on('job:retry', (job, _err, delayMs) =>
    traceSettle(job, 'retry', { 'pgferry.retry.delay_ms': delayMs }),
  );
  worker.on('job:dead', (job, _err, id) =>
    traceSettle(job, 'dead_letter', id === null ? {} : { 'pgferry.dead_letter.id': String(id) }),
  );
  worker.on('job:cancelled', (job) => traceSettle(job, 'cancel'));
}
