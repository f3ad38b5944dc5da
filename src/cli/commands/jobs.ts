import { EXIT, UsageError, type Command } from '../command.js';
import { STR, parseFlags } from '../flags.js';
import {
  ids,
  intOption,
  openOps,
  OPS_OPTIONS,
  OPS_USAGE,
  parseWhere,
  table,
} from '../ops-options.js';
import { browseJobs, JOB_STATES, type BrowsedJob } from '../../ops/browse.js';
import { runJobAction, type JobAction } from '../../ops/job-actions.js';
import type { JobState } from '../../tasks/client.js';
import type { Ops } from '../../ops/ops.js';

const ACTIONS = ['list', 'show', 'retry', 'cancel', 'delete', 'pause', 'resume'] as const;

export const jobsCommand: Command = {
  name: 'jobs',
  summary:
    "search a task's jobs by state or payload field; show, retry, cancel or delete them; pause or resume the task",
  usage: `pgferry jobs <action> <task> [ids…] [options]

Actions:
  list <task>                 jobs (live and archived) in id order
  show <task> <id>            one job in full: state, input, headers, timings, failed attempts
  retry <task> <ids…>|filter  queued/scheduled/retrying → run now; dead → reschedule its dead letter
  cancel <task> <ids…>|filter queued/scheduled/retrying/running → cancelled
  delete <task> <ids…>|filter queued/scheduled/retrying → removed
  pause <task>                every worker stops starting the task's jobs (running ones finish)
  resume <task>               workers start them again (no restart needed)
A filter is --state and/or --where (at least one when no ids are given).
Every action is fenced: a job a worker picked up after it was listed is left
alone and reported as skipped. For a task's dead letters see \`pgferry dlq\`.

Options:
  --state <s>           ${JOB_STATES.join(' | ')}
  --where <f=v>         payload field (dotted path) equals v (JSON or a bare string); repeatable
  --limit <n>           list: at most n (default 50); actions: at most n jobs (default 1000)
  --after <id>          only ids greater than this (paging)

${OPS_USAGE}

Exit codes: 0 done; 1 failure (show: no such job; an action skipped every job
it selected); 2 bad usage; 3 database unreachable.`,
  async run(argv) {
    const { values, positionals } = parseFlags(
      argv,
      {
        ...OPS_OPTIONS,
        state: STR,
        where: { type: 'string', multiple: true },
        limit: STR,
        after: STR,
      },
      true,
    );
    const [action, task, ...rest] = positionals;
    if (!action || !(ACTIONS as readonly string[]).includes(action))
      throw new UsageError(`action must be one of ${ACTIONS.join(', ')}`);
    if (!task) throw new UsageError('give the task name');
    const list = ids(rest);
    const state = values.state as JobState | undefined;
    if (state !== undefined && !JOB_STATES.includes(state))
      throw new UsageError(`--state must be one of ${JOB_STATES.join(', ')}`);
    const payload = parseWhere(values.where, 'where');
    const limit = intOption(values.limit, 'limit', 1);
    const after = intOption(values.after, 'after');
    const filter = {
      ...(state ? { state } : {}),
      ...(payload ? { payload } : {}),
      ...(after !== undefined ? { afterId: after } : {}),
    };
    const print = (data: unknown, text: string) =>
      console.log(values.json ? JSON.stringify(data, null, 2) : text);
    const ops = openOps(values);
    try {
      if (action === 'list') {
        if (list.length) throw new UsageError('list takes no ids (use show, or --after)');
        const jobs = await browseJobs(ops.read, ops.schemas.tasks, task, {
          ...filter,
          limit: limit ?? 50,
        });
        print(
          jobs,
          jobs.length
            ? table(['ID', 'STATE', 'ATTEMPTS', 'ENQUEUED', 'RUN AT', 'INPUT'], jobs.map(row))
            : `no ${task} jobs`,
        );
        return EXIT.ok;
      }
      if (action === 'pause' || action === 'resume') {
        if (list.length || state || payload) throw new UsageError(`${action} takes only the task`);
        const changed = await ops.writeTasks[action](task);
        print(
          { task, paused: action === 'pause', changed },
          `${task}: ${changed ? '' : 'already '}${action}d`,
        );
        return EXIT.ok;
      }
      if (action === 'show') {
        if (list.length !== 1 || state || payload)
          throw new UsageError('show takes exactly one id and no filter');
        const [job] = await browseJobs(ops.read, ops.schemas.tasks, task, { id: list[0]! });
        if (!job) {
          console.error(`pgferry jobs: no ${task} job ${list[0]}`);
          return EXIT.failure;
        }
        print(job, full(job));
        return EXIT.ok;
      }
      const jobs = await select(ops, task, list, filter, limit ?? 1000);
      const results = await runJobAction(ops, action as JobAction, task, jobs);
      const done = results.filter((r) => r.outcome === 'done').length;
      print(
        results,
        results.length
          ? results.map((r) => `job ${r.id}: ${r.outcome} (${r.detail})`).join('\n') +
              `\n${action}: ${done} of ${results.length}`
          : `no ${task} jobs matched`,
      );
      return results.length > 0 && done === 0 ? EXIT.failure : EXIT.ok;
    } finally {
      await ops.close();
    }
  },
};

async function select(
  ops: Ops,
  task: string,
  list: number[],
  filter: { state?: JobState; payload?: Record<string, unknown>; afterId?: number },
  limit: number,
): Promise<BrowsedJob[]> {
  if (list.length) {
    if (filter.state || filter.payload) throw new UsageError('give ids or a filter, not both');
    const out: BrowsedJob[] = [];
    for (const id of list) {
      const [j] = await browseJobs(ops.write, ops.schemas.tasks, task, { id });
      if (!j) throw new UsageError(`no ${task} job ${id}`);
      out.push(j);
    }
    return out;
  }
  if (!filter.state && !filter.payload)
    throw new UsageError('give job ids, or --state and/or --where');
  // Select on the primary: the read counts fence the action, so they must be current.
  return browseJobs(ops.write, ops.schemas.tasks, task, {
    ...filter,
    limit: Math.min(limit, 1000),
  });
}

function row(j: BrowsedJob): unknown[] {
  return [
    j.msgId,
    j.state,
    j.readCount,
    j.enqueuedAt.toISOString(),
    j.visibleAt.toISOString(),
    JSON.stringify(j.message).slice(0, 60),
  ];
}

function full(j: BrowsedJob): string {
  return [
    `job ${j.msgId} of task ${j.task}: ${j.state}`,
    `attempts:    ${j.readCount}`,
    `enqueued at: ${j.enqueuedAt.toISOString()}`,
    `run at:      ${j.visibleAt.toISOString()}`,
    `finished at: ${j.archivedAt?.toISOString() ?? '-'}`,
    `input:       ${JSON.stringify(j.message)}`,
    `headers:     ${JSON.stringify(j.headers)}`,
    ...failedAttempts(j.headers),
  ].join('\n');
}

/** The failed attempts a job keeps in x-pgferry-history (docs/tasks.md, Attempt history). */
function failedAttempts(h: Record<string, unknown> | null): string[] {
  type Entry = {
    attempt: number;
    outcome: string;
    finishedAt: string;
    error?: { class?: string; message?: string };
  };
  const list = h?.['x-pgferry-history'];
  return (Array.isArray(list) ? (list as Entry[]) : []).map(
    (a) =>
      `attempt ${a.attempt}:   ${a.outcome} at ${a.finishedAt}: ${a.error?.class}: ${a.error?.message}`,
  );
}
