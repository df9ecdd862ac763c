import { describe, expect, it } from 'vitest';
import { autoBuildReason, replicaCalibrationKs } from '../src/node.js';

const shard = (count: number, state = 'none', trainedCount: number | null = null) => ({ count, index: { state, trainedCount } });

describe('automatic builds of a cluster collection', () => {
  it('builds once the shards together reach the threshold, and only when every shard reported', () => {
    expect(autoBuildReason([shard(600), shard(500)], 1000, 2)).toBe('1100 points reached the automatic build threshold 1000');
    expect(autoBuildReason([shard(400), shard(500)], 1000, 2)).toBeUndefined();
    expect(autoBuildReason([shard(600), undefined], 1000, 2)).toBeUndefined();
    expect(autoBuildReason([shard(600), { count: 500 }], 1000, 2)).toBeUndefined();
    expect(autoBuildReason([shard(600), shard(500)], 0, 2)).toBeUndefined();
  });

  it('rebuilds when the collection grew or shrank by the factor since training, never while a shard builds', () => {
    expect(autoBuildReason([shard(1000, 'ready', 500), shard(1000, 'ready', 500)], 1000, 2)).toBe('the collection went from 1000 points at training to 2000');
    expect(autoBuildReason([shard(900, 'ready', 500), shard(1000, 'ready', 500)], 1000, 2)).toBeUndefined();
    expect(autoBuildReason([shard(200, 'ready', 500), shard(300, 'ready', 500)], 1000, 2)).toBe('the collection went from 1000 points at training to 500');
    expect(autoBuildReason([shard(1000, 'building', 500), shard(1000, 'ready', 500)], 1000, 2)).toBeUndefined();
    expect(autoBuildReason([shard(1000, 'ready', 500), shard(1000, 'ready', 500)], 1000, 0)).toBeUndefined();
    // one shard trained, the other not (its build failed): no rebuild of the trained one alone
    expect(autoBuildReason([shard(2000, 'ready', 500), shard(1000, 'exact')], 1000, 2)).toBeUndefined();
  });
});

describe('replica calibration ks', () => {
  it("adds each k's share per shard, which budgets at k are planned at on each shard", () => {
    const schema = { name: 'c', dim: 4, metric: 'l2' as const, dims: [4], createdAt: '' };
    expect(replicaCalibrationKs({ shards: 1, schema })).toEqual([1, 10, 100]);
    expect(replicaCalibrationKs({ shards: 2, schema })).toEqual([1, 5, 10, 50, 100]);
    expect(replicaCalibrationKs({ shards: 3, schema: { ...schema, calibrationK: [10] } })).toEqual([4, 10]);
    // at most 8 (the schema's limit): the collection's own ks are kept
    const many = replicaCalibrationKs({ shards: 7, schema: { ...schema, calibrationK: [10, 20, 30, 40, 50] } });
    expect(many).toHaveLength(8);
    expect(many).toEqual(expect.arrayContaining([10, 20, 30, 40, 50]));
  });
});
