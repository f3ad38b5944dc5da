import { QueueClient, type Logger } from 'pgferry';
import { Bus, DirectBackend, JsonSerializer } from 'pgferry/bus';

type T = { text: string };
const queueClient = new QueueClient({ connectionString: process.env.DATABASE_URL });
const logger: Logger = { debug() {}, info() {}, warn: console.warn, error: console.error };
const backend = new DirectBackend({
  client: queueClient,
  peerCacheTtlMs: 1000,
  durablePublish: true,
  logger,
});

const bus = new Bus<T>({
  backend, // DirectBackend | IsolatedBackend | your own BusBackend
  channel: 'pipecat:acme/v2', // any text
  visibilityTimeoutMs: 30_000, // a read message reappears after this unless archived
  batchSize: 10, // messages per read
  pollIntervalMs: 100, // database-side re-check when LISTEN is unavailable; first wait after a failed read
  maxRetryDelayMs: 5000, // failed reads back off (doubling, jitter) up to this; bus.health() reports it
  maxPollMs: 5000, // longest single wait before reading again
  serializer: new JsonSerializer<T>(),
  isLocalOnly: () => false, // true → delivered to this bus's subscribers only, never to the database
  logger, // pino-compatible; silent by default
});
await bus.start();
await bus.stop();
await queueClient.close();
