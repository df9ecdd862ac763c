import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeNpy } from '@adanns/datasets';
import { checkPayloadFile, payloadRows, readPayloadColumn, setPayloadKey } from '../src/payload-sources.js';

// `adanns import` payload sources (files on disk): what they read, and the error each misalignment or bad
// value gets, naming the file, the line or row and the value (cli.test.ts runs an import end to end).

const dir = mkdtempSync(join(tmpdir(), 'adanns-payloads-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  writeFileSync(join(dir, name), text);
  return join(dir, name);
};
const lines = (n: number) => Array.from({ length: n }, (_, i) => JSON.stringify({ i, colour: i % 2 ? 'red' : 'blue' }));

describe('--payload-file (JSON lines)', () => {
  it('reads one object per row, a trailing newline or blank tail allowed', async () => {
    const path = file('ok.jsonl', lines(4).join('\r\n') + '\r\n\n');
    await checkPayloadFile(path, 4, true);
    const next = payloadRows(path);
    expect([await next(), await next(), await next(), await next()].map((p) => p.i)).toEqual([0, 1, 2, 3]);
    await expect(next()).rejects.toThrow(/ended before the last row/);
  });

  it('needs exactly one line per row, or at least the rows --limit takes', async () => {
    const path = file('five.jsonl', lines(5).join('\n'));
    await expect(checkPayloadFile(path, 4, true)).rejects.toThrow(/five\.jsonl has 5 lines, the data has 4 rows: the payloads must be aligned/);
    await expect(checkPayloadFile(path, 6, true)).rejects.toThrow(/has 5 lines, the data has 6 rows/);
    await checkPayloadFile(path, 4, false);
    await expect(checkPayloadFile(path, 6, false)).rejects.toThrow(/has 5 lines, the data has 6 rows \(--limit\)/);
    await expect(checkPayloadFile(join(dir, 'missing.jsonl'), 1, true)).rejects.toThrow(/missing\.jsonl: no such file/);
  });

  it('names the line that is not JSON, not an object, or blank between rows', async () => {
    const bad = lines(5);
    bad[3] = '{"colour": red}';
    await expect(checkPayloadFile(file('bad.jsonl', bad.join('\n')), 5, true)).rejects.toThrow(/bad\.jsonl: line 4 is not valid JSON \(.+\): \{"colour": red\}/);
    for (const [text, got] of [['42', 'number'], ['null', 'null'], ['"x"', 'string'], ['[{}]', 'an array']]) {
      const other = lines(3);
      other[1] = text;
      await expect(checkPayloadFile(file('other.jsonl', other.join('\n')), 3, true)).rejects.toThrow(`line 2 is not a JSON object (got ${got})`);
    }
    await expect(checkPayloadFile(file('gap.jsonl', [...lines(2), '  ', ...lines(2)].join('\n')), 4, true)).rejects.toThrow(/line 3 is blank/);
  });
});

describe('--payload-column (.npy)', () => {
  it('reads one number per row exactly, integer dtypes as integers, from (n,) or (n, 1)', () => {
    const ints = join(dir, 'ints.npy');
    writeNpy(ints, Int32Array.from([5, -3, 2 ** 31 - 1]), [3, 1], '<i4');
    expect(Array.from(readPayloadColumn(`meta.n=${ints}`, 3, true).values)).toEqual([5, -3, 2 ** 31 - 1]);
    expect(readPayloadColumn(`meta.n=${ints}`, 3, true).name).toBe('meta.n');
    const floats = join(dir, 'floats.npy');
    writeNpy(floats, Float32Array.from([0.5, 0.1]), [2], '<f4');
    // float32 values as the float32 they are (0.1 is not exact in float32)
    expect(Array.from(readPayloadColumn(`p=${floats}`, 2, true).values)).toEqual([0.5, Math.fround(0.1)]);
  });

  it('names the column, the row and the value that is wrong', () => {
    const wide = join(dir, 'wide.npy');
    writeNpy(wide, new Float32Array(6), [3, 2], '<f4');
    expect(() => readPayloadColumn(`w=${wide}`, 3, true)).toThrow(/--payload-column w=.*wide\.npy: shape \(3, 2\) is not one value per row/);
    const inf = join(dir, 'inf.npy');
    writeNpy(inf, Float32Array.from([1, 2, Infinity]), [3], '<f4');
    expect(() => readPayloadColumn(`x=${inf}`, 3, true)).toThrow(/x=.*inf\.npy: value Infinity at row 2 is not a finite number/);
    // a bad value past the rows --limit takes is not read
    expect(readPayloadColumn(`x=${inf}`, 2, false).values[1]).toBe(2);
    expect(() => readPayloadColumn(`x=${inf}`, 4, true)).toThrow(/inf\.npy has 3 values, the data has 4 rows/);
    expect(() => readPayloadColumn(`x=${file('text.npy', 'not numpy')}`, 1, true)).toThrow(/x=.*text\.npy: .*not a \.npy file/);
    expect(() => readPayloadColumn(`x=${join(dir, 'none.npy')}`, 1, true)).toThrow(/none\.npy: no such file/);
    expect(() => readPayloadColumn(`x=${join(dir, 'a.csv')}`, 1, true)).toThrow(/must be a \.npy file/);
    for (const text of ['price', '=a.npy', 'a..b=a.npy', '.a=a.npy']) expect(() => readPayloadColumn(text, 1, true)).toThrow(`--payload-column must be NAME=FILE.npy (NAME a payload key, dots for nested keys), got "${text}"`);
  });
});

describe('setPayloadKey', () => {
  it('nests dotted keys, merging into objects already there', () => {
    const p: Record<string, unknown> = { meta: { tenant: 'a' }, x: 1 };
    setPayloadKey(p, 'meta.rank', 3);
    setPayloadKey(p, 'x.y', 2);
    setPayloadKey(p, 'top', 0);
    expect(p).toEqual({ meta: { tenant: 'a', rank: 3 }, x: { y: 2 }, top: 0 });
  });
});
