import type { Executor } from '../driver/types.js';
import type { Arg } from './engine/calls.js';
import type { QueueEngine } from './engine/index.js';
import { vtArg, vtOf } from './engine/vt.js';
import type { Headers, TxOption } from './types.js';
import { encodeBatch, toJson } from './validate.js';

/** One row of `topic_bindings`. */
export interface TopicBinding {
  pattern: string;
  queueName: string;
  boundAt: Date;
  /** The POSIX regex the pattern compiles to (e.g. `fz.#` → `^fz\..*$`). */
  compiledRegex: string;
}

/** A binding a routing key matches (`test_routing`). */
export interface TopicRoute {
  pattern: string;
  queueName: string;
  compiledRegex: string;
}

export interface SendTopicOptions extends TxOption {
  headers?: Headers | null;
  /** Milliseconds until the messages become visible (PGMQ counts whole seconds: rounded up). Must not be negative. Default 0. */
  delayMs?: number;
  /** @deprecated Use `delayMs` (this alias goes in the next release). */
  delaySeconds?: number;
}

export interface SendBatchTopicOptions extends TxOption {
  /** One headers object (or null) per message. */
  headers?: (Headers | null)[];
  /** Milliseconds until visible (negative allowed, as in PGMQ; rounded up to whole seconds). Excludes `deliverAt`. */
  delayMs?: number;
  /** @deprecated Use `delayMs` (this alias goes in the next release). */
  delaySeconds?: number;
  /** Exact time the messages become visible. */
  deliverAt?: Date;
}

/** One message a batch topic send inserted. */
export interface TopicSendResult {
  queueName: string;
  msgId: number;
}

interface BindingRow {
  pattern: string;
  queue_name: string;
  bound_at: Date | string;
  compiled_regex: string;
}

const toDate = (v: Date | string): Date => (v instanceof Date ? v : new Date(v));

/** The SQL side of the client's topic methods (the client validates names first). */
export class TopicSql {
  constructor(private readonly e: QueueEngine) {}

  async bind(exec: Executor, pattern: string, queue: string): Promise<void> {
    await this.e.call(exec, 'bind_topic', [
      [pattern, 'text'],
      [queue, 'text'],
    ]);
  }

  async unbind(exec: Executor, pattern: string, queue: string): Promise<boolean> {
    const rows = await this.e.call<{ r: boolean }>(exec, 'unbind_topic', [
      [pattern, 'text'],
      [queue, 'text'],
    ]);
    return rows[0]!.r;
  }

  async list(exec: Executor, queue: string | undefined): Promise<TopicBinding[]> {
    const args: Arg[] = queue === undefined ? [] : [[queue, 'text']];
    const rows = await this.e.call<BindingRow>(exec, 'list_topic_bindings', args);
    return rows.map((r) => ({
      pattern: r.pattern,
      queueName: r.queue_name,
      boundAt: toDate(r.bound_at),
      compiledRegex: r.compiled_regex,
    }));
  }

  async testRouting(exec: Executor, routingKey: string): Promise<TopicRoute[]> {
    const rows = await this.e.call<Omit<BindingRow, 'bound_at'>>(exec, 'test_routing', [
      [routingKey, 'text'],
    ]);
    return rows.map((r) => ({
      pattern: r.pattern,
      queueName: r.queue_name,
      compiledRegex: r.compiled_regex,
    }));
  }

  async validate(
    exec: Executor,
    what: 'routing_key' | 'topic_pattern',
    value: string,
  ): Promise<void> {
    await this.e.call(exec, `validate_${what}`, [[value, 'text']]);
  }

  async send(
    exec: Executor,
    routingKey: string,
    message: unknown,
    options: SendTopicOptions,
  ): Promise<number> {
    const headers = options.headers == null ? null : toJson('headers', options.headers);
    const [delay] = vtArg(vtOf(options));
    const args: Arg[] = [
      [routingKey, 'text'],
      [toJson('message', message), 'jsonb'],
      [headers, 'jsonb'],
      [delay, 'integer'],
    ];
    const rows = await this.e.call<{ r: number }>(exec, 'send_topic', args, { prepare: true });
    return Number(rows[0]!.r);
  }

  async sendBatch(
    exec: Executor,
    routingKey: string,
    messages: readonly unknown[],
    options: SendBatchTopicOptions,
  ): Promise<TopicSendResult[]> {
    const { bodies, headers } = encodeBatch(messages, options.headers);
    const args: Arg[] = [
      [routingKey, 'text'],
      [bodies, 'jsonb[]'],
      [headers, 'jsonb[]'],
      vtArg(vtOf(options)),
    ];
    const rows = await this.e.call<{ queue_name: string; msg_id: string | number }>(
      exec,
      'send_batch_topic',
      args,
      { select: 'queue_name, msg_id', prepare: true },
    );
    return rows.map((r) => ({ queueName: r.queue_name, msgId: Number(r.msg_id) }));
  }
}
