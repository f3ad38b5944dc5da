import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import type { TestDb } from '../support/db.js';
import { makeLogin, type Login } from '../support/logins.js';
import { testClient } from '../support/connections.js';

// Shared fixture of the hostile-role suite: real LOGIN roles, each holding
// exactly one of pgferry's roles (or none), on the file's own database.

export const STREAM = 'pgque';
export const BUS = 'public';
export const TASKS = 'pgferry_tasks';

export type Who = 'bus' | 'reader' | 'writer' | 'admin' | 'nobody';
export const WHO: readonly Who[] = ['bus', 'reader', 'writer', 'admin', 'nobody'];

const GRANTED: Record<Who, string[]> = {
  bus: ['pgferry_bus'],
  reader: [`${STREAM}_reader`],
  writer: [`${STREAM}_writer`],
  admin: [`${STREAM}_admin`],
  nobody: [],
};

/** The installed schemas by component (the queue schema follows the run). */
export function schemas(db: TestDb): Record<'queue' | 'bus' | 'tasks' | 'stream', string> {
  return { queue: db.queueSchema, bus: BUS, tasks: TASKS, stream: STREAM };
}

export interface Hostile {
  login: Record<Who, Login>;
  /** One open session per login (notices ignored). */
  client: Record<Who, pg.Client>;
}

/** Creates the five logins before the file's tests and drops them after. */
export function useHostileRoles(db: TestDb): Hostile {
  const h = { login: {}, client: {} } as Hostile;
  beforeAll(async () => {
    for (const who of WHO) {
      h.login[who] = await makeLogin(db.url, GRANTED[who], `hostile_${who}`);
      const c = testClient({ connectionString: h.login[who].url });
      c.on('notice', () => undefined);
      await c.connect();
      h.client[who] = c;
    }
  });
  afterAll(async () => {
    for (const who of WHO) {
      await h.client[who]?.end().catch(() => undefined);
      await h.login[who]?.drop();
    }
  });
  return h;
}

/** Runs `text` and returns 'ok' or the SQLSTATE it failed with. */
export async function attempt(
  c: pg.Client | pg.Pool,
  text: string,
  params: unknown[] = [],
): Promise<string> {
  try {
    await c.query(text, params);
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}
