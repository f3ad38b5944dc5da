import type { Executor } from '../driver/types.js';
import { lockedMessages } from './engine/calls.js';
import type { QueueEngine } from './engine/index.js';
import { vtOfValue } from './engine/vt.js';
import { toMessage } from './rows.js';
import type { Message } from './types.js';
import { checkInt, checkMsgId } from './validate.js';

// Held-only finishing (stale-read protection) of QueueClient: the receipt is
// the read's `readCount`; the statements are engine/held.ts.

/**
 * QueueClient's `deleteIfHeld(queue, msgId, readCount, { tx })` and
 * `archiveIfHeld(…)`: delete / archive the message only if the read with
 * this `readCount` still holds it (nobody has read it since). False, and
 * nothing changes, otherwise.
 */
export type FinishIfHeld = {
  [H in 'delete' | 'archive' as `${H}IfHeld`]: (
    queue: string,
    msgId: number,
    readCount: number,
    options?: { tx?: Executor },
  ) => Promise<boolean>;
};

export function finishIfHeld(
  e: QueueEngine,
  exec: Executor,
  how: 'delete' | 'archive',
  queue: string,
  msgId: number,
  readCount: number,
): Promise<boolean> {
  const id = checkMsgId(msgId);
  const receipt = checkInt('readCount', readCount);
  return e.held.finish(exec, how, queue, id, receipt, lockedMessages(queue, [msgId]));
}

export async function setVtIfHeld<T>(
  e: QueueEngine,
  exec: Executor,
  queue: string,
  msgId: number,
  readCount: number,
  vt: number | Date,
): Promise<Message<T> | null> {
  const spec = vtOfValue('vt', vt);
  const id = checkMsgId(msgId);
  const receipt = checkInt('readCount', readCount);
  const row = await e.held.setVt(exec, queue, id, receipt, spec, lockedMessages(queue, [msgId]));
  return row ? toMessage<T>(row) : null;
}
