// Graceful stop on SIGTERM and SIGINT, in a real child process.
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { StreamClient } from '../../src/stream/index.js';
import { eventually, useTestDatabase } from '../support/db.js';

const db = useTestDatabase();

function run(stream: string): {
  out: string[];
  exited: Promise<number | null>;
  kill(sig: NodeJS.Signals): void;
} {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx/esm', 'test/stream/fixtures/signal-consumer.ts', db.url, stream],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const out: string[] = [];
  child.stdout.on('data', (d: Buffer) => out.push(...d.toString().split('\n').filter(Boolean)));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { out, exited, kill: (sig) => void child.kill(sig) };
}

describe('Consumer signal handling', () => {
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    it(`stops gracefully on ${sig} and exits 0`, async () => {
      const sc = db.track(new StreamClient({ connectionString: db.url }));
      const stream = `sig_${sig.toLowerCase()}`;
      await sc.createStream(stream);
      const p = run(stream);
      await eventually(() => p.out.includes('ready'), 20_000);
      await sc.send(stream, 'one');
      await eventually(() => p.out.includes('handled one'), 10_000);
      p.kill(sig);
      expect(await p.exited).toBe(0);
      expect(p.out.at(-1)).toBe('stopped');
      // the batch was acked before exit: nothing is redelivered
      expect((await sc.consumerInfo(stream, 'sig'))[0]!.currentBatch).toBeNull();
    });
  }
});
