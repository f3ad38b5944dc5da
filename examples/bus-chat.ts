import { createInterface } from 'node:readline';
import { migrate } from 'pgferry';
import { Bus, IsolatedBackend } from 'pgferry/bus';

const name = process.argv[2] ?? 'anon';
const url = process.env.DATABASE_URL; // e.g. from `npx pgferry dev`
await migrate({ connectionString: url }); // idempotent: queue engine + bus functions

// In production, connect as a LOGIN role that is a member of pgferry_bus only.
const backend = new IsolatedBackend({ connectionString: url });
const bus = new Bus<{ from: string; text: string }>({ backend, channel: 'chat:lobby' });
bus.subscribe((m) => console.log(`<${m.from}> ${m.text}`));
await bus.start();

// each line typed is published; Ctrl-D (end of input) leaves
const rl = createInterface({ input: process.stdin });
rl.on('line', (text) => void bus.publish({ from: name, text }));
rl.on('close', async () => {
  await bus.stop(); // leaves the channel, drops this member's queue
  await backend.close();
});
