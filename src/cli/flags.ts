// Flag parsing shared by every command (node:util parseArgs, strict).
import { parseArgs, type ParseArgsConfig } from 'node:util';

type FlagOptions = NonNullable<ParseArgsConfig['options']>;

/** A string flag (`--name <value>`). */
export const STR = { type: 'string' } as const;
/** A boolean flag, false unless given. */
export const FLAG = { type: 'boolean', default: false } as const;
/** The connection flags of the commands that work on tasks (worker, dlq). */
export const TASKS_CONNECTION_FLAGS = {
  url: STR,
  'queue-schema': STR,
  'tasks-schema': STR,
} as const satisfies FlagOptions;

/** Every command's flag parsing: strict (an unknown flag is a usage error); `positionals` allows arguments. */
export function parseFlags<O extends FlagOptions>(
  argv: string[],
  options: O,
  positionals = false,
): ReturnType<
  typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: boolean }>
> {
  return parseArgs({ args: argv, options, strict: true, allowPositionals: positionals });
}
