import { InvalidArgumentError } from '../errors.js';

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Validates a schema name: lower-case letters, digits and underscores (at
 * most 63, not starting with a digit). Its own module so that every layer can
 * check the schema it is given without importing the migrator.
 */
export function checkSchemaName(name: string): string {
  if (typeof name !== 'string' || !SCHEMA_NAME.test(name)) {
    throw new InvalidArgumentError(
      `invalid schema name ${JSON.stringify(name)}: use lower-case letters, digits and underscores (at most 63, not starting with a digit)`,
    );
  }
  return name;
}
