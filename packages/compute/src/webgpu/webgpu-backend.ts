import type { ArenaArray, ArrayArena } from '../arena.js';
import type { Backend } from '../backend.js';
import { checkCoded, codedInvNorms, encodedBytes, type CodedRows } from '../coded.js';
import { checkFastScan, checkFastScanLists, composedFastScanListsTopK, FASTSCAN_BLOCK, fastScanBytes, fastScanProbeTable, quantizeFastScanTable, type FastScanLists, type FastScanTables } from '../fastscan.js';
import type { Metric } from '../metric.js';
import { computeInvNorms } from '../reference/kernels.js';
import { checkAdcScan, checkAssign, checkCentroidSums, checkPrefix, checkRescore, rowBlock, type RowBlock } from '../rows.js';
import { TopK } from '../topk.js';
import { checkListScan, checkPqScan, composedPqScanListsTopK, composedRescoreListsTopK, composedScanListsTopK, listBytesPerElement, listCodeBytes, PQ_TABLE, type ListCandidates, type ListSet, type PqQuantizer } from '../lists.js';
import { checkMask, maskCodes, maskCoded, maskFastScanCodes, maskFastScanLists, maskListSet, maskRows } from '../mask.js';
import { openWebGpu, type WebGpuDevice } from './device.js';
import { kernelSource } from './wgsl.js';

const METRIC_CODE: Record<Metric, number> = { cosine: 0, ip: 1, l2: 2 };
const KERNELS = ['score', 'topk', 'adc', 'rescore', 'assign', 'centroid-sums', 'decode', 'fastscan', 'list-scan', 'pq-tables', 'pq-scan'] as const;
type Kernel = (typeof KERNELS)[number];
const SCORE_TILE = 8;
const GROUP = 64;
const MAX_GROUPS = 65535;
/** topk.wgsl: candidates one workgroup sorts, and its invocations. */
const TOPK_TILE = 512;
const TOPK_GROUP = 128;
/** Lists left for topk.wgsl's merge pass, which does a binary search per list and entry. */
const MERGE_LISTS = 4;
/** Bytes of one dispatch's Params (16 words at most), and dispatches per submit sharing the uniform ring. */
const UNIFORM_BYTES = 64;
const UNIFORM_SLOTS = 64;
/** Read-back buffers kept for reuse, and bind groups kept (oldest dropped first). */
const STAGING_KEPT = 2;
const GROUPS_KEPT = 4096;

/** Where a kernel finds an array: a device buffer and the element offset of the array in it. */
interface Bound {
  buffer: GPUBuffer;
  offset: number;
}

/**
 * Per-query heaps of one call on the device, in one buffer (topk.wgsl's
 * layout: ids, score bits, sizes), so they go up in one write and come back in
 * one read. maxSize bounds the entries any row holds, host-side.
 */
interface Heaps {
  buffer: GPUBuffer;
  rows: number;
  k: number;
  maxSize: number;
}

const align4 = (bytes: number) => Math.ceil(bytes / 4) * 4;
const align16 = (bytes: number) => Math.ceil(bytes / 16) * 16;
/** list-scan.wgsl: a list without kept norms (computed in the kernel). */
const NO_NORMS = 0xffffffff;

/** Row q of `queries` as a block of one row (with its inverse norm when kept). */
function queryRow(queries: RowBlock, q: number): RowBlock {
  return rowBlock(queries.data, 1, queries.stride, (queries.offset ?? 0) + q * queries.stride, queries.invNorms?.subarray(q, q + 1));
}

/** Workgroup grid (y, z) covering `rows` rows (y + z * 65535 in the kernels). */
function rowGrid(rows: number): [number, number] {
  return [Math.min(rows, MAX_GROUPS), Math.ceil(rows / MAX_GROUPS)];
}

/**
 * Arrays allocated here are plain heap arrays the backend may keep on the
 * device between calls; the index calls touched() after writing one in
 * place, which makes the next call upload it again.
 */
class ResidentArena implements ArrayArena {
  readonly resident = new WeakSet<ArrayBufferLike>();
  mirrors = new WeakMap<ArrayBufferLike, GPUBuffer>();

  /** `drop` destroys a device copy (through the backend, which forgets what it cached on it). */
  constructor(private readonly drop: (buffer: GPUBuffer) => void) {}

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
    const mirror = this.mirrors.get(array.buffer);
    if (mirror) this.drop(mirror);
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
 * adapter's binding size is split into chunks of base rows.
 *
 * A call encodes its dispatches without waiting between them (chunks are
 * submitted as they go: queue order keeps each chunk's uploads and
 * dispatches together) and ends with one copy of all its results into one
 * pooled read-back buffer, mapped once. Pipelines, the uniform ring (one
 * 256-byte-aligned slot per dispatch of a submit) and bind groups (per
 * kernel, slot and buffer set) are created once and reused; a destroyed
 * buffer takes its bind groups with it. Top-k runs in parallel on the device
 * (topk.wgsl) with the same total order as the CPU backends, so results agree
 * with them up to float rounding. Calls run one at a time (they share the
 * scratch buffers).
 */
export class WebGpuBackend implements Backend {
  readonly name = 'webgpu';
  readonly arena = new ResidentArena((buffer) => this.destroyBuffer(buffer));
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly scratch = new Map<string, GPUBuffer>();
  /** Every buffer this backend created and has not destroyed, with its id (bind-group keys). */
  private readonly live = new Map<GPUBuffer, number>();
  private nextId = 1;
  private readonly groups = new Map<string, { group: GPUBindGroup; ids: number[] }>();
  private readonly groupsOf = new Map<number, Set<string>>();
  private readonly staging: GPUBuffer[] = [];
  private ring: GPUBuffer | undefined;
  private zeros: GPUBuffer | undefined;
  private uniformData = new Uint32Array(0);
  private encoder: GPUCommandEncoder | undefined;
  private slots = 0;
  private locked: Promise<void> = Promise.resolve();
  private lost: string | undefined;
  private failure: string | undefined;
  private disposed = false;
  /** Read-back buffers a call holds (given back at its end if it failed before mapping them). */
  private readonly taken = new Set<GPUBuffer>();

  private constructor(
    private gpu: WebGpuDevice,
    private readonly bindingCap: number,
  ) {
    this.watch();
  }

  /** maxBindingBytes caps the bytes one binding may hold below the adapter's limit, so tests can reach the chunked paths with small inputs. */
  static async create(options: { maxBindingBytes?: number } = {}): Promise<WebGpuBackend> {
    const cap = options.maxBindingBytes ?? Infinity;
    if (!(cap >= 1024)) throw new Error(`maxBindingBytes must be at least 1024, got ${options.maxBindingBytes}`);
    return new WebGpuBackend(await openWebGpu(), cap);
  }

  /** What the backend runs on, for logs. */
  get description(): string {
    return `${this.gpu.description} via ${this.gpu.api}${this.gpu.software ? ' (software)' : ''}`;
  }

  get software(): boolean {
    return this.gpu.software;
  }

  /** Device buffers alive (scratch, resident mirrors, read-back, uniforms), buffers created so far, bind groups cached: what reuse keeps bounded. */
  get resources(): { buffers: number; created: number; bindGroups: number } {
    return { buffers: this.live.size, created: this.nextId - 1, bindGroups: this.groups.size };
  }

  private watch(): void {
    const device = this.gpu.device;
    void device.lost.then((info) => {
      if (this.gpu.device === device && info.reason !== 'destroyed') this.lost = info.message || String(info.reason);
    });
    // a validation error (a kernel that does not compile, a bad binding) would otherwise leave results silently stale
    device.onuncapturederror = (event) => {
      this.failure ??= event.error.message;
    };
  }

  /** Throws the first device error since the last check. */
  private checkErrors(): void {
    if (this.lost !== undefined) throw new Error(`WebGPU device lost during the call: ${this.lost}`);
    const failure = this.failure;
    this.failure = undefined;
    if (failure !== undefined) throw new Error(`WebGPU error: ${failure}`);
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
    this.forget();
    this.watch();
  }

  /** Drops every cache of device objects (after a loss, or on dispose). */
  private forget(): void {
    this.pipelines.clear();
    this.scratch.clear();
    this.live.clear();
    this.groups.clear();
    this.groupsOf.clear();
    this.staging.length = 0;
    this.taken.clear();
    this.ring = undefined;
    this.zeros = undefined;
    this.encoder = undefined;
    this.slots = 0;
    this.arena.mirrors = new WeakMap();
  }

  /** Waits for the calls before this one (they share scratch buffers and the encoder); returns the release. */
  private async lock(): Promise<() => void> {
    const before = this.locked;
    let release!: () => void;
    this.locked = new Promise((resolve) => (release = resolve));
    await before;
    try {
      if (this.disposed) throw new Error('the WebGPU backend was disposed');
      await this.ready();
    } catch (e) {
      release();
      throw e;
    }
    return release;
  }

  private async exclusive<T>(work: () => Promise<T>): Promise<T> {
    const release = await this.lock();
    try {
      return await work();
    } finally {
      // a failed call may leave work encoded: drop it rather than submit it with the next call
      this.encoder = undefined;
      this.slots = 0;
      for (const staging of this.taken) this.giveStaging(staging);
      release();
    }
  }

  private pipeline(kernel: Kernel, entryPoint: string): GPUComputePipeline {
    const key = `${kernel}:${entryPoint}`;
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      const code = kernelSource(kernel);
      pipeline = this.device.createComputePipeline({ layout: 'auto', compute: { module: this.device.createShaderModule({ code }), entryPoint } });
      this.pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  private get maxBinding(): number {
    return Math.min(this.gpu.limits.maxStorageBufferBindingSize, this.gpu.limits.maxBufferSize, this.bindingCap);
  }

  /** Uniform slots are this far apart in the ring (the adapter's offset alignment). */
  private get slotBytes(): number {
    return Math.max(UNIFORM_BYTES, this.gpu.limits.minUniformBufferOffsetAlignment);
  }

  private createBuffer(size: number, usage: number): GPUBuffer {
    const buffer = this.device.createBuffer({ size, usage });
    this.live.set(buffer, this.nextId++);
    return buffer;
  }

  /** Destroys a buffer and the bind groups that name it. */
  private destroyBuffer(buffer: GPUBuffer): void {
    const id = this.live.get(buffer);
    if (id !== undefined) {
      for (const key of this.groupsOf.get(id) ?? []) this.dropGroup(key);
      this.groupsOf.delete(id);
      this.live.delete(buffer);
    }
    buffer.destroy();
  }

  private dropGroup(key: string): void {
    for (const id of this.groups.get(key)?.ids ?? []) this.groupsOf.get(id)?.delete(key);
    this.groups.delete(key);
  }

  /** The command encoder of the work not yet submitted. */
  private get pending(): GPUCommandEncoder {
    return (this.encoder ??= this.device.createCommandEncoder());
  }

  /** Submits what is encoded, after writing its dispatches' uniforms; nothing waits. */
  private flush(): void {
    if (!this.encoder) return;
    if (this.slots > 0) this.device.queue.writeBuffer(this.uniformRing(), 0, this.uniformData.buffer, 0, this.slots * this.slotBytes);
    this.device.queue.submit([this.encoder.finish()]);
    this.encoder = undefined;
    this.slots = 0;
    if (this.lost !== undefined) throw new Error(`WebGPU device lost during the call: ${this.lost}`);
  }

  private uniformRing(): GPUBuffer {
    if (!this.ring) {
      this.ring = this.createBuffer(UNIFORM_SLOTS * this.slotBytes, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
      this.uniformData = new Uint32Array((UNIFORM_SLOTS * this.slotBytes) / 4);
    }
    return this.ring;
  }

  /** A zero-filled buffer for bindings a dispatch does not read. */
  private unused(): GPUBuffer {
    return (this.zeros ??= this.createBuffer(16, GPUBufferUsage.STORAGE));
  }

  /** A reusable device buffer of at least `bytes` for `slot`. */
  private scratchBuffer(slot: string, bytes: number, usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC): GPUBuffer {
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    const held = this.scratch.get(slot);
    if (held && held.size >= size) return held;
    if (held) {
      this.flush(); // encoded work may still name the old buffer
      this.destroyBuffer(held);
    }
    // grow by doubling (within the binding limit) so a run of growing calls reallocates rarely
    const buffer = this.createBuffer(Math.max(size, Math.min(this.maxBinding, (held?.size ?? 0) * 2)), usage);
    this.scratch.set(slot, buffer);
    return buffer;
  }

  private write(buffer: GPUBuffer, view: ArrayBufferView): void {
    // queue writes run before the next submit: work encoded with the old contents goes first
    this.flush();
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
  private bind(slot: string, view: Float32Array | Int32Array | Uint8Array | Uint32Array): Bound {
    const whole = view.buffer;
    if (this.bindsInPlace(view)) {
      let mirror = this.arena.mirrors.get(whole);
      if (!mirror) {
        mirror = this.createBuffer(Math.max(16, Math.ceil(whole.byteLength / 16) * 16), GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC);
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
    if (metric !== 'cosine') return { buffer: this.unused(), offset: 0 };
    if (block.invNorms) {
      if (block.invNorms.length < block.rows) throw new Error(`invNorms has ${block.invNorms.length} entries for ${block.rows} rows`);
      if (!this.bindsInPlace(block.invNorms)) return this.bind(slot, block.invNorms.subarray(from, to));
      const bound = this.bind(slot, block.invNorms);
      return { buffer: bound.buffer, offset: bound.offset + from };
    }
    const part: RowBlock = { data: block.data, rows: to - from, stride: block.stride, offset: (block.offset ?? 0) + from * block.stride };
    return this.bind(slot, computeInvNorms(part, dim));
  }

  /** The bind group of (kernel entry, uniform slot, buffers), created on first use. Buffer i binds at i + 1; undefined skips it. */
  private bindGroup(kernel: Kernel, entryPoint: string, pipeline: GPUComputePipeline, slot: number, buffers: (GPUBuffer | undefined)[]): GPUBindGroup {
    const ids = buffers.map((b) => (b ? this.live.get(b) ?? -1 : 0));
    const key = `${kernel}:${entryPoint}:${slot}:${ids.join(',')}`;
    const held = this.groups.get(key);
    if (held && !ids.includes(-1)) return held.group;
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: this.uniformRing(), offset: slot * this.slotBytes, size: UNIFORM_BYTES } }];
    buffers.forEach((buffer, i) => {
      if (buffer) entries.push({ binding: i + 1, resource: { buffer } });
    });
    const group = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    // a buffer created elsewhere (not tracked) cannot invalidate a cached group: don't cache those
    if (ids.includes(-1)) return group;
    const named = ids.filter((id) => id > 0);
    if (this.groups.size >= GROUPS_KEPT) this.dropGroup(this.groups.keys().next().value!);
    this.groups.set(key, { group, ids: named });
    for (const id of named) {
      let keys = this.groupsOf.get(id);
      if (!keys) this.groupsOf.set(id, (keys = new Set()));
      keys.add(key);
    }
    return group;
  }

  /** Encodes one dispatch; its params go to the next slot of the uniform ring (a full ring submits first). */
  private dispatch(kernel: Kernel, params: number[], buffers: (GPUBuffer | undefined)[], x: number, y = 1, z = 1, entryPoint = 'main'): void {
    if (params.length > UNIFORM_BYTES / 4) throw new Error(`${kernel}: ${params.length} params exceed the ${UNIFORM_BYTES / 4}-word uniform slot`);
    if (this.slots === UNIFORM_SLOTS) this.flush();
    this.uniformRing();
    const slot = this.slots++;
    const at = (slot * this.slotBytes) / 4;
    this.uniformData.fill(0, at, at + UNIFORM_BYTES / 4);
    this.uniformData.set(params, at);
    const pipeline = this.pipeline(kernel, entryPoint);
    const pass = this.pending.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, this.bindGroup(kernel, entryPoint, pipeline, slot, buffers));
    pass.dispatchWorkgroups(x, y, z);
    pass.end();
  }

  /** A pooled read-back buffer of at least `bytes`. */
  private takeStaging(bytes: number): GPUBuffer {
    const size = Math.max(256, 2 ** Math.ceil(Math.log2(align4(bytes))));
    if (size > this.gpu.limits.maxBufferSize) throw new Error(`a read-back of ${bytes} bytes exceeds the adapter's buffer size limit (${this.gpu.limits.maxBufferSize})`);
    const at = this.staging.findIndex((b) => b.size >= size);
    const buffer = at >= 0 ? this.staging.splice(at, 1)[0] : this.createBuffer(size, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    this.taken.add(buffer);
    return buffer;
  }

  private giveStaging(buffer: GPUBuffer): void {
    this.taken.delete(buffer);
    if (buffer.mapState !== 'unmapped') {
      this.destroyBuffer(buffer); // a failed map: not reusable
      return;
    }
    this.staging.push(buffer);
    this.staging.sort((a, b) => b.size - a.size);
    while (this.staging.length > STAGING_KEPT) this.destroyBuffer(this.staging.pop()!);
  }

  /** Encodes a copy of `bytes` of `source` into a read-back buffer at `at`. */
  private copyOut(source: GPUBuffer, sourceOffset: number, staging: GPUBuffer, at: number, bytes: number): void {
    if (bytes > 0) this.pending.copyBufferToBuffer(source, sourceOffset, staging, at, align4(bytes));
  }

  /** Submits the encoded work and maps the read-back buffer once: its first `bytes`. */
  private async mapStaging(staging: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
    try {
      this.flush();
      const size = Math.max(4, align4(bytes));
      await staging.mapAsync(GPUMapMode.READ, 0, size);
      const copy = staging.getMappedRange(0, size).slice(0, bytes);
      staging.unmap();
      this.checkErrors();
      return copy;
    } finally {
      this.giveStaging(staging);
    }
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
    return this.exclusive(async () => {
      const q = this.bindRows('q', queries, dim, 0, m);
      const qInv = this.bindNorms('qInv', queries, dim, metric, 0, m);
      const step = this.chunkRows(n, base.stride * 4, m * 4, SCORE_TILE);
      // every chunk's scores are copied into one read-back buffer (chunk after chunk), mapped once
      const staging = this.takeStaging(m * n * 4);
      for (let from = 0; from < n; from += step) {
        const to = Math.min(n, from + step);
        const rows = to - from;
        const b = this.bindRows('b', base, dim, from, to);
        const bInv = this.bindNorms('bInv', base, dim, metric, from, to);
        const scores = this.scratchBuffer('scores', m * rows * 4);
        this.dispatch('score', [m, rows, dim, METRIC_CODE[metric], q.offset, queries.stride, b.offset, base.stride, qInv.offset, bInv.offset, 0, rows], [q.buffer, b.buffer, qInv.buffer, bInv.buffer, scores], Math.ceil(rows / SCORE_TILE), Math.ceil(m / SCORE_TILE));
        this.copyOut(scores, 0, staging, m * from * 4, m * rows * 4);
      }
      const result = new Float32Array(await this.mapStaging(staging, m * n * 4));
      for (let from = 0; from < n; from += step) {
        const rows = Math.min(n, from + step) - from;
        for (let t = 0; t < m; t++) out.set(result.subarray(m * from + t * rows, m * from + (t + 1) * rows), t * n + from);
      }
    });
  }

  /** Heaps of the call's rows on the device (copied from `best`), for topk(). */
  private bindHeaps(best: TopK, rows: number, queryRows?: Int32Array): Heaps {
    const k = best.k;
    const words = new Uint32Array(rows * k * 2 + rows);
    const ids = new Int32Array(words.buffer, 0, rows * k);
    const scores = new Float32Array(words.buffer, rows * k * 4, rows * k);
    const sizes = new Int32Array(words.buffer, rows * k * 8, rows);
    let maxSize = 0;
    for (let t = 0; t < rows; t++) {
      const row = queryRows ? queryRows[t] : t;
      const size = best.sizes[row];
      ids.set(best.ids.subarray(row * k, row * k + size), t * k);
      scores.set(best.scores.subarray(row * k, row * k + size), t * k);
      sizes[t] = size;
      maxSize = Math.max(maxSize, size);
    }
    return { buffer: this.bind('heaps', words).buffer, rows, k, maxSize };
  }

  /** Reads the heaps back (one copy, one map) into their rows of `best`. */
  private async readHeaps(best: TopK, queryRows: Int32Array | undefined, heaps: Heaps): Promise<void> {
    const { rows, k } = heaps;
    const bytes = (rows * k * 2 + rows) * 4;
    const staging = this.takeStaging(bytes);
    this.copyOut(heaps.buffer, 0, staging, 0, bytes);
    const words = await this.mapStaging(staging, bytes);
    const ids = new Int32Array(words, 0, rows * k);
    const scores = new Float32Array(words, rows * k * 4, rows * k);
    const sizes = new Int32Array(words, rows * k * 8, rows);
    for (let t = 0; t < rows; t++) {
      const row = queryRows ? queryRows[t] : t;
      best.ids.set(ids.subarray(t * k, t * k + sizes[t]), row * k);
      best.scores.set(scores.subarray(t * k, t * k + sizes[t]), row * k);
      best.sizes[row] = sizes[t];
    }
  }

  /** A top-k list buffer (topk.wgsl) of `tiles` lists of `kp` entries per row. */
  private listsBuffer(slot: string, rows: number, tiles: number, kp: number): GPUBuffer {
    const bytes = (rows * tiles * kp * 2 + rows * tiles) * 4;
    if (bytes > this.maxBinding) throw new Error(`top-k of ${rows} rows (k = ${kp}) needs ${bytes} bytes of device lists, above the adapter's binding limit (${this.maxBinding})`);
    return this.scratchBuffer(slot, bytes);
  }

  /**
   * Encodes the parallel merge of `n` candidates per row (scores[scoreOffset
   * + r * scoreStride + j]; ids by idsMode, see topk.wgsl; counts[r] of them
   * when given) into the heaps: a tile pass over the candidates and the old
   * heap entries, reduce passes while they shrink the lists, one merge pass.
   */
  private topk(rows: number, n: number, scores: GPUBuffer, scoreOffset: number, scoreStride: number, ids: Bound | undefined, idsMode: number, idsStride: number, idBase: number, counts: GPUBuffer | undefined, heaps: Heaps): void {
    const k = heaps.k;
    const kp = Math.min(k, TOPK_TILE);
    const scoreTiles = Math.ceil(n / TOPK_TILE);
    let tiles = scoreTiles + Math.ceil(heaps.maxSize / TOPK_TILE);
    const [y, z] = rowGrid(rows);
    const head = [rows, n, k, idsMode, scoreOffset, scoreStride, ids?.offset ?? 0, idsStride, idBase, counts ? 1 : 0, scoreTiles];
    let lists = this.listsBuffer('topkA', rows, tiles, kp);
    this.dispatch('topk', [...head, 0, 0, tiles, kp, heaps.maxSize], [scores, ids?.buffer ?? this.unused(), counts ?? this.unused(), heaps.buffer, undefined, lists], tiles, y, z, 'tile');
    let other = 'topkB';
    // each reduce pass keeps kp of every TOPK_TILE entries: worth it while that shrinks the lists
    while (tiles > MERGE_LISTS && kp * 2 <= TOPK_TILE) {
      const next = Math.ceil((tiles * kp) / TOPK_TILE);
      const out = this.listsBuffer(other, rows, next, kp);
      this.dispatch('topk', [rows, 0, k, 0, 0, 0, 0, 0, 0, 0, 0, tiles, kp, next, kp], [undefined, undefined, undefined, undefined, lists, out], next, y, z, 'reduce');
      other = other === 'topkA' ? 'topkB' : 'topkA';
      lists = out;
      tiles = next;
    }
    this.dispatch('topk', [rows, 0, k, 0, 0, 0, 0, 0, 0, 0, 0, tiles, kp, 0, 0], [undefined, undefined, undefined, heaps.buffer, lists, undefined], Math.ceil((tiles * kp) / TOPK_GROUP), y, z, 'merge');
    heaps.maxSize = Math.min(k, heaps.maxSize + n);
  }

  async scanTopK(queries: RowBlock, base: RowBlock, dim: number, metric: Metric, best: TopK, baseIds?: Int32Array, queryRows?: Int32Array, mask?: Uint32Array): Promise<void> {
    checkPrefix(queries, dim, 'scan queries');
    checkPrefix(base, dim, 'scan base');
    checkMask(mask, 'scan');
    const m = queries.rows, n = base.rows;
    if (m === 0 || n === 0) return;
    if (mask) {
      // filters: the allowed rows are compacted on the host and scanned unmasked (mask.ts)
      const kept = maskRows(mask, base, dim, baseIds);
      if (kept) return kept.base.rows > 0 ? this.scanTopK(queries, kept.base, dim, metric, best, kept.ids, queryRows) : undefined;
    }
    if (baseIds && baseIds.length < n) throw new Error(`scan: ${baseIds.length} base ids for ${n} rows`);
    return this.exclusive(async () => {
      const q = this.bindRows('q', queries, dim, 0, m);
      const qInv = this.bindNorms('qInv', queries, dim, metric, 0, m);
      const heaps = this.bindHeaps(best, m, queryRows);
      // per candidate: its score and up to 8 bytes of top-k lists
      const step = this.chunkRows(n, base.stride * 4, m * 12, SCORE_TILE);
      for (let from = 0; from < n; from += step) {
        const to = Math.min(n, from + step);
        const rows = to - from;
        const b = this.bindRows('b', base, dim, from, to);
        const bInv = this.bindNorms('bInv', base, dim, metric, from, to);
        const ids = baseIds ? this.bind('ids', baseIds.subarray(from, to)) : undefined;
        const scores = this.scratchBuffer('scores', m * rows * 4);
        this.dispatch('score', [m, rows, dim, METRIC_CODE[metric], q.offset, queries.stride, b.offset, base.stride, qInv.offset, bInv.offset, 0, rows], [q.buffer, b.buffer, qInv.buffer, bInv.buffer, scores], Math.ceil(rows / SCORE_TILE), Math.ceil(m / SCORE_TILE));
        this.topk(m, rows, scores, 0, rows, ids, ids ? 1 : 0, 0, from, undefined, heaps);
      }
      await this.readHeaps(best, queryRows, heaps);
    });
  }

  async scanCodedTopK(queries: RowBlock, base: CodedRows, dim: number, metric: Metric, best: TopK, baseIds?: Int32Array, queryRows?: Int32Array, mask?: Uint32Array): Promise<void> {
    checkPrefix(queries, dim, 'scan queries');
    checkCoded(base, dim, 'scan base');
    checkMask(mask, 'scan');
    const m = queries.rows, n = base.rows;
    if (m === 0 || n === 0) return;
    if (mask) {
      const kept = maskCoded(mask, base, baseIds);
      if (kept) return kept.base.rows > 0 ? this.scanCodedTopK(queries, kept.base, dim, metric, best, kept.ids, queryRows) : undefined;
    }
    if (baseIds && baseIds.length < n) throw new Error(`scan: ${baseIds.length} base ids for ${n} rows`);
    return this.exclusive(async () => {
      const q = this.bindRows('q', queries, dim, 0, m);
      const qInv = this.bindNorms('qInv', queries, dim, metric, 0, m);
      const heaps = this.bindHeaps(best, m, queryRows);
      const bytes = encodedBytes(base.encoding);
      const inv = metric === 'cosine' ? (base.invNorms ?? codedInvNorms(base, dim)) : undefined;
      const params = this.bind('params', base.params ?? new Float32Array(4));
      const resident = this.bindsInPlace(base.codes);
      const whole = resident ? this.bind('codes', base.codes) : undefined;
      // each chunk is decoded on the device into float32 rows, then scored and merged like scanTopK
      const step = this.chunkRows(n, Math.max(base.stride * bytes, dim * 4), m * 12, SCORE_TILE);
      for (let from = 0; from < n; from += step) {
        const to = Math.min(n, from + step);
        const rows = to - from;
        const codes = whole ?? this.bind('codes', base.codes.subarray(from * base.stride * bytes, ((to - 1) * base.stride + dim) * bytes));
        const codeOffset = whole ? whole.offset / bytes + from * base.stride : 0;
        const decoded = this.scratchBuffer('decoded', rows * dim * 4);
        const bInv = inv ? this.bind('bInv', inv.subarray(from, to)) : { buffer: this.unused(), offset: 0 };
        const ids = baseIds ? this.bind('ids', baseIds.subarray(from, to)) : undefined;
        const scores = this.scratchBuffer('scores', m * rows * 4);
        const groups = Math.ceil((rows * dim) / GROUP);
        this.dispatch('decode', [rows, dim, base.stride, base.encoding === 'f16' ? 0 : 1, codeOffset, params.offset, 0, 0], [codes.buffer, params.buffer, decoded], Math.min(groups, MAX_GROUPS), Math.ceil(groups / MAX_GROUPS));
        this.dispatch('score', [m, rows, dim, METRIC_CODE[metric], q.offset, queries.stride, 0, dim, qInv.offset, bInv.offset, 0, rows], [q.buffer, decoded, qInv.buffer, bInv.buffer, scores], Math.ceil(rows / SCORE_TILE), Math.ceil(m / SCORE_TILE));
        this.topk(m, rows, scores, 0, rows, ids, ids ? 1 : 0, 0, from, undefined, heaps);
      }
      await this.readHeaps(best, queryRows, heaps);
    });
  }

  async rescoreTopK(queries: RowBlock, base: RowBlock, dim: number, metric: Metric, candidates: TopK, best: TopK): Promise<void> {
    checkRescore(queries, base, dim, candidates, best);
    const m = queries.rows;
    if (m === 0 || base.rows === 0) return;
    return this.exclusive(async () => {
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
      this.dispatch('rescore', [m, ck, dim, METRIC_CODE[metric], q.offset, queries.stride, b.offset, stride, qInv.offset, bInv.offset], [q.buffer, b.buffer, qInv.buffer, bInv.buffer, rowsOf.buffer, counts.buffer, scores], Math.ceil(ck / GROUP), m);
      this.topk(m, ck, scores, 0, ck, ids, 2, ck, 0, counts.buffer, heaps);
      await this.readHeaps(best, undefined, heaps);
    });
  }

  /**
   * Host fallback (composedRescoreListsTopK): the candidates are read from
   * the lists and decoded on the host, then rescored by rescoreTopK in one
   * dispatch. A WGSL pass reading the blocked lists in place, as the list
   * scan does, would save the gather.
   */
  rescoreListsTopK(queries: RowBlock, lists: ListSet, candidates: ListCandidates, dim: number, metric: Metric, best: TopK): Promise<void> {
    return composedRescoreListsTopK(this, queries, lists, candidates, dim, metric, best);
  }

  async adcScanTopK(tables: Float32Array, queries: number, m: number, codes: Uint8Array, rows: number, best: TopK, baseIds?: Int32Array, queryRows?: Int32Array, bias?: Float32Array, mask?: Uint32Array): Promise<void> {
    checkAdcScan(tables, queries, m, codes, rows, baseIds, bias);
    checkMask(mask, 'ADC scan');
    if (queries === 0 || rows === 0) return;
    if (mask) {
      const kept = maskCodes(mask, codes, rows, m, baseIds);
      if (kept) return kept.rows > 0 ? this.adcScanTopK(tables, queries, m, kept.codes, kept.rows, best, kept.ids, queryRows, bias) : undefined;
    }
    return this.exclusive(async () => {
      const t = this.bind('tables', tables.subarray(0, queries * m * 256));
      const biasBound = bias ? this.bind('bias', bias.subarray(0, queries)) : { buffer: this.unused(), offset: 0 };
      const heaps = this.bindHeaps(best, queries, queryRows);
      const step = this.chunkRows(rows, m, queries * 12, GROUP);
      for (let from = 0; from < rows; from += step) {
        const to = Math.min(rows, from + step);
        const n = to - from;
        const c = this.bind('codes', codes.subarray(from * m, to * m));
        const ids = baseIds ? this.bind('ids', baseIds.subarray(from, to)) : undefined;
        const scores = this.scratchBuffer('scores', queries * n * 4);
        this.dispatch('adc', [queries, n, m, bias ? 1 : 0, c.offset, t.offset, biasBound.offset], [t.buffer, c.buffer, biasBound.buffer, scores], Math.ceil(n / GROUP), queries);
        this.topk(queries, n, scores, 0, n, ids, ids ? 1 : 0, 0, from, undefined, heaps);
      }
      await this.readHeaps(best, queryRows, heaps);
    });
  }

  /**
   * One pass per block of queries (the whole batch unless its probed lists or
   * candidates exceed a binding): the probed lists are packed into one device
   * buffer (packLists), list-scan.wgsl scores every (query, probed list,
   * member) in one dispatch, and the parallel top-k merges each query's
   * candidates; one read-back.
   */
  async scanListsTopK(queries: RowBlock, lists: ListSet, probes: Int32Array, nprobe: number, dim: number, metric: Metric, best: TopK, mask?: Uint32Array): Promise<void> {
    checkListScan(queries, lists, probes, nprobe, dim, best, 'list scan');
    checkMask(mask, 'list scan');
    if (lists.encoding === 'pq') throw new Error('list scan: PQ codes are scanned by pqScanListsTopK');
    const norms = metric === 'cosine' ? (l: number) => lists.invNorms?.(l, dim) : undefined;
    const segment = (l: number) => align16(listCodeBytes(lists, lists.size(l))) + align16(lists.size(l) * 4) + (norms?.(l) ? align16(lists.size(l) * 4) : 0);
    await this.inBlocks(queries.rows, lists, probes, nprobe, best.k, segment, () => true, {
      block: (q0, q1) => this.scanListBlock(queries, q0, q1, lists, probes, nprobe, dim, metric, best, mask),
      alone: (q) => this.oneQuery(q, best, (row) => composedScanListsTopK(this, queryRow(queries, q), lists, probes.subarray(q * nprobe, (q + 1) * nprobe), nprobe, dim, metric, row, mask)),
    });
  }

  /**
   * The PQ/OPQ list scan in one pass per block of queries: the rotation
   * (score.wgsl against the rotation's rows), the lookup tables of every query
   * (or, for l2 residuals, of every probed pair: pq-tables.wgsl), the ADC scan
   * of every (query, probed list, member) (pq-scan.wgsl) and the parallel
   * top-k, one read-back. The inner-product residual terms x . ref are summed
   * on the host as the composition (lists.ts) does.
   */
  async pqScanListsTopK(queries: RowBlock, pq: PqQuantizer, lists: ListSet, probes: Int32Array, nprobe: number, metric: Metric, best: TopK, mask?: Uint32Array): Promise<void> {
    checkListScan(queries, lists, probes, nprobe, pq.dim, best, 'PQ list scan');
    checkPqScan(queries, pq, lists, metric, 'PQ list scan');
    if (mask) lists = maskListSet(lists, mask);
    const perList = pq.refs !== undefined && metric === 'l2';
    const tableBytes = pq.m * PQ_TABLE * 4;
    const segment = (l: number) => align16(lists.size(l) * pq.m) + align16(lists.size(l) * 4);
    // table sets: one per query, or one per probed pair; and the references of the probed lists
    const fits = (rows: number, pairs: number, listCount: number) => (perList ? pairs : rows) * tableBytes <= this.maxBinding && listCount * pq.dim * 4 <= this.maxBinding && pairs * 32 <= this.maxBinding;
    await this.inBlocks(queries.rows, lists, probes, nprobe, best.k, segment, fits, {
      block: (q0, q1) => this.pqScanBlock(queries, q0, q1, pq, lists, probes, nprobe, metric, best),
      alone: (q) => this.oneQuery(q, best, (row) => composedPqScanListsTopK(this, queryRow(queries, q), pq, lists, probes.subarray(q * nprobe, (q + 1) * nprobe), nprobe, metric, row)),
    });
  }

  /**
   * Runs a list scan over runs of queries whose packed lists (segment(l)
   * bytes per distinct list), candidates and top-k lists fit one binding each
   * (and `fits(queries, pairs, distinct lists)`): each run in one exclusive
   * block call, a query that alone does not fit by `alone` (the per-list
   * composition of lists.ts, which chunks large lists).
   */
  private async inBlocks(
    rows: number,
    lists: Pick<ListSet, 'size'>,
    probes: Int32Array,
    nprobe: number,
    k: number,
    segment: (list: number) => number,
    fits: (queries: number, pairs: number, distinct: number) => boolean,
    run: { block: (q0: number, q1: number) => Promise<void>; alone: (q: number) => Promise<void> },
  ): Promise<void> {
    const limit = this.maxBinding;
    let q0 = 0;
    while (q0 < rows) {
      const seen = new Set<number>();
      let packBytes = 0, maxCand = 0, pairs = 0, q1 = q0;
      for (; q1 < rows; q1++) {
        let cand = 0, add = 0, maxSize = 0, added = 0;
        const fresh = new Set<number>();
        for (let p = 0; p < nprobe; p++) {
          const l = probes[q1 * nprobe + p];
          if (l < 0 || lists.size(l) === 0) continue;
          cand += lists.size(l);
          maxSize = Math.max(maxSize, lists.size(l));
          added++;
          if (!seen.has(l) && !fresh.has(l)) {
            fresh.add(l);
            add += segment(l);
          }
        }
        const cands = Math.max(maxCand, cand);
        const n = q1 + 1 - q0;
        // per query row: scores and ids of its candidates, and the top-k lists (topk(), whose merge pass spans them in one dispatch row)
        const row = cands + k + 2 * TOPK_TILE;
        const ok = packBytes + add <= limit && n * row * 9 <= limit && row <= MAX_GROUPS * TOPK_GROUP && Math.ceil(maxSize / GROUP) <= MAX_GROUPS && fits(n, pairs + added, seen.size + fresh.size);
        if (!ok) break;
        for (const l of fresh) seen.add(l);
        packBytes += add;
        maxCand = cands;
        pairs += added;
      }
      if (q1 === q0) {
        await run.alone(q0);
        q0++;
      } else {
        await this.exclusive(() => run.block(q0, q1));
        q0 = q1;
      }
    }
  }

  /**
   * Packs the lists probed by queries [q0, q1) into one device buffer, each
   * once however many queries probe it, 16-byte aligned: its members
   * (codeBytes(size) bytes), ids and, when `norms` gives them, inverse norms.
   * Arrays resident on the device are copied there from their mirrors; the
   * others go up in one write. Returns per probed (query, list) pair the byte
   * offsets, its probe entry and the pair's first candidate in its query's row, or undefined
   * when nothing is probed.
   */
  private packLists(lists: Pick<ListSet, 'size' | 'codes' | 'ids'>, probes: Int32Array, nprobe: number, q0: number, q1: number, codeBytes: (size: number) => number, norms?: (list: number) => Float32Array | undefined) {
    const copies: { view: Uint8Array | Int32Array | Float32Array; at: number }[] = [];
    const placed = new Map<number, { codes: number; ids: number; norms: number }>();
    const pairs: { q: number; probe: number; list: number; size: number; codes: number; ids: number; norms: number; cand: number }[] = [];
    const counts = new Int32Array(q1 - q0);
    let packBytes = 0, maxCand = 0, maxSize = 0;
    const place = (view: Uint8Array | Int32Array | Float32Array) => {
      const at = packBytes;
      copies.push({ view, at });
      packBytes += align16(view.byteLength);
      return at;
    };
    for (let q = q0; q < q1; q++) {
      let cand = 0;
      for (let p = 0; p < nprobe; p++) {
        const l = probes[q * nprobe + p];
        const size = l < 0 ? 0 : lists.size(l);
        if (size === 0) continue;
        let at = placed.get(l);
        if (!at) {
          const kept = norms?.(l);
          at = { codes: place(lists.codes(l).subarray(0, codeBytes(size))), ids: place(lists.ids(l).subarray(0, size)), norms: kept ? place(kept.subarray(0, size)) : -1 };
          placed.set(l, at);
        }
        pairs.push({ q: q - q0, probe: q * nprobe + p, list: l, size, ...at, cand });
        cand += size;
        maxSize = Math.max(maxSize, size);
      }
      counts[q - q0] = cand;
      maxCand = Math.max(maxCand, cand);
    }
    if (pairs.length === 0) return undefined;
    const onDevice = (view: ArrayBufferView) => this.bindsInPlace(view) && view.byteOffset % 4 === 0;
    const pack = this.scratchBuffer('pack', packBytes);
    if (copies.some((c) => !onDevice(c.view))) {
      const host = new Uint8Array(packBytes);
      for (const c of copies) if (!onDevice(c.view)) host.set(new Uint8Array(c.view.buffer, c.view.byteOffset, c.view.byteLength), c.at);
      this.write(pack, host);
    }
    for (const c of copies) {
      if (!onDevice(c.view) || c.view.byteLength === 0) continue;
      const mirror = this.bind('', c.view);
      this.pending.copyBufferToBuffer(mirror.buffer, mirror.offset * c.view.BYTES_PER_ELEMENT, pack, c.at, align4(c.view.byteLength));
    }
    return { pack, pairs, counts: this.bind('counts', counts).buffer, maxCand, maxSize };
  }

  /** Queries [q0, q1) of a list scan in one submit and one read-back (scanListsTopK). */
  private async scanListBlock(queries: RowBlock, q0: number, q1: number, lists: ListSet, probes: Int32Array, nprobe: number, dim: number, metric: Metric, best: TopK, mask?: Uint32Array): Promise<void> {
    const m = q1 - q0;
    const bytes = listBytesPerElement(lists.encoding);
    const packed = this.packLists(lists, probes, nprobe, q0, q1, (size) => listCodeBytes(lists, size), metric === 'cosine' ? (l) => lists.invNorms?.(l, dim) : undefined);
    if (!packed) return;
    const { pack, pairs, maxCand, maxSize } = packed;
    const dir = new Uint32Array(pairs.length * 6);
    pairs.forEach((pair, i) => dir.set([pair.q, pair.size, pair.codes / bytes, pair.ids / 4, pair.norms < 0 ? NO_NORMS : pair.norms / 4, pair.cand], i * 6));
    const q = this.bindRows('q', queries, dim, q0, q1);
    const qInv = this.bindNorms('qInv', queries, dim, metric, q0, q1);
    const directory = this.bind('dir', dir);
    const params = lists.encoding === 'sq8' ? this.bind('params', lists.params!.subarray(0, 2 * lists.stride)) : { buffer: this.unused(), offset: 0 };
    const rows = Int32Array.from({ length: m }, (_, i) => q0 + i);
    const heaps = this.bindHeaps(best, m, rows);
    const scores = this.scratchBuffer('scores', m * maxCand * 4);
    const candIds = this.scratchBuffer('candIds', m * maxCand * 4);
    const encoding = lists.encoding === 'f32' ? 0 : lists.encoding === 'f16' ? 1 : 2;
    const [y, z] = rowGrid(pairs.length);
    // blocked lists are read in place: list-scan.wgsl addresses their blocks (blockRows 0: rows one after another)
    const blocks = [lists.layout?.blockRows ?? 0, lists.layout?.groupWidth ?? 0];
    // a filter: members it masks are skipped in the kernel (candidate id -1, left out by the top-k)
    const masked = mask ? this.bind('mask', mask) : { buffer: this.unused(), offset: 0 };
    this.dispatch('list-scan', [pairs.length, dim, lists.stride, METRIC_CODE[metric], encoding, q.offset, queries.stride, qInv.offset, maxCand, params.offset, ...blocks, mask?.length ?? 0, masked.offset], [q.buffer, qInv.buffer, directory.buffer, pack, params.buffer, scores, candIds, masked.buffer], Math.ceil(maxSize / GROUP), y, z);
    this.topk(m, maxCand, scores, 0, maxCand, { buffer: candIds, offset: 0 }, 2, maxCand, 0, packed.counts, heaps);
    await this.readHeaps(best, rows, heaps);
  }

  /** Queries [q0, q1) of a PQ list scan in one submit and one read-back (pqScanListsTopK). */
  private async pqScanBlock(queries: RowBlock, q0: number, q1: number, pq: PqQuantizer, lists: ListSet, probes: Int32Array, nprobe: number, metric: Metric, best: TopK): Promise<void> {
    const m = q1 - q0;
    const { dim, m: subs } = pq;
    const packed = this.packLists(lists, probes, nprobe, q0, q1, (size) => size * subs);
    if (!packed) return;
    const { pack, pairs, maxCand, maxSize } = packed;
    const perList = pq.refs !== undefined && metric === 'l2';
    // references of the probed lists, gathered (l2 residuals: tables on y - ref)
    const refRow = new Map<number, number>();
    if (perList) for (const pair of pairs) if (!refRow.has(pair.list)) refRow.set(pair.list, refRow.size);
    const refsY = perList ? (pq.rotation ? pq.rotatedRefs! : pq.refs!) : undefined;
    const gathered = new Float32Array(Math.max(1, refRow.size) * dim);
    if (refsY) for (const [l, r] of refRow) gathered.set(refsY.subarray(l * dim, (l + 1) * dim), r * dim);
    const sets = perList ? pairs.length : m;
    const setDir = new Uint32Array(sets * 2);
    if (perList) pairs.forEach((pair, i) => setDir.set([pair.q, refRow.get(pair.list)!], 2 * i));
    else for (let q = 0; q < m; q++) setDir[2 * q] = q;
    // inner products with residuals add x . ref per pair, summed on the host like the composition
    const bias = new Float32Array(pairs.length);
    if (pq.refs && !perList) {
      const qo = queries.offset ?? 0;
      pairs.forEach((pair, i) => {
        let dot = 0;
        const x = qo + (q0 + pair.q) * queries.stride;
        for (let d = 0; d < dim; d++) dot += queries.data[x + d] * pq.refs![pair.list * dim + d];
        bias[i] = dot;
      });
    }
    const biasBits = new Uint32Array(bias.buffer);
    const dir = new Uint32Array(pairs.length * 8);
    pairs.forEach((pair, i) => dir.set([pair.q, pair.size, pair.codes, pair.ids / 4, perList ? i : pair.q, pair.cand, biasBits[i], 0], i * 8));
    const x = this.bindRows('q', queries, dim, q0, q1);
    const directory = this.bind('dir', dir);
    const setBound = this.bind('sets', setDir);
    const refs = this.bind('pqRefs', gathered);
    const codebooks = this.bind('codebooks', pq.codebooks.subarray(0, PQ_TABLE * dim));
    const bounds = this.bind('bounds', pq.bounds);
    const rows = Int32Array.from({ length: m }, (_, i) => q0 + i);
    const heaps = this.bindHeaps(best, m, rows);
    let vectors = x, vStride = queries.stride;
    if (pq.rotation) {
      // y = R x: each query against the rotation's rows
      const rotation = this.bind('rotation', pq.rotation.subarray(0, dim * dim));
      const y = this.scratchBuffer('pqY', m * dim * 4);
      this.dispatch('score', [m, dim, dim, METRIC_CODE.ip, x.offset, queries.stride, rotation.offset, dim, 0, 0, 0, dim], [x.buffer, rotation.buffer, this.unused(), this.unused(), y], Math.ceil(dim / SCORE_TILE), Math.ceil(m / SCORE_TILE));
      vectors = { buffer: y, offset: 0 };
      vStride = dim;
    }
    const tables = this.scratchBuffer('pqTables', sets * subs * PQ_TABLE * 4);
    const [ty, tz] = rowGrid(sets);
    this.dispatch('pq-tables', [sets, dim, subs, METRIC_CODE[metric === 'l2' ? 'l2' : 'ip'], vectors.offset, vStride, perList ? 1 : 0, 0], [vectors.buffer, codebooks.buffer, bounds.buffer, refs.buffer, setBound.buffer, tables], (PQ_TABLE / GROUP) * subs, ty, tz);
    const scores = this.scratchBuffer('scores', m * maxCand * 4);
    const candIds = this.scratchBuffer('candIds', m * maxCand * 4);
    const [y, z] = rowGrid(pairs.length);
    this.dispatch('pq-scan', [pairs.length, subs, maxCand, 0], [directory.buffer, pack, tables, scores, candIds], Math.ceil(maxSize / GROUP), y, z);
    this.topk(m, maxCand, scores, 0, maxCand, { buffer: candIds, offset: 0 }, 2, maxCand, 0, packed.counts, heaps);
    await this.readHeaps(best, rows, heaps);
  }

  /** Query q of a list scan on its own, run by `scan` on a one-row copy of its heap (inBlocks' `alone`). */
  private async oneQuery(q: number, best: TopK, scan: (row: TopK) => Promise<void>): Promise<void> {
    const k = best.k;
    const row = new TopK(1, k);
    row.ids.set(best.ids.subarray(q * k, q * k + best.sizes[q]));
    row.scores.set(best.scores.subarray(q * k, q * k + best.sizes[q]));
    row.sizes[0] = best.sizes[q];
    await scan(row);
    best.ids.set(row.ids.subarray(0, row.sizes[0]), q * k);
    best.scores.set(row.scores.subarray(0, row.sizes[0]), q * k);
    best.sizes[q] = row.sizes[0];
  }

  async fastScanTopK(tables: Uint8Array, queries: number, m: number, codes: Uint8Array, rows: number, scales: Float32Array, bias: Float32Array, best: TopK, baseIds?: Int32Array, queryRows?: Int32Array, mask?: Uint32Array): Promise<void> {
    checkFastScan(tables, queries, m, codes, rows, scales, bias, best, baseIds, queryRows);
    checkMask(mask, 'fast scan');
    if (queries === 0 || rows === 0) return;
    if (mask) {
      const kept = maskFastScanCodes(mask, codes, rows, m, baseIds);
      if (kept) return kept.rows > 0 ? this.fastScanTopK(tables, queries, m, kept.codes, kept.rows, scales, bias, best, kept.ids, queryRows) : undefined;
    }
    return this.exclusive(async () => {
      const t = this.bind('tables', tables.subarray(0, queries * m * 16));
      const sc = this.bind('scales', scales.subarray(0, queries));
      const bi = this.bind('bias', bias.subarray(0, queries));
      const heaps = this.bindHeaps(best, queries, queryRows);
      // chunks of whole blocks of 32 members, scored then merged like adcScanTopK
      const step = Math.max(FASTSCAN_BLOCK, Math.floor(this.chunkRows(rows, m, queries * 12, GROUP) / FASTSCAN_BLOCK) * FASTSCAN_BLOCK);
      for (let from = 0; from < rows; from += step) {
        const to = Math.min(rows, from + step);
        const n = to - from;
        const c = this.bind('codes', codes.subarray(fastScanBytes(m, from), fastScanBytes(m, to)));
        const ids = baseIds ? this.bind('ids', baseIds.subarray(from, to)) : undefined;
        const scores = this.scratchBuffer('scores', queries * n * 4);
        this.dispatch('fastscan', [queries, n, m, 0, c.offset, sc.offset, bi.offset, 0], [t.buffer, c.buffer, sc.buffer, bi.buffer, scores], Math.ceil(n / GROUP), queries);
        this.topk(queries, n, scores, 0, n, ids, ids ? 1 : 0, 0, from, undefined, heaps);
      }
      await this.readHeaps(best, queryRows, heaps);
    });
  }

  /**
   * The fast-scan list scan in one pass per block of queries: the byte
   * tables quantised on the host (quantizeFastScanTable, the definition every
   * backend follows: once per query, or per probed pair for l2 residuals),
   * every (query, probed list, member) scored by fastscan.wgsl's `lists` in one
   * dispatch, the parallel top-k, one read-back.
   */
  async fastScanListsTopK(tables: FastScanTables, m: number, lists: FastScanLists, probes: Int32Array, queries: number, nprobe: number, best: TopK, mask?: Uint32Array): Promise<void> {
    checkFastScanLists(tables, m, lists, probes, queries, nprobe, best);
    checkMask(mask, 'fast scan');
    // a mask scans each probed list's allowed members alone, repacked (mask.ts)
    if (mask) lists = maskFastScanLists(lists, mask, m);
    const tableBytes = m * 16;
    const segment = (l: number) => align16(fastScanBytes(m, lists.size(l))) + align16(lists.size(l) * 4);
    const fits = (rows: number, pairs: number) => (tables.listTerms ? pairs : rows) * tableBytes <= this.maxBinding && pairs * 32 <= this.maxBinding;
    const size = m * 16;
    const one = (q: number): FastScanTables => ({
      query: tables.query.subarray(q * size, (q + 1) * size),
      ...(tables.listTerms ? { listTerms: tables.listTerms } : {}),
      ...(tables.extra ? { extra: tables.extra.subarray(q * nprobe, (q + 1) * nprobe) } : {}),
    });
    await this.inBlocks(queries, lists, probes, nprobe, best.k, segment, fits, {
      block: (q0, q1) => this.fastScanBlock(tables, m, lists, probes, nprobe, q0, q1, best),
      alone: (q) => this.oneQuery(q, best, (row) => composedFastScanListsTopK(this, one(q), m, lists, probes.subarray(q * nprobe, (q + 1) * nprobe), 1, nprobe, row)),
    });
  }

  /** Queries [q0, q1) of a fast-scan list scan in one submit and one read-back (fastScanListsTopK). */
  private async fastScanBlock(tables: FastScanTables, m: number, lists: FastScanLists, probes: Int32Array, nprobe: number, q0: number, q1: number, best: TopK): Promise<void> {
    const packed = this.packLists(lists, probes, nprobe, q0, q1, (size) => fastScanBytes(m, size));
    if (!packed) return;
    const { pack, pairs, maxCand, maxSize } = packed;
    const size = m * 16;
    const perPair = tables.listTerms !== undefined;
    const bytes = new Uint8Array((perPair ? pairs.length : q1 - q0) * size);
    const values = new Float32Array(size);
    const quantized = new Float32Array(2); // scale, then the sum of minima, of the table last quantised
    const quantize = (q: number, l: number, t: number) => {
      fastScanProbeTable(tables, m, q, l, values);
      quantized.set(quantizeFastScanTable(values, 0, m, bytes, t * size));
    };
    const words = new Uint32Array(2);
    const floats = new Float32Array(words.buffer);
    const dir = new Uint32Array(pairs.length * 8);
    let last = -1;
    pairs.forEach((pair, i) => {
      const q = q0 + pair.q;
      if (perPair) quantize(q, pair.list, i);
      else if (pair.q !== last) quantize(q, pair.list, pair.q);
      last = pair.q;
      floats[0] = quantized[0];
      floats[1] = quantized[1] + (tables.extra?.[pair.probe] ?? 0);
      dir.set([pair.q, pair.size, pair.codes, pair.ids / 4, perPair ? i : pair.q, pair.cand, words[0], words[1]], i * 8);
    });
    const directory = this.bind('dir', dir);
    const byteTables = this.bind('fsTables', bytes);
    const rows = Int32Array.from({ length: q1 - q0 }, (_, i) => q0 + i);
    const heaps = this.bindHeaps(best, q1 - q0, rows);
    const scores = this.scratchBuffer('scores', (q1 - q0) * maxCand * 4);
    const candIds = this.scratchBuffer('candIds', (q1 - q0) * maxCand * 4);
    const [y, z] = rowGrid(pairs.length);
    this.dispatch('fastscan', [pairs.length, maxCand, m, 0, 0, 0, 0, 0], [byteTables.buffer, pack, undefined, undefined, scores, directory.buffer, candIds], Math.ceil(maxSize / GROUP), y, z, 'lists');
    this.topk(q1 - q0, maxCand, scores, 0, maxCand, { buffer: candIds, offset: 0 }, 2, maxCand, 0, packed.counts, heaps);
    await this.readHeaps(best, rows, heaps);
  }

  async assign(vectors: RowBlock, centroids: RowBlock, dim: number, metric: Metric, labels: Int32Array, scores: Float32Array): Promise<void> {
    checkAssign(vectors, centroids, dim, labels, scores);
    const n = vectors.rows;
    if (n === 0) return;
    return this.exclusive(async () => {
      const c = this.bindRows('b', centroids, dim, 0, centroids.rows);
      const cInv = this.bindNorms('bInv', centroids, dim, metric, 0, centroids.rows);
      const step = this.chunkRows(n, vectors.stride * 4, 8, GROUP * MAX_GROUPS);
      // labels then scores, every chunk's, in one read-back
      const staging = this.takeStaging(n * 8);
      for (let from = 0; from < n; from += step) {
        const to = Math.min(n, from + step);
        const count = to - from;
        const v = this.bindRows('q', vectors, dim, from, to);
        const vInv = this.bindNorms('qInv', vectors, dim, metric, from, to);
        const outLabels = this.scratchBuffer('labels', count * 4);
        const outScores = this.scratchBuffer('scores', count * 4);
        const groups = Math.ceil(count / GROUP);
        this.dispatch('assign', [count, centroids.rows, dim, METRIC_CODE[metric], v.offset, vectors.stride, c.offset, centroids.stride, vInv.offset, cInv.offset], [v.buffer, c.buffer, vInv.buffer, cInv.buffer, outLabels, outScores], Math.min(groups, MAX_GROUPS), Math.ceil(groups / MAX_GROUPS));
        this.copyOut(outLabels, 0, staging, from * 4, count * 4);
        this.copyOut(outScores, 0, staging, (n + from) * 4, count * 4);
      }
      const result = await this.mapStaging(staging, n * 8);
      labels.set(new Int32Array(result, 0, n));
      scores.set(new Float32Array(result, n * 4, n));
    });
  }

  async centroidSums(vectors: RowBlock, dim: number, labels: Int32Array, k: number, sums: Float32Array, counts: Int32Array): Promise<void> {
    checkCentroidSums(vectors, dim, labels, k, sums, counts);
    return this.exclusive(async () => {
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
        for (let cBase = 0; cBase < k; cBase += MAX_GROUPS) {
          this.dispatch('centroid-sums', [k, dim, v.offset, vectors.stride, cBase, from > 0 ? 1 : 0], [v.buffer, orderBound.buffer, startBound.buffer, out], Math.ceil(dim / GROUP), Math.min(MAX_GROUPS, k - cBase));
        }
      }
      const staging = this.takeStaging(k * dim * 4);
      this.copyOut(out, 0, staging, 0, k * dim * 4);
      sums.set(new Float32Array(await this.mapStaging(staging, k * dim * 4)));
    });
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    const release = await this.lock();
    this.disposed = true;
    this.gpu.device.destroy();
    this.forget();
    release();
  }
}
