import type { Executor } from './types.js';

/**
 * Every operation of every layer accepts the caller's transaction (or
 * connection) as `tx`: the statement then runs there, atomic with the
 * caller's own writes, instead of on the client's pool. One definition,
 * re-exported by the queue and stream layers (docs/concepts.md).
 */
export interface TxOption {
  /** Run on this transaction/connection instead of the client's pool. */
  tx?: Executor;
}
