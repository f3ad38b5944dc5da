import { QueueClient, PostgresJsDriver, PGliteDriver } from 'pgferry';
import postgres from 'postgres';

const sql = postgres(process.env.DATABASE_URL!);
const queues = new QueueClient({ driver: new PostgresJsDriver({ sql }) });

// in-memory here; { dataDir: './.pgdata' } keeps it on disk
const local = new QueueClient({ driver: new PGliteDriver({ dataDir: 'memory://' }) });
await local.migrate();

await local.close();
await queues.close();
await sql.end();
