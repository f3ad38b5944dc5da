import type { Logger } from '../logger.js';
import type { TaskClient } from './client.js';
import { H } from './headers.js';
import { JobRun, type JobRunSetup } from './job-features.js';
import type { JobMessage } from './lease.js';
import type { AnyTask } from './types.js';

/**
 * A running job's JobRun (progress writer, ctx.complete(tx), a flow
 * parent's children), made the first time the handler reads ctx.progress,
 * ctx.complete or ctx.childResults. Most handlers never do: one small
 * object per job instead of a JobRun with its two bound functions and its
 * array (allocations per job show as garbage collection, the largest share
 * of a no-op job's Node time).
 */
export class RunHolder implements JobRunSetup {
  current: JobRun | undefined = undefined;
  /** The attempt is over: a JobRun made now starts closed (late progress ignored, late complete refused). */
  ended = false;

  constructor(
    readonly client: TaskClient,
    readonly task: AnyTask,
    readonly m: JobMessage,
    readonly intervalMs: number,
    readonly notify: boolean,
    readonly logger: Logger,
  ) {}

  /** A flow parent: its children's outcomes are read before its handler runs. */
  get isFlowParent(): boolean {
    return this.m.headers?.[H.flow] !== undefined;
  }

  get(): JobRun {
    if (this.current) return this.current;
    const run = new JobRun(this);
    // Nothing reported yet, so settle() closes it at once, as it closes a JobRun at the attempt's end.
    if (this.ended) void run.settle();
    return (this.current = run);
  }
}
