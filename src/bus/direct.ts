import { randomBytes } from 'node:crypto';
import type { QueueClient } from '../queue/client.js';
import type { Message } from '../queue/types.js';
import type { Logger } from '../logger.js';
import { MAX_QUEUE_NAME_LENGTH } from '../queue/validate.js';
import { InvalidArgumentError } from '../errors.js';
import type { JsonValue } from './serializer.js';
import type { BackendMessage, BackendReadOptions, BusBackend } from './types.js';
import { Waker, longPoll, wakeChannel } from './wake.js';

export interface DirectBackendOptions {
  /** The queue client to use; the backend never closes it. */
  client: QueueClient;
  /** How long a channel's peer list is reused before listing queues again. Default 1000. */
  peerCacheTtlMs?: number;
  /** Default: the client's logger. */
  logger?: Logger;
}

/** `_` + 12 hex characters: the random part of a member's queue name. */
const SUFFIX_LENGTH = 13;

/**
 * Lower-cased, everything but letters, digits and `_` replaced by `_`, cut so
 * that `<safe>_<12 hex>` fits PGMQ's 47 characters. Different channels can
 * map to the same safe name (`a.b`, `a-b`): with this backend they then share
 * members — choose channel names that differ in letters and digits.
 */
export function safeChannel(channel: string): string {
  const safe = channel.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, MAX_QUEUE_NAME_LENGTH - SUFFIX_LENGTH);
  return safe.length > 0 ? safe : 'bus';
}

/**
 * The trusting backend (pipecat's DirectPgmqBackend): members call the queue
 * engine directly. Queue names are `<safe_channel>_<12 hex>`, so channels
 * are visible to every role that can read pg_class; peers are found by
 * listing queues with the channel's prefix, cached for `peerCacheTtlMs`. A
 * peer that cannot receive (its queue is gone) is skipped, the cache is
 * dropped, and the publish succeeds for the others.
 *
 * Unlike pipecat's, it never delivers a member's message to itself, and it
 * wakes peers with a NOTIFY so they get messages within milliseconds.
 */
export class DirectBackend implements BusBackend {
  private readonly client: QueueClient;
  private readonly logger: Logger;
  private readonly ttlMs: number;
  private readonly peerCache = new Map<string, { peers: string[]; until: number }>();
  private readonly wakers = new Map<string, Waker>();

  constructor(options: DirectBackendOptions) {
    if (!options?.client) throw new InvalidArgumentError('DirectBackend needs a QueueClient as `client`');
    this.client = options.client;
    this.logger = options.logger ?? options.client.logger;
    this.ttlMs = options.peerCacheTtlMs ?? 1000;
  }

  async join(channel: string): Promise<string> {
    const safe = safeChannel(channel);
    const queue = `${safe}_${randomBytes(6).toString('hex')}`;
    await this.client.createQueue(queue);
    this.wakers.set(queue, await Waker.open(this.client.driver, wakeChannel(queue, safe), this.logger));
    this.peerCache.delete(safe);
    return queue;
  }

  async publish(channel: string, myQueue: string, message: JsonValue): Promise<number[]> {
    const safe = safeChannel(channel);
    const peers = (await this.peers(safe)).filter((q) => q !== myQueue);
    const results = await Promise.allSettled(peers.map((q) => this.client.send(q, message)));
    const ids: number[] = [];
    const woken: string[] = [];
    results.forEach((r, i) => {
      const peer = peers[i]!;
      if (r.status === 'fulfilled') {
        ids.push(r.value);
        woken.push(wakeChannel(peer, safe));
      } else {
        this.peerCache.delete(safe);
        this.logger.warn({ err: r.reason, peer, channel }, 'pgferry bus: peer did not receive; skipped');
      }
    });
    if (woken.length > 0) {
      // One statement, one transaction: a single commit-time NOTIFY lock for
      // the whole fan-out (see PERFORMANCE.md on NOTIFY costs).
      await this.client.driver.query(`SELECT pg_notify(c, '') FROM unnest($1::text[]) AS c`, [woken], { prepare: true });
    }
    return ids;
  }

  read(queue: string, options: BackendReadOptions): Promise<BackendMessage[]> {
    const opts = { visibilityTimeoutSeconds: options.visibilityTimeoutSeconds, qty: options.batchSize };
    return longPoll(
      this.wakers.get(queue),
      options,
      async () => toBackend(await this.client.read<JsonValue>(queue, opts)),
      async (maxPollSeconds) =>
        toBackend(
          await this.client.readWithPoll<JsonValue>(queue, { ...opts, maxPollSeconds, pollIntervalMs: options.pollIntervalMs }),
        ),
    );
  }

  archive(queue: string, _channel: string, msgIds: readonly number[]): Promise<number[]> {
    return msgIds.length === 0 ? Promise.resolve([]) : this.client.archive(queue, msgIds);
  }

  async leave(queue: string, channel: string): Promise<void> {
    const waker = this.wakers.get(queue);
    this.wakers.delete(queue);
    await waker?.close();
    this.peerCache.delete(safeChannel(channel));
    await this.client.dropQueue(queue);
  }

  /** Queues named `<safe>_<12 hex>`: matched exactly, the prefix is never a LIKE pattern. */
  private async peers(safe: string): Promise<string[]> {
    const cached = this.peerCache.get(safe);
    if (cached && cached.until > Date.now()) return cached.peers;
    const prefix = `${safe}_`;
    const peers = (await this.client.listQueues())
      .map((q) => q.queueName)
      .filter((name) => name.length === prefix.length + 12 && name.startsWith(prefix) && /^[0-9a-f]{12}$/.test(name.slice(prefix.length)))
      .sort();
    this.peerCache.set(safe, { peers, until: Date.now() + this.ttlMs });
    return peers;
  }
}

function toBackend(messages: Message<JsonValue>[]): BackendMessage[] {
  return messages.map((m) => ({ msgId: m.msgId, message: m.message }));
}
