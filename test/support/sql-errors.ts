import { expect } from 'vitest';

/** Asserts that `p` rejects with a database error of this SQLSTATE (and message, when given). */
export async function expectSqlError(
  p: Promise<unknown>,
  sqlState: string,
  message?: string | RegExp,
): Promise<void> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected SQLSTATE ${sqlState}`).toBeDefined();
  const e = caught as { code?: string; sqlState?: string; message?: string };
  expect(e.sqlState ?? e.code).toBe(sqlState);
  if (typeof message === 'string') expect(e.message).toBe(message);
  else if (message) expect(e.message).toMatch(message);
}
