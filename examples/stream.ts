import { StreamClient, Consumer } from 'pgferry/stream';

const url = process.env.DATABASE_URL;
const streams = new StreamClient({ connectionString: url });
await streams.createStream('orders');
await streams.subscribe('orders', 'billing'); // every consumer name gets every event from now on

const consumer = new Consumer<{ orderId: number }>({
  client: streams,
  stream: 'orders',
  name: 'billing',
});
const billed = new Promise<number>((resolve) =>
  consumer.on('order.created', (msg) => resolve(msg.payload.orderId)),
);
const running = consumer.run();
await streams.send('orders', { orderId: 42 }, { type: 'order.created' }); // or { tx }: published when tx commits
console.log('billed order', await billed);
await consumer.stop();
await running;
await streams.close();
