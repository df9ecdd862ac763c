import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseMetric, type Backend } from '@adanns/compute';
import { AdannsIndex } from '../index/adanns-index.js';
import { InvertedLists } from '../index/inverted-lists.js';
import type { Calibration } from '../planner/calibrate.js';
import { formatSpec, parseSpec, validateSpec } from '../spec.js';
import { ProductQuantizer } from '../quant/product-quantizer.js';
import type { PqScanCodec } from '../stages/scan-pq.js';
import { PcaTransform } from '../transform/pca.js';
import { FORMAT_VERSION, readArrayFile, writeArrayFile } from './binary-file.js';

interface Manifest {
  format: 'adanns-index';
  version: number;
  spec: string;
  metric: string;
  dim: number;
  slotCount: number;
  lists: number;
  listDim: number;
  /** PQ/OPQ: whether codes encode residuals against list references. */
  residual: boolean;
}

/**
 * An index directory: manifest.json (written last, so a half-written
 * directory has none) and one checksummed binary file per array.
 */
export function saveIndex(index: AdannsIndex, dir: string): void {
  mkdirSync(dir, { recursive: true });
  const p = index.parts();
  writeArrayFile(join(dir, 'originals.bin'), p.originals, [p.slotCount, p.dim]);
  writeArrayFile(join(dir, 'slot-ids.bin'), p.slotIds, [p.slotCount]);
  const lists = p.lists.export();
  writeArrayFile(join(dir, 'list-sizes.bin'), lists.sizes, [lists.sizes.length]);
  writeArrayFile(join(dir, 'list-slots.bin'), lists.slots, [lists.slots.length]);
  writeArrayFile(join(dir, 'list-data.bin'), lists.data, [lists.slots.length, p.lists.dim]);
  writeArrayFile(join(dir, 'list-codes.bin'), lists.codes, [lists.slots.length, p.lists.codeBytes]);
  if (p.codec) {
    const ds = p.codec.pq.dim;
    writeArrayFile(join(dir, 'pq-codebooks.bin'), p.codec.pq.codebooks, [256, ds]);
    if (p.codec.rotation) writeArrayFile(join(dir, 'opq-rotation.bin'), p.codec.rotation, [ds, ds]);
    if (p.codec.refs) writeArrayFile(join(dir, 'residual-refs.bin'), p.codec.refs, [p.lists.count, ds]);
  }
  if (p.centroids) writeArrayFile(join(dir, 'centroids.bin'), p.centroids, [p.spec.coarse!.lists, p.spec.coarse!.dim]);
  if (p.pca) {
    writeArrayFile(join(dir, 'pca-components.bin'), p.pca.components, [p.dim, p.dim]);
    writeArrayFile(join(dir, 'pca-variances.bin'), p.pca.variances, [p.dim]);
    if (p.pca.mean) writeArrayFile(join(dir, 'pca-mean.bin'), p.pca.mean, [p.dim]);
  }
  const manifest: Manifest = {
    format: 'adanns-index',
    version: FORMAT_VERSION,
    spec: formatSpec(p.spec),
    metric: p.metric,
    dim: p.dim,
    slotCount: p.slotCount,
    lists: p.lists.count,
    listDim: p.lists.dim,
    residual: p.codec?.refs !== undefined,
  };
  if (index.calibration) writeJsonAtomically(join(dir, 'calibration.json'), index.calibration);
  else rmSync(join(dir, 'calibration.json'), { force: true });
  const tmp = join(dir, `manifest.json.tmp-${process.pid}`);
  writeFileSync(tmp, JSON.stringify(manifest, null, 2) + '\n');
  renameSync(tmp, join(dir, 'manifest.json'));
}

export function loadIndex(backend: Backend, dir: string): AdannsIndex {
  const manifestPath = join(dir, 'manifest.json');
  let m: Manifest;
  try {
    m = JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest;
  } catch (e) {
    throw new Error(`${manifestPath}: cannot read index manifest (${(e as Error).message})`);
  }
  if (m.format !== 'adanns-index') throw new Error(`${manifestPath}: not an adanns index manifest`);
  if (m.version !== FORMAT_VERSION) throw new Error(`${manifestPath}: format version ${m.version}, this build reads version ${FORMAT_VERSION}`);
  for (const key of ['dim', 'slotCount', 'lists', 'listDim'] as const) {
    if (!Number.isInteger(m[key]) || m[key] < 0) throw new Error(`${manifestPath}: field ${key} is not a non-negative integer`);
  }
  const metric = parseMetric(m.metric);
  const spec = parseSpec(m.spec, m.dim);
  validateSpec(spec, m.dim, Math.max(m.slotCount, spec.coarse?.lists ?? 1));
  const listDim = AdannsIndex.listDim(spec, m.dim);
  if (listDim !== m.listDim || (spec.coarse?.lists ?? 1) !== m.lists) throw new Error(`${manifestPath}: list shape does not match spec ${m.spec}`);
  const file = (name: string) => join(dir, name);
  const originals = readArrayFile(file('originals.bin'), 'f32', [m.slotCount, m.dim]).array;
  const slotIds = readArrayFile(file('slot-ids.bin'), 'f64', [m.slotCount]).array;
  const sizes = readArrayFile(file('list-sizes.bin'), 'i32', [m.lists]).array;
  const slots = readArrayFile(file('list-slots.bin'), 'i32', [-1]).array;
  const data = readArrayFile(file('list-data.bin'), 'f32', [slots.length, listDim]).array;
  const codeBytes = AdannsIndex.codeBytes(spec);
  const codes = readArrayFile(file('list-codes.bin'), 'u8', [slots.length, codeBytes]).array;
  for (const s of slots) if (s < 0 || s >= m.slotCount || Number.isNaN(slotIds[s])) throw new Error(`${file('list-slots.bin')}: refers to slot ${s}, which holds no vector`);
  const lists = InvertedLists.import(listDim, AdannsIndex.normDims(metric, spec, listDim), codeBytes, sizes, slots, data, codes, backend.arena);
  let codec: PqScanCodec | undefined;
  if (spec.scan.codec !== 'flat') {
    const ds = spec.scan.dim;
    const pq = new ProductQuantizer(ds, spec.scan.bytes, readArrayFile(file('pq-codebooks.bin'), 'f32', [256, ds]).array);
    const rotation = spec.scan.codec === 'opq' ? readArrayFile(file('opq-rotation.bin'), 'f32', [ds, ds]).array : undefined;
    const refs = m.residual && spec.coarse ? readArrayFile(file('residual-refs.bin'), 'f32', [m.lists, ds]).array : undefined;
    codec = { pq, rotation, refs };
  }
  const centroids = spec.coarse ? readArrayFile(file('centroids.bin'), 'f32', [spec.coarse.lists, spec.coarse.dim]).array : undefined;
  let pca: PcaTransform | undefined;
  if (spec.transform === 'pca') {
    const components = readArrayFile(file('pca-components.bin'), 'f32', [m.dim, m.dim]).array;
    const variances = readArrayFile(file('pca-variances.bin'), 'f64', [m.dim]).array;
    const mean = metric === 'l2' ? readArrayFile(file('pca-mean.bin'), 'f32', [m.dim]).array : undefined;
    pca = new PcaTransform(m.dim, components, variances, mean);
  }
  const index = new AdannsIndex(backend, { spec, metric, dim: m.dim, pca, centroids, lists, codec, originals, slotIds, slotCount: m.slotCount });
  if (existsSync(file('calibration.json'))) index.calibration = readCalibration(file('calibration.json'));
  return index;
}

function writeJsonAtomically(path: string, value: unknown): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(value) + '\n');
  renameSync(tmp, path);
}

function readCalibration(path: string): Calibration {
  let c: Calibration;
  try {
    c = JSON.parse(readFileSync(path, 'utf8')) as Calibration;
  } catch (e) {
    throw new Error(`${path}: cannot read calibration (${(e as Error).message})`);
  }
  const finite = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
  if (!Number.isInteger(c.k) || !Array.isArray(c.points) || !c.points.every((p) => p && typeof p.params === 'object' && finite(p.recall) && finite(p.mflops) && finite(p.latencyMs) && finite(p.recallStdErr) && finite(p.mflopsStdErr))) {
    throw new Error(`${path}: malformed calibration`);
  }
  return c;
}
