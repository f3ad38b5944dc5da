import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { dashboardHandler } from 'pgferry/ops';

const password = process.env.DASHBOARD_PASSWORD ?? randomUUID();
const dashboard = dashboardHandler({
  connectionString: process.env.DATABASE_URL,
  basePath: '/admin/ferry',
  allowWrites: true,
  auth: { basic: { username: 'ops', password } },
});

const fastify = Fastify();
await fastify.register(async (scope) => {
  // leave request bodies unread: the dashboard reads its forms from the raw request
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser('*', (_request, _payload, done) => done(null));
  const mount = (request: FastifyRequest, reply: FastifyReply) => {
    reply.hijack(); // hand the raw request over
    dashboard(request.raw, reply.raw);
  };
  scope.all('/admin/ferry', mount);
  scope.all('/admin/ferry/*', mount);
});
const url = await fastify.listen({ port: 0, host: '127.0.0.1' });

const authorization = `Basic ${Buffer.from(`ops:${password}`).toString('base64')}`;
const res = await fetch(`${url}/admin/ferry/queues`, { headers: { authorization } });
const page = await res.text();
const title = /<title>(.*)<\/title>/.exec(page)?.[1];
const linksUnderBase = page.includes('href="/admin/ferry/tasks"');
console.log(res.status, title, linksUnderBase); // 200 Queues · pgferry true

await fastify.close();
await dashboard.close();
