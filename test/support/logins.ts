import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { withDatabase } from './urls.js';
import { testClient } from './connections.js';

export interface Login {
  role: string;
  /** Connects to the database as the login role. */
  url: string;
  /** Ends the role's sessions and drops it (roles are cluster-wide). */
  drop(): Promise<void>;
}

/**
 * A real LOGIN role (password authentication) that is a member of exactly
 * `memberOf` (none: only PUBLIC's rights), and a URL that connects to
 * `dbUrl` as it.
 */
export async function makeLogin(
  dbUrl: string,
  memberOf: readonly string[],
  prefix = 'login',
): Promise<Login> {
  const role = `${prefix}_${randomBytes(5).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  const admin = testClient({ connectionString: dbUrl });
  await admin.connect();
  try {
    const inRole = memberOf.length ? ` IN ROLE ${memberOf.map((r) => `"${r}"`).join(', ')}` : '';
    await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'${inRole}`);
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
      const c = testClient({
        connectionString: withDatabase(inject('adminUrl'), new URL(dbUrl).pathname.slice(1)),
      });
      await c.connect();
      try {
        // A pg.Pool's end() resolves before its sockets have closed: terminating
        // a session that is closing anyway makes that pool emit 'error' (an
        // uncaught exception in a file whose pool has no listener). Sessions
        // whose client has said goodbye go within milliseconds; the rest (a
        // file may leave some open) are terminated after at most a second.
        for (const deadline = Date.now() + 1000; Date.now() < deadline;) {
          const { rows } = await c.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1`,
            [role],
          );
          if (rows[0]!.n === 0) break;
          await new Promise((r) => setTimeout(r, 20));
        }
        await c.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, [
          role,
        ]);
        await c.query(`DROP OWNED BY ${role}`).catch(() => undefined);
        await c.query(`DROP ROLE IF EXISTS ${role}`);
      } finally {
        await c.end();
      }
    },
  };
}
