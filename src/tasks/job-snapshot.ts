import type { Executor } from '../driver/types.js';
import { toMessage, type Headers, type Message } from '../queue/index.js';
import { H } from './headers.js';
import type { TaskStatements } from './statements.js';

/** Where a job is in its life (see the state machine in docs/tasks.md). */
export type JobState =
  | 'scheduled' // waiting for its run time
  | 'queued' // runnable now
  | 'running' // leased by a worker
  | 'retrying' // failed, waiting for its next attempt
  | 'completed'
  | 'cancelled'
  | 'dead'; // moved to the dead-letter queue

export interface JobSnapshot {
  id: number;
  task: string;
  state: JobState;
  input: unknown;
  headers: Headers;
  attempts: number;
  enqueuedAt: Date;
  runAt: Date;
  archivedAt: Date | null;
  /** The latest value the handler reported with ctx.progress (undefined: none). */
  progress: unknown;
}

/** Where a job is now (its queue or its archive), or null when it is gone. */
export async function readJob(
  statements: TaskStatements,
  exec: Executor,
  name: string,
  id: number,
): Promise<JobSnapshot | null> {
  const records = statements.queue.records;
  const r = await records.get(exec, name, id);
  if (r) {
    const m = toMessage(r);
    const future = m.visibleAt.getTime() > new Date(r.now).getTime();
    const running = m.lastReadAt !== null && future;
    const waiting = m.readCount > 0 ? 'retrying' : 'scheduled';
    return snapshot(name, m, running ? 'running' : future ? waiting : 'queued', null);
  }
  const arc = await records.getArchived(exec, name, id);
  if (!arc) return null;
  const m = toMessage(arc);
  const st = (m.headers ?? {})[H.state];
  const state: JobState = st === 'dead' ? 'dead' : st === 'cancelled' ? 'cancelled' : 'completed';
  return snapshot(name, m, state, new Date(arc.archived_at));
}

/** A job's snapshot from its queue (or archive) message. */
function snapshot(task: string, m: Message, state: JobState, archivedAt: Date | null): JobSnapshot {
  return {
    id: m.msgId,
    task,
    state,
    input: m.message,
    headers: m.headers ?? {},
    attempts: m.readCount,
    enqueuedAt: m.enqueuedAt,
    runAt: m.visibleAt,
    archivedAt,
    progress: m.headers?.[H.progress],
  };
}
