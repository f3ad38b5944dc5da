import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dashboardHandler, type DashboardHandler, type DashboardOptions } from './handler.js';

export interface StartDashboardOptions extends DashboardOptions {
  /** Interface to bind. Default '127.0.0.1' (only this machine). */
  host?: string;
  /** Port; 0 picks a free one. Default 4000. */
  port?: number;
}

export interface RunningDashboard {
  server: Server;
  handler: DashboardHandler;
  /** http://host:port/basePath */
  url: string;
  close(): Promise<void>;
}

/** Starts an http server serving the dashboard (and /metrics under its base path). */
export async function startDashboard(
  options: StartDashboardOptions = {},
): Promise<RunningDashboard> {
  const handler = dashboardHandler(options);
  const server = createServer((req, res) => handler(req, res));
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 4000, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const base = (options.basePath ?? '/').replace(/\/?$/, '/');
  return {
    server,
    handler,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}${base}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await handler.close();
    },
  };
}
