/**
 * The one dead-letter record shape (docs/concepts.md, "Dead letters"): every
 * layer's dead letter — the queue's `DeadLetter<T>`, tasks' `DeadLetter`,
 * the stream's `DeadLetter` — carries these fields, with the same meaning,
 * beside its layer's own (older) names. Putting one back is `requeue…`
 * everywhere.
 */
export interface DeadLetterRecord<T = unknown> {
  /** Its id where it is kept (the dead-letter queue's msg_id, the stream's dl_id). */
  id: number;
  /** The queue, task or stream queue it came from; null when not known (sent there directly). */
  source: string | null;
  /** Its id there (msg_id, job id, event id); null when not known. */
  sourceId: number | null;
  /** The original message, untouched. */
  payload: T;
  /** Why it failed (the last error's message, the stream's reason); null when not known. */
  reason: string | null;
  /** How many times it was tried (read count, attempts, retries). */
  attempts: number;
  /** When it was dead-lettered; null when not known. */
  failedAt: Date | null;
}
