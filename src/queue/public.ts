// The public half of the queue's door (src/queue/index.ts): the queue API
// that `pgferry` exports. src/index.ts and the door re-export this file whole
// (`export *`), so the list is written once, here. Explicit exports only; no
// `export *` in this file (test/queue/door.test.ts).
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
// The queue-name limit (characters).
export { MAX_QUEUE_NAME_LENGTH } from './validate.js';
