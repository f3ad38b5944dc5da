import { EXIT, UsageError, type Command } from '../command.js';
import { FLAG, STR, parseFlags } from '../flags.js';
import { intOption, OPS_OPTIONS, OPS_CONNECTION_USAGE, openOps } from '../ops-options.js';
import { startDashboard } from '../../ops/dashboard/server.js';
import type { DashboardAuth } from '../../ops/dashboard/handler.js';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

export const dashboardCommand: Command = {
  name: 'dashboard',
  summary: 'serve the web dashboard and /metrics until SIGINT/SIGTERM',
  usage: `pgferry dashboard [options]

Serves a web UI over queues, tasks, streams and the bus, plus Prometheus
metrics at <base>/metrics. Read-only unless --allow-writes is given.

Options:
  --host <addr>          interface to bind (default: 127.0.0.1)
  --port <n>             port (default: 4000; 0 picks a free one)
  --base-path <path>     path prefix (default: /)
  --allow-writes         enable actions (delete, archive, requeue, retry, cancel, replay)
  --token <t>            require "Authorization: Bearer <t>" (or PGFERRY_DASHBOARD_TOKEN)
  --basic <user:pass>    require HTTP basic auth (or PGFERRY_DASHBOARD_BASIC)
  --refresh-ms <n>       live refresh interval of open pages (default: 5000; 0 off)
  --insecure-no-auth     allow a non-loopback --host without --token/--basic
${OPS_CONNECTION_USAGE}

Exit codes: 0 stopped by a signal; 1 failure; 2 bad usage; 3 database unreachable.`,
  async run(argv) {
    const { values, positionals } = parseFlags(
      argv,
      {
        ...OPS_OPTIONS,
        host: { type: 'string', default: '127.0.0.1' },
        port: STR,
        'base-path': { type: 'string', default: '/' },
        'allow-writes': FLAG,
        token: STR,
        basic: STR,
        'refresh-ms': STR,
        'insecure-no-auth': FLAG,
      },
      true,
    );
    if (positionals.length) throw new UsageError(`unexpected arguments: ${positionals.join(' ')}`);
    const port = intOption(values.port, 'port') ?? 4000;
    if (port > 65535) throw new UsageError('--port must be at most 65535');
    const refreshMs = intOption(values['refresh-ms'], 'refresh-ms');
    const token = values.token ?? process.env.PGFERRY_DASHBOARD_TOKEN;
    const basicRaw = values.basic ?? process.env.PGFERRY_DASHBOARD_BASIC;
    const auth: DashboardAuth = {};
    if (token !== undefined) {
      if (token.length < 8) throw new UsageError('--token must be at least 8 characters');
      auth.bearerToken = token;
    }
    if (basicRaw !== undefined) {
      const i = basicRaw.indexOf(':');
      if (i < 1 || i === basicRaw.length - 1)
        throw new UsageError('--basic must look like user:password');
      auth.basic = { username: basicRaw.slice(0, i), password: basicRaw.slice(i + 1) };
    }
    if (!LOOPBACK.has(values.host) && !token && !basicRaw && !values['insecure-no-auth'])
      throw new UsageError(
        `binding ${values.host} exposes the dashboard: give --token or --basic (or --insecure-no-auth)`,
      );
    const ops = openOps(values);
    try {
      await ops.components(); // fail fast (exit 3) when the database is unreachable
      const d = await startDashboard({
        ops,
        host: values.host,
        port,
        basePath: values['base-path'],
        allowWrites: values['allow-writes'],
        auth,
        ...(refreshMs !== undefined ? { refreshMs } : {}),
      });
      console.log(
        `pgferry dashboard on ${d.url} (${values['allow-writes'] ? 'actions enabled' : 'read-only'})`,
      );
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      await d.close();
      return EXIT.ok;
    } finally {
      await ops.close();
    }
  },
};
