import { mkdtempSync, readFileSync, rmSync, writeFileSync, truncateSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ReferenceBackend } from '@adanns/compute';
import { AdannsIndex, loadIndex, saveIndex } from '../src/index.js';
import { randomMatrix } from '../../compute/test/naive.js';

const backend = new ReferenceBackend();
const dir = mkdtempSync(join(tmpdir(), 'adanns-persist-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const dim = 16;
const base = randomMatrix(500, dim, 7);
const queries = randomMatrix(20, dim, 8);

describe('save / load', () => {
  for (const [spec, metric] of [['pca,ivf8@8,flat@12,rerank@16', 'cosine'], ['pca,ivf8@4,flat@4,rerank@8', 'l2'], ['flat', 'ip']] as const) {
    it(`${spec} (${metric}) round-trips to identical search results`, async () => {
      const index = await AdannsIndex.build(backend, spec, base, 500, dim, { metric });
      index.remove([3, 4, 5]);
      const out = join(dir, spec.replace(/[^a-z0-9]/g, '_'));
      saveIndex(index, out);
      const loaded = loadIndex(backend, out);
      expect(loaded.size).toBe(497);
      const a = await index.search(queries, 20, 10, index.spec.coarse ? { nprobe: 3 } : {});
      const b = await loaded.search(queries, 20, 10, index.spec.coarse ? { nprobe: 3 } : {});
      expect(Array.from(b.ids)).toEqual(Array.from(a.ids));
      expect(Array.from(b.scores)).toEqual(Array.from(a.scores));
      expect(Array.from(b.mflops)).toEqual(Array.from(a.mflops));
      // a loaded index still takes adds into the freed slots
      await loaded.add([3], base.subarray(3 * dim, 4 * dim), 1);
      expect(loaded.has(3)).toBe(true);
    });
  }

  describe('damaged files are refused with a message', () => {
    const fresh = async (name: string) => {
      const out = join(dir, name);
      saveIndex(await AdannsIndex.build(backend, 'ivf4@8,flat@16', base, 500, dim, { metric: 'l2' }), out);
      return out;
    };
    it('truncated', async () => {
      const out = await fresh('truncated');
      const f = join(out, 'list-codes.bin');
      truncateSync(f, statSync(f).size - 10);
      expect(() => loadIndex(backend, out)).toThrow(/list-codes.bin: truncated/);
    });
    it('corrupted payload', async () => {
      const out = await fresh('corrupt');
      const f = join(out, 'slot-ids.bin');
      const bytes = readFileSync(f);
      bytes[200] ^= 0x40;
      writeFileSync(f, bytes);
      expect(() => loadIndex(backend, out)).toThrow(/slot-ids.bin: checksum mismatch/);
    });
    it('foreign file', async () => {
      const out = await fresh('foreign');
      writeFileSync(join(out, 'centroids.bin'), 'hello, this is not an index file at all; it is long enough for a header.......');
      expect(() => loadIndex(backend, out)).toThrow(/centroids.bin: not an adanns index file/);
    });
    it('missing or garbled manifest', async () => {
      expect(() => loadIndex(backend, join(dir, 'nothing-here'))).toThrow(/cannot read index manifest/);
      const out = await fresh('manifest');
      writeFileSync(join(out, 'manifest.json'), '{"format": "adanns-index", "version": 99}');
      expect(() => loadIndex(backend, out)).toThrow(/format version 99/);
    });
  });
});
