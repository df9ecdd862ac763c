import type { ArrayArena } from '@adanns/compute';
import { join } from 'node:path';
import { readArrayFile, writeArrayFile } from '../persist/binary-file.js';
import type { ScanSpec } from '../spec.js';
import type { HeldArray, TrainSample } from './codec.js';
import { FloatCodec } from './float-codec.js';
import { registerCodec } from './registry.js';

const FILE = 'sq8-params.bin';

/**
 * 8-bit scalar-quantised lists (one byte per value, a quarter of float32), as
 * FAISS's QT_8bit: per dimension j a range [min_j, min_j + 255 scale_j]
 * trained on the sample; value x encodes to round((x - min_j) / scale_j)
 * clamped to 0..255 and decodes to min_j + scale_j * code. `params` holds
 * min then scale (2 x d_s floats) in the arena, where the kernels read it.
 */
export class Sq8Codec extends FloatCodec {
  readonly flopsPerValue = 2;
  protected readonly listEncoding = 'sq8';

  constructor(
    spec: ScanSpec,
    readonly params: Float32Array,
    private readonly arena: ArrayArena,
  ) {
    super(spec, 1);
  }

  protected override get listParams(): Float32Array {
    return this.params;
  }

  /** Per-dimension min and scale over the sample's first d_s values. */
  static train(spec: ScanSpec, sample: TrainSample, arena: ArrayArena): Sq8Codec {
    const d = spec.dim;
    const params = arena.float32(2 * d);
    for (let j = 0; j < d; j++) {
      let lo = Infinity;
      let hi = -Infinity;
      for (let r = 0; r < sample.rows; r++) {
        const x = sample.data[r * sample.stride + j];
        if (x < lo) lo = x;
        if (x > hi) hi = x;
      }
      params[j] = lo;
      params[d + j] = hi > lo ? (hi - lo) / 255 : 0;
    }
    arena.touched(params);
    return new Sq8Codec(spec, params, arena);
  }

  protected encodeRow(src: Float32Array, from: number, out: Uint8Array, at: number): void {
    const d = this.spec.dim;
    const p = this.params;
    for (let j = 0; j < d; j++) {
      const scale = p[d + j];
      // a constant dimension (scale 0) always decodes to its min
      const code = scale > 0 ? Math.round((src[from + j] - p[j]) / scale) : 0;
      out[at + j] = code < 0 ? 0 : code > 255 ? 255 : code;
    }
  }

  decode(codes: Uint8Array, rows: number, dim: number, out: Float32Array): void {
    const d = this.spec.dim;
    const p = this.params;
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < dim; j++) out[r * dim + j] = Math.fround(p[j] + Math.fround(p[d + j] * codes[r * d + j]));
    }
  }

  override arrays(): HeldArray[] {
    return [{ kind: 'codebooks', array: this.params, arena: true }];
  }

  override save(dir: string): void {
    writeArrayFile(join(dir, FILE), this.params, [2, this.spec.dim]);
  }

  override release(): void {
    this.arena.release(this.params);
  }
}

registerCodec({
  name: 'sq8',
  token: 'sq8@d',
  parse: (head) => (head === 'sq8' ? {} : undefined),
  format: (spec) => `sq8@${spec.dim}`,
  exact: false,
  sampleSize: (options) => options.trainSize,
  train: async ({ spec, backend }, sample) => Sq8Codec.train(spec, sample, backend.arena),
  load: ({ spec, backend }, dir) => {
    const saved = readArrayFile(join(dir, FILE), 'f32', [2, spec.dim]).array;
    const params = backend.arena.float32(saved.length);
    params.set(saved);
    backend.arena.touched(params);
    return new Sq8Codec(spec, params, backend.arena);
  },
});
