// pgferry/stream: PgQue-compatible event streams. Explicit exports only.
export { StreamClient, type StreamClientOptions } from './client.js';
export type { DlqPurgeOptions, RequeueAllResult } from './admin.js';
export {
  Consumer, // deprecated alias of StreamConsumer (docs/concepts.md)
  StreamConsumer,
  type StreamConsumerOptions,
  type BatchResult,
} from './consumer.js';
export { Ticker, type TickerOptions } from './ticker.js';
export { acquireSharedTicker } from './shared-ticker.js';
export {
  BatchNotFoundError,
  CooperativeConsumerError,
  NotSubscribedError,
  PermissionDeniedError,
  StaleBatchError,
  StreamNotFoundError,
  mapStreamError,
} from './errors.js';
export { MAX_STREAM_NAME_BYTES } from './validate.js';
export type {
  ConsumerInfo,
  DeadLetter,
  Handler,
  HandlerContext,
  NackOptions,
  ReceiveCoopOptions,
  ReceiveOptions,
  StreamConfig,
  StreamInfo,
  StreamMessage,
  StreamSendOptions,
  TxOption,
} from './types.js';
