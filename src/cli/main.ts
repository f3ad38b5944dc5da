#!/usr/bin/env node
import { commands } from './commands/index.js';
import { EXIT, UsageError } from './command.js';
import { ConnectionError, MigrationError, PgferryError } from '../errors.js';
import { VERSION } from '../version.js';
import { explain, missingDatabase } from './explain.js';

function help(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'pgferry — Postgres-native messaging for TypeScript',
    '',
    'Usage: pgferry <command> [options]    (pgferry --version prints the version)',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    "Run `pgferry <command> --help` for a command's options.",
    'Exit codes: 0 ok, 1 failure, 2 bad usage, 3 database unreachable, 4 incompatible schema or server.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-v' || name === 'version') {
    console.log(VERSION);
    return EXIT.ok;
  }
  if (!name || name === '-h' || name === '--help' || name === 'help') {
    console.log(help());
    return name ? EXIT.ok : EXIT.usage;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    console.error(`pgferry: unknown command "${name}"\n\n${help()}`);
    return EXIT.usage;
  }
  if (rest.includes('-h') || rest.includes('--help')) {
    console.log(command.usage);
    return EXIT.ok;
  }
  const noDatabase = missingDatabase(name, rest);
  if (noDatabase) {
    console.error(`pgferry ${name}: ${noDatabase}`);
    return EXIT.usage;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    const clear = explain(err, rest);
    if (clear) {
      console.error(`pgferry ${name}: ${clear.message}`);
      if (process.env.PGFERRY_DEBUG) console.error(err);
      return clear.exit;
    }
    if (
      err instanceof UsageError ||
      (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
    ) {
      console.error(`pgferry ${name}: ${(err as Error).message}\n\n${command.usage}`);
      return EXIT.usage;
    }
    console.error(`pgferry ${name}: ${err instanceof Error ? err.message : String(err)}`);
    if (err instanceof ConnectionError) return EXIT.connection;
    if (err instanceof MigrationError && err.code !== 'PGFERRY_MIGRATION_FAILED')
      return EXIT.incompatible;
    if (err instanceof PgferryError) return EXIT.failure;
    if (process.env.PGFERRY_DEBUG) console.error(err);
    return EXIT.failure;
  }
}

// Run when executed directly (`tsx src/cli/main.ts`), not when imported by
// tests or by bin/pgferry.js (which calls main itself).
const invoked = process.argv[1] ?? '';
if (/(?:^|[\\/])main\.[cm]?[jt]s$/.test(invoked)) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(err);
      process.exitCode = EXIT.failure;
    },
  );
}
