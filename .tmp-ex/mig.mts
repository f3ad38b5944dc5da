import { migrate } from '../src/index.ts';
console.log(await migrate({ connectionString: process.env.DATABASE_URL, components: ['queue', 'tasks'] } as never));
