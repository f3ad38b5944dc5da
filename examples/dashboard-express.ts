import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { dashboardHandler } from 'pgferry/ops';

const password = process.env.DASHBOARD_PASSWORD ?? randomUUID();
const dashboard = dashboardHandler({
  connectionString: process.env.DATABASE_URL,
  basePath: '/admin/ferry',
  allowWrites: true,
  auth: { basic: { username: 'ops', password } },
});

const app = express();
app.use('/admin/ferry', dashboard); // the handler reads req.originalUrl
const server = app.listen(0, '127.0.0.1');
await once(server, 'listening');

const { port } = server.address() as AddressInfo;
const authorization = `Basic ${Buffer.from(`ops:${password}`).toString('base64')}`;
const res = await fetch(`http://127.0.0.1:${port}/admin/ferry/queues`, {
  headers: { authorization },
});
const page = await res.text();
const title = /<title>(.*)<\/title>/.exec(page)?.[1];
const linksUnderBase = page.includes('href="/admin/ferry/tasks"');
console.log(res.status, title, linksUnderBase); // 200 Queues · pgferry true

server.close();
await dashboard.close(); // closes the pools the handler made
