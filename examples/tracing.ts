import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { QueueClient } from 'pgferry';
import { enableTracing } from 'pgferry/telemetry';

// your OpenTelemetry SDK set-up (here: spans kept in memory)
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
trace.setGlobalTracerProvider(provider);

console.log(await enableTracing()); // false when @opentelemetry/api is not installed

const client = new QueueClient({ connectionString: process.env.DATABASE_URL });
await client.createQueue('orders');
await client.send('orders', { id: 42 });
await client.close();
console.log(exporter.getFinishedSpans().map((s) => s.name)); // [ 'send orders' ]
