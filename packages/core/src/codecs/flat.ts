import type { ScanSpec } from '../spec.js';
import { FloatCodec, floatView } from './float-codec.js';
import { registerCodec } from './registry.js';

/** float32 lists: the members' prefixes at d_s as they are (exact scores; for d_s = D the lists are the vectors). */
export class FlatCodec extends FloatCodec {
  readonly flopsPerValue = 1;
  protected readonly listEncoding = 'f32';

  constructor(spec: ScanSpec) {
    super(spec, 4);
  }

  protected encodeRow(src: Float32Array, from: number, out: Uint8Array, at: number): void {
    floatView(out, at, this.spec.dim).set(src.subarray(from, from + this.spec.dim));
  }

  decode(codes: Uint8Array, rows: number, dim: number, out: Float32Array): void {
    const d = this.spec.dim;
    const values = floatView(codes, 0, rows * d);
    for (let r = 0; r < rows; r++) out.set(values.subarray(r * d, r * d + dim), r * dim);
  }
}

registerCodec({
  name: 'flat',
  token: 'flat@d',
  parse: (head) => (head === 'flat' ? {} : undefined),
  format: (spec) => `flat@${spec.dim}`,
  exact: true,
  sampleSize: () => 0,
  train: async ({ spec }) => new FlatCodec(spec),
  load: ({ spec }) => new FlatCodec(spec),
});
