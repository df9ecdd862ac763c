import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ReferenceBackend, type ArenaArray, type ArrayArena, type Backend } from '@adanns/compute';
import { memoryStream } from '@adanns/datasets';
import { AdannsIndex, buildFromStream, DiskF32Store, loadIndex, saveIndex } from '../src/index.js';
import { writeArrayFile } from '../src/persist/binary-file.js';
import { randomMatrix } from '../../compute/test/naive.js';

// A disk re-rank file belongs to the saved index that names it: a new build
// into the same directory, or later changes to the index that wrote it, must
// not change it under that index (or under a process serving it).

const reference = new ReferenceBackend();
const dir = mkdtempSync(join(tmpdir(), 'adanns-rerank-disk-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const dim = 16;
const rows = 400;
const spec = 'ivf4@8,flat@8,rerank@16';
const queries = randomMatrix(8, dim, 3);

const source = (data: Float32Array) => memoryStream({ name: 'rows', data, rows, dim });

const answer = async (index: AdannsIndex) => {
  const r = await index.search(queries, 8, 5, { nprobe: 2 });
  return { ids: Array.from(r.ids), scores: Array.from(r.scores) };
};

describe('disk re-rank file of a saved index', () => {
  it('a new build into the directory leaves the saved index (and a reader of it) intact until the new one is saved', async () => {
    const out = join(dir, 'rebuild');
    const first = await buildFromStream(reference, spec, source(randomMatrix(rows, dim, 1)), { metric: 'l2', trainRows: rows, rerankDir: out });
    saveIndex(first, out);
    first.release();
    const serving = loadIndex(reference, out);
    const before = await answer(serving);
    // a second build into the same directory (not saved: e.g. interrupted)
    const second = await buildFromStream(reference, spec, source(randomMatrix(rows, dim, 2)), { metric: 'l2', trainRows: rows, rerankDir: out });
    expect(await answer(serving)).toEqual(before);
    expect(await answer(loadIndex(reference, out))).toEqual(before);
    second.release();
    serving.release();
    expect(readdirSync(out).filter((f) => f.includes('tmp') || f.includes('building'))).toEqual([]);
  });

  it('adds and removes after saving in place do not change the saved file', async () => {
    const out = join(dir, 'edit');
    const data = randomMatrix(rows, dim, 5);
    const index = await buildFromStream(reference, spec, source(data), { metric: 'l2', trainRows: rows, rerankDir: out });
    saveIndex(index, out);
    const saved = await answer(index);
    // a removal frees a slot the next add reuses; one more add grows past the saved rows
    index.remove([0, 1]);
    await index.add([1000, 1001, 1002], randomMatrix(3, dim, 6), 3);
    const changed = await answer(index);
    expect(await answer(loadIndex(reference, out))).toEqual(saved);
    // the live index answers from its changed vectors
    const live = loadIndex(reference, out);
    live.remove([0, 1]);
    await live.add([1000, 1001, 1002], randomMatrix(3, dim, 6), 3);
    expect(await answer(live)).toEqual(changed);
    index.release();
    live.release();
  });
});

/** The reference backend on an arena that counts the bytes handed out and not yet released. */
function countingBackend(): { backend: Backend; live: () => number } {
  const held = new Map<ArrayBufferLike, number>();
  const track = <T extends ArenaArray>(array: T): T => (held.set(array.buffer, array.byteLength), array);
  const arena: ArrayArena = {
    float32: (n) => track(new Float32Array(n)),
    int32: (n) => track(new Int32Array(n)),
    uint8: (n) => track(new Uint8Array(n)),
    release: (array) => void held.delete(array.buffer),
    touched: () => {},
  };
  const backend = Object.assign(Object.create(reference) as Backend, { arena });
  return { backend, live: () => [...held.values()].reduce((a, b) => a + b, 0) };
}

describe('a load that fails', () => {
  it('gives back the arena bytes and closes the re-rank file it opened before failing', async () => {
    const out = join(dir, 'corrupt');
    const index = await AdannsIndex.build(reference, 'ivf4@8,sq8@8,rerank@16', randomMatrix(rows, dim, 7), rows, dim, { metric: 'cosine', rerankFile: join(out, 'rerank.f32') });
    saveIndex(index, out);
    const fds = () => readdirSync('/proc/self/fd').length;
    const { backend, live } = countingBackend();
    expect(() => loadIndex(backend, out)).not.toThrow(); // the counting backend loads a sound index
    // list sizes that overrun the members after three lists are filled
    const overrun = () => writeArrayFile(join(out, 'list-sizes.bin'), Int32Array.of(1, 1, 1, rows), [4]);
    for (const [file, corrupt] of [['centroids.bin', 'garbage'], ['calibration.json', '{'], ['list-sizes.bin', overrun]] as const) {
      saveIndex(index, out);
      if (typeof corrupt === 'string') writeFileSync(join(out, file), corrupt);
      else corrupt();
      const { backend, live } = countingBackend();
      const before = fds();
      expect(() => loadIndex(backend, out)).toThrow(file === 'list-sizes.bin' ? 'overruns' : file);
      expect(live(), file).toBe(0);
      expect(fds(), file).toBe(before);
    }
    expect(live()).toBeGreaterThan(0);
    index.release();
  });
});

describe('disk re-rank reads', () => {
  it('read runs of adjacent rows in one go and give what reading row by row gives, changed rows included', () => {
    const values = randomMatrix(50, dim, 11);
    const store = DiskF32Store.create(dim);
    try {
      for (let slot = 0; slot < 50; slot++) store.write(slot, values, slot * dim);
      const one = (slot: number) => {
        const out = new Float32Array(dim);
        store.read([slot], out);
        return Array.from(out);
      };
      // runs, a repeated slot, descending order, the last row
      const slots = [3, 4, 5, 6, 9, 10, 10, 30, 29, 49, 0, 1];
      const check = () => {
        const out = new Float32Array(slots.length * dim);
        store.read(slots, out);
        slots.forEach((slot, i) => expect(Array.from(out.subarray(i * dim, (i + 1) * dim))).toEqual(one(slot)));
      };
      check();
      for (const slot of slots) expect(one(slot)).toEqual(Array.from(values.subarray(slot * dim, (slot + 1) * dim)));
      // a saved store keeps later writes in memory: a changed row inside a run is read from there
      const saved = join(dir, 'reads');
      mkdirSync(saved, { recursive: true });
      store.save(saved, 50);
      const opened = DiskF32Store.open(saved, dim, 50);
      try {
        const changed = Float32Array.from({ length: dim }, (_, i) => i + 0.5);
        opened.write(5, changed, 0);
        const out = new Float32Array(4 * dim);
        opened.read([4, 5, 6, 7], out);
        expect(Array.from(out.subarray(dim, 2 * dim))).toEqual(Array.from(changed));
        expect(Array.from(out.subarray(2 * dim, 3 * dim))).toEqual(Array.from(values.subarray(6 * dim, 7 * dim)));
        expect(() => opened.read([49, 50], new Float32Array(2 * dim))).toThrow(/slot 50 is past the end of the file/);
      } finally {
        opened.release();
      }
      check();
    } finally {
      store.release();
    }
  });
});
