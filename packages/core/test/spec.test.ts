import { describe, expect, it } from 'vitest';
import { defaultParams, dimsLadder, formatSpec, parseParams, parseSpec, validateSpec, type SearchParams } from '../src/index.js';

describe('IndexSpec strings', () => {
  it('parses and prints back', () => {
    for (const text of ['pca,ivf1024@64,flat@128,rerank@768', 'ivf256@784,flat@784', 'flat@32', 'opq32@128,rerank@768', 'pca,ivf16@8,pq8@64']) {
      expect(formatSpec(parseSpec(text))).toBe(text);
    }
    expect(parseSpec('pca,ivf1024@64,flat@128,rerank@768')).toEqual({
      transform: 'pca',
      coarse: { lists: 1024, dim: 64 },
      scan: { codec: 'flat', dim: 128 },
      rerank: { dim: 768 },
    });
  });

  it('fills stages without @dim with the full dimension', () => {
    expect(formatSpec(parseSpec('ivf64,flat,rerank', 96))).toBe('ivf64@96,flat@96,rerank@96');
    expect(() => parseSpec('flat')).toThrow(/needs an explicit @dim/);
  });

  it('names unknown tokens, wrong order and missing scan stages', () => {
    expect(() => parseSpec('ivf8@4,hnsw32')).toThrow(/unknown token "hnsw32"/);
    expect(() => parseSpec('flat@8,ivf8@4')).toThrow(/out of order/);
    expect(() => parseSpec('pca,ivf8@4')).toThrow(/no scan stage/);
    expect(() => parseSpec('')).toThrow(/empty index spec/);
  });

  it('rejects impossible specs for the data', () => {
    expect(() => validateSpec(parseSpec('ivf8@64,flat@32'), 32, 100)).toThrow(/coarse dim d_c 64 exceeds the vector dimension 32/);
    expect(() => validateSpec(parseSpec('ivf200@8,flat@32'), 32, 100)).toThrow(/200 lists need at least 200 training vectors/);
    expect(() => validateSpec(parseSpec('flat@16,rerank@8'), 32, 100)).toThrow(/must exceed the flat scan dim/);
    expect(() => validateSpec(parseSpec('ivf0@8,flat@16'), 32, 100)).toThrow(/list count must be a positive integer/);
    expect(() => validateSpec(parseSpec('pq32@16'), 32, 1000)).toThrow(/M = 32 sub-quantisers exceed the scan dim 16/);
    expect(() => validateSpec(parseSpec('opq8@16'), 32, 100)).toThrow(/needs at least 256 vectors/);
    expect(() => validateSpec(parseSpec('pq8@16,rerank@8'), 32, 1000)).toThrow(/must be at least the scan dim 16/);
    expect(() => validateSpec(parseSpec('pq8@16,rerank@16'), 32, 1000)).not.toThrow();
    expect(() => validateSpec(parseSpec('ivf8@8,flat@16,rerank@32'), 32, 100)).not.toThrow();
  });
});

describe('search params', () => {
  it('parses the CLI form and rejects bad values', () => {
    expect(parseParams('nprobe=8,shortlist=100,coarseDim=16')).toEqual({ nprobe: 8, shortlist: 100, coarseDim: 16 });
    expect(() => parseParams('nprobes=8')).toThrow(/unknown search param "nprobes"/);
    expect(() => parseParams('nprobe=0')).toThrow(/positive integer, got "0"/);
    expect(() => parseParams('nprobe=2.5')).toThrow(/positive integer/);
  });

  it('defaults to the built dims', () => {
    const p = defaultParams(parseSpec('ivf256@32,flat@64,rerank@128'), 10);
    expect(p).toMatchObject({ coarseDim: 32, scanDim: 64, rerankDim: 128, shortlist: 100, nprobe: 8 });
  });

  it('overrides the defaults with given params as an object spread does (keys, order, values, prototype)', () => {
    const givens: Partial<SearchParams>[] = [
      {},
      { probeMargin: 0.2, nprobe: 4, rerankDim: 64 },
      { rerankDim: undefined, shortlist: 30 },
      { funnel: [{ dim: 64, keep: 20 }], coarseDim: 16 },
      JSON.parse('{"__proto__": {"nprobe": 1}, "scanDim": 32}') as Partial<SearchParams>,
    ];
    for (const spec of ['ivf256@32,flat@64,rerank@128', 'ivf256@32,flat@64', 'flat@64']) {
      for (const given of givens) {
        const p = defaultParams(parseSpec(spec), 10, given);
        const spread = { ...defaultParams(parseSpec(spec), 10), ...given };
        expect(Object.keys(p)).toEqual(Object.keys(spread));
        expect(p).toStrictEqual(spread);
        expect(Object.getPrototypeOf(p)).toBe(Object.prototype);
      }
    }
  });
});

describe('dims ladder', () => {
  it('is powers of two from 8 and the full dimension', () => {
    expect(dimsLadder(784)).toEqual([8, 16, 32, 64, 128, 256, 512, 784]);
    expect(dimsLadder(64)).toEqual([8, 16, 32, 64]);
    expect(dimsLadder(5)).toEqual([5]);
  });
});
