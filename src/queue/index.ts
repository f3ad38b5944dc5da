// The queue layer's door: everything the rest of pgferry may take from
// src/queue. tasks/, bus/, testing/, cli/ and src/index.ts import the queue
// through this file only (docs/internals.md, "The layers"; enforced by the
// QUEUE_DOOR_ONLY list of eslint.config.js). What is not exported here (the
// feature modules, the statements' text, the Consumer's internals) is the
// queue layer's own business and may change without notice. Explicit exports
// only; no `export *`.

// --- public API (what `pgferry` re-exports from src/index.ts) --------------
export { QueueClient, TypedQueue, type QueueClientOptions } from './client.js';
export {
  Consumer, // deprecated alias of QueueConsumer
  Delivery,
  QueueConsumer,
  type ConsumeMode,
  type ConsumeOptions,
} from './consumer.js';
export type { BatchHandler, ProcessBatchOptions } from './process.js';
export {
  GROUP_HEADER,
  type GroupedReadMode,
  type GroupedReadOptions,
  type GroupedReadWithPollOptions,
} from './grouped.js';
export type {
  SendBatchTopicOptions,
  SendTopicOptions,
  TopicBinding,
  TopicRoute,
  TopicSendResult,
} from './topics.js';
export {
  DEFAULT_THROTTLE_INTERVAL_MS,
  notifyChannel,
  type NotifyEvent,
  type NotifyThrottle,
} from './notify.js';
export type {
  CreateQueueOptions,
  Headers,
  Message,
  PopOptions,
  QueueInfo,
  QueueMetrics,
  MetricsOptions,
  ReadOptions,
  ReadWithPollOptions,
  SendBatchOptions,
  SendOptions,
  TxOption,
} from './types.js';
export type { ArchiveRetention } from './archive-retention.js';
export type {
  ConvertArchiveOptions,
  CreatePartitionedQueueOptions,
  MaintenanceResult,
} from './partitions.js';
export { MaintenanceScheduler, type MaintenanceSchedulerOptions } from './maintenance.js';
export {
  DEAD_LETTER_HEADERS,
  type DeadLetter,
  type DeadLetterFilterOptions,
  type DeadLetterOrigin,
  type DeadLetterPolicy,
  type ListDeadLettersOptions,
  type SetDeadLetterPolicyOptions,
} from './dead-letters.js';

// --- for pgferry's own layers (not re-exported by `pgferry`) ---------------
// The row format: a `message_record` row (as every driver returns it), the
// column list that selects one, and its mapping to `Message`. tasks and the
// testing helpers read queue tables and functions with these.
export { MESSAGE_COLUMNS, toMessage, type MessageRow } from './rows.js';
// Argument checks shared with the layers built on the queue: the queue-name
// limit, integer options, and JSON encoding with a typed error for what JSON
// cannot carry (cycles, BigInt, functions).
export { MAX_QUEUE_NAME_LENGTH, checkInt, checkQueueName, toJson } from './validate.js';
// Durations (docs/concepts.md): `…Ms` options with their deprecated
// `…Seconds` aliases, and whole seconds where PGMQ counts them.
export { durationMs, wholeSeconds } from './durations.js';
export { visibilityMs } from './engine/vt.js';
// The queue engine (src/queue/engine/): the layers built on the queue run
// their statements against queue tables and functions through it — a
// client's `engine`, or one of their own for a schema — never with SQL of
// their own (docs/internals.md, "How a statement is written").
export {
  ASYNC_COMMIT,
  QueueEngine,
  call,
  type Arg,
  type ArchivedRow,
  type CallOptions,
  type ListOptions,
  type LiveRow,
  type VtSpec,
} from './engine/index.js';
