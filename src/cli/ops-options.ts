import type { ParseArgsConfig } from 'node:util';
import { Ops } from '../ops/ops.js';
import { UsageError } from './command.js';

/** Options every operations command (queues, jobs, streams, dashboard) takes. */
export const OPS_OPTIONS = {
  url: { type: 'string' },
  'read-url': { type: 'string' },
  'queue-schema': { type: 'string' },
  'tasks-schema': { type: 'string' },
  'stream-schema': { type: 'string' },
  'bus-schema': { type: 'string' },
  json: { type: 'boolean', default: false },
} as const satisfies ParseArgsConfig['options'];

export const OPS_CONNECTION_USAGE = `Connection options:
  --url <url>             primary (default: DATABASE_URL); actions always go here
  --read-url <url>        read-only URL (a replica) for listing and searching
  --queue-schema <name>   queue engine schema (default: pgmq)
  --tasks-schema <name>   tasks engine schema (default: pgferry_tasks)
  --stream-schema <name>  stream engine schema (default: pgque)
  --bus-schema <name>     bus schema (default: public)`;

export const OPS_USAGE = `${OPS_CONNECTION_USAGE}
  --json                  print JSON instead of text`;

type OpsValues = { [K in keyof typeof OPS_OPTIONS]?: string | boolean | undefined };

export function openOps(v: OpsValues): Ops {
  const str = (k: keyof typeof OPS_OPTIONS): string | undefined =>
    typeof v[k] === 'string' ? v[k] : undefined;
  const schemas = {
    ...(str('queue-schema') ? { queue: str('queue-schema')! } : {}),
    ...(str('tasks-schema') ? { tasks: str('tasks-schema')! } : {}),
    ...(str('stream-schema') ? { stream: str('stream-schema')! } : {}),
    ...(str('bus-schema') ? { bus: str('bus-schema')! } : {}),
  };
  return new Ops({
    ...(str('url') ? { connectionString: str('url')! } : {}),
    ...(str('read-url') ? { readConnectionString: str('read-url')! } : {}),
    schemas,
    maxConnections: 2,
  });
}

/**
 * `--where a.b=v` options → a JSON object for jsonb containment
 * ({"a":{"b":v}}). The value is read as JSON when it parses (numbers,
 * true, null, quoted strings, objects), else taken as a string.
 */
export function parseWhere(
  list: readonly string[] | undefined,
  flag: string,
): Record<string, unknown> | undefined {
  if (!list?.length) return undefined;
  const out: Record<string, unknown> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq < 1) throw new UsageError(`--${flag} must look like field=value, got "${item}"`);
    const path = item.slice(0, eq).split('.');
    if (path.some((p) => p === ''))
      throw new UsageError(`--${flag}: empty field name in "${item}"`);
    const raw = item.slice(eq + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // a bare word: the string itself
    }
    let at = out;
    for (const key of path.slice(0, -1)) {
      const next = at[key];
      if (typeof next === 'object' && next !== null && !Array.isArray(next))
        at = next as Record<string, unknown>;
      else at = at[key] = {};
    }
    at[path[path.length - 1]!] = value;
  }
  return out;
}

export function intOption(v: string | undefined, what: string, min = 0): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min)
    throw new UsageError(`--${what} must be an integer ≥ ${min}`);
  return n;
}

export function ids(list: readonly string[]): number[] {
  return list.map((x) => {
    const n = Number(x);
    if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`not an id: ${x}`);
    return n;
  });
}

/** Left-aligned text table. */
export function table(head: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const cells = [
    head,
    ...rows.map((r) => r.map((c) => (c === null || c === undefined ? '-' : String(c)))),
  ];
  const w = head.map((_, i) => Math.max(...cells.map((r) => (r[i] as string).length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => (c as string).padEnd(w[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export const age = (s: number | null): string =>
  s === null
    ? '-'
    : s < 120
      ? `${Math.round(s)}s`
      : s < 7200
        ? `${Math.round(s / 60)}m`
        : `${Math.round(s / 3600)}h`;
