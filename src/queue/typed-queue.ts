import type { ConsumeOptions, QueueConsumer } from './consumer.js';
import type { QueueClient } from './client.js';
import type {
  CreateQueueOptions,
  Message,
  MetricsOptions,
  PopOptions,
  QueueMetrics,
  ReadOptions,
  ReadWithPollOptions,
  SendBatchOptions,
  SendOptions,
  TxOption,
} from './types.js';

/** A queue client bound to one queue and payload type. */
export class TypedQueue<T> {
  constructor(
    readonly client: QueueClient,
    readonly name: string,
  ) {}
  create(options?: CreateQueueOptions): Promise<void> {
    return this.client.createQueue(this.name, options);
  }
  drop(options?: TxOption): Promise<boolean> {
    return this.client.dropQueue(this.name, options);
  }
  purge(options?: TxOption): Promise<number> {
    return this.client.purgeQueue(this.name, options);
  }
  send(message: T, options?: SendOptions): Promise<number> {
    return this.client.send<T>(this.name, message, options);
  }
  sendBatch(messages: readonly T[], options?: SendBatchOptions): Promise<number[]> {
    return this.client.sendBatch<T>(this.name, messages, options);
  }
  read(options?: ReadOptions): Promise<Message<T>[]> {
    return this.client.read<T>(this.name, options);
  }
  readWithPoll(options?: ReadWithPollOptions): Promise<Message<T>[]> {
    return this.client.readWithPoll<T>(this.name, options);
  }
  pop(options?: PopOptions): Promise<Message<T>[]> {
    return this.client.pop<T>(this.name, options);
  }
  archive(msgId: number, options?: TxOption): Promise<boolean>;
  archive(msgIds: readonly number[], options?: TxOption): Promise<number[]>;
  archive(ids: number | readonly number[], options?: TxOption): Promise<boolean | number[]> {
    return this.finish('archive', ids, options);
  }
  delete(msgId: number, options?: TxOption): Promise<boolean>;
  delete(msgIds: readonly number[], options?: TxOption): Promise<number[]>;
  delete(ids: number | readonly number[], options?: TxOption): Promise<boolean | number[]> {
    return this.finish('delete', ids, options);
  }
  setVisibilityTimeout(
    ids: number | readonly number[],
    vt: number | Date,
    options?: TxOption,
  ): Promise<Message<T>[]> {
    return this.client.setVisibilityTimeout<T>(this.name, ids, vt, options);
  }
  metrics(options?: MetricsOptions): Promise<QueueMetrics> {
    return this.client.metrics(this.name, options);
  }
  consume(options?: ConsumeOptions): QueueConsumer<T> {
    return this.client.consume<T>(this.name, options);
  }
  private finish(
    how: 'archive' | 'delete',
    ids: number | readonly number[],
    options?: TxOption,
  ): Promise<boolean | number[]> {
    // The overloads of the client's archive/delete take one id or a list, not the union.
    return typeof ids === 'number'
      ? this.client[how](this.name, ids, options)
      : this.client[how](this.name, ids, options);
  }
}
