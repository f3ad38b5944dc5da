import { execute, type Executor } from '../driver/types.js';
import { InvalidArgumentError } from '../errors.js';
import type { Headers, TxOption } from './types.js';
import { checkDate, checkInt, toJson } from './validate.js';

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
  /** Seconds until the messages become visible. Must not be negative. Default 0. */
  delaySeconds?: number;
}

export interface SendBatchTopicOptions extends TxOption {
  /** One headers object (or null) per message. */
  headers?: (Headers | null)[];
  /** Seconds until visible (negative allowed, as in PGMQ). Excludes `deliverAt`. */
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
  constructor(private readonly s: string) {}

  async bind(exec: Executor, pattern: string, queue: string): Promise<void> {
    await execute(exec, `SELECT ${this.s}.bind_topic($1::text, $2::text)`, [pattern, queue]);
  }

  async unbind(exec: Executor, pattern: string, queue: string): Promise<boolean> {
    const res = await execute<{ ok: boolean }>(
      exec,
      `SELECT ${this.s}.unbind_topic($1::text, $2::text) AS ok`,
      [pattern, queue],
    );
    return res.rows[0]!.ok;
  }

  async list(exec: Executor, queue: string | undefined): Promise<TopicBinding[]> {
    const res =
      queue === undefined
        ? await execute<BindingRow>(exec, `SELECT * FROM ${this.s}.list_topic_bindings()`)
        : await execute<BindingRow>(exec, `SELECT * FROM ${this.s}.list_topic_bindings($1::text)`, [
            queue,
          ]);
    return res.rows.map((r) => ({
      pattern: r.pattern,
      queueName: r.queue_name,
      boundAt: toDate(r.bound_at),
      compiledRegex: r.compiled_regex,
    }));
  }

  async testRouting(exec: Executor, routingKey: string): Promise<TopicRoute[]> {
    const res = await execute<Omit<BindingRow, 'bound_at'>>(
      exec,
      `SELECT * FROM ${this.s}.test_routing($1::text)`,
      [routingKey],
    );
    return res.rows.map((r) => ({
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
    await execute(exec, `SELECT ${this.s}.validate_${what}($1::text)`, [value]);
  }

  async send(
    exec: Executor,
    routingKey: string,
    message: unknown,
    options: SendTopicOptions,
  ): Promise<number> {
    const headers = options.headers == null ? null : toJson('headers', options.headers);
    const delay = checkInt('delaySeconds', options.delaySeconds ?? 0);
    const res = await execute<{ n: number }>(
      exec,
      `SELECT ${this.s}.send_topic($1::text, $2::jsonb, $3::jsonb, $4::integer) AS n`,
      [routingKey, toJson('message', message), headers, delay],
      { prepare: true },
    );
    return Number(res.rows[0]!.n);
  }

  async sendBatch(
    exec: Executor,
    routingKey: string,
    messages: readonly unknown[],
    options: SendBatchTopicOptions,
  ): Promise<TopicSendResult[]> {
    if (!Array.isArray(messages) || messages.length === 0)
      throw new InvalidArgumentError('msgs cannot be NULL or empty');
    const bodies = messages.map((m, i) => toJson(`messages[${i}]`, m));
    let headers: (string | null)[] | null = null;
    if (options.headers) {
      if (options.headers.length !== messages.length) {
        throw new InvalidArgumentError(
          `headers array length (${options.headers.length}) must match msgs array length (${messages.length})`,
        );
      }
      headers = options.headers.map((h, i) => (h == null ? null : toJson(`headers[${i}]`, h)));
    }
    let vtExpr: string;
    let vt: number | Date;
    if (options.deliverAt !== undefined) {
      if (options.delaySeconds !== undefined)
        throw new InvalidArgumentError('give delaySeconds or deliverAt, not both');
      vtExpr = '$4::timestamptz';
      vt = checkDate('deliverAt', options.deliverAt);
    } else {
      vtExpr = '$4::integer';
      vt = checkInt('delaySeconds', options.delaySeconds ?? 0);
    }
    const res = await execute<{ queue_name: string; msg_id: string | number }>(
      exec,
      `SELECT queue_name, msg_id FROM ${this.s}.send_batch_topic($1::text, $2::jsonb[], $3::jsonb[], ${vtExpr})`,
      [routingKey, bodies, headers, vt],
      { prepare: true },
    );
    return res.rows.map((r) => ({ queueName: r.queue_name, msgId: Number(r.msg_id) }));
  }
}
