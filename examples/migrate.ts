import { migrate, type Logger } from 'pgferry';

const logger: Logger = { debug() {}, info: (o, m) => console.log(m), warn() {}, error() {} };
const { applied, versions } = await migrate({
  connectionString: process.env.DATABASE_URL, // or driver: someDriver
  components: ['queue'], // default: all engines
  schemas: { queue: 'pgmq' }, // default schema names
  logger, // optional
});
console.log(applied.length, versions);
