import { createRng, gatherRows, rowBlock, sampleIndices, type Backend, type Metric } from '@adanns/compute';
import { queryMflops } from '../cost.js';
import { exactNeighbours } from '../eval/ground-truth.js';
import { sampleRowsExcept } from '../index/training.js';
import { kmeans, labelledMeans } from '../kmeans.js';
import { dimsLadder, normalizePrefixInPlace, slicePrefix } from '../prefixes.js';
import type { RerankStorage } from '../spec.js';
import { PcaTransform } from '../transform/pca.js';

/**
 * `index: "auto"` (docs/ARCHITECTURE.md, "Calibration and planning"): the
 * build chosen for the data from its PCA spectrum and a small trial, so that
 * recall 0.99 stays reachable and the cheap end is as cheap as possible.
 *
 * The trial holds out a few hundred sampled vectors as queries and finds
 * their exact neighbours among all n vectors (a sample's own neighbours lie
 * much farther out, which makes every index look harder than it is); a random
 * sample of the rest stands for everything else, each sampled vector counting
 * n / sample times. For each candidate d_c it trains k-means with the real
 * list count on 39 sampled vectors a list (so coverage per nprobe is the real
 * index's; the widest d_c tried whatever the trial finds first, a narrower one
 * from its centroids cut to that prefix) and ranks the centroids per query; for each candidate d_s it scores the neighbours and the sample at
 * that prefix. For every nprobe the estimated rank of each true neighbour
 * among the probed vectors at d_s is then a weighted count, and the shortlist
 * a re-rank at D needs for a target is the rank its quantile reaches (a scan at
 * D needs none). A build with flat@d_s lists also serves funnel plans: a scan
 * at a shorter prefix p (one calibration measures on it), a stage rescoring
 * its shortlist S at d_s from the lists and keeping K for the re-rank at D;
 * S and K come from each neighbour's ranks at p and at d_s (the cheapest pair
 * keeping the target's share of neighbours). The cost model (cost.ts) prices
 * each candidate at the real size n, and the candidate cheapest at recall
 * 0.95 whose trial reaches 0.99 wins (its build: d_s is the funnel stage's
 * prefix); an exact flat scan competes at n x D.
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
  /** Sampled vectors standing for the whole set in the trial's ranks (default 8,000). */
  sampleRows?: number;
  /** Held-out trial queries (default 200). */
  queries?: number;
  /** Prefix ladder the index may use (default dimsLadder(dim)). */
  dims?: readonly number[];
  /** Where a chosen re-rank keeps its vectors (spec rerank@D[:storage]; default disk). */
  rerankStorage?: RerankStorage;
  /**
   * Rows the trial never samples (increasing): the build's held-out
   * calibration rows, so that what the trial fits (AutoChoice.trained) is fit
   * for the build to reuse.
   */
  excluded?: Int32Array;
}

/**
 * What the trial fitted that the build of its spec reuses (reusedFromTrial in
 * index/training.ts): its k-means centroids at the chosen d_c when it trained
 * at the spec's list count, and the PCA they live in (the build maps them
 * into its own fit and starts its k-means from them).
 */
export interface AutoTrained {
  pca: PcaTransform;
  /**
   * lists x dim centroids in `pca`'s space (unit rows for cosine and ip, as spherical k-means leaves them), after
   * `iterations` Lloyd iterations on the trial's sample (a narrower d_c's count the anchor's it started from).
   */
  coarse?: { lists: number; dim: number; centroids: Float32Array; iterations: number };
}

/** One candidate of the trial, priced at the real size. */
export interface AutoCandidate {
  coarseDim: number;
  scanDim: number;
  /** Predicted MFLOPs per query at recall 0.9, 0.95 and 0.99 (null: not reached in the trial). */
  mflops: { 0.9: number | null; 0.95: number | null; 0.99: number | null };
  /** Shortlist the re-rank needs at 0.99 (k without a re-rank); a funnel plan's scan shortlist. */
  shortlist99: number | null;
  /**
   * A funnel plan on the build with flat@scanDim lists: the scan runs at this
   * shorter prefix and a funnel stage rescores its shortlist at scanDim from
   * the lists, keeping fewer for the re-rank at D. Absent: the scan runs at scanDim.
   */
  funnelScanDim?: number;
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
  /** The candidate chosen (one of `candidates`; absent when an exact scan won): what `bench:auto --compare` holds against the measured plans. */
  chosen?: AutoCandidate;
  /** What the build of `spec` reuses from the trial (absent when an exact scan won). */
  trained?: AutoTrained;
}

const TARGETS = [0.9, 0.95, 0.99] as const;

/** About 4 sqrt(n) lists, at least 39 vectors each (k-means' minimum), as FAISS suggests. */
export function autoLists(n: number): number {
  return Math.max(1, Math.min(65536, Math.round(4 * Math.sqrt(n)), Math.floor(n / 39) || 1));
}

/** Vectors a trial list is trained on (FAISS's minimum per centroid). */
const PER_LIST = 39;
/** At most this many sampled vectors train the trial's k-means (lists beyond it get coarser). */
const MAX_KMEANS_ROWS = 60_000;

/** Rows the trial samples for n vectors: its queries, then enough to train the real list count (autoLists) at PER_LIST each. */
export function autoTrialRows(n: number, queries = 200, sample = 8000): number {
  return Math.min(n, queries + Math.min(MAX_KMEANS_ROWS, Math.max(sample, PER_LIST * autoLists(n))));
}

/** Lloyd iterations of the trial's k-means from random seeds, and from the anchor's centroids (chooseAutoSpec). */
const COLD_ITERATIONS = 6;
const WARM_ITERATIONS = 2;

/** Widest coarse prefix d_c the trial tries (the trial's k-means cost grows with it). */
const MAX_COARSE_DIM = 256;
/** Coarse prefixes up to this one are always tried; wider ones while widening pays. */
const WIDEN_FROM = 64;

/**
 * A wider d_c is tried while the d_c before it is within this factor of the
 * cheapest candidate at 0.95: the trial's predictions carry a few per cent
 * of sampling noise, so a near tie is no verdict against widening (on the
 * 512-d stand-in one seed put 32 at 0.589 MFLOPs against 64's 0.593 and
 * never tried 128, which came out cheaper in the other seed).
 */
const WIDEN_TOLERANCE = 1.05;

/** Whether the trial goes on to the d_c after `previous`: previous's best candidate is (nearly) the cheapest so far. */
export function widensPast(candidates: readonly AutoCandidate[], previous: number): boolean {
  const ranked = rankReachable(candidates);
  const atPrevious = ranked.find((c) => c.coarseDim === previous);
  return atPrevious !== undefined && atPrevious.mflops[0.95]! <= WIDEN_TOLERANCE * ranked[0].mflops[0.95]!;
}

/** The candidates that reach recall 0.99, as the choice ranks them: cheapest at 0.95 first, then at 0.99. */
function rankReachable(candidates: readonly AutoCandidate[]): AutoCandidate[] {
  const reachable = candidates.filter((c) => c.mflops[0.99] !== null && c.mflops[0.95] !== null);
  return reachable.sort((a, b) => a.mflops[0.95]! - b.mflops[0.95]! || a.mflops[0.99]! - b.mflops[0.99]!);
}

/** Below this many vectors an exact scan is cheap and always exact: no trial. */
const SMALL = 2000;

const fmt = (m: number | null) => (m === null ? 'unreached' : m.toPrecision(3));

/**
 * The whole data set, when the rows given to chooseAutoSpec are a sample of
 * it (a streaming build): exact neighbours of the trial queries over all of
 * it, and its rows by number.
 */
export interface WholeData {
  rows: number;
  /** Row of the whole set that row i of the sample is. */
  rowOf(i: number): number;
  /** queries x k row numbers of the exact k nearest rows, best first. */
  neighbours(queries: Float32Array, count: number, k: number): Promise<Int32Array>;
  /** The rows numbered by `ids` (strictly increasing), row-major. */
  read(ids: Int32Array): Promise<Float32Array>;
}

/**
 * The trial's rows from `picked` (increasing): q queries and the rows
 * training its k-means, the first m of them the sample standing for the
 * rest, each drawn uniformly from all of `picked` (its first rows would all
 * lie near the start of the data, a biased trial where rows are ordered, by
 * source or by time). Both parts increasing, the sample and the others each.
 */
export function splitTrialRows(picked: Int32Array, q: number, m: number, seed: number): { queries: Int32Array; training: Int32Array } {
  const rng = createRng(seed);
  const isQuery = new Uint8Array(picked.length);
  for (const i of sampleIndices(picked.length, q, rng)) isQuery[i] = 1;
  const others = picked.filter((_, i) => !isQuery[i]);
  const inSample = new Uint8Array(others.length);
  for (const i of sampleIndices(others.length, m, rng)) inSample[i] = 1;
  const training = new Int32Array(others.length);
  let at = 0;
  for (let i = 0; i < others.length; i++) if (inSample[i]) training[at++] = others[i];
  for (let i = 0; i < others.length; i++) if (!inSample[i]) training[at++] = others[i];
  return { queries: picked.filter((_, i) => isQuery[i] === 1), training };
}

/**
 * Chooses the build for `rows` x `dim` vectors (the data, or a sample of it
 * with `whole` describing the rest; `count` is the size the index will have).
 */
export async function chooseAutoSpec(backend: Backend, data: Float32Array, rows: number, dim: number, options: AutoOptions & { whole?: WholeData }): Promise<AutoChoice> {
  const { metric } = options;
  const n = options.count ?? options.whole?.rows ?? rows;
  const k = options.k ?? 10;
  const ladder = options.dims ? [...options.dims] : dimsLadder(dim);
  if (ladder[ladder.length - 1] !== dim) ladder.push(dim);
  const exactMflops = (n * dim) / 1e6;
  const exact = (why: string): AutoChoice => ({ spec: 'flat', reason: why, spectrum: [], shortlistMultiples: [], candidates: [] });
  if (n < SMALL || rows < 4 * k + 20) {
    return exact(`${n} vectors: an exact scan (${exactMflops.toPrecision(3)} MFLOPs per query) is cheap and always exact`);
  }
  const whole: WholeData = options.whole ?? {
    rows,
    rowOf: (i) => i,
    neighbours: async (queries, count, kk) => (await exactNeighbours(backend, data, rows, queries, count, dim, metric, kk)).ids,
    read: async (ids) => gatherRows(data, dim, ids),
  };
  const q = Math.max(20, Math.min(options.queries ?? 200, Math.floor(rows / 10)));
  // the queries, then the sample standing for the rest (the first m), all of it training the trial's k-means
  const picked = sampleRowsExcept(rows, Math.min(rows, autoTrialRows(n, q, options.sampleRows ?? 8000)), (options.seed ?? 1) + 977, options.excluded);
  const kmRows = picked.length - q;
  const m = Math.min(kmRows, options.sampleRows ?? 8000);
  const trialRows = splitTrialRows(picked, q, m, (options.seed ?? 1) + 978);
  const rawQueries = gatherRows(data, dim, trialRows.queries);
  const rawTraining = gatherRows(data, dim, trialRows.training);
  // the sample standing for the rest is the k-means sample's first m rows
  const rawBase = rawTraining.subarray(0, m * dim);
  const sampleRows = Int32Array.from(trialRows.training, (i) => whole.rowOf(i));

  // the true neighbours over the whole set (a sample's own k-NN lie much farther out), the query itself left out
  const queryRows = Array.from(trialRows.queries, (i) => whole.rowOf(i));
  const found = await whole.neighbours(rawQueries, q, k + 1);
  const truthRows = new Int32Array(q * k);
  for (let i = 0; i < q; i++) {
    let w = 0;
    for (let t = 0; t <= k && w < k; t++) if (found[i * (k + 1) + t] !== queryRows[i]) truthRows[i * k + w++] = found[i * (k + 1) + t];
  }
  const unique = Int32Array.from(new Set(truthRows)).sort();
  const rawTruth = await whole.read(unique);
  const truthAt = new Map<number, number>();
  unique.forEach((r, i) => truthAt.set(r, i));
  const truth = Int32Array.from(truthRows, (r) => truthAt.get(r)!);
  const t = unique.length;
  // the sample stands for the whole set less the queries' neighbours: each sampled vector counts this many
  const weight = Math.max(1, (n - 1 - k) / m);

  // the spectrum, fitted on the trial's random sample only
  // 5,000 rows estimate the spectrum and the rotation well enough for the trial (the build fits its own: reused,
  // this fit cost 0.2-0.8 points of recall@10 at nprobe 16 on the 512-d stand-in, three seeds; reusedFromTrial)
  const pca = PcaTransform.fit(rawBase, m, dim, metric, { sampleSize: Math.min(m, 5000), seed: options.seed ?? 1 });
  const spectrum = pca.varianceShare(ladder);
  const base = await pca.apply(backend, rawBase, m, dim);
  const queries = await pca.apply(backend, rawQueries, q, dim);
  const neighbours = await pca.apply(backend, rawTruth, t, dim);
  // candidate d_c: prefixes up to MAX_COARSE_DIM, and the full dimension when clustering there is not out of
  // proportion (rigid-like); k-means reads prefixes up to the largest only. On a high-D set whose clusters
  // show only in a wider prefix (a flat-ish spectrum), clustering at 128 or 256 probes a few lists where 64
  // needs ten times as many; the trial prices both
  const coarseDims = [...new Set([...ladder.filter((d) => d >= Math.min(16, dim) && d <= MAX_COARSE_DIM), ...(dim <= MAX_COARSE_DIM ? [dim] : [])])];
  // the widest d_c tried whatever the trial finds: its k-means runs first and narrower ones start from it (below)
  const anchor = Math.max(...coarseDims.filter((d) => d <= WIDEN_FROM || d === dim));
  const qBlock = rowBlock(queries, q, dim);

  // per scan prefix d_s, per query: its neighbours' scores, and the sampled vectors scoring above the worst of them, best first
  const scanDims = ladder.filter((d) => d >= Math.min(16, dim));
  const sampleScores = new Float32Array(q * m);
  const truthScores = new Float32Array(q * t);
  const ahead = new Map<number, { own: Float32Array; rivals: Int32Array[]; rivalScores: Float32Array[] }>();
  for (const ds of scanDims) {
    await backend.score(qBlock, rowBlock(base, m, dim), ds, metric, sampleScores);
    await backend.score(qBlock, rowBlock(neighbours, t, dim), ds, metric, truthScores);
    const own = new Float32Array(q * k);
    const rivals: Int32Array[] = [];
    const rivalScores: Float32Array[] = [];
    for (let i = 0; i < q; i++) {
      let worst = Infinity;
      for (let j = 0; j < k; j++) {
        own[i * k + j] = truthScores[i * t + truth[i * k + j]];
        worst = Math.min(worst, own[i * k + j]);
      }
      const row = sampleScores.subarray(i * m, (i + 1) * m);
      const mine = new Set(truthRows.subarray(i * k, (i + 1) * k));
      const above: number[] = [];
      // a sampled vector that is one of the query's neighbours counts as that neighbour, not as a rival
      for (let j = 0; j < m; j++) if (row[j] > worst && !mine.has(sampleRows[j])) above.push(j);
      above.sort((a, b) => row[b] - row[a] || a - b);
      rivals.push(Int32Array.from(above));
      rivalScores.push(Float32Array.from(above, (j) => row[j]));
    }
    ahead.set(ds, { own, rivals, rivalScores });
  }

  const lists = autoLists(n);
  // the real list count when the sample trains it (PER_LIST vectors a list), else the finest the sample supports:
  // coverage at a given scanned fraction depends on how fine the lists are
  const trialLists = Math.max(2, Math.min(lists, Math.floor(kmRows / PER_LIST)));
  // the k-means sample rotated to the anchor, and to the widest d_c only once widening is tried (rotating 38,000
  // Fashion-MNIST rows to 256 instead of 64 costs about a second, and widening does not pay there)
  let rotated: { width: number; rows: Float32Array } | undefined;
  /** The k-means sample at prefix dc as training sees it (normalised prefixes for cosine). */
  const trainingAt = async (dc: number): Promise<Float32Array> => {
    if (!rotated || rotated.width < dc) {
      const width = dc <= anchor ? anchor : Math.max(...coarseDims);
      rotated = { width, rows: await pca.apply(backend, rawTraining, kmRows, width) };
    }
    const train = slicePrefix(rotated.rows, kmRows, rotated.width, dc);
    if (metric === 'cosine') normalizePrefixInPlace(train, kmRows, dc, dc);
    return train;
  };
  // k-means at d_c on the sample, as training does (spherical for cosine and ip)
  const trialKmeans = async (dc: number, start?: Float32Array): Promise<Float32Array> => {
    const iterations = start ? WARM_ITERATIONS : COLD_ITERATIONS;
    return (await kmeans(backend, await trainingAt(dc), kmRows, dc, trialLists, { seed: options.seed ?? 1, iterations, init: 'random', initialCentroids: start, maxPointsPerCentroid: PER_LIST, spherical: metric !== 'l2' })).centroids;
  };
  /**
   * A wider d_c's start: the means at dc of the clusters that the narrower
   * d_c's centroids make of the sample (one assignment at the narrower
   * prefix, one centroid sum); a cluster left empty keeps the narrower
   * centroid, zero-padded.
   */
  const widenedStart = async (narrow: number, centroids: Float32Array, dc: number): Promise<Float32Array> => {
    const labels = new Int32Array(kmRows);
    await backend.assign(rowBlock(await trainingAt(narrow), kmRows, narrow), rowBlock(centroids, trialLists, narrow), narrow, metric === 'l2' ? 'l2' : 'ip', labels, new Float32Array(kmRows));
    // a cluster the narrow labels leave empty starts from its narrow centroid, zero-padded
    const start = new Float32Array(trialLists * dc);
    for (let c = 0; c < trialLists; c++) start.set(centroids.subarray(c * narrow, (c + 1) * narrow), c * dc);
    await labelledMeans(backend, rowBlock(await trainingAt(dc), kmRows, dc), dc, labels, trialLists, start);
    return start;
  };
  let anchorCentroids: Float32Array | undefined;
  // each d_c's centroids: the chosen d_c's start the build's k-means when the trial trained at its list count
  const trialCentroids = new Map<number, { centroids: Float32Array; iterations: number }>();
  const candidates: AutoCandidate[] = [];
  if (lists >= 2) {
    for (const [i, dc] of coarseDims.entries()) {
      // a prefix wider than WIDEN_FROM (below D) is tried only while widening pays: when the d_c before it
      // holds the cheapest candidate at 0.95 so far, or nearly (k-means at 256 costs four times the one at 64)
      if (dc > WIDEN_FROM && dc < dim && !widensPast(candidates, coarseDims[i - 1])) continue;
      // PCA prefixes nest, so the anchor's centroids cut to a narrower d_c already cluster it well: two Lloyd
      // iterations from them predict about as well as six from random seeds (within 2% at 0.95 on Fashion-MNIST,
      // cheaper on the 100-d and 512-d stand-ins). A wider d_c starts from the narrower one's clusters, their
      // means taken at the wider prefix (widenedStart), for two iterations: on the 512-d stand-in (two seeds)
      // that predicts within 1-3% at 0.95 of six iterations from random seeds, and the trial takes 30 s instead
      // of 42-47 (its k-means at 128 and 256 were three quarters of it). The narrower centroids' prefixes
      // themselves, zero-padded, were a poor start (128 from 64's: 0.73 MFLOPs at 0.95 where cold predicted 0.48)
      anchorCentroids ??= await trialKmeans(anchor);
      const narrower = trialCentroids.get(coarseDims[i - 1]);
      const start = dc < anchor ? slicePrefix(anchorCentroids, trialLists, anchor, dc) : dc > anchor && narrower ? await widenedStart(coarseDims[i - 1], narrower.centroids, dc) : undefined;
      const centroids = dc === anchor ? anchorCentroids : await trialKmeans(dc, start);
      // Lloyd iterations the build's k-means credits (AutoTrained): a narrower d_c's start counts the anchor's too;
      // a wider one's as many as a cold start's, whose predictions its own match (above)
      trialCentroids.set(dc, { centroids, iterations: dc < anchor ? COLD_ITERATIONS + WARM_ITERATIONS : COLD_ITERATIONS });
      const cBlock = rowBlock(centroids, trialLists, dc);
      const labels = new Int32Array(m);
      await backend.assign(rowBlock(base, m, dim), cBlock, dc, metric, labels, new Float32Array(m));
      const truthLabels = new Int32Array(t);
      await backend.assign(rowBlock(neighbours, t, dim), cBlock, dc, metric, truthLabels, new Float32Array(t));
      const sizes = new Int32Array(trialLists);
      for (const l of labels) sizes[l]++;
      const centroidScores = new Float32Array(q * trialLists);
      await backend.score(qBlock, cBlock, dc, metric, centroidScores);
      const nprobes = steps(trialLists);
      // listRank[i * L + l]: position of list l in query i's centroid order; scanned[b]: sampled vectors probed at nprobes[b], over the queries
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
      const counts = new Float64Array(nprobes.length);
      // rankAt(ds)[b * per + i * k + a]: the estimated rank of query i's neighbour a among the vectors probed at
      // nprobes[b], scored at d_s (Infinity when its list is not probed there)
      const per = q * k;
      const rankAt = new Map<number, Float64Array>();
      for (const ds of scanDims) {
        const { own, rivals, rivalScores } = ahead.get(ds)!;
        const ranks = new Float64Array(nprobes.length * per).fill(Infinity);
        for (let i = 0; i < q; i++) {
          const rank = (row: number) => listRank[i * trialLists + row];
          for (let a = 0; a < k; a++) {
            const s = own[i * k + a];
            counts.fill(0);
            // the query's other neighbours above it count once, sampled vectors above it `weight` times
            for (let c = 0; c < k; c++) if (own[i * k + c] > s || (own[i * k + c] === s && c < a)) counts[bucketOf[rank(truthLabels[truth[i * k + c]])]]++;
            const r = rivals[i];
            const rs = rivalScores[i];
            // rivals strictly above (beyond float rounding: at D the neighbours are exact, in another space's rounding)
            const above = s + 1e-6 * Math.abs(s);
            for (let j = 0; j < r.length && rs[j] > above; j++) counts[bucketOf[rank(labels[r[j]])]] += weight;
            const mine = bucketOf[rank(truthLabels[truth[i * k + a]])];
            let before = 0;
            for (let b = 0; b < nprobes.length; b++) {
              before += counts[b];
              if (b >= mine) ranks[b * per + i * k + a] = before;
            }
          }
        }
        rankAt.set(ds, ranks);
      }
      // the candidate spec's terms in the cost model (cost.ts): float32 lists keep their norms at d_s (a funnel
      // stage reading them costs one multiply-add per value), and a re-rank at D gathers its rows (cosine: their
      // norms too) unless they are resident float32 rows, which keep theirs
      const price = (scanDim: number, vectors: number, reranked: number, stage?: { dim: number; rescored: number }) =>
        queryMflops({
          fullDim: dim,
          rotatedDims: dc < dim || scanDim < dim ? Math.max(dc, scanDim, stage?.dim ?? 0) : 0,
          lists,
          coarseDim: dc,
          scanned: vectors,
          scanDim,
          codeBytes: 0,
          quantizerFlops: 0,
          reranked,
          rerankDim: dim,
          rerankFlopsPerValue: metric === 'cosine' && options.rerankStorage !== 'f32' ? 2 : 1,
          funnel: stage ? [{ dim: stage.dim, rescored: stage.rescored, flopsPerValue: 1 }] : [],
        });
      for (const ds of scanDims) {
        const ranks = rankAt.get(ds)!;
        const cand: AutoCandidate = { coarseDim: dc, scanDim: ds, mflops: { 0.9: null, 0.95: null, 0.99: null }, shortlist99: null };
        for (const target of TARGETS) {
          const need = Math.ceil(target * q * k);
          let best: { mflops: number; shortlist: number } | null = null;
          for (let b = 0; b < nprobes.length; b++) {
            const probed = ranks.subarray(b * per, (b + 1) * per).filter((r) => r !== Infinity);
            if (probed.length < need) continue;
            const sorted = probed.sort();
            const rerank = ds < dim;
            // a scan at D keeps the top k; a shorter prefix re-ranks a shortlist reaching the target's rank
            if (!rerank && sorted[need - 1] >= k) continue;
            const vectors = (scanned[b] / q / m) * n;
            const shortlist = rerank ? Math.min(Math.max(k, Math.ceil(sorted[need - 1] + 1)), Math.ceil(vectors)) : k;
            const mflops = price(ds, vectors, rerank ? shortlist : 0);
            if (!best || mflops < best.mflops) best = { mflops, shortlist };
          }
          cand.mflops[target] = best?.mflops ?? null;
          if (target === 0.99) cand.shortlist99 = best?.shortlist ?? null;
        }
        candidates.push(cand);
        // funnel plans on a build with flat@ds lists: the scan at a shorter prefix p hands a shortlist S to a stage
        // rescoring it at d_s from the lists, which keeps K for the re-rank at D (a neighbour survives when its
        // rank at p is below S and its rank at d_s below K; its rank at d_s among all probed vectors bounds the
        // one among the S candidates, so K is conservative)
        if (ds >= dim) continue;
        // scan prefixes calibration measures on this build (calibrationGrid: the three largest of its ladder)
        const calibrated = dimsLadder(ds).slice(-3);
        // per nprobe, the probed neighbours by rank at d_s (shared by every scan prefix and target)
        const byRank = nprobes.map((_, b) => probedByRank(ranks.subarray(b * per, (b + 1) * per)));
        for (const p of scanDims.filter((d) => d < ds && calibrated.includes(d))) {
          const from = rankAt.get(p)!;
          const funnel: AutoCandidate = { coarseDim: dc, scanDim: ds, funnelScanDim: p, mflops: { 0.9: null, 0.95: null, 0.99: null }, shortlist99: null };
          for (const target of TARGETS) {
            const need = Math.ceil(target * q * k);
            let best: { mflops: number; shortlist: number } | null = null;
            for (let b = 0; b < nprobes.length; b++) {
              const vectors = (scanned[b] / q / m) * n;
              const found = cheapestFunnel({
                keepRanks: ranks.subarray(b * per, (b + 1) * per),
                scanRanks: from.subarray(b * per, (b + 1) * per),
                order: byRank[b],
                need,
                k,
                vectors,
                price: (keep, shortlist) => price(p, vectors, keep, { dim: ds, rescored: shortlist }),
              });
              if (found && (!best || found.mflops < best.mflops)) best = found;
            }
            funnel.mflops[target] = best?.mflops ?? null;
            if (target === 0.99) funnel.shortlist99 = best?.shortlist ?? null;
          }
          candidates.push(funnel);
        }
      }
    }
  }

  const reachable = rankReachable(candidates);
  const chosen = reachable[0];
  const firstHalf = spectrum.find((x) => x.share >= 0.5)?.dim ?? dim;
  const shape = `the first ${firstHalf} of ${dim} PCA components hold half the variance (${firstHalf <= dim / 8 ? 'a decaying, Matryoshka-like spectrum' : firstHalf >= dim / 3 ? 'a flat spectrum' : 'a moderately decaying spectrum'})`;
  const trial = `trial: ${q} held-out queries, their exact neighbours among all ${n} vectors, ${m} sampled vectors for the rest`;
  if (!chosen || chosen.mflops[0.95]! >= exactMflops) {
    return { spec: 'flat', reason: `${shape}; ${trial}: no IVF build beat an exact scan (${exactMflops.toPrecision(3)} MFLOPs) at recall@${k} 0.95`, spectrum, shortlistMultiples: [], candidates };
  }
  const { coarseDim: dc, scanDim: ds } = chosen;
  const storage = options.rerankStorage && options.rerankStorage !== 'disk' ? `:${options.rerankStorage}` : '';
  const spec = `${dc < dim || ds < dim ? 'pca,' : ''}ivf${lists}@${dc},flat@${ds}${ds < dim ? `,rerank@${dim}${storage}` : ''}`;
  const rival = (pred: (c: AutoCandidate) => boolean) => reachable.filter(pred)[0];
  const rigid = rival((c) => c.scanDim === dim && c.coarseDim === dim);
  const prefixBest = rival((c) => c.scanDim < dim && c.funnelScanDim === undefined);
  // a wide d_c says what clustering at a short prefix would have cost (it probes a larger share of the data)
  const narrow = chosen.coarseDim > WIDEN_FROM ? rival((c) => c.coarseDim <= WIDEN_FROM) : undefined;
  const compare = [
    chosen !== rigid && rigid ? `rigid IVF-Flat (d_c = d_s = ${dim}) ${fmt(rigid.mflops[0.95])}` : '',
    chosen !== prefixBest && prefixBest ? `the best prefix scan without a funnel (d_c = ${prefixBest.coarseDim}, d_s = ${prefixBest.scanDim}, re-rank at ${dim}) ${fmt(prefixBest.mflops[0.95])}` : '',
    narrow ? `the best clustering at d_c <= ${WIDEN_FROM} (d_c = ${narrow.coarseDim}, d_s = ${narrow.scanDim}) ${fmt(narrow.mflops[0.95])}` : '',
  ].filter(Boolean);
  const scanWhat =
    chosen.funnelScanDim !== undefined ? `scanning at ${chosen.funnelScanDim} (shortlist about ${chosen.shortlist99} for 0.99), a funnel stage rescoring it at d_s = ${ds} from the lists and re-ranking fewer at ${dim}`
    : ds < dim ? `scanning at d_s = ${ds} and re-ranking at ${dim} (shortlist about ${chosen.shortlist99} for 0.99)`
    : `scanning at d_s = ${dim} with no re-rank (rigid-like)`;
  const reason = `${shape}; ${trial}; ${lists} lists (about 4 sqrt n): clustering at d_c = ${dc} and ${scanWhat} is predicted cheapest at recall@${k} 0.95: ${fmt(chosen.mflops[0.95])} MFLOPs per query (0.9: ${fmt(chosen.mflops[0.9])}, 0.99: ${fmt(chosen.mflops[0.99])})${compare.length ? `, against ${compare.join(' and ')}` : ''}; an exact scan costs ${exactMflops.toPrecision(3)}`;
  const multiple = chosen.shortlist99 !== null && ds < dim ? Math.ceil(chosen.shortlist99 / k) : 0;
  const centroids = trialLists === lists ? trialCentroids.get(dc) : undefined;
  const trained: AutoTrained = { pca, coarse: centroids && { lists, dim: dc, ...centroids } };
  return { spec, reason, spectrum, shortlistMultiples: multiple > 20 ? [multiple, 2 * multiple] : [], candidates, chosen, trained };
}

/** What cheapestFunnel searches: one nprobe's trial neighbours and the price of a funnel. */
export interface FunnelSearch {
  /** Each trial neighbour's rank at the stage's prefix d_s among the probed vectors (Infinity: not probed). */
  keepRanks: ArrayLike<number>;
  /** Its rank at the scan prefix p among the probed vectors. */
  scanRanks: ArrayLike<number>;
  /** The probed neighbours (keepRanks finite) by keepRanks ascending; computed when left out. */
  order?: ArrayLike<number>;
  /** Neighbours the funnel must find. */
  need: number;
  /** Answers per query: the stage keeps at least k. */
  k: number;
  /** Vectors a query scans: a shortlist holds at most ceil(vectors), and one that large passes every probed neighbour. */
  vectors: number;
  /** MFLOPs per query of a funnel keeping `keep` of a scan shortlist of `shortlist`; rising in both. */
  price: (keep: number, shortlist: number) => number;
}

/**
 * The cheapest funnel (a scan shortlist S, a stage keeping K of it, k <= K <=
 * S <= ceil(vectors)) finding `need` neighbours, or null. A neighbour of rank
 * r (an estimate of the vectors scoring above it, so fractional) is found
 * when S >= r + 1 at p (or S is every scanned vector) and K >= r + 1 at d_s.
 * K grows through the neighbours by rank at d_s; for each K the least S is
 * the need-th smallest rank at p among those it keeps, plus one (a max-heap
 * of the need smallest), so with a price rising in both only these (K, S)
 * pairs can be cheapest. Ties keep the first pair found.
 */
export function cheapestFunnel(o: FunnelSearch): { mflops: number; shortlist: number; keep: number } | null {
  const { keepRanks: at, scanRanks: from, need, k, vectors } = o;
  const order = o.order ?? probedByRank(at);
  if (order.length < need) return null;
  let best: { mflops: number; shortlist: number; keep: number } | null = null;
  const heap = new MaxHeap(need);
  for (let j = 0; j < order.length; j++) {
    heap.push(from[order[j]]);
    if (!heap.full || (j + 1 < order.length && at[order[j + 1]] === at[order[j]])) continue;
    const keep = Math.max(k, Math.ceil(at[order[j]] + 1));
    const shortlist = Math.min(Math.max(keep, Math.ceil(heap.top + 1)), Math.ceil(vectors));
    if (keep > shortlist) continue;
    const mflops = o.price(keep, shortlist);
    if (!best || mflops < best.mflops) best = { mflops, shortlist, keep };
  }
  return best;
}

/** Indices of the probed neighbours (finite rank) by rank ascending. */
function probedByRank(at: ArrayLike<number>): number[] {
  return Array.from({ length: at.length }, (_, j) => j).filter((j) => at[j] !== Infinity).sort((x, y) => at[x] - at[y]);
}

/** nprobe values of the trial: 1, 2, 3, then about x1.25 per step up to max (fine enough that the cheapest reaching a target is not overshot by much). */
function steps(max: number): number[] {
  const out: number[] = [];
  for (let v = 1; v < max; v = Math.max(v + 1, Math.round(v * 1.25))) out.push(v);
  out.push(max);
  return out;
}

/** The `capacity` smallest values pushed, largest on top (top: the capacity-th smallest once full). */
class MaxHeap {
  private readonly values: Float64Array;
  private size = 0;
  constructor(private readonly capacity: number) {
    this.values = new Float64Array(capacity);
  }
  get full(): boolean {
    return this.size === this.capacity;
  }
  get top(): number {
    return this.values[0];
  }
  push(v: number): void {
    const a = this.values;
    if (this.size < this.capacity) {
      let i = this.size++;
      while (i > 0 && a[(i - 1) >> 1] < v) {
        a[i] = a[(i - 1) >> 1];
        i = (i - 1) >> 1;
      }
      a[i] = v;
      return;
    }
    if (v >= a[0]) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= this.size) break;
      const c = l + 1 < this.size && a[l + 1] > a[l] ? l + 1 : l;
      if (a[c] <= v) break;
      a[i] = a[c];
      i = c;
    }
    a[i] = v;
  }
}

/** Indices of the `count` largest scores, best first (ties: lower index). */
function topIndices(scores: Float32Array, count: number): Int32Array {
  const order = Int32Array.from({ length: scores.length }, (_, i) => i);
  order.sort((a, b) => scores[b] - scores[a] || a - b);
  return order.slice(0, count);
}
