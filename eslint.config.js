import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// ---------------------------------------------------------------------------
// Import boundaries between the folders of src/ (docs/internals.md).
// Each folder lists the folders it must not import. Enforced with core
// ESLint's no-restricted-imports, one `files` block per folder and depth, so
// a relative specifier is matched against the folder it really resolves to.
// ---------------------------------------------------------------------------
const ALL = ['driver', 'migrate', 'queue', 'stream', 'tasks', 'bus', 'testing', 'embedded', 'cli'];
const except = (...allowed) => ALL.filter((l) => !allowed.includes(l));

/** @type {Record<string, string[]>} folder of src/ -> folders it may not import */
const forbidden = {
  driver: except('driver'), // the seam every layer stands on imports no layer
  embedded: except('embedded'),
  migrate: except('migrate', 'driver'), // no layer: layers import it, never the reverse
  queue: ['stream', 'tasks', 'bus', 'testing', 'embedded', 'cli'],
  stream: ['queue', 'tasks', 'bus', 'testing', 'embedded', 'cli'], // independent of the queue
  tasks: ['stream', 'bus', 'testing', 'embedded', 'cli'],
  bus: ['stream', 'tasks', 'testing', 'embedded', 'cli'],
  testing: ['embedded', 'cli'],
  cli: [],
};
// src/errors.ts and src/logger.ts import no folder; src/index.ts anything but cli.
const rootForbidden = {
  'src/errors.ts': ALL,
  'src/logger.ts': ALL,
  'src/index.ts': ['cli', 'testing', 'embedded'],
};

// The queue's door (src/queue/index.ts): the folders listed here may import
// the queue layer only through that file (docs/internals.md).
const QUEUE_DOOR_ONLY = ['tasks', 'bus', 'testing'];

const MAX_DEPTH = 3; // src/<folder>/a/b/file.ts
const esc = (s) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** Patterns for a file `depth` folders below src/ (0: src/*.ts); `who` names it in messages. */
function patterns(who, folder, depth, banned) {
  const up = depth === 0 ? '\\./' : esc('../'.repeat(depth));
  const out = banned.map((layer) => ({
    regex: `^${up}${layer}(?:/|\\.js$|$)`,
    message: `${who} may not import src/${layer} (import boundaries: docs/internals.md).`,
  }));
  if (folder && QUEUE_DOOR_ONLY.includes(folder)) {
    out.push({
      regex: `^${up}queue/(?!index\\.js$)`,
      message: `${who} imports the queue layer only through src/queue/index.ts (docs/internals.md).`,
    });
  }
  return out;
}

function boundaryBlocks() {
  const blocks = [];
  for (const [folder, banned] of Object.entries(forbidden)) {
    for (let depth = 1; depth <= MAX_DEPTH; depth++) {
      const rules = patterns(`src/${folder}`, folder, depth, banned);
      if (rules.length === 0) continue;
      blocks.push({
        files: [`src/${folder}/${'*/'.repeat(depth - 1)}*.ts`],
        rules: { 'no-restricted-imports': ['error', { patterns: rules }] },
      });
    }
  }
  for (const [file, banned] of Object.entries(rootForbidden)) {
    blocks.push({
      files: [file],
      rules: {
        'no-restricted-imports': ['error', { patterns: patterns(file, undefined, 0, banned) }],
      },
    });
  }
  return blocks;
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.pgferry/**', 'src/migrate/generated/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  ...boundaryBlocks(),
);
