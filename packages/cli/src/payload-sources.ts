import { createReadStream, existsSync } from 'node:fs';
import { extname } from 'node:path';
import { createInterface } from 'node:readline';
import { UsageError } from '@adanns/cli-kit';
import { readNpy } from '@adanns/datasets';

/**
 * Payloads `adanns import` writes beside the vectors, row by row: a JSON-lines
 * file (one object per row, line i = row i) and numeric columns (one .npy of
 * one value per row each, named by the payload key they fill; dots nest, as
 * filters read them). A row's payload is its label from the data source
 * (`{label}`), then the JSON-lines object's keys, then the columns (a later
 * source replaces a key an earlier one set). Every source is checked whole
 * before anything is uploaded, and errors name the file, the line or row and
 * the value.
 */

/** One --payload-column: the key it fills and its values, exactly (float64; integer dtypes as integers). */
export interface PayloadColumn {
  name: string;
  path: string;
  values: Float64Array;
}

/**
 * Whether a data source's rows must all have payloads (`exact`: no --limit,
 * so a file with more rows than the data is misaligned) or at least `rows`
 * of them (--limit takes the first rows of both).
 */
function countError(what: string, have: number, rows: number, exact: boolean, unit: string): string | undefined {
  if (have === rows || (!exact && have > rows)) return undefined;
  return `${what} has ${have} ${unit}, the data has ${rows} rows${exact ? '' : ' (--limit)'}: the payloads must be aligned with the vectors, one per row`;
}

/** Reads `--payload-column NAME=FILE.npy` and its values, checked against the rows imported. */
export function readPayloadColumn(text: string, rows: number, exact: boolean): PayloadColumn {
  const m = /^([^=]+)=(.+)$/.exec(text);
  if (!m || m[1].split('.').some((part) => part.length === 0)) throw new UsageError(`--payload-column must be NAME=FILE.npy (NAME a payload key, dots for nested keys), got "${text}"`);
  const [, name, path] = m;
  const what = `--payload-column ${name}=${path}`;
  if (extname(path) !== '.npy') throw new UsageError(`${what}: the column must be a .npy file (one number per row), got "${extname(path) || 'no extension'}"`);
  if (!existsSync(path)) throw new UsageError(`${what}: no such file`);
  let array: { shape: number[]; values: Float64Array };
  try {
    array = readNpy(path, true);
  } catch (e) {
    throw new UsageError(`${what}: ${(e as Error).message}`);
  }
  const { shape, values } = array;
  if (!(shape.length === 1 || (shape.length === 2 && shape[1] === 1))) throw new UsageError(`${what}: shape (${shape.join(', ')}) is not one value per row (want (n,) or (n, 1))`);
  const error = countError(what, shape[0], rows, exact, 'values');
  if (error) throw new UsageError(error);
  for (let i = 0; i < Math.min(rows, values.length); i++) {
    if (!Number.isFinite(values[i])) throw new UsageError(`${what}: value ${values[i]} at row ${i} is not a finite number (payloads are JSON)`);
  }
  return { name, path, values };
}

/** The lines of a JSON-lines file, numbered from 1, each parsed as a payload object (blank trailing lines ignored). */
async function* payloadLines(path: string): AsyncGenerator<{ line: number; payload: Record<string, unknown> }> {
  const lines = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
  let n = 0;
  let blank = 0;
  for await (const text of lines) {
    n++;
    if (text.trim() === '') {
      blank = blank || n;
      continue;
    }
    // a blank line between rows would shift every payload after it onto the wrong vector
    if (blank) throw new UsageError(`--payload-file ${path}: line ${blank} is blank (one JSON object per row, no blank lines between them)`);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw new UsageError(`--payload-file ${path}: line ${n} is not valid JSON (${(e as Error).message}): ${text.length > 80 ? `${text.slice(0, 80)}...` : text}`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UsageError(`--payload-file ${path}: line ${n} is not a JSON object (got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value})`);
    yield { line: n, payload: value as Record<string, unknown> };
  }
}

/** Checks a JSON-lines payload file whole (every line an object, as many as the rows) before any upload. */
export async function checkPayloadFile(path: string, rows: number, exact: boolean): Promise<void> {
  if (!existsSync(path)) throw new UsageError(`--payload-file ${path}: no such file`);
  let count = 0;
  for await (const _ of payloadLines(path)) {
    count++;
    // with --limit only the first rows are read: the rest need not be read either
    if (!exact && count >= rows) return;
  }
  const error = countError(`--payload-file ${path}`, count, rows, exact, 'lines');
  if (error) throw new UsageError(error);
}

/** The payload objects of a checked JSON-lines file, row by row. */
export function payloadRows(path: string): () => Promise<Record<string, unknown>> {
  const lines = payloadLines(path);
  return async () => {
    const next = await lines.next();
    if (next.done) throw new UsageError(`--payload-file ${path}: ended before the last row`);
    return next.value.payload;
  };
}

/** Sets `value` at the dotted `key` of `payload`, making the objects on the way (a non-object on the way is replaced). */
export function setPayloadKey(payload: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let at = payload;
  for (const part of parts.slice(0, -1)) {
    const inner = at[part];
    if (typeof inner !== 'object' || inner === null || Array.isArray(inner)) at[part] = {};
    at = at[part] as Record<string, unknown>;
  }
  at[parts[parts.length - 1]] = value;
}
