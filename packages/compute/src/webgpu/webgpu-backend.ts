import type { ArenaArray, ArrayArena } from '../arena.js';
import type { Backend } from '../backend.js';
import { checkCoded, codedInvNorms, encodedBytes, type CodedRows } from '../coded.js';
import type { Metric } from '../metric.js';
import { computeInvNorms } from '../reference/kernels.js';
import { checkAdcScan, checkAssign, checkCentroidSums, checkPrefix, checkRescore, type RowBlock } from '../rows.js';
import type { TopK } from '../topk.js';
import { openWebGpu, type WebGpuDevice } from './device.js';
import { kernelSource } from './wgsl.js';

const METRIC_CODE: Record<Metric, number> = { cosine: 0, ip: 1, l2: 2 };
const KERNELS = ['score', 'topk', 'adc', 'rescore', 'assign', 'centroid-sums', 'decode'] as const;
type Kernel = (typeof KERNELS)[number];
const SCORE_TILE = 8;
const GROUP = 64;
const MAX_GROUPS = 65535;

/** Where a kernel finds an array: a device buffer and the element offset of the array in it. */
interface Bound {
  buffer: GPUBuffer;
  offset: number;
}

/**
 * Arrays allocated here are plain heap arrays the backend may keep on the
 * device between calls; the index calls touched() after writing one in
 * place, which makes the next call upload it again.
 */
class ResidentArena implements ArrayArena {
  readonly resident = new WeakSet<ArrayBufferLike>();
  mirrors = new WeakMap<ArrayBufferLike, GPUBuffer>();

  private track<T extends ArenaArray>(array: T): T {
    this.resident.add(array.buffer);
    return array;
  }

  float32(length: number): Float32Array {
    return this.track(new Float32Array(length));
  }

  int32(length: number): Int32Array {
    return this.track(new Int32Array(length));
  }

  uint8(length: number): Uint8Array {
    return this.track(new Uint8Array(length));
  }

  touched(array: ArenaArray): void {
    this.mirrors.get(array.buffer)?.destroy();
    this.mirrors.delete(array.buffer);
  }

  release(array: ArenaArray): void {
    this.touched(array);
    this.resident.delete(array.buffer);
  }
}

/**
 * The WebGPU backend: WGSL kernels (kernels/wgsl) run through Dawn. Index
 * arrays from its arena stay on the device until touched; everything else is
 * uploaded per call into reusable scratch buffers. Work larger than the
 * adapter's binding size is split into chunks of base rows. Heaps are merged
 * on the device with the same total order as the CPU backends, so results
 * agree with them up to float rounding.
 */
export class WebGpuBackend implements Backend {
  readonly name = 'webgpu';
  readonly arena = new ResidentArena();
  private readonly pipelines = new Map<Kernel, GPUComputePipeline>();
  private readonly scratch = new Map<string, GPUBuffer>();
  private lost: string | undefined;

  private constructor(private gpu: WebGpuDevice) {
    this.watch();
  }

  static async create(): Promise<WebGpuBackend> {
    return new WebGpuBackend(await openWebGpu());
  }

  /** What the backend runs on, for logs. */
  get description(): string {
    return `${this.gpu.description} via ${this.gpu.api}${this.gpu.software ? ' (software)' : ''}`;
  }

  get software(): boolean {
    return this.gpu.software;
  }

  private watch(): void {
    const device = this.gpu.device;
    void device.lost.then((info) => {
      if (this.gpu.device === device && info.reason !== 'destroyed') this.lost = info.message || String(info.reason);
    });
  }

  private get device(): GPUDevice {
    return this.gpu.device;
  }

  /** Reopens the device once after a loss; everything cached on the old one is dropped. */
  private async ready(): Promise<void> {
    if (this.lost === undefined) return;
    const reason = this.lost;
    try {
      this.gpu = await openWebGpu();
    } catch (e) {
      throw new Error(`WebGPU device lost (${reason}) and could not be recreated: ${(e as Error).message}`);
    }
    this.lost = undefined;
    this.pipelines.clear();
    this.scratch.clear();
    this.arena.mirrors = new WeakMap();
    this.watch();
  }

  private pipeline(kernel: Kernel): GPUComputePipeline {
    let pipeline = this.pipelines.get(kernel);
    if (!pipeline) {
      const code = kernelSource(kernel);
      pipeline = this.device.createComputePipeline({ layout: 'auto', compute: { module: this.device.createShaderModule({ code }), entryPoint: 'main' } });
      this.pipelines.set(kernel, pipeline);
    }
    return pipeline;
  }

  private get maxBinding(): number {
    return Math.min(this.gpu.limits.maxStorageBufferBindingSize, this.gpu.limits.maxBufferSize);
  }

  /** A reusable device buffer of at least `bytes` for `slot`. */
  private scratchBuffer(slot: string, bytes: number, usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC): GPUBuffer {
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    const held = this.scratch.get(slot);
    if (held && held.size >= size) return held;
    held?.destroy();
    // grow by doubling (within the binding limit) so a run of growing calls reallocates rarely
    const buffer = this.device.createBuffer({ size: Math.max(size, Math.min(this.maxBinding, (held?.size ?? 0) * 2)), usage });
    this.scratch.set(slot, buffer);
    return buffer;
  }

  private write(buffer: GPUBuffer, view: ArrayBufferView): void {
    // writeBuffer takes whole 4-byte words
    if (view.byteLength % 4 === 0) {
      this.device.queue.writeBuffer(buffer, 0, view.buffer, view.byteOffset, view.byteLength);
      return;
    }
    const padded = new Uint8Array(Math.ceil(view.byteLength / 4) * 4);
    padded.set(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
    this.device.queue.writeBuffer(buffer, 0, padded);
  }

  /** Whether an array has (or may get) a device mirror that one binding can hold. */
  private bindsInPlace(view: ArrayBufferView): boolean {
    return this.arena.resident.has(view.buffer) && view.buffer.byteLength <= this.maxBinding;
  }

  /** The array on the device: its resident mirror when it has one that fits a binding, else a scratch copy. */
  private bind(slot: string, view: Float32Array | Int32Array | Uint8Array): Bound {
    const whole = view.buffer;
    if (this.bindsInPlace(view)) {
      let mirror = this.arena.mirrors.get(whole);
      if (!mirror) {
        mirror = this.device.createBuffer({ size: Math.max(16, Math.ceil(whole.byteLength / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
        this.write(mirror, new Uint8Array(whole));
        this.arena.mirrors.set(whole, mirror);
      }
      return { buffer: mirror, offset: view.byteOffset / view.BYTES_PER_ELEMENT };
    }
    const buffer = this.scratchBuffer(slot, view.byteLength);
    if (view.byteLength > 0) this.write(buffer, view);
    return { buffer, offset: 0 };
  }

  /** A block's rows [from, to) on the device; `offset` is the element index of row `from`. */
  private bindRows(slot: string, block: RowBlock, dim: number, from: number, to: number): Bound {
    const start = (block.offset ?? 0) + from * block.stride;
    const end = to > from ? start + (to - from - 1) * block.stride + dim : start;
    if (this.bindsInPlace(block.data)) {
      const bound = this.bind(slot, block.data);
      return { buffer: bound.buffer, offset: bound.offset + start };
    }
    return this.bind(slot, block.data.subarray(start, Math.max(start, end)));
  }

  /** Cosine inverse norms of rows [from, to) (given, or computed here); an unused dummy otherwise. */
  private bindNorms(slot: string, block: RowBlock, dim: number, metric: Metric, from: number, to: number): Bound {
    if (metric !== 'cosine') return this.bind(slot, new Float32Array(4));
    if (block.invNorms) {
      if (block.invNorms.length < block.rows) throw new Error(`invNorms has ${block.invNorms.length} entries for ${block.rows} rows`);
      if (!this.bindsInPlace(block.invNorms)) return this.bind(slot, block.invNorms.subarray(from, to));
      const bound = this.bind(slot, block.invNorms);
      return { buffer: bound.buffer, offset: bound.offset + from };
    }
    const part: RowBlock = { data: block.data, rows: to - from, stride: block.stride, offset: (block.offset ?? 0) + from * block.stride };
    return this.bind(slot, computeInvNorms(part, dim));
  }

  private uniform(values: number[]): GPUBuffer {
    const data = new Uint32Array(Math.ceil(values.length / 4) * 4);
    data.set(values);
    const buffer = this.device.createBuffer({ size: data.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    this.device.queue.writeBuffer(buffer, 0, data);
    return buffer;
  }

  private dispatch(encoder: GPUCommandEncoder, kernel: Kernel, params: number[], buffers: GPUBuffer[], x: number, y = 1): GPUBuffer {
    const pipeline = this.pipeline(kernel);
    const uniform = this.uniform(params);
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: uniform } }, ...buffers.map((buffer, i) => ({ binding: i + 1, resource: { buffer } }))];
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }));
    pass.dispatchWorkgroups(x, y);
    pass.end();
    return uniform;
  }

  private async submit(encoder: GPUCommandEncoder, uniforms: GPUBuffer[]): Promise<void> {
    this.device.queue.submit([encoder.finish()]);
    await this.device.queue.onSubmittedWorkDone();
    for (const u of uniforms) u.destroy();
    if (this.lost !== undefined) throw new Error(`WebGPU device lost during the call: ${this.lost}`);
  }

  /** Copies `bytes` of a device buffer back to the host. */
  private async readBack(source: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    const staging = this.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const encoder = this.device.createCommandEncoder();
    encoder.copyBufferToBuffer(source, 0, staging, 0, size);
    this.device.queue.submit([encoder.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const copy = staging.getMappedRange().slice(0, bytes);
    staging.unmap();
    staging.destroy();
    return copy;
  }

  /** Base rows per chunk so that `perRowBytes` of output per row and the rows themselves fit one binding and one dispatch. */
  private chunkRows(n: number, rowBytes: number, outBytesPerRow: number, groupRows: number): number {
    const byBinding = Math.floor(this.maxBinding / Math.max(4, rowBytes, outBytesPerRow));
    return Math.max(1, Math.min(n, byBinding, MAX_GROUPS * groupRows));
  }

  async score(queries: RowBlock, base: RowBlock, dim: number, metric: Metric, out: Float32Array): Promise<void> {
    checkPrefix(queries, dim, 'score queries');
    checkPrefix(base, dim, 'score base');
    const m = queries.rows, n = base.rows;
    if (out.length < m * n) throw new Error(`score output holds ${out.length} values, needs ${m * n}`);
    if (m === 0 || n === 0) return;
    await this.ready();
    const q = this.bindRows('q', queries, dim, 0, m);
    const qInv = this.bindNorms('qInv', queries, dim, metric, 0, m);
    const step = this.chunkRows(n, base.stride * 4, m * 4, SCORE_TILE);
    for (let from = 0; from < n; from += step) {
      const to = Math.min(n, from + step);
      const rows = to - from;
      const b = this.bindRows('b', base, dim, from, to);
      const bInv = this.bindNorms('bInv', base, dim, metric, from, to);
      const scores = this.scratchBuffer('scores', m * rows * 4);
      const encoder = this.device.createCommandEncoder();
      const u = this.dispatch(encoder, 'score', [m, rows, dim, METRIC_CODE[metric], q.offset, queries.stride, b.offset, base.stride, qInv.offset, bInv.offset, 0, rows], [q.buffer, b.buffer, qInv.buffer, bInv.buffer, scores], Math.ceil(rows / SCORE_TILE), Math.ceil(m / SCORE_TILE));
      await this.submit(encoder, [u]);
      const result = new Float32Array(await this.readBack(scores, m * rows * 4));
      for (let t = 0; t < m; t++) out.set(result.subarray(t * rows, (t + 1) * rows), t * n + from);
    }
  }

  /** Heaps of the call's rows on the device (copied from `best`), for the topk kernel. */
  private bindHeaps(best: TopK, rows: number, queryRows?: Int32Array): { ids: GPUBuffer; scores: GPUBuffer; sizes: GPUBuffer } {
    const k = best.k;
    const ids = new Int32Array(rows * k);
    const scores = new Float32Array(rows * k);
    const sizes = new Int32Array(rows);
    for (let t = 0; t < rows; t++) {
      const row = queryRows ? queryRows[t] : t;
      const size = best.sizes[row];
      ids.set(best.ids.subarray(row * k, row * k + size), t * k);
      scores.set(best.scores.subarray(row * k, row * k + size), t * k);
      sizes[t] = size;
    }
    return { ids: this.bind('heapIds', ids).buffer, scores: this.bind('heapScores', scores).buffer, sizes: this.bind('heapSizes', sizes).buffer };
  }

  private async readHeaps(best: TopK, rows: number, queryRows: Int32Array | undefined, heaps: { ids: GPUBuffer; scores: GPUBuffer; sizes: GPUBuffer }): Promise<void> {
    const k = best.k;
    const ids = new Int32Array(await this.readBack(heaps.ids, rows * k * 4));
    const scores = new Float32Array(await this.readBack(heaps.scores, rows * k * 4));
    const sizes = new Int32Array(await this.readBack(heaps.sizes, rows * 4));
    for (let t = 0; t < rows; t++) {
      const row = queryRows ? queryRows[t] : t;
      best.ids.set(ids.subarray(t * k, t * k + sizes[t]), row * k);
      best.scores.set(scores.subarray(t * k, t * k + sizes[t]), row * k);
      best.sizes[row] = sizes[t];
    }
  }

  private topk(encoder: GPUCommandEncoder, rows: number, n: number, k: number, scores: GPUBuffer, scoreStride: number, ids: Bound | undefined, idsMode: number, idsStride: number, idBase: number, counts: GPUBuffer | undefined, heaps: { ids: GPUBuffer; scores: GPUBuffer; sizes: GPUBuffer }): GPUBuffer {
    const idBuffer = ids?.buffer ?? this.bind('noIds', new Int32Array(4)).buffer;
    const countBuffer = counts ?? this.bind('noCounts', new Int32Array(4)).buffer;
    return this.dispatch(encoder, 'topk', [rows, n, k, idsMode, 0, scoreStride, ids?.offset ?? 0, idsStride, idBase, counts ? 1 : 0], [scores, idBuffer, countBuffer, heaps.ids, heaps.scores, heaps.sizes], Math.ceil(rows / GROUP));
  }

  async scanTopK(queries: RowBlock, base: RowBlock, dim: number, metric: Metric, best: TopK, baseIds?: Int32Array, queryRows?: Int32Array): Promise<void> {
    checkPrefix(queries, dim, 'scan queries');
    checkPrefix(base, dim, 'scan base');
    const m = queries.rows, n = base.rows;
    if (m === 0 || n === 0) return;
    if (baseIds && baseIds.length < n) throw new Error(`scan: ${baseIds.length} base ids for ${n} rows`);
    await this.ready();
    const q = this.bindRows('q', queries, dim, 0, m);
    const qInv = this.bindNorms('qInv', queries, dim, metric, 0, m);
    const heaps = this.bindHeaps(best, m, queryRows);
    const step = this.chunkRows(n, base.stride * 4, m * 4, SCORE_TILE);
    for (let from = 0; from < n; from += step) {
      const to = Math.min(n, from + step);
      const rows = to - from;
      const b = this.bindRows('b', base, dim, from, to);
      const bInv = this.bindNorms('bInv', base, dim, metric, from, to);
      const ids = baseIds ? this.bind('ids', baseIds.subarray(from, to)) : undefined;
      const scores = this.scratchBuffer('scores', m * rows * 4);
      const encoder = this.device.createCommandEncoder();
      const u1 = this.dispatch(encoder, 'score', [m, rows, dim, METRIC_CODE[metric], q.offset, queries.stride, b.offset, base.stride, qInv.offset, bInv.offset, 0, rows], [q.buffer, b.buffer, qInv.buffer, bInv.buffer, scores], Math.ceil(rows / SCORE_TILE), Math.ceil(m / SCORE_TILE));
      const u2 = this.topk(encoder, m, rows, best.k, scores, rows, ids, ids ? 1 : 0, 0, from, undefined, heaps);
      await this.submit(encoder, [u1, u2]);
    }
    await this.readHeaps(best, m, queryRows, heaps);
  }

  async scanCodedTopK(queries: RowBlock, base: CodedRows, dim: number, metric: Metric, best: TopK, baseIds?: Int32Array, queryRows?: Int32Array): Promise<void> {
    checkPrefix(queries, dim, 'scan queries');
    checkCoded(base, dim, 'scan base');
    const m = queries.rows, n = base.rows;
    if (m === 0 || n === 0) return;
    if (baseIds && baseIds.length < n) throw new Error(`scan: ${baseIds.length} base ids for ${n} rows`);
    await this.ready();
    const q = this.bindRows('q', queries, dim, 0, m);
    const qInv = this.bindNorms('qInv', queries, dim, metric, 0, m);
    const heaps = this.bindHeaps(best, m, queryRows);
    const bytes = encodedBytes(base.encoding);
    const inv = metric === 'cosine' ? (base.invNorms ?? codedInvNorms(base, dim)) : new Float32Array(4);
    const params = this.bind('params', base.params ?? new Float32Array(4));
    const resident = this.bindsInPlace(base.codes);
    const whole = resident ? this.bind('codes', base.codes) : undefined;
    // each chunk is decoded on the device into float32 rows, then scored and merged like scanTopK
    const step = this.chunkRows(n, Math.max(base.stride * bytes, dim * 4), m * 4, SCORE_TILE);
    for (let from = 0; from < n; from += step) {
      const to = Math.min(n, from + step);
      const rows = to - from;
      const codes = whole ?? this.bind('codes', base.codes.subarray(from * base.stride * bytes, ((to - 1) * base.stride + dim) * bytes));
      const codeOffset = whole ? whole.offset / bytes + from * base.stride : 0;
      const decoded = this.scratchBuffer('decoded', rows * dim * 4);
      const bInv = metric === 'cosine' ? this.bind('bInv', inv.subarray(from, to)) : this.bind('bInv', inv);
      const ids = baseIds ? this.bind('ids', baseIds.subarray(from, to)) : undefined;
      const scores = this.scratchBuffer('scores', m * rows * 4);
      const encoder = this.device.createCommandEncoder();
      const groups = Math.ceil((rows * dim) / GROUP);
      const u0 = this.dispatch(encoder, 'decode', [rows, dim, base.stride, base.encoding === 'f16' ? 0 : 1, codeOffset, params.offset, 0, 0], [codes.buffer, params.buffer, decoded], Math.min(groups, MAX_GROUPS), Math.ceil(groups / MAX_GROUPS));
      const u1 = this.dispatch(encoder, 'score', [m, rows, dim, METRIC_CODE[metric], q.offset, queries.stride, 0, dim, qInv.offset, bInv.offset, 0, rows], [q.buffer, decoded, qInv.buffer, bInv.buffer, scores], Math.ceil(rows / SCORE_TILE), Math.ceil(m / SCORE_TILE));
      const u2 = this.topk(encoder, m, rows, best.k, scores, rows, ids, ids ? 1 : 0, 0, from, undefined, heaps);
      await this.submit(encoder, [u0, u1, u2]);
    }
    await this.readHeaps(best, m, queryRows, heaps);
  }

  async rescoreTopK(queries: RowBlock, base: RowBlock, dim: number, metric: Metric, candidates: TopK, best: TopK): Promise<void> {
    checkRescore(queries, base, dim, candidates, best);
    const m = queries.rows;
    if (m === 0 || base.rows === 0) return;
    await this.ready();
    const ck = candidates.k;
    const q = this.bindRows('q', queries, dim, 0, m);
    const qInv = this.bindNorms('qInv', queries, dim, metric, 0, m);
    const counts = this.bind('counts', candidates.sizes.subarray(0, m));
    let b: Bound, bInv: Bound, rowsOf: Bound, stride: number;
    if (this.bindsInPlace(base.data)) {
      // rows read in place on the device
      b = this.bindRows('b', base, dim, 0, base.rows);
      bInv = this.bindNorms('bInv', base, dim, metric, 0, base.rows);
      rowsOf = this.bind('cand', candidates.ids.subarray(0, m * ck));
      stride = base.stride;
    } else {
      // too large to bind (or not resident): gather the candidates' rows
      const gathered = new Float32Array(m * ck * dim);
      const inv = new Float32Array(m * ck);
      const norms = metric === 'cosine' ? (base.invNorms ?? computeInvNorms(base, dim)) : undefined;
      const at = new Int32Array(m * ck);
      for (let t = 0; t < m; t++) {
        for (let i = 0; i < candidates.sizes[t]; i++) {
          const row = candidates.ids[t * ck + i];
          const from = (base.offset ?? 0) + row * base.stride;
          gathered.set(base.data.subarray(from, from + dim), (t * ck + i) * dim);
          if (norms) inv[t * ck + i] = norms[row];
          at[t * ck + i] = t * ck + i;
        }
      }
      b = this.bind('b', gathered);
      bInv = this.bind('bInv', inv);
      rowsOf = this.bind('cand', at);
      stride = dim;
    }
    const ids = this.bind('ids', candidates.ids.subarray(0, m * ck));
    const heaps = this.bindHeaps(best, m);
    const scores = this.scratchBuffer('scores', m * ck * 4);
    const encoder = this.device.createCommandEncoder();
    const u1 = this.dispatch(encoder, 'rescore', [m, ck, dim, METRIC_CODE[metric], q.offset, queries.stride, b.offset, stride, qInv.offset, bInv.offset], [q.buffer, b.buffer, qInv.buffer, bInv.buffer, rowsOf.buffer, counts.buffer, scores], Math.ceil(ck / GROUP), m);
    const u2 = this.topk(encoder, m, ck, best.k, scores, ck, ids, 2, ck, 0, counts.buffer, heaps);
    await this.submit(encoder, [u1, u2]);
    await this.readHeaps(best, m, undefined, heaps);
  }

  async adcScanTopK(tables: Float32Array, queries: number, m: number, codes: Uint8Array, rows: number, best: TopK, baseIds?: Int32Array, queryRows?: Int32Array, bias?: Float32Array): Promise<void> {
    checkAdcScan(tables, queries, m, codes, rows, baseIds, bias);
    if (queries === 0 || rows === 0) return;
    await this.ready();
    const t = this.bind('tables', tables.subarray(0, queries * m * 256));
    const biasBound = this.bind('bias', bias ? bias.subarray(0, queries) : new Float32Array(4));
    const heaps = this.bindHeaps(best, queries, queryRows);
    const step = this.chunkRows(rows, m, queries * 4, GROUP);
    for (let from = 0; from < rows; from += step) {
      const to = Math.min(rows, from + step);
      const n = to - from;
      const c = this.bind('codes', codes.subarray(from * m, to * m));
      const ids = baseIds ? this.bind('ids', baseIds.subarray(from, to)) : undefined;
      const scores = this.scratchBuffer('scores', queries * n * 4);
      const encoder = this.device.createCommandEncoder();
      const u1 = this.dispatch(encoder, 'adc', [queries, n, m, bias ? 1 : 0, 0, t.offset, biasBound.offset], [t.buffer, c.buffer, biasBound.buffer, scores], Math.ceil(n / GROUP), queries);
      const u2 = this.topk(encoder, queries, n, best.k, scores, n, ids, ids ? 1 : 0, 0, from, undefined, heaps);
      await this.submit(encoder, [u1, u2]);
    }
    await this.readHeaps(best, queries, queryRows, heaps);
  }

  async assign(vectors: RowBlock, centroids: RowBlock, dim: number, metric: Metric, labels: Int32Array, scores: Float32Array): Promise<void> {
    checkAssign(vectors, centroids, dim, labels, scores);
    const n = vectors.rows;
    if (n === 0) return;
    await this.ready();
    const c = this.bindRows('b', centroids, dim, 0, centroids.rows);
    const cInv = this.bindNorms('bInv', centroids, dim, metric, 0, centroids.rows);
    const step = this.chunkRows(n, vectors.stride * 4, 8, GROUP * MAX_GROUPS);
    for (let from = 0; from < n; from += step) {
      const to = Math.min(n, from + step);
      const count = to - from;
      const v = this.bindRows('q', vectors, dim, from, to);
      const vInv = this.bindNorms('qInv', vectors, dim, metric, from, to);
      const outLabels = this.scratchBuffer('labels', count * 4);
      const outScores = this.scratchBuffer('scores', count * 4);
      const encoder = this.device.createCommandEncoder();
      const groups = Math.ceil(count / GROUP);
      const u = this.dispatch(encoder, 'assign', [count, centroids.rows, dim, METRIC_CODE[metric], v.offset, vectors.stride, c.offset, centroids.stride, vInv.offset, cInv.offset], [v.buffer, c.buffer, vInv.buffer, cInv.buffer, outLabels, outScores], Math.min(groups, MAX_GROUPS), Math.ceil(groups / MAX_GROUPS));
      await this.submit(encoder, [u]);
      labels.set(new Int32Array(await this.readBack(outLabels, count * 4)), from);
      scores.set(new Float32Array(await this.readBack(outScores, count * 4)), from);
    }
  }

  async centroidSums(vectors: RowBlock, dim: number, labels: Int32Array, k: number, sums: Float32Array, counts: Int32Array): Promise<void> {
    checkCentroidSums(vectors, dim, labels, k, sums, counts);
    await this.ready();
    counts.fill(0, 0, k);
    const n = vectors.rows;
    const out = this.scratchBuffer('sums', k * dim * 4);
    const step = this.chunkRows(n, vectors.stride * 4, 4, Number.MAX_SAFE_INTEGER);
    for (let from = 0; from < Math.max(n, 1); from += step) {
      const to = Math.min(n, from + step);
      // counting sort of this chunk's vectors by label: each cluster's segment is contiguous, in order of vector number
      const start = new Int32Array(k + 1);
      for (let i = from; i < to; i++) start[labels[i] + 1]++;
      for (let c = 0; c < k; c++) start[c + 1] += start[c];
      const order = new Int32Array(Math.max(1, to - from));
      const fill = start.slice(0, k);
      for (let i = from; i < to; i++) order[fill[labels[i]]++] = i - from;
      for (let c = 0; c < k; c++) counts[c] += start[c + 1] - start[c];
      const v = this.bindRows('q', vectors, dim, from, to);
      const orderBound = this.bind('order', order);
      const startBound = this.bind('start', start);
      const encoder = this.device.createCommandEncoder();
      const uniforms: GPUBuffer[] = [];
      for (let cBase = 0; cBase < k; cBase += MAX_GROUPS) {
        uniforms.push(this.dispatch(encoder, 'centroid-sums', [k, dim, v.offset, vectors.stride, cBase, from > 0 ? 1 : 0], [v.buffer, orderBound.buffer, startBound.buffer, out], Math.ceil(dim / GROUP), Math.min(MAX_GROUPS, k - cBase)));
      }
      await this.submit(encoder, uniforms);
    }
    sums.set(new Float32Array(await this.readBack(out, k * dim * 4)));
  }

  async dispose(): Promise<void> {
    for (const buffer of this.scratch.values()) buffer.destroy();
    this.scratch.clear();
    this.gpu.device.destroy();
  }
}
