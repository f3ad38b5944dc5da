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

export interface StreamStat {
  streams: StreamInfo[];
  consumers: ConsumerInfo[];
}

/** Tasks from the tasks registry, their figures derived from the queue stats of their queues. */
export async function taskStats(ops: Ops, queues?: QueueStat[]): Promise<TaskStat[]> {
  const t = quoteIdent(ops.schemas.tasks);
  const reg = await execute<{ queue_name: string; grouped: boolean; by_priority: boolean }>(
    ops.read,
    `SELECT queue_name, grouped, by_priority FROM ${t}.queues ORDER BY queue_name`,
  );
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
  }>(
    ops.read,
    `SELECT name, queue_name, pattern, timezone, last_occurrence FROM ${t}.schedules ORDER BY name`,
  );
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
  const res = await execute<{ h: string; n: string; live: string; joined: Date }>(
    ops.read,
    `SELECT encode(channel_hash, 'hex') AS h, count(*) AS n,
            count(*) FILTER (WHERE lease_until > now()) AS live, min(joined_at) AS joined
       FROM ${b}._pgferry_bus_member GROUP BY channel_hash ORDER BY 1`,
  );
  return res.rows.map((r) => ({
    channelHash: r.h,
    members: Number(r.n),
    live: Number(r.live),
    oldestJoinedAt: new Date(r.joined),
  }));
}

export async function streamStats(ops: Ops): Promise<StreamStat> {
  const [streams, consumers] = await Promise.all([
    ops.streams.streamInfo(),
    ops.streams.consumerInfo(),
  ]);
  return { streams, consumers };
}
