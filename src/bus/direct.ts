import { randomBytes } from 'node:crypto';
import type { Logger } from '../logger.js';
import { MAX_QUEUE_NAME_LENGTH, type Arg, type QueueClient } from '../queue/index.js';
import { InvalidArgumentError, QueueNotFoundError } from '../errors.js';
import type { JsonValue } from './serializer.js';
import type { Executor } from '../driver/types.js';
import type { BackendMessage, PublishArgs, BackendReadOptions, BusBackend } from './types.js';
import { Waker, longPoll, wakeChannel } from './wake.js';
import { DirectStatements } from './direct-sql.js';

export interface DirectBackendOptions {
  /** The queue client to use; the backend never closes it. */
  client: QueueClient;
  /** How long a channel's peer list is reused before listing queues again. Default 1000. */
  peerCacheTtlMs?: number;
  /** Default: the client's logger. */
  logger?: Logger;
  /**
   * Wait for the WAL flush before a publish counts as done (default true).
   * false commits publishes asynchronously: a message published in the last
   * few hundred milliseconds before a server crash can be lost, and publish
   * latency loses the fsync (several ms on ordinary disks). See docs/bus.md.
   */
  durablePublish?: boolean;
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
  const safe = channel
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
    .slice(0, MAX_QUEUE_NAME_LENGTH - SUFFIX_LENGTH);
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
  private readonly asyncPublish: boolean;
  private readonly sql: DirectStatements;

  constructor(options: DirectBackendOptions) {
    if (!options?.client)
      throw new InvalidArgumentError('DirectBackend needs a QueueClient as `client`');
    this.client = options.client;
    this.logger = options.logger ?? options.client.logger;
    this.ttlMs = options.peerCacheTtlMs ?? 1000;
    // Publishes go out in one statement (DirectStatements.publish); reads and
    // archives commit without waiting for the WAL flush: losing one in a
    // crash only makes a message visible again (at least once).
    this.asyncPublish = options.durablePublish === false;
    this.sql = new DirectStatements(options.client.engine);
  }

  async join(channel: string): Promise<string> {
    const safe = safeChannel(channel);
    const queue = `${safe}_${randomBytes(6).toString('hex')}`;
    await this.client.createQueue(queue);
    this.wakers.set(
      queue,
      await Waker.open(this.client.driver, wakeChannel(queue, safe), this.logger),
    );
    this.peerCache.delete(safe);
    return queue;
  }

  async publish(...[channel, myQueue, message, options = {}]: PublishArgs): Promise<number[]> {
    const safe = safeChannel(channel);
    // In the caller's transaction a failed statement aborts it: no peer-by-peer
    // retry there, so start from a fresh peer list (no member that just left).
    if (options.tx) this.peerCache.delete(safe);
    const peers = (await this.peers(safe)).filter((q) => q !== myQueue);
    if (peers.length === 0) return [];
    const body = JSON.stringify(message);
    const headers = options.headers == null ? null : JSON.stringify(options.headers);
    // Every send and every wake-up in one statement, so one round trip and
    // one commit (one WAL flush, one NOTIFY lock) per publish, whatever the
    // number of peers. In a transaction, the NOTIFYs go out at its commit.
    const sendAll = (exec: Executor) =>
      this.sql.publish(
        exec,
        peers,
        peers.map((q) => wakeChannel(q, safe)),
        body,
        headers,
        this.asyncPublish && !options.tx,
      );
    if (options.tx) return sendAll(options.tx);
    try {
      return await sendAll(this.client.driver);
    } catch (err) {
      // Some peer failed (most likely its queue was dropped): send one by
      // one, so only the failing peers miss the message.
      this.logger.debug({ err, channel }, 'pgferry bus: fan-out failed; retrying peer by peer');
      return this.publishEach(safe, channel, peers, message, options.headers ?? null);
    }
  }

  private async publishEach(
    safe: string,
    channel: string,
    peers: string[],
    message: JsonValue,
    headers: Record<string, unknown> | null,
  ): Promise<number[]> {
    const results = await Promise.allSettled(
      peers.map((q) => this.client.send(q, message, { headers })),
    );
    const ids: number[] = [];
    const woken: string[] = [];
    results.forEach((r, i) => {
      const peer = peers[i]!;
      if (r.status === 'fulfilled') {
        ids.push(r.value);
        woken.push(wakeChannel(peer, safe));
      } else {
        this.peerCache.delete(safe);
        this.logger.warn(
          { err: r.reason, peer, channel },
          'pgferry bus: peer did not receive; skipped',
        );
      }
    });
    if (woken.length === 0) {
      // Nobody received it. Peers whose queues are gone just left; anything
      // else (the database is unreachable, the message is refused) fails the
      // publish, for the caller to log and count.
      const other = results.find(
        (r) => r.status === 'rejected' && !(r.reason instanceof QueueNotFoundError),
      );
      if (other) throw (other as PromiseRejectedResult).reason;
      return ids;
    }
    await this.client.driver.query(
      `SELECT pg_notify(c, '') FROM unnest($1::text[]) AS c`,
      [woken],
      {
        prepare: true,
      },
    );
    return ids;
  }

  /** Handled messages are archived by the next read's statement. */
  readonly archivesOnRead = true;

  listening(queue: string): boolean {
    return this.wakers.get(queue)?.listening === true;
  }

  read(queue: string, options: BackendReadOptions): Promise<BackendMessage[]> {
    let archive = options.archive ?? [];
    const waitArgs: Arg[] = [
      [queue, 'text'],
      [options.visibilityTimeoutSeconds, 'integer'],
      [options.batchSize, 'integer'],
    ];
    const waker = this.wakers.get(queue);
    // A listening member's reads hide nothing: the bus tells what it holds.
    const held = waker?.listening && options.held ? options.held : undefined;
    return longPoll(
      waker,
      options,
      async () => {
        if (held) {
          const rows = await this.sql.peek(
            this.client.driver,
            queue,
            options.batchSize,
            archive,
            held,
          );
          archive = [];
          return rows;
        }
        const rows = await this.sql.read(
          this.client.driver,
          queue,
          options.visibilityTimeoutSeconds,
          options.batchSize,
          archive,
        );
        archive = [];
        return rows;
      },
      // Without LISTEN: the queue engine's read_with_poll waits in the database.
      async (maxPollSeconds) => {
        const rows = await this.client.engine.call<{
          msg_id: string;
          message: JsonValue;
          headers: Record<string, unknown> | null;
        }>(
          this.client.driver,
          'read_with_poll',
          [...waitArgs, [maxPollSeconds, 'integer'], [options.pollIntervalMs, 'integer']],
          // A long-poll waits in the database on purpose: extend the query deadline by it.
          {
            select: 'msg_id, message, headers',
            asyncCommit: true,
            prepare: true,
            timeoutExtraMs: maxPollSeconds * 1000,
          },
        );
        return rows
          .map((r) => ({ msgId: Number(r.msg_id), message: r.message, headers: r.headers }))
          .sort((a, b) => a.msgId - b.msgId);
      },
    );
  }

  async archive(queue: string, _channel: string, msgIds: readonly number[]): Promise<number[]> {
    if (msgIds.length === 0) return [];
    return this.sql.archive(this.client.driver, queue, msgIds);
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
      .filter(
        (name) =>
          name.length === prefix.length + 12 &&
          name.startsWith(prefix) &&
          /^[0-9a-f]{12}$/.test(name.slice(prefix.length)),
      )
      .sort();
    this.peerCache.set(safe, { peers, until: Date.now() + this.ttlMs });
    return peers;
  }
}
