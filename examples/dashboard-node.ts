import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dashboardHandler, Ops } from 'pgferry/ops';

const ops = new Ops({
  connectionString: process.env.DATABASE_URL, // actions write to the primary
  readConnectionString: process.env.REPLICA_URL, // optional: pages and /metrics read there
});
const password = process.env.DASHBOARD_PASSWORD ?? randomUUID();
const dashboard = dashboardHandler({
  ops,
  basePath: '/admin/ferry',
  allowWrites: true,
  auth: { basic: { username: 'ops', password } },
});

// Node's http server: the dashboard under /admin/ferry, everything else to your app
const app = createServer((req, res) => dashboard(req, res, () => res.end('your app')));
app.listen(0, '127.0.0.1'); // 0: a free port
await once(app, 'listening');

const { port } = app.address() as AddressInfo;
const authorization = `Basic ${Buffer.from(`ops:${password}`).toString('base64')}`;
const res = await fetch(`http://127.0.0.1:${port}/admin/ferry/queues`, {
  headers: { authorization },
});
const page = await res.text();
const title = /<title>(.*)<\/title>/.exec(page)?.[1];
const linksUnderBase = page.includes('href="/admin/ferry/tasks"');
console.log(res.status, title, linksUnderBase); // 200 Queues · pgferry true
console.log(await (await fetch(`http://127.0.0.1:${port}/`)).text()); // your app

app.close();
await ops.close(); // the handler was given `ops`, so its pools are closed here
