import { EventEmitter } from 'node:events';
import type { WorkerEvents } from '../events.js';

/** `on`/`once` typed by WorkerEvents; other names stay allowed, as on any EventEmitter. */
interface Listen<Self> {
  <E extends keyof WorkerEvents>(event: E, listener: (...args: WorkerEvents[E]) => void): Self;
  (event: string | symbol, listener: (...args: never[]) => void): Self;
}

/** An EventEmitter whose `on` and `once` know the worker's events. */
export interface WorkerEmitter extends EventEmitter {
  on: Listen<this>;
  once: Listen<this>;
}

/** The Worker's base class: EventEmitter at run time, typed by WorkerEvents. */
export const WorkerEmitter = EventEmitter as unknown as new () => WorkerEmitter;
