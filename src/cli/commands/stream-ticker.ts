import { POOLER_FLAGS, POOLER_USAGE, poolerFromFlags } from '../pooler-flags.js';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { STR, parseFlags } from '../flags.js';
import { consoleLogger } from '../console-logger.js';
import { HEALTH_OPTIONS, HEALTH_USAGE, healthFromFlags } from '../health-server.js';
import { Ticker } from '../../stream/ticker.js';
import { requireInstalled } from '../explain.js';

function ms(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`--${name} must be a positive integer (ms), got ${value}`);
  return n;
}

export const tickerCommand: Command = {
  name: 'ticker',
  summary: 'run the elected stream ticker (ticks, retries, table rotation) until Ctrl-C',
  usage: `pgferry ticker [options]

Runs pgferry's stream ticker for DATABASE_URL: one leader per database and
schema is elected with a lease row (run it in as many processes as you
like; another takes over within --election-ms when the leader stops, and
once its lease expired when it dies). It works through connection poolers. The
leader ticks streams with new events at once, backs off when idle, moves due
retries back and rotates event tables. Consumers made with pgferry/stream run
one for you; this command is for deployments that want it separate, or for
other languages' PgQue clients without pg_cron.

Options:
  --url <url>            connection string (default: DATABASE_URL)
  --schema <name>        schema of the stream engine (default: pgque)
  --min-interval-ms <n>  pause between ticks while events flow (default: 5)
  --max-interval-ms <n>  longest idle pause (default: 500)
  --election-ms <n>      how often a follower tries to take over (default: 1000)
  --maint-ms <n>         table rotation period (default: 30000)
${POOLER_USAGE}
${HEALTH_USAGE}
  -h, --help             show this help`,
  async run(argv) {
    const { values } = parseFlags(argv, {
      url: STR,
      schema: STR,
      'min-interval-ms': STR,
      'max-interval-ms': STR,
      'election-ms': STR,
      'maint-ms': STR,
      ...POOLER_FLAGS,
      ...HEALTH_OPTIONS,
    });
    const opt = <K extends string, V>(k: K, v: V | undefined): Partial<Record<K, V>> =>
      (v === undefined ? {} : { [k]: v }) as Partial<Record<K, V>>;
    const ticker = new Ticker({
      ...opt('connectionString', values.url ?? process.env.DATABASE_URL),
      ...opt('schema', values.schema),
      ...opt('minIntervalMs', ms('min-interval-ms', values['min-interval-ms'])),
      ...opt('maxIntervalMs', ms('max-interval-ms', values['max-interval-ms'])),
      ...opt('electionIntervalMs', ms('election-ms', values['election-ms'])),
      ...opt('maintIntervalMs', ms('maint-ms', values['maint-ms'])),
      ...poolerFromFlags(values),
      logger: consoleLogger,
    });
    // Without this, a database without the stream engine reads as a missing privilege.
    await requireInstalled(values.url ?? process.env.DATABASE_URL, ticker.schema, 'stream');
    const health = await healthFromFlags(
      values,
      () => ticker.health(),
      (line) => console.error(`pgferry ticker: ${line}`),
    );
    void ticker.start();
    console.error(`pgferry ticker: campaigning for schema ${ticker.schema}; Ctrl-C to stop`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await ticker.stop();
    await health?.close();
    return 0;
  },
};
