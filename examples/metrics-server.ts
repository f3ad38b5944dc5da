import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Ops, metricsHandler, TaskMetrics } from 'pgferry/ops';
import { defineTask, TaskClient, Worker } from 'pgferry/tasks';

const url = process.env.DATABASE_URL;
const ping = defineTask<{ n: number }>({ name: 'ping', handler: async () => {} });
const worker = new Worker({ connectionString: url, tasks: [ping] });

const ops = new Ops({ connectionString: url, readConnectionString: process.env.REPLICA_URL });
const taskMetrics = new TaskMetrics();
taskMetrics.attach(worker); // every Worker of this process
const server = createServer(metricsHandler(ops, { taskMetrics }));
server.listen(0, '127.0.0.1'); // Prometheus' usual port is 9464; 0 picks a free one
await once(server, 'listening');

const tasks = new TaskClient({ connectionString: url });
await tasks.enqueue(ping, { n: 1 });
await tasks.close();
await worker.runUntilIdle();

const { port } = server.address() as AddressInfo;
const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
console.log(text.match(/^pgferry_task_succeeded_total.*$/m)?.[0]); // …{task="ping"} 1

server.close();
await ops.close();
