import type { ConsumeOptions, QueueConsumer } from './consumer.js';
import type { QueueClient } from './client.js';
import type * as Q from './types.js';

/** A queue client bound to one queue and payload type. */
export class TypedQueue<T> {
  constructor(
    readonly client: QueueClient,
    readonly name: string,
  ) {}
  create(options?: Q.CreateQueueOptions): Promise<void> {
    return this.client.createQueue(this.name, options);
  }
  drop(options?: Q.TxOption): Promise<boolean> {
    return this.client.dropQueue(this.name, options);
  }
  purge(options?: Q.TxOption): Promise<number> {
    return this.client.purgeQueue(this.name, options);
  }
  send(message: T, options?: Q.SendOptions): Promise<number> {
    return this.client.send<T>(this.name, message, options);
  }
  sendBatch(messages: readonly T[], options?: Q.SendBatchOptions): Promise<number[]> {
    return this.client.sendBatch<T>(this.name, messages, options);
  }
  read(options?: Q.ReadOptions): Promise<Q.Message<T>[]> {
    return this.client.read<T>(this.name, options);
  }
  readWithPoll(options?: Q.ReadWithPollOptions): Promise<Q.Message<T>[]> {
    return this.client.readWithPoll<T>(this.name, options);
  }
  pop(options?: Q.PopOptions): Promise<Q.Message<T>[]> {
    return this.client.pop<T>(this.name, options);
  }
  archive(msgId: number, options?: Q.TxOption): Promise<boolean>;
  archive(msgIds: readonly number[], options?: Q.TxOption): Promise<number[]>;
  archive(ids: number | readonly number[], options?: Q.TxOption): Promise<boolean | number[]> {
    return this.finish('archive', ids, options);
  }
  delete(msgId: number, options?: Q.TxOption): Promise<boolean>;
  delete(msgIds: readonly number[], options?: Q.TxOption): Promise<number[]>;
  delete(ids: number | readonly number[], options?: Q.TxOption): Promise<boolean | number[]> {
    return this.finish('delete', ids, options);
  }
  setVisibilityTimeout(
    ids: number | readonly number[],
    vt: number | Date,
    options?: Q.TxOption,
  ): Promise<Q.Message<T>[]> {
    return this.client.setVisibilityTimeout<T>(this.name, ids, vt, options);
  }
  metrics(options?: Q.MetricsOptions): Promise<Q.QueueMetrics> {
    return this.client.metrics(this.name, options);
  }
  consume(options?: ConsumeOptions): QueueConsumer<T> {
    return this.client.consume<T>(this.name, options);
  }
  private finish(
    how: 'archive' | 'delete',
    ids: number | readonly number[],
    options?: Q.TxOption,
  ): Promise<boolean | number[]> {
    // The overloads of the client's archive/delete take one id or a list, not the union.
    return typeof ids === 'number'
      ? this.client[how](this.name, ids, options)
      : this.client[how](this.name, ids, options);
  }
}
