import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseMetric, type Backend, type Metric } from '@adanns/compute';
import { decodedInvNorms } from '../codecs/float-codec.js';
import type { ListCodec } from '../codecs/codec.js';
import { codecDefinition } from '../codecs/registry.js';
import { AdannsIndex, type IndexChoice } from '../index/adanns-index.js';
import { InvertedLists } from '../index/inverted-lists.js';
import { funnelShapeError, patienceError, rerankPatienceError } from '../params.js';
import { SlotStore } from '../index/slots.js';
import type { Calibration } from '../planner/calibrate.js';
import type { FrontierPoint } from '../planner/frontier.js';
import type { FilteredPoint } from '../planner/filtered-calibration.js';
import { createRerankStore, loadRerankStore, type RerankManifest, type RerankStore } from '../rerank/store.js';
import { formatSpec, parseSpec, validateSpec, type IndexSpec } from '../spec.js';
import { CoarseQuantizer } from '../stages/coarse.js';
import { PcaTransform } from '../transform/pca.js';
import { readArrayFile, writeArrayFile } from './binary-file.js';

/**
 * Layout version of an index directory. 2: lists hold only their codec's
 * codes (list-codes.bin), re-rank vectors are a store of their own. 1 (read,
 * migrated in memory): float32 list prefixes (list-data.bin) and every
 * vector's full-dimension original (originals.bin).
 */
export const INDEX_FORMAT_VERSION = 2;

interface Manifest {
  format: 'adanns-index';
  version: number;
  spec: string;
  metric: string;
  dim: number;
  slotCount: number;
  lists: number;
  /** v2: bytes per list member. */
  codeBytes?: number;
  /** v2: what the codec recorded (e.g. PQ's residual flag). */
  codec?: Record<string, unknown>;
  /** v2: the re-rank store. */
  rerank?: RerankManifest;
  /** v1: float32 prefix length stored in the lists. */
  listDim?: number;
  /** v1: PQ/OPQ codes encode residuals against list references. */
  residual?: boolean;
  /** Why spec `auto` chose this spec (absent for a spec given): `adanns info` shows it. */
  choice?: IndexChoice;
}

/** Where a loaded index's re-rank vectors come from, when the caller supplies them (a collection's LMDB). */
export interface LoadOptions {
  /** A store for the spec's re-rank stage, used instead of the saved one (null/undefined: load the saved one). */
  rerankStore?: (spec: IndexSpec, dim: number) => RerankStore | undefined;
}

/**
 * An index directory: manifest.json (written last, so a half-written
 * directory has none), one checksummed binary file per array, and the
 * re-rank store's file.
 */
export function saveIndex(index: AdannsIndex, dir: string): void {
  mkdirSync(dir, { recursive: true });
  const p = index.parts();
  const slotIds = p.slots.slotIds();
  const slotCount = slotIds.length;
  writeArrayFile(join(dir, 'slot-ids.bin'), slotIds, [slotCount]);
  const lists = p.lists.export();
  writeArrayFile(join(dir, 'list-sizes.bin'), lists.sizes, [lists.sizes.length]);
  writeArrayFile(join(dir, 'list-slots.bin'), lists.slots, [lists.slots.length]);
  writeArrayFile(join(dir, 'list-codes.bin'), lists.codes, [lists.slots.length, p.lists.codeBytes]);
  p.codec.save(dir);
  if (p.coarse) writeArrayFile(join(dir, 'centroids.bin'), p.coarse.centroids, [p.coarse.lists, p.coarse.dim]);
  if (p.pca) {
    writeArrayFile(join(dir, 'pca-components.bin'), p.pca.components, [p.dim, p.dim]);
    writeArrayFile(join(dir, 'pca-variances.bin'), p.pca.variances, [p.dim]);
    if (p.pca.mean) writeArrayFile(join(dir, 'pca-mean.bin'), p.pca.mean, [p.dim]);
  }
  const rerank = p.rerank?.save(dir, slotCount);
  const manifest: Manifest = {
    format: 'adanns-index',
    version: INDEX_FORMAT_VERSION,
    spec: formatSpec(p.spec),
    metric: p.metric,
    dim: p.dim,
    slotCount,
    lists: p.lists.count,
    codeBytes: p.lists.codeBytes,
    codec: p.codec.manifest?.() ?? {},
  };
  if (rerank) manifest.rerank = rerank;
  if (index.choice) manifest.choice = index.choice;
  if (index.calibration) writeJsonAtomically(join(dir, 'calibration.json'), index.calibration);
  else rmSync(join(dir, 'calibration.json'), { force: true });
  const tmp = join(dir, `manifest.json.tmp-${process.pid}`);
  writeFileSync(tmp, JSON.stringify(manifest, null, 2) + '\n');
  renameSync(tmp, join(dir, 'manifest.json'));
}

/** Reads an index directory's manifest (checked), e.g. for `adanns info`. */
export function readIndexManifest(dir: string): Manifest & { path: string } {
  const manifestPath = join(dir, 'manifest.json');
  let m: Manifest;
  try {
    m = JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest;
  } catch (e) {
    throw new Error(`${manifestPath}: cannot read index manifest (${(e as Error).message})`);
  }
  if (m.format !== 'adanns-index') throw new Error(`${manifestPath}: not an adanns index manifest`);
  if (m.version !== INDEX_FORMAT_VERSION && m.version !== 1) throw new Error(`${manifestPath}: format version ${m.version}, this build reads versions 1 and ${INDEX_FORMAT_VERSION}`);
  for (const key of ['dim', 'slotCount', 'lists'] as const) {
    if (!Number.isInteger(m[key]) || m[key] < 0) throw new Error(`${manifestPath}: field ${key} is not a non-negative integer`);
  }
  return { ...m, path: manifestPath };
}

export function loadIndex(backend: Backend, dir: string, options: LoadOptions = {}): AdannsIndex {
  const m = readIndexManifest(dir);
  const manifestPath = m.path;
  const metric = parseMetric(m.metric);
  const spec = parseSpec(m.spec, m.dim);
  validateSpec(spec, m.dim, Math.max(m.slotCount, spec.coarse?.lists ?? 1));
  if ((spec.coarse?.lists ?? 1) !== m.lists) throw new Error(`${manifestPath}: list shape does not match spec ${m.spec}`);
  const file = (name: string) => join(dir, name);
  const slotIds = readArrayFile(file('slot-ids.bin'), 'f64', [m.slotCount]).array;
  const sizes = readArrayFile(file('list-sizes.bin'), 'i32', [m.lists]).array;
  const slots = readArrayFile(file('list-slots.bin'), 'i32', [-1]).array;
  for (const s of slots) if (s < 0 || s >= m.slotCount || Number.isNaN(slotIds[s])) throw new Error(`${file('list-slots.bin')}: refers to slot ${s}, which holds no vector`);
  const codecManifest = m.version === 1 ? { residual: m.residual === true } : (m.codec ?? {});
  const codec = codecDefinition(spec.scan.codec).load({ backend, metric, spec: spec.scan, lists: m.lists }, dir, codecManifest);

  let codes: Uint8Array;
  let rerank: RerankStore | undefined = spec.rerank ? options.rerankStore?.(spec, m.dim) : undefined;
  const supplied = rerank !== undefined;
  let lists: InvertedLists | undefined;
  let coarse: CoarseQuantizer | undefined;
  try {
    if (m.version === 1) {
      const migrated = migrateV1(dir, m, spec, metric, codec, slots, backend, rerank === undefined);
      codes = migrated.codes;
      rerank ??= migrated.rerank;
    } else {
      if (m.codeBytes !== codec.codeBytes) throw new Error(`${manifestPath}: ${m.codeBytes} code bytes per member, spec ${m.spec} makes ${codec.codeBytes}`);
      codes = readArrayFile(file('list-codes.bin'), 'u8', [slots.length, codec.codeBytes]).array;
      if (spec.rerank && !rerank) {
        if (!m.rerank || m.rerank.dim !== spec.rerank.dim) throw new Error(`${manifestPath}: the re-rank store does not match spec ${m.spec}`);
        rerank = loadRerankStore(dir, m.rerank, m.slotCount, metric, backend.arena);
      }
    }
    const normDims = codec.decodes ? AdannsIndex.normDims(metric, spec) : [];
    const normsOf = normDims.length > 0 ? (c: Uint8Array, rows: number) => decodedInvNorms(codec, c, rows, normDims) : undefined;
    lists = InvertedLists.import(codec.codeBytes, normDims, sizes, slots, codes, normsOf, backend.arena, spec.scan.codec === 'flat' ? 'lists' : 'codes', codec.layout);
    coarse = spec.coarse ? CoarseQuantizer.of(backend, readArrayFile(file('centroids.bin'), 'f32', [spec.coarse.lists, spec.coarse.dim]).array, spec.coarse.lists, spec.coarse.dim, metric) : undefined;
    let pca: PcaTransform | undefined;
    if (spec.transform === 'pca') {
      const components = readArrayFile(file('pca-components.bin'), 'f32', [m.dim, m.dim]).array;
      const variances = readArrayFile(file('pca-variances.bin'), 'f64', [m.dim]).array;
      const mean = metric === 'l2' ? readArrayFile(file('pca-mean.bin'), 'f32', [m.dim]).array : undefined;
      pca = new PcaTransform(m.dim, components, variances, mean);
    }
    const slotStore = new SlotStore(slotIds, m.slotCount);
    const calibration = existsSync(file('calibration.json')) ? readCalibration(file('calibration.json')) : undefined;
    const index = new AdannsIndex(backend, { spec, metric, dim: m.dim, pca, coarse, codec, lists, rerank, slots: slotStore });
    if (calibration) index.calibration = calibration;
    if (m.choice) index.choice = { reason: String(m.choice.reason), shortlistMultiples: (m.choice.shortlistMultiples ?? []).filter((x) => Number.isInteger(x) && x > 0) };
    return index;
  } catch (e) {
    // a failed load (say a corrupt file) gives back what it took: arena arrays and the re-rank file
    lists?.release();
    coarse?.release();
    codec.release();
    if (!supplied) rerank?.release();
    throw e;
  }
}

/**
 * A version 1 directory in the version 2 layout, in memory: flat lists keep
 * their first d_s floats (as bytes), PQ/OPQ lists their codes; the re-rank
 * store is filled from originals.bin (d_r = D) or from the stored list
 * prefixes (d_r < D). Full-dimension originals of an index that does not
 * re-rank at D are not kept (version 2 holds only what the spec asks for).
 */
function migrateV1(dir: string, m: Manifest, spec: IndexSpec, metric: Metric, codec: ListCodec, slots: Int32Array, backend: Backend, needRerank: boolean): { codes: Uint8Array; rerank?: RerankStore } {
  const file = (name: string) => join(dir, name);
  const listDim = m.listDim ?? 0;
  const data = readArrayFile(file('list-data.bin'), 'f32', [slots.length, listDim]).array;
  let codes: Uint8Array;
  if (spec.scan.codec === 'flat') {
    const ds = spec.scan.dim;
    const values = new Float32Array(slots.length * ds);
    for (let i = 0; i < slots.length; i++) values.set(data.subarray(i * listDim, i * listDim + ds), i * ds);
    codes = new Uint8Array(values.buffer);
  } else {
    codes = readArrayFile(file('list-codes.bin'), 'u8', [slots.length, codec.codeBytes]).array;
  }
  if (!spec.rerank || !needRerank) return { codes };
  const dr = spec.rerank.dim;
  const rerank = createRerankStore(spec.rerank.storage ?? 'disk', dr, metric, backend.arena);
  if (dr === m.dim) {
    const originals = readArrayFile(file('originals.bin'), 'f32', [m.slotCount, m.dim]).array;
    for (let s = 0; s < m.slotCount; s++) rerank.write(s, originals, s * m.dim);
  } else {
    if (dr > listDim) throw new Error(`${file('list-data.bin')}: holds prefixes of ${listDim}, re-rank at ${dr} needs more`);
    for (let i = 0; i < slots.length; i++) rerank.write(slots[i], data, i * listDim);
  }
  return { codes, rerank };
}

function writeJsonAtomically(path: string, value: unknown): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(value) + '\n');
  renameSync(tmp, path);
}

/** Replaces the calibration saved in an index directory (atomic): a re-calibration without a rebuild. */
export function saveCalibration(dir: string, calibration: Calibration): void {
  writeJsonAtomically(join(dir, 'calibration.json'), calibration);
}

/** Reads and checks a saved calibration: single-k (older) or with its levels. */
export function readCalibration(path: string): Calibration {
  let c: Calibration;
  try {
    c = JSON.parse(readFileSync(path, 'utf8')) as Calibration;
  } catch (e) {
    throw new Error(`${path}: cannot read calibration (${(e as Error).message})`);
  }
  const finite = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
  // a point's funnel stages and patience rules must be well formed, or the planner would propose params every search refuses
  const pointOk = (p: FrontierPoint) => p && typeof p.params === 'object' && p.params !== null && finite(p.recall) && finite(p.mflops) && finite(p.latencyMs) && finite(p.recallStdErr) && finite(p.mflopsStdErr) && (p.params.funnel === undefined || funnelShapeError(p.params.funnel) === undefined) && (p.params.patience === undefined || patienceError(p.params.patience) === undefined) && (p.params.rerankPatience === undefined || rerankPatienceError(p.params.rerankPatience) === undefined);
  if (!Number.isInteger(c.k) || !Array.isArray(c.points) || !c.points.every(pointOk)) {
    throw new Error(`${path}: malformed calibration`);
  }
  if (c.levels !== undefined && !(Array.isArray(c.levels) && c.levels.every((l) => l && Number.isInteger(l.k) && l.k > 0 && Array.isArray(l.points) && l.points.every(pointOk)))) {
    throw new Error(`${path}: malformed calibration levels`);
  }
  // the filtered part plans budgets under filters: a malformed one would estimate recalls from garbage
  const f = c.filtered;
  const filteredOk = (p: FilteredPoint) => p && Number.isInteger(p.k) && typeof p.params === 'object' && p.params !== null && [p.selectivity, p.recall, p.recallStdErr, p.mflops, p.mflopsMax, p.latencyMs].every(finite);
  if (f !== undefined && !(f && Array.isArray(f.selectivities) && f.selectivities.every(finite) && Array.isArray(f.shapes) && Array.isArray(f.points) && f.points.every(filteredOk) && Array.isArray(f.exact) && f.exact.every((t) => t && finite(t.matches) && finite(t.latencyMs)))) {
    throw new Error(`${path}: malformed filtered calibration`);
  }
  return c;
}
