import type pg from 'pg';
import type { DriverTarget } from './conformance.js';

/** A conformance target on a real server: several sessions, killable backends, server-side prepares. */
export function serverTarget(
  admin: pg.Pool,
  parts: Pick<DriverTarget, 'makeDriver' | 'foreignTransaction'>,
): DriverTarget {
  return {
    capabilities: {
      separateSessions: true,
      terminateBackend: true,
      serverPreparedStatements: true,
    },
    admin: async (text, params) => (await admin.query(text, params)).rows,
    ...parts,
  };
}
