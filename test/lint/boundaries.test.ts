import { describe, expect, it } from 'vitest';
import { ESLint } from 'eslint';
import { fileURLToPath } from 'node:url';

// The import boundaries of eslint.config.js, checked by linting probe sources
// under made-up file names inside each folder (nothing is written to disk).
const eslint = new ESLint({ cwd: fileURLToPath(new URL('../../', import.meta.url)) });

async function boundaryErrors(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? [])
    .filter((m) => m.ruleId === 'no-restricted-imports')
    .map((m) => m.message);
}

const use = (spec: string, type = false): string =>
  `import ${type ? 'type ' : ''}{ x } from '${spec}';\nexport const y: unknown = x;\n`;

describe('import boundaries (eslint.config.js)', () => {
  it.each([
    ['src/driver/probe.ts', '../queue/client.js', 'src/driver may not import src/queue'],
    ['src/driver/probe.ts', '../migrate/migrator.js', 'src/driver may not import src/migrate'],
    ['src/queue/probe.ts', '../tasks/client.js', 'src/queue may not import src/tasks'],
    ['src/queue/probe.ts', '../stream/client.js', 'src/queue may not import src/stream'],
    ['src/queue/probe.ts', '../bus/bus.js', 'src/queue may not import src/bus'],
    ['src/queue/engine/probe.ts', '../../tasks/client.js', 'src/queue may not import src/tasks'],
    ['src/stream/probe.ts', '../queue/client.js', 'src/stream may not import src/queue'],
    ['src/migrate/probe.ts', '../stream/client.js', 'src/migrate may not import src/stream'],
    ['src/migrate/probe.ts', '../queue/rows.js', 'src/migrate may not import src/queue'],
    ['src/tasks/probe.ts', '../cli/main.js', 'src/tasks may not import src/cli'],
    ['src/bus/probe.ts', '../tasks/index.js', 'src/bus may not import src/tasks'],
    ['src/index.ts', './cli/main.js', 'src/index.ts may not import src/cli'],
    ['src/errors.ts', './queue/client.js', 'src/errors.ts may not import src/queue'],
  ])('%s importing %s fails lint', async (file, spec, message) => {
    expect(await boundaryErrors(file, use(spec))).toEqual([
      `'${spec}' import is restricted from being used by a pattern. ${message} (import boundaries: docs/internals.md).`,
    ]);
  });

  // QUEUE_DOOR_ONLY: tasks, bus and testing take the queue only through src/queue/index.ts.
  it.each([
    ['src/tasks/probe.ts', '../queue/rows.js'],
    ['src/tasks/probe.ts', '../queue/engine/index.js'],
    ['src/bus/probe.ts', '../queue/client.js'],
    ['src/bus/backends/probe.ts', '../../queue/validate.js'],
    ['src/testing/probe.ts', '../queue/types.js'],
  ])('%s importing %s (past the queue door) fails lint', async (file, spec) => {
    const who = file.split('/').slice(0, 2).join('/');
    expect(await boundaryErrors(file, use(spec))).toEqual([
      `'${spec}' import is restricted from being used by a pattern. ${who} imports the queue layer only through src/queue/index.ts (docs/internals.md).`,
    ]);
    // Type-only imports are caught too.
    expect(await boundaryErrors(file, use(spec, true))).toHaveLength(1);
  });

  it('catches type-only imports and re-exports too', async () => {
    expect(await boundaryErrors('src/queue/probe.ts', use('../tasks/types.js', true))).toHaveLength(
      1,
    );
    expect(
      await boundaryErrors('src/stream/probe.ts', `export { x } from '../queue/types.js';\n`),
    ).toHaveLength(1);
  });

  it('lets the allowed directions through', async () => {
    for (const [file, spec] of [
      ['src/tasks/probe.ts', '../queue/index.js'],
      ['src/bus/probe.ts', '../queue/index.js'],
      ['src/testing/probe.ts', '../queue/index.js'],
      ['src/cli/commands/probe.ts', '../../queue/client.js'],
      ['src/queue/probe.ts', '../driver/types.js'],
      ['src/queue/probe.ts', '../migrate/schema-name.js'],
      ['src/stream/probe.ts', './queue-names.js'],
      ['src/migrate/probe.ts', '../driver/quote.js'],
      ['src/cli/commands/probe.ts', '../../tasks/client.js'],
      ['src/index.ts', './queue/client.js'],
    ] as const) {
      expect(await boundaryErrors(file, use(spec)), `${file} -> ${spec}`).toEqual([]);
    }
  });
});
