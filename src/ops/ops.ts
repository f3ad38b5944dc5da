import type { Driver } from '../driver/types.js';
import { execute } from '../driver/types.js';
import { resolveDriver } from '../driver/resolve.js';
import { PgDriver } from '../driver/pg.js';
import { silentLogger, type Logger } from '../logger.js';
import { checkSchemaName } from '../migrate/migrator.js';
import { QueueClient } from '../queue/index.js';
import { TaskClient } from '../tasks/client.js';
import { StreamClient } from '../stream/client.js';

/** Schemas of the four engines (the migrator's defaults unless given). */
export interface OpsSchemas {
  queue?: string;
  tasks?: string;
  stream?: string;
  bus?: string;
}

export interface OpsOptions {
  /** Driver for writes (actions); otherwise one is made from `connectionString`. */
  driver?: Driver;
  /** Primary's connection string; otherwise `DATABASE_URL` / `PG*`. */
  connectionString?: string;
  /**
   * A read-only connection string (a replica): every read (pages, search,
   * `/metrics`) goes there, actions still go to the primary.
   */
  readConnectionString?: string;
  /** A driver for reads; excludes `readConnectionString`. */
  readDriver?: Driver;
  schemas?: OpsSchemas;
  /** Pool size of each pool this makes. Default 4. */
  maxConnections?: number;
  logger?: Logger;
}

/** Which engines are installed in the database (the dashboard shows only those). */
export interface Installed {
  queue: boolean;
  tasks: boolean;
  stream: boolean;
  bus: boolean;
}

/**
 * The operations view of one database: engine clients for reads (on the
 * replica when given) and for writes (always the primary). The dashboard,
 * `/metrics` and the CLI read through it.
 */
export class Ops {
  readonly read: Driver;
  readonly write: Driver;
  readonly schemas: Required<OpsSchemas>;
  readonly queues: QueueClient;
  readonly tasks: TaskClient;
  readonly streams: StreamClient;
  readonly writeQueues: QueueClient;
  readonly writeTasks: TaskClient;
  readonly writeStreams: StreamClient;
  private readonly owned: Driver[] = [];
  private installed?: Promise<Installed>;

  constructor(options: OpsOptions = {}) {
    const logger = options.logger ?? silentLogger;
    const max = options.maxConnections ?? 4;
    const w = resolveDriver({ ...options, maxConnections: max }, logger);
    this.write = w.driver;
    if (w.owned) this.owned.push(w.driver);
    if (options.readDriver) this.read = options.readDriver;
    else if (options.readConnectionString) {
      this.read = new PgDriver({
        connectionString: options.readConnectionString,
        maxConnections: max,
        logger,
      });
      this.owned.push(this.read);
    } else this.read = this.write;
    const s = options.schemas ?? {};
    this.schemas = {
      queue: checkSchemaName(s.queue ?? 'pgmq'),
      tasks: checkSchemaName(s.tasks ?? 'pgferry_tasks'),
      stream: checkSchemaName(s.stream ?? 'pgque'),
      bus: checkSchemaName(s.bus ?? 'public'),
    };
    const q = { queueSchema: this.schemas.queue };
    const t = { ...q, tasksSchema: this.schemas.tasks };
    const st = { schema: this.schemas.stream };
    this.queues = new QueueClient({ driver: this.read, schema: this.schemas.queue });
    this.writeQueues = new QueueClient({ driver: this.write, schema: this.schemas.queue });
    this.tasks = new TaskClient({ driver: this.read, ...t });
    this.writeTasks = new TaskClient({ driver: this.write, ...t });
    this.streams = new StreamClient({ driver: this.read, ...st });
    this.writeStreams = new StreamClient({ driver: this.write, ...st });
  }

  /** Which engines have their version table in their schema (asked once). */
  components(): Promise<Installed> {
    this.installed ??= execute<Installed>(
      this.read,
      `SELECT to_regclass(format('%I._pgferry_migrations', $1::text)) IS NOT NULL AS queue,
              to_regclass(format('%I._pgferry_migrations', $2::text)) IS NOT NULL AS tasks,
              to_regclass(format('%I._pgferry_migrations', $3::text)) IS NOT NULL AS stream,
              to_regclass(format('%I._pgferry_bus_member', $4::text)) IS NOT NULL AS bus`,
      [this.schemas.queue, this.schemas.tasks, this.schemas.stream, this.schemas.bus],
    ).then(
      (r) => r.rows[0]!,
      (err: unknown) => {
        this.installed = undefined;
        throw err;
      },
    );
    return this.installed;
  }

  async close(): Promise<void> {
    for (const d of this.owned) await d.close();
  }
}
