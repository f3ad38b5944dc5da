import { toMessage } from '../../queue/index.js';
import type { JobMessage } from '../lease.js';
import type { AnyTask } from '../types.js';
import type { Core, Lane } from './core.js';

/** Fetch queries one lane may have in flight at once. */
const MAX_FETCHES = 2;

/**
 * While a plain FIFO lane works through a backlog, its fetches start after
 * the last full batch (fetch_after, sql/tasks/*_fetch_after.sql): the queue's head is then
 * a long run of dead index entries that a fetch from the start would walk
 * every time. At least this often a fetch looks at the whole queue, so a job
 * below that point that became runnable again (a retry, an expired lease)
 * waits at most this long for its turn.
 */
const WHOLE_QUEUE_EVERY_MS = 1000;

/** How long a job's lease lasts: its task's timeout plus the margin. */
export function leaseMs(core: Core, task: AnyTask): number {
  return Math.min(task.timeoutMs + core.o.leaseMarginMs, 2_147_483_647);
}

/**
 * Refills each lane before its local buffer runs dry, so handlers never wait
 * for a fetch round trip. Up to MAX_FETCHES run at once: a fetch mostly
 * waits for its commit, so two overlap well; a lane holds at most ~2 batches.
 */
export function fillLanes(core: Core): void {
  const { concurrency } = core.o;
  for (const lane of core.lanes) {
    const batchSize = lane.batch;
    while (
      lane.fetching < MAX_FETCHES &&
      !lane.sleeping &&
      !lane.drained &&
      !lane.paused &&
      // A second fetch beside one in flight: while batches come back full,
      // or at once when a wake-up came during the first (which may be busy
      // with its empty look and the idle() round trip).
      (lane.fetching === 0 || !lane.lastFetchShort || lane.notified) &&
      lane.buffer.length + lane.fetching * batchSize < Math.max(concurrency, batchSize * 1.5)
    ) {
      void fetchLane(core, lane);
    }
  }
}

async function fetchLane(core: Core, lane: Lane): Promise<void> {
  lane.fetching++;
  lane.notified = false;
  const wakes = lane.wakes;
  const t = lane.task;
  const { client } = core;
  const asked = lane.batch;
  const startedBefore = lane.started;
  const plain = !t.lifo && !t.grouped && t.priority === undefined && !t.concurrencyLimit;
  const now0 = Date.now();
  const after =
    plain && lane.after !== undefined && now0 - lane.wholeAt < WHOLE_QUEUE_EVERY_MS
      ? lane.after
      : undefined;
  if (after === undefined) lane.wholeAt = now0;
  // A plain task's lease runs as a prepared statement (statements.fetchPlain);
  // the SQL functions stay the contract and take every other case.
  const sqlFetch = (afterId: number | undefined): Promise<JobMessage[]> =>
    (afterId !== undefined
      ? client.statements.fetchAfter(client.driver, t.name, asked, leaseMs(core, t), afterId)
      : client.statements.fetch(
          client.driver,
          t.name,
          asked,
          leaseMs(core, t),
          t.lifo,
          t.grouped,
          t.priority !== undefined,
          t.concurrencyLimit ?? null,
        )
    ).then((rows) => rows.map((r) => toMessage<unknown>(r)));
  const fetch = async (afterId: number | undefined): Promise<JobMessage[]> => {
    if (!plain || t.rateLimit !== undefined) return sqlFetch(afterId);
    const ms = leaseMs(core, t);
    const got = await client.statements.fetchPlain(client.driver, t.name, asked, ms, afterId ?? 0);
    return got ?? sqlFetch(afterId);
  };
  // The last fetch came back short and no wake-up came since it started: the
  // queue was empty then, so a fetch now would most likely find nothing and
  // go to sleep after it. Go to sleep at once instead (idle(), then the one
  // look that follows it): one round trip less per job at a low rate, and
  // the window in which an insert does not notify is shorter.
  const idleFirst =
    lane.lastFetchShort &&
    lane.shortAtWakes === wakes &&
    lane.fetching === 1 &&
    !core.drain &&
    core.state === 'running';
  try {
    let got: JobMessage[];
    let next: number | null | undefined;
    if (idleFirst) {
      next = await client.statements.idle(client.driver, t.name);
      got = await fetch(undefined);
      core.recovery.ok();
      adapt(core, lane, asked, got.length, startedBefore);
    } else {
      got = await fetch(after);
      core.recovery.ok();
      adapt(core, lane, asked, got.length, startedBefore);
      if (got.length === 0 && core.state === 'running') {
        if (core.drain) {
          // Drained, unless a wake-up (a retry made runnable) came meanwhile.
          if (lane.wakes === wakes) lane.drained = true;
        } else {
          // Going to sleep: tell inserts to notify, then look once more
          // (an insert that committed in between is seen now).
          next = await client.statements.idle(client.driver, t.name);
          got = await fetch(undefined);
        }
      }
    }
    // A wake-up that arrived during these round trips may be for a job
    // committed after the fetch's snapshot: look again instead of
    // sleeping. (A counter, not the notified flag: a fetch started beside
    // this one clears that flag, and the insert's NOTIFY cleared the
    // queue's waiting flag, so sleeping now would miss the next job.)
    if (next !== undefined && got.length === 0 && lane.wakes === wakes) sleep(core, lane, next);
    lane.lastFetchShort = got.length < asked;
    if (lane.lastFetchShort) lane.shortAtWakes = wakes;
    if (plain) {
      const top = got.reduce((max, m) => Math.max(max, m.msgId), lane.after ?? 0);
      lane.after = lane.lastFetchShort ? undefined : top;
    }
    const now = Date.now();
    // Stopping meanwhile: shutdown hands the buffer back.
    for (const m of sortLeased(t, got)) lane.buffer.push({ lane, m, leasedAt: now });
    if (got.length > 0 && lane.sleeping) {
      // Another fetch of this lane went to sleep meanwhile, but there is work.
      clearTimeout(lane.sleepTimer);
      lane.sleeping = false;
    }
  } catch (err) {
    const delay = core.failed(err);
    if (!lane.paused) {
      lane.paused = true;
      lane.retryTimer = setTimeout(() => {
        lane.retryTimer = undefined;
        lane.paused = false;
        core.pump();
      }, delay);
    }
  } finally {
    lane.fetching--;
  }
  core.pump();
}

/**
 * The adaptive fetch size: doubles (up to the maximum) when a fetch came
 * back full while the lane had nothing buffered and a handler slot was free
 * (handlers were waiting for jobs), halves (down to the minimum) when a
 * fetch came back short. Slow handlers keep it small, so a worker does not
 * hoard jobs that other workers could run; a backlog of fast jobs makes it
 * large, so a fetch round trip is shared by many jobs.
 */
function adapt(core: Core, lane: Lane, asked: number, got: number, startedBefore: number): void {
  const { min, max } = core.o.batch;
  if (got < asked) lane.batch = Math.max(min, Math.ceil(lane.batch / 2));
  else if (lane.buffer.length === 0 && core.running.size < core.o.concurrency) {
    // Every slot idle although jobs started during this fetch: they all ran
    // to the end within one fetch round trip (handlers far faster than a
    // fetch), so grow four-fold (from 10, a backlog of such jobs reaches
    // 1,000 in four fetches instead of seven).
    const starved = core.running.size === 0 && lane.started > startedBefore;
    lane.batch = Math.min(max, lane.batch * (starved ? 4 : 2));
  }
}

function sleep(core: Core, lane: Lane, nextInMs: number | null): void {
  let ms = core.o.pollIntervalMs;
  if (nextInMs !== null) ms = Math.max(1, Math.min(ms, nextInMs + 1));
  lane.sleeping = true;
  clearTimeout(lane.sleepTimer);
  lane.sleepTimer = setTimeout(() => {
    lane.sleeping = false;
    core.pump();
  }, ms);
}

/** Renews the leases of the jobs waiting in a lane's buffer; drops those no longer held. */
export async function refresh(core: Core, lane: Lane): Promise<void> {
  if (lane.refreshing) return;
  lane.refreshing = true;
  try {
    const ids = lane.buffer.map((b) => b.m.msgId);
    const rcs = lane.buffer.map((b) => b.m.readCount);
    const kept = await core.client.statements.extend(
      core.client.driver,
      lane.task.name,
      ids,
      rcs,
      leaseMs(core, lane.task),
    );
    const now = Date.now();
    // Jobs no longer held (cancelled, or taken over) are dropped.
    lane.buffer = lane.buffer.filter((b) => kept.has(b.m.msgId));
    for (const b of lane.buffer) b.leasedAt = now;
  } catch (err) {
    core.fail(err);
    lane.buffer = [];
  } finally {
    lane.refreshing = false;
  }
  core.pump();
}

/** There may be work for this lane: look now (beside a fetch in flight, if any). */
export function wakeLane(core: Core, lane: Lane): void {
  lane.drained = false;
  lane.wakes++;
  if (!lane.sleeping) {
    lane.notified = true;
    core.pump();
    return;
  }
  clearTimeout(lane.sleepTimer);
  lane.sleeping = false;
  core.pump();
}

/** A `<tasks>_wake` notification: the task's name, or none when the LISTEN connection came back. */
export function onWake(core: Core, payload: string | undefined): void {
  // An empty payload means "the LISTEN connection came back": wake all.
  const named = payload === undefined ? undefined : core.byName.get(payload);
  const lanes = payload === undefined ? core.lanes : named ? [named] : [];
  for (const lane of lanes) {
    // The LISTEN connection is back, so the database is: retry at once.
    if (payload === undefined && lane.paused) {
      clearTimeout(lane.retryTimer);
      lane.retryTimer = undefined;
      lane.paused = false;
    }
    wakeLane(core, lane);
  }
  if (payload === undefined) core.pump();
}

/** The SQL leases in no defined order; run them in the task's order. */
function sortLeased(task: AnyTask, ms: JobMessage[]): JobMessage[] {
  const prio = (m: JobMessage): number => Number(m.headers?.['x-pgferry-priority'] ?? 0) || 0;
  return ms.sort((a, b) => {
    if (task.priority !== undefined) {
      const d = prio(b) - prio(a);
      if (d !== 0) return d;
    }
    return task.lifo ? b.msgId - a.msgId : a.msgId - b.msgId;
  });
}
