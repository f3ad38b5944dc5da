import { execute, type Executor } from '../driver/types.js';
import { quoteIdent } from '../driver/quote.js';
import { checkSchemaName } from '../migrate/schema-name.js';
import { checkInt, durationMs, wholeSeconds } from '../queue/index.js';
import { InvalidArgumentError } from '../errors.js';
import './errors.js';

// Administration of the isolated bus, for the role that ran the migration
// (these functions are not granted to the bus role).

export interface BusAdminOptions {
  /** Schema of the bus functions. Default `public`. */
  schema?: string;
}

export interface BusSettings {
  /** A member silent (no subscribe, no publish) for this long is reaped (whole seconds, rounded up). Default 60000. */
  memberTtlMs?: number;
  /** @deprecated Use `memberTtlMs` (this alias goes in the next release). */
  memberTtlSeconds?: number;
  /** How often bus_subscribe re-checks an empty queue while it long-polls. Default 10. */
  subscribePollIntervalMs?: number;
  /** bus_join refuses (BusLimitError) when the channel has this many live members. Default 256. */
  maxMembersPerChannel?: number;
  /** … when the joining login role has this many live members. Default 1000. */
  maxMembersPerRole?: number;
  /** … after this many joins by one role in the current minute. Default 600. */
  maxJoinsPerMinute?: number;
  /** … after this many joins in one transaction. Default 16. */
  maxJoinsPerTransaction?: number;
}

const CAPS = [
  ['maxMembersPerChannel', 'max_members_per_channel'],
  ['maxMembersPerRole', 'max_members_per_role'],
  ['maxJoinsPerMinute', 'max_joins_per_minute'],
  ['maxJoinsPerTransaction', 'max_joins_per_transaction'],
] as const;

function schemaOf(options: BusAdminOptions): string {
  return quoteIdent(checkSchemaName(options.schema ?? 'public'));
}

/**
 * Creates `role` if missing (NOLOGIN) and grants it EXECUTE on the bus
 * functions and USAGE on their schema, nothing else. The migration already
 * did this for `pgferry_bus` (or the `pgferry.bus_role` setting).
 */
export async function grantBusRole(
  db: Executor,
  role: string,
  options: BusAdminOptions = {},
): Promise<void> {
  if (typeof role !== 'string' || role.length === 0)
    throw new InvalidArgumentError('role must be a non-empty string');
  await execute(db, `SELECT ${schemaOf(options)}._pgferry_bus_grant($1::name)`, [role]);
}

/** Drops up to `limit` members whose lease ran out (bus_join and bus_publish also do this as they go). */
export async function reapBusMembers(
  db: Executor,
  options: BusAdminOptions & { limit?: number } = {},
): Promise<number> {
  const limit = checkInt('limit', options.limit ?? 1000, { min: 1 });
  const res = await execute<{ n: number }>(
    db,
    `SELECT ${schemaOf(options)}._pgferry_bus_reap($1::integer) AS n`,
    [limit],
  );
  return res.rows[0]!.n;
}

/** Changes the bus's settings (database-wide, for every member). */
export async function configureBus(
  db: Executor,
  settings: BusSettings,
  options: BusAdminOptions = {},
): Promise<void> {
  const ttlMs = durationMs(settings, 'memberTtlMs', 'memberTtlSeconds', { min: 1 });
  const ttl = ttlMs === undefined ? null : wholeSeconds(ttlMs);
  const poll =
    settings.subscribePollIntervalMs === undefined
      ? null
      : checkInt('subscribePollIntervalMs', settings.subscribePollIntervalMs, {
          min: 1,
          max: 10000,
        });
  const caps = CAPS.map(([key]) =>
    settings[key] === undefined ? null : checkInt(key, settings[key], { min: 1 }),
  );
  await execute(
    db,
    `UPDATE ${schemaOf(options)}._pgferry_bus_config
        SET member_ttl_seconds = COALESCE($1::integer, member_ttl_seconds),
            subscribe_poll_interval_ms = COALESCE($2::integer, subscribe_poll_interval_ms),
            ${CAPS.map(([, col], i) => `${col} = COALESCE($${i + 3}::integer, ${col})`).join(',\n            ')}`,
    [ttl, poll, ...caps],
  );
}
