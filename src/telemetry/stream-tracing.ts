import type { Headers } from '../queue/index.js';
import { TRACEPARENT, TRACESTATE, tracingEnabled } from './tracing.js';

/**
 * The trace context of a stream event. PgQue's event row has no header
 * column; pgferry carries the W3C context in `ev_extra4` as a JSON object
 * `{"traceparent": "00-…", "tracestate": "…"}` — the same shape as a queue
 * message's headers — written by StreamClient.send / sendBatch only while
 * tracing is on (with it off, ev_extra4 stays NULL). docs/stream.md, "Tracing".
 */

/** The `ev_extra4` text for the headers a send span made; null when there are none. */
export function eventTraceContext(headers: Headers | null | undefined): string | null {
  const tp = headers?.[TRACEPARENT];
  if (typeof tp !== 'string') return null;
  const ts = headers?.[TRACESTATE];
  return JSON.stringify(
    typeof ts === 'string' && ts ? { traceparent: tp, tracestate: ts } : { traceparent: tp },
  );
}

/**
 * The headers carried by an event's `ev_extra4` (for the process span's
 * parent): `{}` while tracing is off, or when ev_extra4 is NULL, not a JSON
 * object, or holds something else (an application's own use of the column).
 */
export function eventTraceHeaders(extra4: string | null): Headers {
  if (extra4 === null || !tracingEnabled() || !extra4.startsWith('{')) return {};
  try {
    const v = JSON.parse(extra4) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return {};
    const o = v as Record<string, unknown>;
    const h: Headers = {};
    if (typeof o[TRACEPARENT] === 'string') h[TRACEPARENT] = o[TRACEPARENT];
    if (typeof o[TRACESTATE] === 'string') h[TRACESTATE] = o[TRACESTATE];
    return h;
  } catch {
    return {};
  }
}
