import type { IncomingMessage, ServerResponse } from 'node:http';
import { busStats, streamStats, taskStats } from './engine-stats.js';
import type { Ops } from './ops.js';
import { queueStats } from './queue-stats.js';
import { DURATION_BUCKETS_SECONDS, type TaskMetrics } from './task-metrics.js';

/** Prometheus text exposition format 0.0.4. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Labels = Record<string, string>;

class Exposition {
  private readonly lines: string[] = [];
  family(name: string, type: 'gauge' | 'counter' | 'histogram', help: string): void {
    this.lines.push(`# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`);
    this.lines.push(`# TYPE ${name} ${type}`);
  }
  sample(name: string, labels: Labels, value: number | null): void {
    if (value === null) return;
    const l = Object.entries(labels)
      .map(
        ([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`,
      )
      .join(',');
    const v = Number.isFinite(value) ? String(value) : value > 0 ? '+Inf' : 'NaN';
    this.lines.push(`${name}${l ? `{${l}}` : ''} ${v}`);
  }
  text(): string {
    return this.lines.join('\n') + '\n';
  }
}

export interface MetricsOptions {
  /** In-process task counters (attach your workers to it). */
  taskMetrics?: TaskMetrics;
}

/**
 * Renders every metric as Prometheus text. Database figures come from
 * queueStats (no table scans: fast-metrics counters, bounded counts, index
 * reads and planner estimates), the stream engine's get_queue_info /
 * get_consumer_info, and the bus member registry; task counters and
 * histograms from `taskMetrics`.
 */
export async function renderMetrics(ops: Ops, options: MetricsOptions = {}): Promise<string> {
  const e = new Exposition();
  const has = await ops.components();
  if (has.queue) {
    const qs = await queueStats(ops.read, ops.schemas.queue);
    const gauge = (name: string, help: string, get: (q: (typeof qs)[number]) => number | null) => {
      e.family(name, 'gauge', help);
      for (const q of qs) e.sample(name, { queue: q.queue }, get(q));
    };
    gauge(
      'pgferry_queue_depth',
      'Messages in the queue (exact with fast metrics or up to 10000 rows, else the planner estimate).',
      (q) => q.depth,
    );
    gauge('pgferry_queue_depth_exact', '1 when pgferry_queue_depth is exact.', (q) =>
      q.depthExact ? 1 : 0,
    );
    gauge(
      'pgferry_queue_oldest_message_age_seconds',
      'Age of the oldest message in the queue.',
      (q) => q.oldestAgeSeconds ?? 0,
    );
    gauge(
      'pgferry_queue_in_flight',
      'Messages read and not finished (lease running).',
      (q) => q.inFlight,
    );
    gauge('pgferry_queue_delayed', 'Messages not visible yet and never read.', (q) => q.delayed);
    gauge(
      'pgferry_queue_dead_letters',
      "Messages in the queue's dead-letter queue.",
      (q) => q.deadLetters,
    );
    e.family(
      'pgferry_queue_messages_sent_total',
      'counter',
      'Messages sent to the queue (its msg_id sequence); rate() is the send throughput.',
    );
    for (const q of qs)
      e.sample('pgferry_queue_messages_sent_total', { queue: q.queue }, q.sentTotal);
    gauge(
      'pgferry_queue_archived_estimate',
      'Rows in the archive table (planner estimate).',
      (q) => q.archivedEstimate,
    );
    if (has.tasks) {
      const ts = await taskStats(ops, qs);
      e.family(
        'pgferry_task_jobs',
        'gauge',
        'Jobs of a task by state (live states and dead letters).',
      );
      for (const t of ts) {
        for (const state of ['queued', 'scheduled', 'running', 'retrying', 'dead'] as const)
          e.sample('pgferry_task_jobs', { task: t.task, state }, t[state]);
      }
      e.family('pgferry_task_paused', 'gauge', '1 while the task is paused (TaskClient.pause).');
      for (const t of ts) e.sample('pgferry_task_paused', { task: t.task }, t.paused ? 1 : 0);
    }
  }
  if (has.stream) {
    const s = await streamStats(ops);
    e.family('pgferry_stream_ticker_lag_seconds', 'gauge', 'Seconds since the stream last ticked.');
    for (const q of s.streams)
      e.sample('pgferry_stream_ticker_lag_seconds', { stream: q.queueName }, q.tickerLagSeconds);
    e.family('pgferry_stream_new_events', 'gauge', 'Events sent since the last tick.');
    for (const q of s.streams)
      e.sample('pgferry_stream_new_events', { stream: q.queueName }, q.newEvents);
    e.family('pgferry_stream_consumer_lag_seconds', 'gauge', "Age of the consumer's position.");
    e.family(
      'pgferry_stream_consumer_pending_events',
      'gauge',
      'Events the consumer has not received yet.',
    );
    for (const c of s.consumers) {
      const l = { stream: c.queueName, consumer: c.consumerName };
      e.sample('pgferry_stream_consumer_lag_seconds', l, c.lagSeconds);
      e.sample('pgferry_stream_consumer_pending_events', l, c.pendingEvents);
    }
    e.family('pgferry_stream_ticker_leader', 'gauge', '1 while a ticker holds the leader lease.');
    e.sample('pgferry_stream_ticker_leader', {}, s.leader ? 1 : 0);
    e.family('pgferry_stream_ticks_per_minute', 'gauge', 'Ticks of the stream in the last minute.');
    for (const r of s.tickRates)
      e.sample('pgferry_stream_ticks_per_minute', { stream: r.stream }, r.ticksPerMinute);
  }
  if (has.bus) {
    const b = await busStats(ops);
    e.family(
      'pgferry_bus_members',
      'gauge',
      'Bus members per channel (by channel hash), live = lease not run out.',
    );
    for (const c of b) {
      e.sample('pgferry_bus_members', { channel_hash: c.channelHash, liveness: 'all' }, c.members);
      e.sample('pgferry_bus_members', { channel_hash: c.channelHash, liveness: 'live' }, c.live);
    }
  }
  if (options.taskMetrics) renderTaskCounters(e, options.taskMetrics);
  return e.text();
}

function renderTaskCounters(e: Exposition, m: TaskMetrics): void {
  const snap = [...m.snapshot()].sort(([a], [b]) => a.localeCompare(b));
  const counter = (
    name: string,
    help: string,
    key: 'processed' | 'succeeded' | 'failed' | 'retried' | 'dead' | 'cancelled',
  ) => {
    e.family(name, 'counter', help);
    for (const [task, c] of snap) e.sample(name, { task }, c[key]);
  };
  counter(
    'pgferry_task_processed_total',
    'Attempts finished by this process (any outcome).',
    'processed',
  );
  counter('pgferry_task_succeeded_total', 'Attempts that completed.', 'succeeded');
  counter('pgferry_task_failed_total', 'Attempts that threw.', 'failed');
  counter('pgferry_task_retried_total', 'Failed attempts scheduled again.', 'retried');
  counter('pgferry_task_dead_total', 'Jobs moved to the dead-letter queue.', 'dead');
  counter('pgferry_task_cancelled_total', 'Jobs cancelled while running.', 'cancelled');
  const h = 'pgferry_task_duration_seconds';
  e.family(h, 'histogram', 'Handler run time per attempt.');
  for (const [task, c] of snap) {
    DURATION_BUCKETS_SECONDS.forEach((le, i) =>
      e.sample(`${h}_bucket`, { task, le: String(le) }, c.buckets[i]!),
    );
    e.sample(`${h}_bucket`, { task, le: '+Inf' }, c.buckets[DURATION_BUCKETS_SECONDS.length]!);
    e.sample(`${h}_sum`, { task }, c.durationSum);
    e.sample(`${h}_count`, { task }, c.durationCount);
  }
}

/**
 * A standalone Node request handler answering with the metrics text (mount
 * it at `/metrics` of any server). Errors answer 500 with the message.
 */
export function metricsHandler(
  ops: Ops,
  options: MetricsOptions = {},
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (_req, res) => {
    try {
      const body = await renderMetrics(ops, options);
      res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE });
      res.end(body);
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`# pgferry metrics failed: ${err instanceof Error ? err.message : String(err)}\n`);
    }
  };
}
