import { WorkerShutdownError } from '../errors.js';
import { flushAll } from './completions.js';
import type { Core, Lane, Leased } from './core.js';

/**
 * The lanes' part of stop(): no more fetching, buffered jobs handed back,
 * running handlers given `graceMs` to finish, then aborted
 * (WorkerShutdownError) and their jobs handed back; completions written.
 */
export async function stopLanes(core: Core, graceMs: number): Promise<void> {
  for (const l of core.lanes) {
    clearTimeout(l.sleepTimer);
    clearTimeout(l.retryTimer);
  }
  // Fetches in flight land in the buffers; wait for them, then give the buffers back.
  while (core.lanes.some((l) => l.fetching || l.refreshing))
    await new Promise((r) => setTimeout(r, 5));
  await Promise.all(core.lanes.map((l) => handBack(core, l, l.buffer.splice(0))));
  const all = () => Promise.all([...core.running.values()].map((r) => r.done));
  let graceTimer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    all().then(() => false),
    new Promise<boolean>((r) => (graceTimer = setTimeout(() => r(true), graceMs))),
  ]);
  clearTimeout(graceTimer);
  if (timedOut) {
    const left = [...core.running.values()];
    for (const r of left) {
      r.handedBack = true;
      r.abort.abort(new WorkerShutdownError());
    }
    const byLane = new Map<Lane, Leased[]>();
    for (const r of left)
      byLane.set(r.leased.lane, [...(byLane.get(r.leased.lane) ?? []), r.leased]);
    await Promise.all([...byLane].map(([lane, ls]) => handBack(core, lane, ls)));
  }
  await Promise.all(core.lanes.map((l) => flushAll(core, l)));
}

export async function handBack(core: Core, lane: Lane, leased: Leased[]): Promise<void> {
  if (leased.length === 0) return;
  try {
    await core.client.statements.handBack(
      core.client.driver,
      lane.task.name,
      leased.map((l) => l.m.msgId),
      leased.map((l) => l.m.readCount),
    );
  } catch (err) {
    // Not fatal: their leases run out and another worker takes them.
    core.fail(err);
  }
}

/** Settles a runUntilIdle() once nothing is running, buffered, fetching or unwritten. */
export function checkDrained(core: Core): void {
  if (!core.drain || core.state !== 'running') return;
  const idle =
    core.running.size === 0 &&
    core.lanes.every(
      (l) =>
        l.drained && !l.fetching && l.buffer.length === 0 && !l.flushing && l.done.ids.length === 0,
    );
  if (idle) {
    const d = core.drain;
    core.drain = undefined;
    d.resolve(d.summary);
  }
}
