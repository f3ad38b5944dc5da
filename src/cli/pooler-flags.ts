import type { PoolerOptions } from '../driver/pooler.js';
import { UsageError } from './command.js';

/** `--pooler` and `--listen-url`, shared by the commands that run long-lived clients. */
export const POOLER_FLAGS = {
  pooler: { type: 'string' },
  'listen-url': { type: 'string' },
} as const;

export const POOLER_USAGE = `  --pooler <mode>                transaction | session | none: the pooler in front (default: none)
  --listen-url <url>             a direct (unpooled) URL for LISTEN behind a transaction pooler`;

/** The client options the flags give; a bad --pooler is a usage error. */
export function poolerFromFlags(values: { pooler?: string; 'listen-url'?: string }): PoolerOptions {
  const mode = values.pooler;
  if (mode !== undefined && mode !== 'transaction' && mode !== 'session' && mode !== 'none') {
    throw new UsageError(`--pooler must be transaction, session or none, got "${mode}"`);
  }
  return {
    ...(mode ? { pooler: mode } : {}),
    ...(values['listen-url'] ? { listenConnectionString: values['listen-url'] } : {}),
  };
}
