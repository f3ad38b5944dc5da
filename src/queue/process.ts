import type { Queryable } from '../driver/types.js';
import type { Message } from './types.js';

export interface ProcessBatchOptions {
  /** Messages per batch. Default 10. */
  qty?: number;
  /** What happens to the batch when the handler returns. Default `delete`. */
  finish?: 'delete' | 'archive';
  /** Only messages whose body contains this JSON. */
  conditional?: unknown;
}

/**
 * Handles a batch inside one transaction. `tx` is that transaction: write
 * your own results with it and they commit together with the batch's
 * delete/archive. Throwing rolls everything back.
 */
export type BatchHandler<T> = (messages: Message<T>[], tx: Queryable) => Promise<void>;
