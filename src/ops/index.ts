// pgferry/ops: operations — Prometheus metrics, the dashboard, stats. Explicit exports only.
export { Ops, type OpsOptions, type OpsSchemas, type Installed } from './ops.js';
export { queueStats, EXACT_UP_TO, type QueueStat } from './queue-stats.js';
export {
  taskStats,
  cronStats,
  busStats,
  streamStats,
  type TaskStat,
  type CronStat,
  type BusChannelStat,
  type StreamStat,
} from './engine-stats.js';
export { TaskMetrics, DURATION_BUCKETS_SECONDS, type TaskCounters } from './task-metrics.js';
export {
  metricsHandler,
  renderMetrics,
  PROMETHEUS_CONTENT_TYPE,
  type MetricsOptions,
} from './prometheus.js';
export {
  browseMessages,
  browseJobs,
  JOB_STATES,
  type BrowseFilter,
  type BrowsedMessage,
  type BrowsedJob,
} from './browse.js';
export { runJobAction, type JobAction, type JobActionResult } from './job-actions.js';
export {
  dashboardHandler,
  type DashboardOptions,
  type DashboardAuth,
  type DashboardHandler,
  type NodeHandler,
} from './dashboard/handler.js';
export {
  startDashboard,
  type StartDashboardOptions,
  type RunningDashboard,
} from './dashboard/server.js';
