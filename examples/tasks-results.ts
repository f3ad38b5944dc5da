import { defineTask, TaskClient, Worker } from 'pgferry/tasks';

const url = process.env.DATABASE_URL;
const resize = defineTask<{ image: string }>({
  name: 'resize',
  handler: async ({ image }, { progress }) => {
    for (let done = 1; done <= 3; done++) progress({ done, of: 3 }); // throttled: the latest value is stored
    return { url: `${image}.small.png` }; // stored with the completion, in the same transaction
  },
});

const tasks = new TaskClient({ connectionString: url });
const job = await tasks.enqueue(resize, { image: 'cat' });
const worker = new Worker({ connectionString: url, tasks: [resize] });
await worker.start();
// Polls until the job finished: its result, or JobFailedError / ResultTimeoutError / JobNotFoundError.
const result = await tasks.waitForResult<{ url: string }>(resize, job.id, { timeoutMs: 10_000 });
console.log(result, (await tasks.getJob(resize, job.id))?.progress);
console.log((await tasks.history(resize, job.id))?.map((a) => `${a.attempt} ${a.outcome}`));
await worker.stop();
await tasks.close();
