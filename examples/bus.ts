import { Bus, IsolatedBackend } from 'pgferry/bus';

const url = process.env.DATABASE_URL;
const backend = new IsolatedBackend({ connectionString: url });
const bus = new Bus<{ text: string }>({ backend, channel: 'chat:lobby' });
bus.subscribe((m) => console.log(m.text)); // every message the OTHER members publish
await bus.start();
await bus.publish({ text: 'hello' }); // never throws: failures are logged and counted
await bus.stop(); // leaves the channel, drops this member's queue
await backend.close(); // a backend you make, you close
