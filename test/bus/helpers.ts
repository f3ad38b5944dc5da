import type { Logger } from '../../src/logger.js';
import type { Bus, BusMessageContext } from '../../src/bus/index.js';
import { makeLogin, type Login } from '../support/logins.js';

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
export function makeBusLogin(dbUrl: string, busRole = 'pgferry_bus'): Promise<Login> {
  return makeLogin(dbUrl, [busRole], 'bus_login');
}
