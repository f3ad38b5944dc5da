import { POOLER_FLAGS, POOLER_USAGE, poolerFromFlags } from '../pooler-flags.js';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { EXIT, UsageError, type Command } from '../command.js';
import { FLAG, STR, TASKS_CONNECTION_FLAGS, parseFlags } from '../flags.js';
import { consoleLogger } from '../console-logger.js';
import { installed } from '../../migrate/installed.js';
import { HEALTH_OPTIONS, HEALTH_USAGE, healthFromFlags } from '../health-server.js';
import { TaskClient } from '../../tasks/client.js';
import { Worker } from '../../tasks/worker.js';
import { isTask, type AnyTask } from '../../tasks/types.js';

export const workerCommand: Command = {
  name: 'worker',
  summary: 'run the tasks a module exports (pgferry/tasks) until SIGINT/SIGTERM',
  usage: `pgferry worker <module> [options]

Loads <module> (compiled JavaScript, or TypeScript through your own loader,
e.g. \`node --import tsx node_modules/.bin/pgferry worker ./tasks.ts\`), takes
every task it exports (named exports, arrays of tasks, or a default export
object holding them), and runs them. SIGINT/SIGTERM stop it gracefully:
running handlers get --shutdown-grace-ms to finish, then are aborted and
their jobs handed back. Connects to --url, else DATABASE_URL, else PG*.

Options:
  --url <url>                    connection string (default: DATABASE_URL)
  --queue-schema <name>          schema of the queue engine (default: pgmq)
  --tasks-schema <name>          schema of the tasks engine (default: pgferry_tasks)
  --concurrency <n>              handlers running at once (default: 10)
  --batch-size <n>               jobs leased per fetch (default: max(2 × concurrency, 20))
  --poll-interval-ms <n>         longest sleep on an idle queue (default: 1000)
  --error-retry-interval-ms <n>  wait after a failed fetch (default: 5000)
  --shutdown-grace-ms <n>        time running handlers get on shutdown (default: 10000)
  --lease-margin-ms <n>          lease = task timeout + this (default: 5000)
  --include <a,b>                run only these tasks
  --exclude <c>                  do not run these tasks
  --no-listen                    poll only
${POOLER_USAGE}
  --no-cron                      do not fire cron schedules from this worker
  --prune-interval-minutes <n>   prune archived jobs every n minutes; 0 turns pruning off (default: 720)
  --prune-batch-size <n>         archived jobs deleted per statement (default: 1000)
  --prune-retention-hours <n>    archived jobs older than this are pruned (default: 168)
  --quiet                        log only errors
${HEALTH_USAGE}
  -h, --help                     show this help

Exit codes: 0 stopped cleanly; 1 the module failed to load or the worker
failed; 2 bad flags, no tasks to run or an unknown --include/--exclude
name; 3 database unreachable; 4 the tasks engine is not installed (run
\`pgferry migrate\`).`,
  async run(argv) {
    const { values, positionals } = parseFlags(
      argv,
      {
        ...TASKS_CONNECTION_FLAGS,
        concurrency: STR,
        'batch-size': STR,
        'poll-interval-ms': STR,
        'error-retry-interval-ms': STR,
        'shutdown-grace-ms': STR,
        'lease-margin-ms': STR,
        include: STR,
        exclude: STR,
        'no-listen': FLAG,
        ...POOLER_FLAGS,
        'no-cron': FLAG,
        'prune-interval-minutes': STR,
        'prune-batch-size': STR,
        'prune-retention-hours': STR,
        quiet: FLAG,
        ...HEALTH_OPTIONS,
      },
      true,
    );
    if (positionals.length !== 1) throw new UsageError('give exactly one module to load');
    const pooler = poolerFromFlags(values);
    const num = (flag: string, min: number): number | undefined => {
      const v = (values as Record<string, unknown>)[flag];
      if (v === undefined) return undefined;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min)
        throw new UsageError(`--${flag} must be an integer ≥ ${min}, got ${String(v)}`);
      return n;
    };
    const list = (v: string | undefined): string[] | undefined =>
      v
        ?.split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    const concurrency = num('concurrency', 1);
    const batchSize = num('batch-size', 1);
    const pollIntervalMs = num('poll-interval-ms', 1);
    const errorRetryIntervalMs = num('error-retry-interval-ms', 1);
    const shutdownGraceMs = num('shutdown-grace-ms', 0);
    const leaseMarginMs = num('lease-margin-ms', 1);
    const pruneMinutes = num('prune-interval-minutes', 0);
    const pruneBatch = num('prune-batch-size', 1);
    const retentionHours = num('prune-retention-hours', 0);
    const include = list(values.include);
    const exclude = list(values.exclude);

    let mod: Record<string, unknown>;
    try {
      mod = (await import(pathToFileURL(resolve(positionals[0]!)).href)) as Record<string, unknown>;
    } catch (err) {
      console.error(`pgferry worker: cannot load ${positionals[0]}: ${(err as Error).message}`);
      return EXIT.failure;
    }
    const found = collectTasks(mod);
    if (found.size === 0)
      throw new UsageError(
        `${positionals[0]} exports no tasks (define them with defineTask from pgferry/tasks)`,
      );
    for (const name of [...(include ?? []), ...(exclude ?? [])]) {
      if (!found.has(name))
        throw new UsageError(
          `no task named "${name}" in ${positionals[0]}; it has: ${[...found.keys()].join(', ')}`,
        );
    }
    const tasks = [...found.values()].filter(
      (t) => (!include || include.includes(t.name)) && !exclude?.includes(t.name),
    );
    if (tasks.length === 0) throw new UsageError('--include/--exclude leave no task to run');

    const logger = values.quiet
      ? { ...consoleLogger, info: () => undefined, warn: () => undefined }
      : consoleLogger;
    const client = new TaskClient({
      ...(values.url ? { connectionString: values.url } : {}),
      ...(values['queue-schema'] ? { queueSchema: values['queue-schema'] } : {}),
      ...(values['tasks-schema'] ? { tasksSchema: values['tasks-schema'] } : {}),
      maxConnections: Math.min(20, Math.max(4, tasks.length + 3)),
      ...pooler,
      logger,
    });
    try {
      const found = await installed({ driver: client.driver, schemas: [client.tasksSchema] });
      if (!found.some((c) => c.component === 'tasks')) {
        console.error(
          `pgferry worker: the tasks engine is not installed in schema "${client.tasksSchema}"; run \`pgferry migrate\` first`,
        );
        return EXIT.incompatible;
      }
      const worker = new Worker({
        client,
        tasks,
        logger,
        ...(concurrency !== undefined ? { concurrency } : {}),
        ...(batchSize !== undefined ? { batchSize } : {}),
        ...(pollIntervalMs !== undefined ? { pollIntervalMs } : {}),
        ...(errorRetryIntervalMs !== undefined ? { errorRetryIntervalMs } : {}),
        ...(shutdownGraceMs !== undefined ? { shutdownGraceMs } : {}),
        ...(leaseMarginMs !== undefined ? { leaseMarginMs } : {}),
        listen: !values['no-listen'],
        cron: !values['no-cron'],
        handleSignals: true,
        prune:
          pruneMinutes === 0
            ? null
            : {
                ...(pruneMinutes !== undefined ? { intervalMs: pruneMinutes * 60_000 } : {}),
                ...(pruneBatch !== undefined ? { batchSize: pruneBatch } : {}),
                ...(retentionHours !== undefined
                  ? { retentionMs: retentionHours * 3_600_000 }
                  : {}),
              },
      });
      worker.on('job:dead', (job, err) =>
        logger.warn(
          { task: job.task, id: job.id, attempt: job.attempt, error: (err as Error)?.message },
          'job moved to the dead-letter queue',
        ),
      );
      worker.on('job:retry', (job, err, delayMs) =>
        logger.info(
          {
            task: job.task,
            id: job.id,
            attempt: job.attempt,
            delayMs,
            error: (err as Error)?.message,
          },
          'job failed, will retry',
        ),
      );
      worker.once('worker:ready', () =>
        logger.info(
          { tasks: tasks.map((t) => t.name).join(','), concurrency: concurrency ?? 10 },
          'pgferry worker started',
        ),
      );
      const health = await healthFromFlags(
        values,
        () => worker.health(),
        (line) => console.error(`pgferry worker: ${line}`),
      );
      try {
        await worker.run();
      } finally {
        await health?.close();
      }
      logger.info({}, 'pgferry worker stopped');
      return EXIT.ok;
    } finally {
      await client.close();
    }
  },
};

/** Tasks among a module's exports: named exports, arrays, and one level of object (a default export). */
export function collectTasks(mod: Record<string, unknown>): Map<string, AnyTask> {
  const out = new Map<string, AnyTask>();
  const add = (v: unknown): void => {
    if (isTask(v)) {
      if (out.has(v.name) && out.get(v.name) !== v)
        throw new UsageError(`two different tasks are named "${v.name}"`);
      out.set(v.name, v);
    } else if (Array.isArray(v)) v.forEach((x) => isTask(x) && add(x));
  };
  for (const v of Object.values(mod)) {
    add(v);
    if (v && typeof v === 'object' && !Array.isArray(v) && !isTask(v))
      Object.values(v as Record<string, unknown>).forEach(add);
  }
  return out;
}
