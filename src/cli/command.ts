/** One `pgferry <name>` command. Each lives in its own file under commands/. */
export interface Command {
  readonly name: string;
  /** One line for `pgferry --help`. */
  readonly summary: string;
  /** Full usage text for `pgferry <name> --help`. */
  readonly usage: string;
  /** Runs the command; resolves to the process exit code. */
  run(argv: string[]): Promise<number>;
}

/** Exit codes shared by every command (documented in docs/cli.md). */
export const EXIT = {
  ok: 0,
  /** Something failed at run time (database error, handler crash). */
  failure: 1,
  /** Bad flags or arguments. */
  usage: 2,
  /** The database could not be reached. */
  connection: 3,
  /** The schema is newer than this pgferry, or the server too old. */
  incompatible: 4,
} as const;

export class UsageError extends Error {}
