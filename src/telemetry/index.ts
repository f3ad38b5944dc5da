// pgferry/telemetry: OpenTelemetry tracing (optional peer @opentelemetry/api). Explicit exports only.
export {
  enableTracing,
  disableTracing,
  tracingEnabled,
  TRACEPARENT,
  TRACESTATE,
  type EnableTracingOptions,
} from './tracing.js';
