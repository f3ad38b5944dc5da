// The dashboard's small time series, sampled from queueStats on page loads
// (at most every max(1 s, refresh / 2)) and kept in memory, HISTORY points each.
import type { QueueStat } from '../queue-stats.js';

export const HISTORY = 60;

/** Per queue: recent samples, oldest first. */
export interface Series {
  /** Depth. */
  depth: Map<string, number[]>;
  /** Messages sent per second (the msg_id sequence between samples). */
  sent: Map<string, number[]>;
  /**
   * Messages that left the queue per second (deleted, archived, dead-lettered:
   * for a task, finished jobs), from sent minus depth between samples.
   */
  left: Map<string, number[]>;
  /** Age of the oldest message in seconds (how long the next one waited): 0 when empty. */
  age: Map<string, number[]>;
}

export function newSeries(): Series {
  return { depth: new Map(), sent: new Map(), left: new Map(), age: new Map() };
}

function push(m: Map<string, number[]>, k: string, v: number): void {
  const h = m.get(k) ?? [];
  h.push(v);
  if (h.length > HISTORY) h.shift();
  m.set(k, h);
}

/** A sampler: call it with fresh queue stats; it adds one point per queue. */
export function sampler(series: Series): (qs: readonly QueueStat[], now: number) => void {
  const last = new Map<string, { sent: number; left: number; at: number }>();
  return (qs, now) => {
    for (const q of qs) {
      const left = q.sentTotal - q.depth;
      push(series.depth, q.queue, q.depth);
      push(series.age, q.queue, q.oldestAgeSeconds ?? 0);
      const prev = last.get(q.queue);
      if (prev && now > prev.at) {
        const secs = (now - prev.at) / 1000;
        push(series.sent, q.queue, Math.max(0, (q.sentTotal - prev.sent) / secs));
        push(series.left, q.queue, Math.max(0, (left - prev.left) / secs));
      }
      last.set(q.queue, { sent: q.sentTotal, left, at: now });
    }
  };
}

/** Sum of a series' points weighted as rates over equal intervals: a ratio of two such sums is a rate ratio. */
export function total(values: readonly number[] | undefined): number {
  return (values ?? []).reduce((n, v) => n + v, 0);
}
