// The queue layer's door: everything the rest of pgferry may take from
// src/queue. tasks/, bus/, testing/, cli/ and src/index.ts import the queue
// through this file only (docs/internals.md, "The layers"; enforced by the
// QUEUE_DOOR_ONLY list of eslint.config.js). What is not exported here (the
// feature modules, the statements' text, the Consumer's internals) is the
// queue layer's own business and may change without notice. Explicit exports
// only, but for one line: the public half of the door, ./public.ts (what
// `pgferry` re-exports whole from src/index.ts), listed once, there.

// --- public API (./public.ts, re-exported by `pgferry`) ---------------------
export * from './public.js';

// --- for pgferry's own layers (not re-exported by `pgferry`) ---------------
// The row format: a `message_record` row (as every driver returns it), the
// column list that selects one, and its mapping to `Message`. tasks and the
// testing helpers read queue tables and functions with these.
export { MESSAGE_COLUMNS, epochMs, toMessage, type MessageRow } from './rows.js';
// Argument checks shared with the layers built on the queue: the queue-name
// limit, integer options, and JSON encoding with a typed error for what JSON
// cannot carry (cycles, BigInt, functions).
export { checkInt, checkQueueName, toJson } from './validate.js';
// Durations (docs/concepts.md): `…Ms` options with their deprecated
// `…Seconds` aliases, and whole seconds where PGMQ counts them.
export { durationMs, wholeSeconds } from './durations.js';
export { visibilityMs } from './engine/vt.js';
// The queue engine (src/queue/engine/): the layers built on the queue run
// their statements against queue tables and functions through it — a
// client's `engine`, or one of their own for a schema — never with SQL of
// their own (docs/internals.md, "How a statement is written").
export {
  ARCHIVE_COLUMNS,
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
