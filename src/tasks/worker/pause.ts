import type { Core } from './core.js';
import { handBack } from './shutdown.js';

/**
 * A `<tasks>_pause` notification (payload: the task's name, see pause() in
 * sql/tasks/0003_controls.sql): the lane's buffered jobs, leased but not
 * started, go back to the queue at once (their attempt not counted), so
 * they wait for resume() like the rest. Running handlers finish normally;
 * the task's fetch() leases nothing while it is paused.
 */
export function onPause(core: Core, payload: string | undefined): void {
  const lane = payload === undefined ? undefined : core.byName.get(payload);
  if (!lane || core.state !== 'running' || lane.buffer.length === 0) return;
  void handBack(core, lane, lane.buffer.splice(0));
}
