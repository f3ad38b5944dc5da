import { createHash } from 'node:crypto';
import type { Driver, Subscription } from '../driver/types.js';
import { isListenRefused } from '../driver/pooler.js';
import type { Logger } from '../logger.js';
import type { BackendMessage, BackendReadOptions } from './types.js';
import { listenShared } from './wake-hub.js';

/** The bus readers use it for reads and archives only (publishes stay durable by default). */
export { ASYNC_COMMIT } from '../driver/pooler.js';

/**
 * The NOTIFY channel that wakes the member owning `queue`. Derived from the
 * queue AND the channel (sql/bus/0001_bus.sql computes the same), so a role
 * that sees the queue's table name in pg_class cannot LISTEN to another
 * member's wake-ups without knowing its channel.
 */
export function wakeChannel(queue: string, channel: string): string {
  return (
    'pgferry_bus_' +
    createHash('sha256').update(`${queue}\n${channel}`, 'utf8').digest('hex').slice(0, 40)
  );
}

/**
 * One member's wake-up: a LISTEN on its wake channel. `arm()` before reading
 * and `wait()` after an empty read: a notification that arrives in between is
 * remembered, so none is lost. Without LISTEN (a transaction-mode pooler, a
 * driver that cannot) `listening` is false and the reader long-polls in the
 * database instead.
 */
export class Waker {
  private notified = false;
  /**
   * The last read, armed before it, returned less than a full batch: it took
   * everything visible, and whatever is sent after it notifies. The next
   * read can then wait for that notification instead of reading first.
   */
  drained = false;
  private wakeUp: (() => void) | undefined;
  private subscription: Subscription | undefined;

  private constructor() {}

  static async open(driver: Driver, channel: string, logger: Logger): Promise<Waker> {
    const w = new Waker();
    try {
      w.subscription = await listenShared(driver, channel, () => {
        w.notified = true;
        w.wakeUp?.();
      });
    } catch (err) {
      // A refusal behind a transaction pooler was already warned about, once, by the driver.
      if (!isListenRefused(err)) {
        logger.warn({ err }, 'pgferry bus: LISTEN failed, falling back to polling');
      }
    }
    return w;
  }

  get listening(): boolean {
    return this.subscription !== undefined;
  }

  arm(): void {
    this.notified = false;
    this.drained = false;
  }

  /** A notification came since the last `arm`. */
  get pending(): boolean {
    return this.notified;
  }

  /** Resolves at the next notification (or at once if one came since `arm`), after `ms`, or on abort. */
  wait(ms: number, signal?: AbortSignal): Promise<void> {
    if (this.notified || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      this.wakeUp = done;
    });
  }

  async close(): Promise<void> {
    const s = this.subscription;
    this.subscription = undefined;
    this.wakeUp?.();
    await s?.close();
  }
}

/**
 * Longest time handled messages wait for a read to archive them (the bus
 * holds them back from reads that answer a wake-up, up to one batch).
 */
export const ARCHIVE_DELAY_MS = 50;

/**
 * The read loop both backends share: read without waiting; when empty, wait
 * for a wake-up (or the poll interval's worth of nothing, as a safety net)
 * and read again, until `maxPollSeconds` passed. Without LISTEN, one
 * database-side long-poll does the waiting.
 *
 * After a short batch (fewer than `batchSize` messages) the next call skips
 * the read that would come back empty and waits at once: the wake-up was
 * armed before that short read, so a message sent since has notified (and
 * the wait returns at once). That is one statement fewer per delivery.
 *
 * Messages handed in `options.archive` are archived by the first read
 * (`readNow`). With `archiveDueMs` (the bus holds handled messages back
 * while the member listens) that read happens at once when it carries an
 * archive, and a wait ends by the time the held ones are due (returning []
 * so that the bus's next read carries them). Without it, a read carrying an
 * archive that would be skipped waits at most ARCHIVE_DELAY_MS: a message
 * that comes by then carries the archive on its read, otherwise a read of
 * its own archives them.
 */
export async function longPoll(
  waker: Waker | undefined,
  options: BackendReadOptions,
  readNow: () => Promise<BackendMessage[]>,
  readWaiting: (maxSeconds: number) => Promise<BackendMessage[]>,
): Promise<BackendMessage[]> {
  const deadline = Date.now() + options.maxPollSeconds * 1000;
  let archiving = (options.archive?.length ?? 0) > 0;
  const due = options.archiveDueMs;
  // The bus holds handled messages back: come back by the time they are due.
  const heldUntil = !archiving && due !== undefined ? Date.now() + due : undefined;
  const carryNow = archiving && due !== undefined;
  for (;;) {
    const listening = waker?.listening === true;
    // Wait first only when there is time to wait (maxPollSeconds 0 always reads).
    if (
      !listening ||
      !waker!.drained ||
      waker!.pending ||
      deadline <= Date.now() ||
      (archiving && carryNow)
    ) {
      waker?.arm();
      const messages = await readNow();
      archiving = false;
      if (waker && messages.length < options.batchSize) waker.drained = true;
      if (messages.length > 0 || options.signal?.aborted) return messages;
    }
    const left = deadline - Date.now();
    if (left <= 0) return [];
    if (listening) {
      let ms = archiving ? Math.min(left, ARCHIVE_DELAY_MS) : left;
      if (heldUntil !== undefined) {
        const held = heldUntil - Date.now();
        if (held <= 0) return [];
        ms = Math.min(ms, held);
      }
      await waker!.wait(ms, options.signal);
      if (options.signal?.aborted) return [];
      // The held archive is due and nothing came: the bus's next read carries it.
      if (!waker!.pending && heldUntil !== undefined && Date.now() >= heldUntil) return [];
      // Read after any wake-up: a notification, or the safety net's time.
      waker!.drained = false;
    } else {
      return readWaiting(Math.max(1, Math.ceil(left / 1000)));
    }
  }
}
