import { QueueClient, type Logger } from 'pgferry';

// any pino-compatible logger (pino itself, or these four methods)
const logger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: (obj, msg) => console.warn(msg, obj),
  error: (obj, msg) => console.error(msg, obj),
};
const client = new QueueClient({
  connectionString: process.env.DATABASE_URL, // else DATABASE_URL, else PG* variables
  schema: 'pgmq', // default
  maxConnections: 10, // pool size (default 10)
  logger, // silent by default
});
await client.createQueue('orders');
await client.close();
