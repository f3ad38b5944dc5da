import type { Executor } from '../driver/types.js';
import { toMessage } from '../queue/index.js';
import { H } from './headers.js';
import type { StoredError } from './outcome-errors.js';
import type { TaskStatements } from './statements.js';

/** How many failed attempts a job keeps in x-pgferry-history (retry() and dead_letter() trim it). */
export const HISTORY_LIMIT = 25;

/** One attempt (lease) of a job. */
export interface JobAttempt {
  /** 1 for the first run. */
  attempt: number;
  /**
   * running; completed; retry (failed, another attempt followed); dead;
   * cancelled (while running); lost (its worker died or lost the lease: the
   * job ran again without that attempt reporting back).
   */
  outcome: 'running' | 'completed' | 'retry' | 'dead' | 'cancelled' | 'lost';
  /** null for a lost attempt. */
  startedAt: Date | null;
  finishedAt: Date | null;
  /** With class, name, message and stack. */
  error: StoredError | null;
}

interface StoredAttempt {
  attempt: number;
  outcome: 'retry' | 'dead';
  startedAt: string | null;
  finishedAt: string | null;
  error: StoredError | null;
}

const date = (v: unknown): Date | null => (v == null ? null : new Date(v as string));

/**
 * A job's attempts, oldest first (at most the last 25 failed ones, plus the
 * one running or completed), or null when the job is gone. Failed attempts
 * come from x-pgferry-history; the last attempt from the row itself
 * (so completing a job writes nothing extra); gaps are lost attempts.
 */
export async function jobHistory(
  exec: Executor,
  st: TaskStatements,
  task: string,
  id: number,
): Promise<JobAttempt[] | null> {
  const records = st.queue.records;
  const live = await records.get(exec, task, id);
  const arc = live ? null : await records.getArchived(exec, task, id);
  const row = live ?? arc;
  if (!row) return null;
  const m = toMessage(row);
  const h = m.headers ?? {};
  const stored = Array.isArray(h[H.history]) ? (h[H.history] as StoredAttempt[]) : [];
  const out: JobAttempt[] = stored.map((a) => ({
    attempt: Number(a.attempt),
    outcome: a.outcome,
    startedAt: date(a.startedAt),
    finishedAt: date(a.finishedAt),
    error: a.error ?? null,
  }));
  const seen = new Set(out.map((a) => a.attempt));
  const n = m.readCount;
  const last = (outcome: JobAttempt['outcome'], finishedAt: Date | null): void => {
    if (n > 0 && !seen.has(n)) {
      out.push({ attempt: n, outcome, startedAt: m.lastReadAt, finishedAt, error: null });
      seen.add(n);
    }
  };
  if (live) {
    const now = new Date(live.now).getTime();
    if (m.lastReadAt !== null && m.visibleAt.getTime() > now) last('running', null);
  } else {
    const state = h[H.state];
    const archivedAt = date(arc!.archived_at);
    if (state === 'cancelled') {
      if (m.lastReadAt !== null) last('cancelled', date(h['x-pgferry-cancelled-at']));
    } else if (state !== 'dead') last('completed', archivedAt);
  }
  // Attempts that never reported back (above the oldest one still kept).
  const from = stored.length >= HISTORY_LIMIT ? Math.min(...seen) : 1;
  for (let a = from; a <= n; a++)
    if (!seen.has(a))
      out.push({ attempt: a, outcome: 'lost', startedAt: null, finishedAt: null, error: null });
  return out.sort((a, b) => a.attempt - b.attempt);
}
