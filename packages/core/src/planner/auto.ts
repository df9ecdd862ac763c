import { createRng, rowBlock, sampleIndices, type Backend, type Metric } from '@adanns/compute';
import { kmeans } from '../kmeans.js';
import { dimsLadder, normalizePrefixInPlace, slicePrefix } from '../prefixes.js';
import { PcaTransform } from '../transform/pca.js';

/**
 * `index: "auto"` (docs/ARCHITECTURE.md, "Calibration and planning"): the
 * build chosen for the data from its PCA spectrum and a small trial, so that
 * recall 0.99 stays reachable and the cheap end is as cheap as possible.
 *
 * The trial holds out a few hundred sampled vectors as queries and emulates
 * the index on a sample of the rest, with as many vectors per list as the
 * real index will have (lists scaled by sample / n): for each candidate d_c it
 * trains the k-means, for each candidate d_s it ranks the sample at that
 * prefix, and for every nprobe it finds the shortlist a re-rank at D needs
 * for a recall target (the rank of each true neighbour among the probed
 * vectors at d_s; a scan at D needs none). The cost model (cost.ts) prices
 * each candidate at the real size n (vectors scanned scaled by n / sample, a
 * shortlist's excess over k too, which errs towards longer prefixes), and the
 * candidate cheapest at recall 0.95 whose trial reaches 0.99 wins. An exact
 * flat scan competes at N x D.
 */
export const AUTO_SPEC = 'auto';

/** Whether a spec string asks for the automatic choice. */
export function isAutoSpec(spec: unknown): spec is 'auto' {
  return typeof spec === 'string' && spec.trim().toLowerCase() === AUTO_SPEC;
}

export interface AutoOptions {
  metric: Metric;
  /** Vectors the index will hold (default: the rows given). */
  count?: number;
  /** k of the recall targets (default 10). */
  k?: number;
  seed?: number;
  /** Sampled vectors the trial indexes (default 8,000). */
  sampleRows?: number;
  /** Held-out trial queries (default 200). */
  queries?: number;
  /** Prefix ladder the index may use (default dimsLadder(dim)). */
  dims?: readonly number[];
}

/** One candidate of the trial, priced at the real size. */
export interface AutoCandidate {
  coarseDim: number;
  scanDim: number;
  /** Predicted MFLOPs per query at recall 0.9, 0.95 and 0.99 (null: not reached in the trial). */
  mflops: { 0.9: number | null; 0.95: number | null; 0.99: number | null };
  /** Shortlist the re-rank needs at 0.99 (k without a re-rank). */
  shortlist99: number | null;
}

export interface AutoChoice {
  /** The chosen spec, a normal spec string. */
  spec: string;
  /** Why, in a sentence or two (build results, index info, the CLI). */
  reason: string;
  /** Share of the variance in the first d PCA components, for each prefix of the ladder. */
  spectrum: { dim: number; share: number }[];
  /** Shortlists (multiples of k) calibration should try beyond its own, when the trial needed longer ones. */
  shortlistMultiples: number[];
  candidates: AutoCandidate[];
}

const TARGETS = [0.9, 0.95, 0.99] as const;

/** About 4 sqrt(n) lists, at least 39 vectors each (k-means' minimum), as FAISS suggests. */
export function autoLists(n: number): number {
  return Math.max(1, Math.min(65536, Math.round(4 * Math.sqrt(n)), Math.floor(n / 39) || 1));
}

/** Rows a streaming build reads for the trial (its default sample and queries, with room). */
export const AUTO_TRIAL_ROWS = 10_000;

/** Below this many vectors an exact scan is cheap and always exact: no trial. */
const SMALL = 2000;

const fmt = (m: number | null) => (m === null ? 'unreached' : m.toPrecision(3));

/**
 * Chooses the build for `rows` x `dim` vectors (the data or a sample of it;
 * `count` is the size the index will have).
 */
export async function chooseAutoSpec(backend: Backend, data: Float32Array, rows: number, dim: number, options: AutoOptions): Promise<AutoChoice> {
  const { metric } = options;
  const n = options.count ?? rows;
  const k = options.k ?? 10;
  const ladder = options.dims ? [...options.dims] : dimsLadder(dim);
  if (ladder[ladder.length - 1] !== dim) ladder.push(dim);
  const exactMflops = (n * dim) / 1e6;
  const exact = (why: string): AutoChoice => ({ spec: 'flat', reason: why, spectrum: [], shortlistMultiples: [], candidates: [] });
  if (n < SMALL || rows < 4 * k + 20) {
    return exact(`${n} vectors: an exact scan (${exactMflops.toPrecision(3)} MFLOPs per query) is cheap and always exact`);
  }
  const rng = createRng((options.seed ?? 1) + 977);
  const queryCount = Math.max(20, Math.min(options.queries ?? 200, Math.floor(rows / 10)));
  const picked = sampleIndices(rows, Math.min(rows, queryCount + (options.sampleRows ?? 8000)), rng);
  const q = queryCount;
  const m = picked.length - q;
  const gather = (from: number, count: number) => {
    const out = new Float32Array(count * dim);
    for (let i = 0; i < count; i++) out.set(data.subarray(picked[from + i] * dim, (picked[from + i] + 1) * dim), i * dim);
    return out;
  };
  const rawQueries = gather(0, q);
  const rawBase = gather(q, m);

  // the spectrum, fitted on the trial's base sample only
  const pca = PcaTransform.fit(rawBase, m, dim, metric, { sampleSize: Math.min(m, 10_000), seed: options.seed ?? 1 });
  let total = 0;
  for (const v of pca.variances) total += v;
  const shareAt = (d: number) => {
    let s = 0;
    for (let i = 0; i < d; i++) s += pca.variances[i];
    return total > 0 ? s / total : d / dim;
  };
  const spectrum = ladder.map((d) => ({ dim: d, share: shareAt(d) }));
  const base = await pca.apply(backend, rawBase, m, dim);
  const queries = await pca.apply(backend, rawQueries, q, dim);
  const qBlock = rowBlock(queries, q, dim);
  const bBlock = rowBlock(base, m, dim);

  // exact neighbours at D (the rotation keeps every score)
  const scores = new Float32Array(q * m);
  await backend.score(qBlock, bBlock, dim, metric, scores);
  const truth = new Int32Array(q * k);
  for (let i = 0; i < q; i++) truth.set(topIndices(scores.subarray(i * m, (i + 1) * m), k), i * k);

  // per scan prefix: for each query, the sample vectors ranked at or above its worst true neighbour, best first
  const scanDims = ladder.filter((d) => d >= Math.min(16, dim));
  const ahead = new Map<number, Int32Array[]>();
  for (const ds of scanDims) {
    await backend.score(qBlock, bBlock, ds, metric, scores);
    const perQuery: Int32Array[] = [];
    for (let i = 0; i < q; i++) perQuery.push(rankedAhead(scores.subarray(i * m, (i + 1) * m), truth.subarray(i * k, (i + 1) * k)));
    ahead.set(ds, perQuery);
  }

  const lists = autoLists(n);
  const trialLists = Math.max(2, Math.round((lists * m) / n));
  const coarseDims = [...new Set([...ladder.filter((d) => d >= Math.min(16, dim) && d <= 128), dim])];
  const scale = n / m;
  const candidates: AutoCandidate[] = [];
  if (lists >= 2 && trialLists <= m / 4) {
    for (const dc of coarseDims) {
      // k-means at d_c on the sample, as training does (normalised prefixes, spherical for cosine and ip)
      const train = slicePrefix(base, m, dim, dc);
      if (metric === 'cosine') normalizePrefixInPlace(train, m, dc, dc);
      const { centroids } = await kmeans(backend, train, m, dc, trialLists, { seed: options.seed ?? 1, iterations: 10, spherical: metric !== 'l2' });
      const cBlock = rowBlock(centroids, trialLists, dc);
      const labels = new Int32Array(m);
      await backend.assign(rowBlock(base, m, dim), cBlock, dc, metric, labels, new Float32Array(m));
      const sizes = new Int32Array(trialLists);
      for (const l of labels) sizes[l]++;
      const centroidScores = new Float32Array(q * trialLists);
      await backend.score(qBlock, cBlock, dc, metric, centroidScores);
      const nprobes = steps(trialLists);
      // listRank[i * L + l]: position of list l in query i's centroid order
      const listRank = new Int32Array(q * trialLists);
      const scanned = new Float64Array(nprobes.length);
      for (let i = 0; i < q; i++) {
        const order = topIndices(centroidScores.subarray(i * trialLists, (i + 1) * trialLists), trialLists);
        let mass = 0;
        let b = 0;
        for (let r = 0; r < trialLists; r++) {
          listRank[i * trialLists + order[r]] = r;
          mass += sizes[order[r]];
          while (b < nprobes.length && nprobes[b] === r + 1) scanned[b++] += mass;
        }
      }
      // bucket of a list rank: the first nprobe index that probes it
      const bucketOf = new Int32Array(trialLists);
      for (let r = 0, b = 0; r < trialLists; r++) {
        while (nprobes[b] <= r) b++;
        bucketOf[r] = b;
      }
      for (const ds of scanDims) {
        // ranks[b]: for each true neighbour probed at nprobes[b], its rank among the probed vectors at d_s
        const ranks: number[][] = nprobes.map(() => []);
        const counts = new Int32Array(nprobes.length);
        for (let i = 0; i < q; i++) {
          const order = ahead.get(ds)![i];
          const rankOf = (j: number) => listRank[i * trialLists + labels[j]];
          for (let t = 0; t < k; t++) {
            const j = truth[i * k + t];
            counts.fill(0);
            for (let a = 0; a < order.length && order[a] !== j; a++) counts[bucketOf[rankOf(order[a])]]++;
            const own = bucketOf[rankOf(j)];
            let before = 0;
            for (let b = 0; b < nprobes.length; b++) {
              before += counts[b];
              if (b >= own) ranks[b].push(before);
            }
          }
        }
        const cand: AutoCandidate = { coarseDim: dc, scanDim: ds, mflops: { 0.9: null, 0.95: null, 0.99: null }, shortlist99: null };
        for (const target of TARGETS) {
          const need = Math.ceil(target * q * k);
          let best: { mflops: number; shortlist: number } | null = null;
          for (let b = 0; b < nprobes.length; b++) {
            const sorted = Float64Array.from(ranks[b]).sort();
            if (sorted.length < need) continue;
            const rerank = ds < dim;
            // a scan at D keeps the top k; a shorter prefix re-ranks a shortlist reaching the target's rank
            if (!rerank && sorted[need - 1] >= k) continue;
            const trialShortlist = Math.max(k, sorted[need - 1] + 1);
            const shortlist = rerank ? Math.ceil(k + (trialShortlist - k) * Math.max(1, scale)) : k;
            const vectors = (scanned[b] / q) * Math.max(1, scale);
            const rotates = dc < dim || ds < dim;
            const flops = (rotates ? dim * Math.max(dc, ds) : 0) + lists * dc + vectors * ds + (rerank ? Math.min(shortlist, vectors) * dim * (metric === 'cosine' ? 2 : 1) : 0);
            if (!best || flops / 1e6 < best.mflops) best = { mflops: flops / 1e6, shortlist };
          }
          cand.mflops[target] = best?.mflops ?? null;
          if (target === 0.99) cand.shortlist99 = best?.shortlist ?? null;
        }
        candidates.push(cand);
      }
    }
  }

  const reachable = candidates.filter((c) => c.mflops[0.99] !== null && c.mflops[0.95] !== null);
  reachable.sort((a, b) => a.mflops[0.95]! - b.mflops[0.95]! || a.mflops[0.99]! - b.mflops[0.99]!);
  const chosen = reachable[0];
  const firstHalf = spectrum.find((s) => s.share >= 0.5)?.dim ?? dim;
  const shape = `the first ${firstHalf} of ${dim} PCA components hold half the variance (${firstHalf <= dim / 8 ? 'a decaying, Matryoshka-like spectrum' : firstHalf >= dim / 3 ? 'a flat spectrum' : 'a moderately decaying spectrum'})`;
  const trial = `trial: ${q} held-out queries against ${m} sampled vectors`;
  if (!chosen || chosen.mflops[0.95]! >= exactMflops) {
    return { spec: 'flat', reason: `${shape}; ${trial}: no IVF build beat an exact scan (${exactMflops.toPrecision(3)} MFLOPs) at recall@${k} 0.95`, spectrum, shortlistMultiples: [], candidates };
  }
  const { coarseDim: dc, scanDim: ds } = chosen;
  const spec = `${dc < dim || ds < dim ? 'pca,' : ''}ivf${lists}@${dc},flat@${ds}${ds < dim ? `,rerank@${dim}` : ''}`;
  const rival = (pred: (c: AutoCandidate) => boolean) => reachable.filter(pred)[0];
  const rigid = rival((c) => c.scanDim === dim && c.coarseDim === dim);
  const prefixBest = rival((c) => c.scanDim < dim);
  const compare = [chosen !== rigid && rigid ? `rigid IVF-Flat (d_c = d_s = ${dim}) ${fmt(rigid.mflops[0.95])}` : '', chosen !== prefixBest && prefixBest ? `the best prefix scan (d_c = ${prefixBest.coarseDim}, d_s = ${prefixBest.scanDim}, re-rank at ${dim}) ${fmt(prefixBest.mflops[0.95])}` : ''].filter(Boolean);
  const scanWhat = ds < dim ? `scanning at d_s = ${ds} and re-ranking at ${dim} (shortlist about ${chosen.shortlist99} for 0.99)` : `scanning at d_s = ${dim} with no re-rank (rigid-like)`;
  const reason = `${shape}; ${trial}, ${lists} lists (about 4 sqrt n): clustering at d_c = ${dc} and ${scanWhat} is predicted cheapest at recall@${k} 0.95: ${fmt(chosen.mflops[0.95])} MFLOPs per query (0.9: ${fmt(chosen.mflops[0.9])}, 0.99: ${fmt(chosen.mflops[0.99])})${compare.length ? `, against ${compare.join(' and ')}` : ''}; an exact scan costs ${exactMflops.toPrecision(3)}`;
  const multiple = chosen.shortlist99 !== null && ds < dim ? Math.ceil(chosen.shortlist99 / k) : 0;
  return { spec, reason, spectrum, shortlistMultiples: multiple > 20 ? [multiple, 2 * multiple] : [], candidates };
}

/** nprobe values of the trial: 1, 2, 3, then about x1.25 per step up to max (fine enough that the cheapest reaching a target is not overshot by much). */
function steps(max: number): number[] {
  const out: number[] = [];
  for (let v = 1; v < max; v = Math.max(v + 1, Math.round(v * 1.25))) out.push(v);
  out.push(max);
  return out;
}

/** Indices of the `count` largest scores, best first (ties: lower index). */
function topIndices(scores: Float32Array, count: number): Int32Array {
  const order = Int32Array.from({ length: scores.length }, (_, i) => i);
  order.sort((a, b) => scores[b] - scores[a] || a - b);
  return order.slice(0, count);
}

/**
 * The vectors ranked at or above the lowest-ranked true neighbour, best first
 * (ties: lower index): all a true neighbour's rank among any subset depends on.
 */
function rankedAhead(scores: Float32Array, truth: Int32Array): Int32Array {
  let worst = Infinity;
  let worstId = -1;
  for (const j of truth) {
    if (scores[j] < worst || (scores[j] === worst && j > worstId)) {
      worst = scores[j];
      worstId = j;
    }
  }
  const out: number[] = [];
  for (let i = 0; i < scores.length; i++) if (scores[i] > worst || (scores[i] === worst && i <= worstId)) out.push(i);
  out.sort((a, b) => scores[b] - scores[a] || a - b);
  return Int32Array.from(out);
}
