import { EXIT, UsageError, type Command } from '../command.js';
import { FLAG, STR, TASKS_CONNECTION_FLAGS, parseFlags } from '../flags.js';
import { TaskClient } from '../../tasks/client.js';
import type { DeadLetter, DeadLetterFilter } from '../../tasks/dead-letters.js';

const ACTIONS = ['list', 'inspect', 'reschedule', 'purge'] as const;

export const dlqCommand: Command = {
  name: 'dlq',
  summary: "list, inspect, reschedule or purge a task's dead letters",
  usage: `pgferry dlq <action> <task> [ids…] [options]

Works on the dead-letter queue <task>_dlq of a pgferry task. For a task's
jobs in every state see \`pgferry jobs\` (its retry of a dead job reschedules
the job's dead letter, as reschedule does here).

Actions:
  list <task>                    dead letters, oldest first (id, attempts, failed at, error)
  inspect <task> <id>            one dead letter in full: input, error with stack, headers
  reschedule <task> <ids…>       enqueue them again as new jobs (attempts start over);
             <task> --error <name>   … those whose error class or name is <name>
             <task> --all            … all of them
  purge <task> <ids…> | --error <name> | --all
                                 delete them for good

Options:
  --url <url>            connection string (default: DATABASE_URL)
  --queue-schema <name>  schema of the queue engine (default: pgmq)
  --tasks-schema <name>  schema of the tasks engine (default: pgferry_tasks)
  --limit <n>            list: at most n (default: 100)
  --after <id>           list: only ids greater than this (paging)
  --error <name>         list/reschedule/purge: only this error class or name
  --all                  reschedule/purge: every dead letter
  --json                 print JSON instead of text
  -h, --help             show this help

Exit codes: 0 done; 1 failure (e.g. inspect: no such dead letter); 2 bad
usage; 3 database unreachable.`,
  async run(argv) {
    const { values, positionals } = parseFlags(
      argv,
      {
        ...TASKS_CONNECTION_FLAGS,
        limit: STR,
        after: STR,
        error: STR,
        all: FLAG,
        json: FLAG,
      },
      true,
    );
    const [action, task, ...rest] = positionals;
    if (!action || !(ACTIONS as readonly string[]).includes(action))
      throw new UsageError(`action must be one of ${ACTIONS.join(', ')}`);
    if (!task) throw new UsageError('give the task name');
    const ids = rest.map((x) => {
      const n = Number(x);
      if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`not a dead-letter id: ${x}`);
      return n;
    });
    const int = (v: string | undefined, what: string): number | undefined => {
      if (v === undefined) return undefined;
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0)
        throw new UsageError(`--${what} must be a non-negative integer`);
      return n;
    };
    const limit = int(values.limit, 'limit');
    const after = int(values.after, 'after');
    const client = new TaskClient({
      ...(values.url ? { connectionString: values.url } : {}),
      ...(values['queue-schema'] ? { queueSchema: values['queue-schema'] } : {}),
      ...(values['tasks-schema'] ? { tasksSchema: values['tasks-schema'] } : {}),
      maxConnections: 1,
    });
    const out = (data: unknown, text: string): void =>
      console.log(values.json ? JSON.stringify(data, null, 2) : text);
    try {
      const dl = client.deadLetters(task);
      switch (action) {
        case 'list': {
          if (ids.length || values.all) throw new UsageError('list takes no ids and no --all');
          const rows = await dl.list({
            ...(limit !== undefined ? { limit } : {}),
            ...(after !== undefined ? { afterId: after } : {}),
            ...(values.error ? { errorName: values.error } : {}),
          });
          out(rows, rows.length ? rows.map(line).join('\n') : `no dead letters in ${task}_dlq`);
          return EXIT.ok;
        }
        case 'inspect': {
          if (ids.length !== 1) throw new UsageError('inspect takes exactly one id');
          const d = await dl.get(ids[0]!);
          if (!d) {
            console.error(`pgferry dlq: no dead letter ${ids[0]} in ${task}_dlq`);
            return EXIT.failure;
          }
          out(d, full(d));
          return EXIT.ok;
        }
        default: {
          const filter = filterOf(ids, values.error, values.all);
          if (action === 'reschedule') {
            const moved = await dl.requeue(filter);
            out(
              moved,
              moved.length
                ? moved.map((m) => `dead letter ${m.deadId} → job ${m.newId}`).join('\n')
                : 'nothing to reschedule',
            );
          } else {
            const n = await dl.purge(filter);
            out({ purged: n }, `purged ${n} dead letter(s)`);
          }
          return EXIT.ok;
        }
      }
    } finally {
      await client.close();
    }
  },
};

function filterOf(ids: number[], error: string | undefined, all: boolean): DeadLetterFilter {
  const given = [ids.length > 0, error !== undefined, all].filter(Boolean).length;
  if (given !== 1)
    throw new UsageError('give dead-letter ids, or --error <name>, or --all (exactly one of them)');
  if (ids.length) return { ids };
  if (error !== undefined) return { errorName: error };
  return { all: true };
}

function line(d: DeadLetter): string {
  const err = `${d.error.class ?? d.error.name ?? 'Error'}: ${String(d.error.message ?? '').split('\n')[0]}`;
  return `${String(d.id).padStart(6)}  attempts ${d.attempts}  failed ${d.failedAt?.toISOString() ?? '?'}  job ${d.originalId ?? '?'}  ${err}`;
}

function full(d: DeadLetter): string {
  return [
    `dead letter ${d.id} of task ${d.task} (job ${d.originalId ?? '?'})`,
    `attempts:    ${d.attempts}`,
    `enqueued at: ${d.enqueuedAt?.toISOString() ?? '?'}`,
    `failed at:   ${d.failedAt?.toISOString() ?? '?'}`,
    `error:       ${d.error.class ?? '?'} (${d.error.name ?? '?'}): ${d.error.message ?? ''}`,
    `input:       ${JSON.stringify(d.input)}`,
    `headers:     ${JSON.stringify(d.headers)}`,
    `stack:\n${d.error.stack ?? '(none)'}`,
  ].join('\n');
}
