import { execute } from '../driver/types.js';
import { quoteIdent } from '../driver/quote.js';
import type { ConsumerInfo, StreamInfo } from '../stream/types.js';
import type { Ops } from './ops.js';
import { queueStats, type QueueStat } from './queue-stats.js';

/** A task (a queue registered by the tasks engine) with its jobs by live state. */
export interface TaskStat {
  task: string;
  grouped: boolean;
  byPriority: boolean;
  /** Paused (TaskClient.pause): no job starts until resumed. */
  paused: boolean;
  /** Runnable now. */
  queued: number;
  scheduled: number;
  running: number;
  retrying: number;
  /** Dead letters waiting in `<task>_dlq`. */
  dead: number;
  /** Finished (completed, cancelled, dead) jobs in the archive, planner estimate. */
  archivedEstimate: number;
  depthExact: boolean;
  oldestAgeSeconds: number | null;
}

export interface CronStat {
  name: string;
  task: string;
  pattern: string;
  timezone: string | null;
  lastOccurrence: Date;
}

export interface BusChannelStat {
  /** Hex sha256 of the channel: the registry never stores channel names. */
  channelHash: string;
  members: number;
  /** Members whose lease has not run out. */
  live: number;
  oldestJoinedAt: Date;
}

/** The elected stream ticker (the holder of its lease row), if one leads. */
export interface TickerLeader {
  pid: number;
  applicationName: string | null;
  backendStart: Date | null;
}

export interface TickRate {
  stream: string;
  /** Ticks in the window (the last minute). */
  ticks: number;
  ticksPerMinute: number;
  lastTickAt: Date | null;
}

export interface StreamStat {
  streams: StreamInfo[];
  consumers: ConsumerInfo[];
  leader: TickerLeader | null;
  tickRates: TickRate[];
}

/** Tasks from the tasks registry, their figures derived from the queue stats of their queues. */
export async function taskStats(ops: Ops, queues?: QueueStat[]): Promise<TaskStat[]> {
  const t = quoteIdent(ops.schemas.tasks);
  const reg = await execute<{
    queue_name: string;
    grouped: boolean;
    by_priority: boolean;
    paused: boolean;
  }>(ops.read, `SELECT * FROM ${t}.ops_tasks()`);
  if (!reg.rows.length) return [];
  const names = reg.rows.flatMap((r) => [r.queue_name, r.queue_name + '_dlq']);
  const all = queues ?? (await queueStats(ops.read, ops.schemas.queue, names));
  const by = new Map(all.map((q) => [q.queue, q]));
  return reg.rows.map((r) => {
    const q = by.get(r.queue_name);
    const invisible = q ? q.inFlight + q.delayed + q.retrying : 0;
    return {
      task: r.queue_name,
      grouped: r.grouped,
      byPriority: r.by_priority,
      paused: r.paused === true,
      queued: q ? Math.max(0, q.depth - invisible) : 0,
      scheduled: q?.delayed ?? 0,
      running: q?.inFlight ?? 0,
      retrying: q?.retrying ?? 0,
      dead: by.get(r.queue_name + '_dlq')?.depth ?? 0,
      archivedEstimate: q?.archivedEstimate ?? 0,
      depthExact: q?.depthExact ?? true,
      oldestAgeSeconds: q?.oldestAgeSeconds ?? null,
    };
  });
}

export async function cronStats(ops: Ops): Promise<CronStat[]> {
  const t = quoteIdent(ops.schemas.tasks);
  const res = await execute<{
    name: string;
    queue_name: string;
    pattern: string;
    timezone: string | null;
    last_occurrence: Date;
  }>(ops.read, `SELECT * FROM ${t}.ops_schedules()`);
  return res.rows.map((r) => ({
    name: r.name,
    task: r.queue_name,
    pattern: r.pattern,
    timezone: r.timezone,
    lastOccurrence: new Date(r.last_occurrence),
  }));
}

export async function busStats(ops: Ops): Promise<BusChannelStat[]> {
  const b = quoteIdent(ops.schemas.bus);
  const res = await execute<{
    channel_hash: string;
    members: string;
    live: string;
    oldest_joined_at: Date;
  }>(ops.read, `SELECT * FROM ${b}._pgferry_bus_channel_stats()`);
  return res.rows.map((r) => ({
    channelHash: r.channel_hash,
    members: Number(r.members),
    live: Number(r.live),
    oldestJoinedAt: new Date(r.oldest_joined_at),
  }));
}

/** Ticker leader and tick rates, from the stream engine's ticker_leader() and tick_stats() (sql/stream/0011_ops.sql). */
export async function tickerStats(
  ops: Ops,
  windowSeconds = 60,
): Promise<Pick<StreamStat, 'leader' | 'tickRates'>> {
  const s = quoteIdent(ops.schemas.stream);
  const [l, t] = await Promise.all([
    execute<{ pid: number; application_name: string | null; backend_start: Date | null }>(
      ops.read,
      `SELECT * FROM ${s}.ticker_leader()`,
    ),
    execute<{
      queue_name: string;
      ticks: string;
      ticks_per_minute: number;
      last_tick_at: Date | null;
    }>(ops.read, `SELECT * FROM ${s}.tick_stats($1)`, [windowSeconds]),
  ]);
  const r = l.rows[0];
  return {
    leader: r
      ? {
          pid: r.pid,
          applicationName: r.application_name,
          backendStart: r.backend_start ? new Date(r.backend_start) : null,
        }
      : null,
    tickRates: t.rows.map((x) => ({
      stream: x.queue_name,
      ticks: Number(x.ticks),
      ticksPerMinute: Number(x.ticks_per_minute),
      lastTickAt: x.last_tick_at ? new Date(x.last_tick_at) : null,
    })),
  };
}

export async function streamStats(ops: Ops): Promise<StreamStat> {
  const [streams, consumers, ticker] = await Promise.all([
    ops.streams.streamInfo(),
    ops.streams.consumerInfo(),
    tickerStats(ops),
  ]);
  return { streams, consumers, ...ticker };
}
