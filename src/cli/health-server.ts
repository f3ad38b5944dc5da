import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Health } from '../health.js';
import { UsageError } from './command.js';

export interface HealthServer {
  readonly port: number;
  close(): Promise<void>;
}

/** Health as JSON: dates as ISO strings. */
function body(h: Health): string {
  return JSON.stringify(h);
}

/**
 * The opt-in probe endpoint of `pgferry worker` and `pgferry ticker`
 * (`--health-port`), for container orchestrators:
 *
 * - `GET /livez`: 200 while the component runs, also while it reconnects
 *   (restarting the process would not bring the database back); 503 once stopped.
 * - `GET /readyz`: 200 only while it reaches the database (`running`); 503
 *   while `reconnecting` or `stopped`.
 *
 * Both answer with the component's `health()` as JSON. Anything else is 404.
 */
export async function serveHealth(
  health: () => Health,
  port: number,
  host: string,
): Promise<HealthServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const h = health();
    let ok: boolean;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/livez' || path === '/healthz') ok = h.state !== 'stopped';
    else if (path === '/readyz') ok = h.state === 'running';
    else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    res.writeHead(ok ? 200 : 503, {
      'content-type': 'application/json',
      'cache-control': 'no-store',
    });
    res.end(req.method === 'HEAD' ? undefined : body(h) + '\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  // Probes must not keep a stopping process alive.
  server.unref();
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The usage lines of the two flags, shared by the commands. */
export const HEALTH_USAGE = `  --health-port <n>              serve GET /livez and /readyz on this port (0: any free one; default: off)
  --health-host <addr>           address the health endpoint listens on (default: 0.0.0.0)`;

export const HEALTH_OPTIONS = {
  'health-port': { type: 'string' },
  'health-host': { type: 'string' },
} as const;

/**
 * Starts the endpoint when `--health-port` was given; says where it listens
 * on stderr (`print`). Returns undefined when the flag is absent.
 */
export async function healthFromFlags(
  values: { 'health-port'?: string; 'health-host'?: string },
  health: () => Health,
  print: (line: string) => void,
): Promise<HealthServer | undefined> {
  const v = values['health-port'];
  if (v === undefined) return undefined;
  const port = Number(v);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError(`--health-port must be an integer in [0, 65535], got ${v}`);
  const host = values['health-host'] ?? '0.0.0.0';
  const server = await serveHealth(health, port, host);
  print(`health endpoint on http://${host}:${server.port} (/livez, /readyz)`);
  return server;
}
