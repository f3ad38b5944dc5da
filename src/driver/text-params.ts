/**
 * Parameter and result conventions shared by the drivers that are not `pg`.
 *
 * pgferry's SQL is written against node-postgres's conventions: every
 * parameter travels as untyped text and the server infers its type from the
 * statement (`$1::jsonb` receives JSON text verbatim, a JS array becomes a
 * Postgres array literal), and int8/numeric come back as strings. postgres.js
 * and PGlite serialise by the server-inferred type instead (a string sent to a
 * jsonb parameter is JSON.stringify'd a second time and stored as a JSON
 * string), so those drivers turn parameters into text here first and then
 * send them untyped, which gives exactly node-postgres's behaviour.
 */

/** Turns one parameter into the text node-postgres would send (null stays null). */
export function toTextParam(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean')
    return String(value);
  if (value instanceof Date) return value.toISOString();
  if (ArrayBuffer.isView(value)) return '\\x' + bytesHex(value);
  if (Array.isArray(value)) return arrayLiteral(value);
  const custom = value as { toPostgres?: () => unknown };
  if (typeof custom.toPostgres === 'function') return toTextParam(custom.toPostgres());
  return JSON.stringify(value);
}

export function toTextParams(params: readonly unknown[]): (string | null)[] {
  return params.map(toTextParam);
}

function bytesHex(view: ArrayBufferView): string {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('hex');
}

/** A Postgres array literal, elements always quoted (as node-postgres does). */
function arrayLiteral(values: readonly unknown[]): string {
  const parts = values.map((v) => {
    if (v === null || v === undefined) return 'NULL';
    if (Array.isArray(v)) return arrayLiteral(v);
    if (ArrayBuffer.isView(v)) return '"\\\\x' + bytesHex(v) + '"';
    const text = toTextParam(v)!;
    return '"' + text.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
  });
  return '{' + parts.join(',') + '}';
}

/**
 * Parses a one-dimensional or nested Postgres array literal in text form
 * (`{1,2,NULL}`, `{"a b","c\"d"}`), applying `element` to each non-null item.
 */
export function parseArrayLiteral<T>(text: string, element: (s: string) => T): unknown[] {
  let i = 0;
  // An optional dimension prefix (`[0:1]={...}`) is skipped.
  if (text[0] === '[') i = text.indexOf('=') + 1;
  const parse = (): unknown[] => {
    const out: unknown[] = [];
    i++; // '{'
    if (text[i] === '}') {
      i++;
      return out;
    }
    for (;;) {
      if (text[i] === '{') {
        out.push(parse());
      } else if (text[i] === '"') {
        let s = '';
        i++;
        while (text[i] !== '"') {
          if (text[i] === '\\') i++;
          s += text[i];
          i++;
        }
        i++;
        out.push(element(s));
      } else {
        const start = i;
        while (text[i] !== ',' && text[i] !== '}') i++;
        const raw = text.slice(start, i);
        out.push(raw === 'NULL' ? null : element(raw));
      }
      if (text[i] === ',') {
        i++;
        continue;
      }
      i++; // '}'
      return out;
    }
  };
  return parse();
}
