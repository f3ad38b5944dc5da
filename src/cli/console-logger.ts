import type { Logger } from '../logger.js';

function line(level: string, obj: object, msg?: string): string {
  const extra = Object.entries(obj)
    .filter(([k]) => k !== 'err')
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  const err = (obj as { err?: unknown }).err;
  const errText = err instanceof Error ? ` (${err.message})` : '';
  return `${level} ${msg ?? ''}${extra ? ' ' + extra : ''}${errText}`;
}

/** A plain stderr logger for the CLI (info and up). */
export const consoleLogger: Logger = {
  debug: () => undefined,
  info: (obj, msg) => console.error(line('info ', obj, msg)),
  warn: (obj, msg) => console.error(line('warn ', obj, msg)),
  error: (obj, msg) => console.error(line('error', obj, msg)),
};
