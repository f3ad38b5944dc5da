import type { BenchSection } from '../harness.js';
import { queueCoreSection } from './queue-core.js';
import { queueFifoSection } from './queue-fifo.js';
import { queueTopicsSection } from './queue-topics.js';
import { queueWakeupSection } from './queue-wakeup.js';
import { queueMetricsSection } from './queue-metrics.js';
import { queueReliabilitySection } from './queue-reliability.js';
import { busSection } from './bus.js';
import { tasksSection } from './tasks.js';
import { streamSection } from './stream.js';
import { recoverySection } from './recovery.js';
import { streamSendSection } from './stream-send.js';

/** Every bench section, in run order. Add new ones here (one file each). */
export const sections: BenchSection[] = [
  queueCoreSection,
  queueFifoSection,
  queueTopicsSection,
  queueWakeupSection,
  queueMetricsSection,
  queueReliabilitySection,
  busSection,
  tasksSection,
  streamSendSection,
  streamSection,
  recoverySection,
];
