import { defineTask, TaskClient, Worker } from 'pgferry/tasks';

const url = process.env.DATABASE_URL;
const fetchPage = defineTask<{ url: string }>({
  name: 'fetch_page',
  handler: async ({ url }) => ({ url, bytes: url.length * 100 }),
});
const report = defineTask<{ title: string }>({
  name: 'report',
  // Runs once every child has finished; ctx.childResults holds them in order.
  handler: ({ title }, { childResults }) => {
    const bytes = childResults.reduce((n, c) => n + (c.result as { bytes: number }).bytes, 0);
    return `${title}: ${childResults.length} pages, ${bytes} bytes`;
  },
});

const tasks = new TaskClient({ connectionString: url });
// Parent and children in one statement (pass { tx } to make it part of yours).
const flow = await tasks.enqueueFlow({
  parent: { task: report, input: { title: 'crawl' } },
  children: ['a.example', 'b.example'].map((u) => ({ task: fetchPage, input: { url: u } })),
  onChildFailure: 'fail', // a dead child dead-letters the parent; 'continue' runs it anyway
});
const worker = new Worker({ connectionString: url, tasks: [fetchPage, report] });
await worker.start();
console.log(await tasks.waitForResult(report, flow.parent.id, { timeoutMs: 10_000 }));
await worker.stop();
await tasks.close();
