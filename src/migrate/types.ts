/** One numbered migration, compiled from sql/<component>/NNNN_name.sql. */
export interface MigrationSource {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}
