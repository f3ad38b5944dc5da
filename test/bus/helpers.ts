import pg from 'pg';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../src/logger.js';
import type { Bus, BusMessageContext } from '../../src/bus/index.js';
import { withDatabase } from '../support/urls.js';
import { inject } from 'vitest';

export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  obj: object;
  msg: string | undefined;
}

/** A logger that remembers what it was told. */
export function recordingLogger(): Logger & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const at =
    (level: LogEntry['level']) =>
    (obj: object, msg?: string): void => {
      entries.push({ level, obj, msg });
    };
  return { entries, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Collects everything a bus delivers to its subscribers. */
export function collect<T>(bus: Bus<T>): { message: T; context: BusMessageContext }[] {
  const got: { message: T; context: BusMessageContext }[] = [];
  bus.subscribe((message, context) => {
    got.push({ message, context });
  });
  return got;
}

/**
 * A LOGIN role that holds only membership in the bus role, and a URL that
 * connects to `dbUrl` as it. `drop()` removes it (roles are cluster-wide).
 */
export async function makeBusLogin(
  dbUrl: string,
  busRole = 'pgferry_bus',
): Promise<{ role: string; url: string; drop(): Promise<void> }> {
  const role = `bus_login_${randomBytes(5).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  const admin = new pg.Client({ connectionString: dbUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}' IN ROLE ${busRole}`);
  } finally {
    await admin.end();
  }
  const u = new URL(dbUrl);
  u.username = role;
  u.password = password;
  return {
    role,
    url: u.toString(),
    drop: async () => {
      const c = new pg.Client({
        connectionString: withDatabase(inject('adminUrl'), new URL(dbUrl).pathname.slice(1)),
      });
      await c.connect();
      try {
        await c.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, [
          role,
        ]);
        await c.query(`DROP ROLE IF EXISTS ${role}`);
      } finally {
        await c.end();
      }
    },
  };
}
