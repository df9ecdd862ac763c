import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { CreateCollection, SearchBody, SearchReply, type SearchReply as SearchReplyType } from '@adanns/wire';

// validated as the service does (Fastify compiles the schemas with Ajv)
const ajv = new Ajv({ coerceTypes: false, removeAdditional: false, strict: false });
const valid = (schema: object, value: unknown) => ajv.validate(schema, value);

describe('wire schemas', () => {
  it('accept what the README shows and refuse what the service refuses', () => {
    expect(valid(CreateCollection, { dim: 4, metric: 'cosine' })).toBe(true);
    expect(valid(CreateCollection, { dim: 4, metric: 'hamming' })).toBe(false);
    expect(valid(CreateCollection, { dim: 4, colour: 'red' })).toBe(false);
    expect(valid(SearchBody, { vector: [1, 0.1, 0, 0], k: 2, withPayload: true })).toBe(true);
    expect(valid(SearchBody, { vector: [1], k: 0 })).toBe(false);
    expect(valid(SearchBody, { vector: [1], k: 1, budget: { speed: 1 } })).toBe(false);
    const reply: SearchReplyType = { results: [[{ id: 1, score: 0.995, payload: { title: 'a' } }, { id: 'two', score: 0.0995 }]], params: null, mflops: 0.000008, expectedRecall: 1, budgetMet: null, planned: null, note: 'exact search over all 2 points: no index has been built yet', tookMs: 1.2 };
    expect(valid(SearchReply, reply)).toBe(true);
    expect(valid(SearchReply, { ...reply, budgetMet: true, planned: { mflops: 0.000008, recall: 1, latencyMs: null, k: null } })).toBe(true);
    expect(valid(SearchReply, { ...reply, planned: { mflops: 0.1 } })).toBe(false);
  });

  it('carry an adaptive probe margin in params both ways', () => {
    const params = { coarseDim: 16, nprobe: 64, scanDim: 64, shortlist: 100, rerankDim: 784, probeMargin: 0.0123456789 };
    expect(valid(SearchBody, { vector: [1], k: 1, params })).toBe(true);
    expect(valid(SearchBody, { vector: [1], k: 1, params: { nprobe: 8, probeMargin: 0 } })).toBe(true);
    expect(valid(SearchBody, { vector: [1], k: 1, params: { probeMargin: -0.1 } })).toBe(false);
    expect(valid(SearchBody, { vector: [1], k: 1, params: { probeMargin: '0.1' } })).toBe(false);
    const reply: SearchReplyType = { results: [[]], params, mflops: 0.5, expectedRecall: 0.9, budgetMet: null, planned: null, note: null, tookMs: 1 };
    expect(valid(SearchReply, reply)).toBe(true);
    expect(JSON.parse(JSON.stringify(reply)).params).toEqual(params);
  });
});
