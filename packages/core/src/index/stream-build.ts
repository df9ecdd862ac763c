import { join } from 'node:path';
import type { Backend } from '@adanns/compute';
import type { CalibrateOptions } from '../planner/calibrate.js';
import { parseSpec, type IndexSpec } from '../spec.js';
import { exactNeighboursOf } from '../eval/ground-truth.js';
import { autoTrialRows, isAutoSpec } from '../planner/auto.js';
import { AdannsIndex, type TrainOptions, type VectorReader } from './adanns-index.js';
import { heldOutRows, minTrainingRows, reusedFromTrial, sampleRowsExcept } from './training.js';

/** What a streaming build reads (structurally @adanns/datasets' VectorStream). */
export interface StreamSource {
  readonly rows: number;
  readonly dim: number;
  /** Rows [from, to) in order, at most `chunkRows` per chunk. */
  chunks(chunkRows: number, from?: number, to?: number): AsyncIterable<{ from: number; rows: number; data: Float32Array }>;
  /** The rows numbered by `indices` (strictly increasing), row-major. */
  readRows(indices: ArrayLike<number>): Promise<Float32Array>;
}

export interface StreamBuildOptions extends TrainOptions {
  /** Rows added per chunk (default 65,536). */
  chunkRows?: number;
  /** Training sample rows (default: what PCA, k-means and the codec sample, at least 32,768). */
  trainRows?: number;
  /**
   * Directory the index will be saved in: a disk re-rank store writes its rows
   * there (rerank.f32) as they are added, so saving copies nothing.
   */
  rerankDir?: string;
  /** Calibrate once built (ground truth from the index's full vectors, else read from the source). */
  calibrate?: boolean | CalibrateOptions;
}

/**
 * A build that never holds the data set: trains on a seeded sample read from
 * the source, then adds it chunk by chunk (ids = row numbers), so peak memory
 * is the index plus one chunk and the sample. Same stages and results as
 * AdannsIndex.build on the same rows but for the training sample.
 */
export async function buildFromStream(backend: Backend, spec: IndexSpec | string, source: StreamSource, options: StreamBuildOptions): Promise<AdannsIndex> {
  const given = options.calibrate === true ? {} : options.calibrate || undefined;
  const calibrationRows = (minTraining: number) => (given && !given.queries ? heldOutRows(source.rows, (options.seed ?? 1) + 303, given.sampleSize, minTraining) : new Int32Array(0));
  // spec "auto" is chosen on a seeded sample of the source (planner/auto.ts) before anything else is read; the sample
  // leaves out the calibration rows (the superset drawn with one training row: the spec fixes minTrainingRows), so
  // the training below may reuse what the trial fitted (chooseAuto's heldOut would number the sample's rows: none)
  const trial = isAutoSpec(spec) ? sampleRowsExcept(source.rows, autoTrialRows(source.rows), (options.seed ?? 1) + 211, calibrationRows(1)) : undefined;
  const choice = trial
    ? await AdannsIndex.chooseAuto(backend, await source.readRows(trial), trial.length, source.dim, { ...options, count: source.rows, heldOut: undefined }, {
        rows: source.rows,
        rowOf: (i) => trial[i],
        // the trial queries' exact neighbours over the whole source: one streamed pass
        neighbours: async (queries, count, k) => (await exactNeighboursOf(backend, source.chunks(options.chunkRows ?? 65_536), source.rows, queries, count, source.dim, options.metric, k)).ids,
        read: (ids) => source.readRows(ids),
      })
    : undefined;
  const parsed = choice ? parseSpec(choice.spec, source.dim) : typeof spec === 'string' ? parseSpec(spec, source.dim) : spec;
  const progress = options.onProgress ?? (() => {});
  const perCentroid = options.maxPointsPerCentroid ?? 256;
  const wanted = options.trainRows ?? Math.max(32_768, options.pcaSampleSize ?? 10_000, (parsed.coarse?.lists ?? 0) * perCentroid, options.pqTrainSize ?? 32_768);
  // calibration queries are drawn first and never read into the training sample (they are still added: they are data)
  const heldOut = calibrationRows(minTrainingRows(parsed, source.dim, source.rows));
  const picked = sampleRowsExcept(source.rows, Math.min(wanted, source.rows - heldOut.length), (options.seed ?? 1) + 101, heldOut);
  progress('sample', 0, picked.length);
  const sample = await source.readRows(picked);
  progress('sample', picked.length, picked.length);
  const rerankFile = options.rerankFile ?? (options.rerankDir && parsed.rerank && (parsed.rerank.storage ?? 'disk') === 'disk' ? join(options.rerankDir, 'rerank.f32') : undefined);
  // the stages sample the training sample: report their rows as source rows
  const onSample = options.onSample && ((stage: 'pca' | 'kmeans' | 'codec', rows: Int32Array) => options.onSample!(stage, rows.map((r) => picked[r])));
  const index = await AdannsIndex.train(backend, parsed, sample, picked.length, source.dim, { ...options, ...reusedFromTrial(parsed, choice?.trained, options), rerankFile, onSample, heldOut: undefined });
  if (choice) index.choice = { reason: choice.reason, shortlistMultiples: choice.shortlistMultiples };
  const chunkRows = options.chunkRows ?? 65_536;
  for await (const chunk of source.chunks(chunkRows)) {
    const ids = Float64Array.from({ length: chunk.rows }, (_, i) => chunk.from + i);
    await index.add(ids, chunk.data, chunk.rows);
    progress('add', chunk.from + chunk.rows, source.rows);
  }
  index.trim();
  if (given) {
    // slot i holds row i (ids are row numbers, added in order)
    const vectors: VectorReader | undefined = index.fullVectors()
      ? undefined
      : async (slots, out) => {
          const order = Int32Array.from(slots).sort();
          const rows = await source.readRows(order);
          const at = new Map<number, number>();
          order.forEach((slot, i) => at.set(slot, i));
          for (let i = 0; i < slots.length; i++) {
            const j = at.get(slots[i])!;
            out.set(rows.subarray(j * source.dim, (j + 1) * source.dim), i * source.dim);
          }
        };
    const held = heldOut.length > 0 ? { queries: await source.readRows(heldOut), queryRows: heldOut.length, queryIds: Float64Array.from(heldOut) } : {};
    await index.calibrate({ seed: options.seed ?? 1, vectors, ...held, ...given, onProgress: (done, total) => progress('calibrate', done, total) });
  }
  return index;
}
