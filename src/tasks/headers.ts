/** Header names pgferry's tasks write on jobs (see sql/tasks/0001_core.sql). */
export const H = {
  task: 'x-pgferry-task',
  /** pgmq's own FIFO group header, so pgmq's read_grouped sees the same groups. */
  group: 'x-pgmq-group',
  priority: 'x-pgferry-priority',
  idempotencyKey: 'x-pgferry-idempotency-key',
  lastError: 'x-pgferry-last-error',
  error: 'x-pgferry-error',
  attempts: 'x-pgferry-attempts',
  failedAt: 'x-pgferry-failed-at',
  state: 'x-pgferry-state',
  originalQueue: 'x-pgferry-original-queue',
  originalMsgId: 'x-pgferry-original-msg-id',
  originalEnqueuedAt: 'x-pgferry-original-enqueued-at',
  deadLetterId: 'x-pgferry-dead-letter-id',
  rescheduledFrom: 'x-pgferry-rescheduled-from',
  rescheduledAs: 'x-pgferry-rescheduled-as',
  schedule: 'x-pgferry-schedule',
  occurrence: 'x-pgferry-occurrence',
  // progress, results, flows, history (sql/tasks/0004)
  progress: 'x-pgferry-progress',
  progressAt: 'x-pgferry-progress-at',
  history: 'x-pgferry-history',
  flow: 'x-pgferry-flow',
  parent: 'x-pgferry-parent',
} as const;
