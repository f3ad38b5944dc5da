import type { Command } from '../command.js';
import { migrate } from '../../migrate/migrator.js';
import { componentOrder, type ComponentName } from '../../migrate/components.js';
import { UsageError } from '../command.js';
import { FLAG, STR, parseFlags } from '../flags.js';
import { consoleLogger } from '../console-logger.js';
import { connectedTarget } from '../explain.js';

export const migrateCommand: Command = {
  name: 'migrate',
  summary: "install or upgrade pgferry's SQL engines in DATABASE_URL",
  usage: `pgferry migrate [options]

Installs or upgrades pgferry's SQL engines (append-only numbered migrations,
each in its own transaction, under an advisory lock). Safe to run from several
processes at once. Connects to --url, else DATABASE_URL, else PG* variables.

Options:
  --url <url>            connection string (default: DATABASE_URL)
  --only <a,b>           engines to install: ${componentOrder.join(', ')} (default: all)
  --queue-schema <name>  schema of the queue engine (default: pgmq)
  --bus-schema <name>    schema of the bus wrappers (default: public)
  --stream-schema <name> schema of the stream engine (default: pgque)
  --tasks-schema <name>  schema of the tasks engine (default: pgferry_tasks)
  --quiet                print nothing on success
  -h, --help             show this help`,
  async run(argv) {
    const { values } = parseFlags(argv, {
      url: STR,
      only: STR,
      'queue-schema': STR,
      'bus-schema': STR,
      'stream-schema': STR,
      'tasks-schema': STR,
      quiet: FLAG,
    });
    const only = values.only
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    for (const c of only ?? []) {
      if (!(componentOrder as readonly string[]).includes(c))
        throw new UsageError(`unknown engine "${c}"`);
    }
    const result = await migrate({
      ...(values.url ? { connectionString: values.url } : {}),
      ...(only ? { components: only as ComponentName[] } : {}),
      schemas: {
        ...(values['queue-schema'] ? { queue: values['queue-schema'] } : {}),
        ...(values['bus-schema'] ? { bus: values['bus-schema'] } : {}),
        ...(values['stream-schema'] ? { stream: values['stream-schema'] } : {}),
        ...(values['tasks-schema'] ? { tasks: values['tasks-schema'] } : {}),
      },
      ...(values.quiet ? {} : { logger: consoleLogger }),
    });
    if (!values.quiet) {
      const versions = Object.entries(result.versions)
        .map(([k, v]) => `${k} v${v}`)
        .join(', ');
      const target = await connectedTarget(values.url ?? process.env.DATABASE_URL);
      console.log(
        `pgferry: ${result.applied.length} migration(s) applied to ${target}; now at ${versions}`,
      );
    }
    return 0;
  },
};
