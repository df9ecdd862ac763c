import { describe, expect, it } from 'vitest';
import { chunkDeletes, chunkUpserts, decodeEntry, decodeToken, decodeVector, encodeEntry, encodeToken } from '../src/log.js';
import { shardOf } from '../src/names.js';

describe('shard assignment', () => {
  it('is stable and spreads ids over the shards', () => {
    expect(shardOf(12345, 1)).toBe(0);
    const counts = new Array(4).fill(0);
    for (let i = 0; i < 4000; i++) counts[shardOf(i, 4)]++;
    for (const c of counts) expect(c).toBeGreaterThan(800);
    const strings = new Array(4).fill(0);
    for (let i = 0; i < 4000; i++) strings[shardOf(`doc-${i}`, 4)]++;
    for (const c of strings) expect(c).toBeGreaterThan(800);
  });

  it('tells 1 and "1" apart', () => {
    let differ = 0;
    for (let i = 0; i < 100; i++) if (shardOf(i, 16) !== shardOf(String(i), 16)) differ++;
    expect(differ).toBeGreaterThan(50);
  });

  it('matches FNV-1a on the type-tagged id', () => {
    // FNV-1a 32 of "n:0": computed by hand from the published constants
    let h = 0x811c9dc5;
    for (const b of Buffer.from('n:0')) h = Math.imul(h ^ b, 0x01000193) >>> 0;
    expect(shardOf(0, 1000)).toBe(h % 1000);
  });
});

describe('log messages', () => {
  it('round-trips vectors bit for bit', () => {
    const v = new Float32Array([1.5, -0, Math.fround(0.1), 3.4e38, -1e-40]);
    const entry = decodeEntry(encodeEntry({ op: 'upsert', points: [{ id: 'x', v: Buffer.from(v.buffer).toString('base64') }] }));
    expect(entry.op).toBe('upsert');
    const back = decodeVector((entry as { points: { v: string }[] }).points[0].v);
    expect(Array.from(back)).toEqual(Array.from(v));
  });

  it('splits large batches under the message size and refuses a point that cannot fit', () => {
    const points = Array.from({ length: 100 }, (_, id) => ({ id, vector: new Float32Array(64).fill(id) }));
    const chunks = chunkUpserts(points, 4096);
    expect(chunks.length).toBeGreaterThan(1);
    for (const c of chunks) expect(encodeEntry(c).length).toBeLessThanOrEqual(4096);
    expect(chunks.flatMap((c) => (c as { points: { id: number }[] }).points.map((p) => p.id))).toEqual(points.map((p) => p.id));
    expect(() => chunkUpserts([{ id: 1, vector: new Float32Array(4096) }], 4096)).toThrow(/point 1 takes \d+ bytes/);
    const deletes = chunkDeletes(Array.from({ length: 2000 }, (_, i) => i), 1024);
    expect(deletes.length).toBeGreaterThan(1);
    for (const c of deletes) expect(encodeEntry(c).length).toBeLessThanOrEqual(1024);
  });

  it('write tokens round-trip and bad ones are named', () => {
    const token = encodeToken({ collection: 'c', seqs: { 0: 5, 3: 12 } });
    expect(decodeToken(token)).toEqual({ collection: 'c', seqs: { 0: 5, 3: 12 } });
    expect(() => decodeToken('nonsense')).toThrow(/"after" is not a write token/);
    expect(() => decodeToken(Buffer.from(JSON.stringify({ c: 'c', s: { 0: -1 } })).toString('base64url'))).toThrow(/not a write token/);
  });
});
