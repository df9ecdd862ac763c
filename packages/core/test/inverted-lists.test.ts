import { describe, expect, it } from 'vitest';
import { fastScanBytes, fastScanNibble, moveFastScan, packFastScan, unpackFastScan } from '@adanns/compute';
import { InvertedLists, type CodeLayout } from '../src/index/inverted-lists.js';
import { floatBlockLayout } from '../src/codecs/float-codec.js';

const m = 3;
const layout: CodeLayout = {
  bytes: (members) => fastScanBytes(m, members),
  write: (codes, pos, code, offset) => packFastScan(codes, m, pos, code, offset),
  read: (codes, pos, out, offset) => unpackFastScan(codes, m, pos, out, offset),
  move: (codes, from, to) => moveFastScan(codes, m, from, to),
};

describe('InvertedLists with a fast-scan block layout', () => {
  it('keeps the nibbles past a list\'s size zero, whichever member is removed', () => {
    const lists = new InvertedLists(1, 2, [], undefined, 'codes', layout);
    for (let slot = 0; slot < 4; slot++) lists.append(0, slot, Uint8Array.of(0xff, 0x0f), 0);
    const zeroPast = (size: number) => {
      for (let pos = size; pos < 32; pos++) for (let s = 0; s < m; s++) expect(fastScanNibble(lists.codes(0), m, pos, s)).toBe(0);
    };
    expect(lists.remove(3)).toBe(true); // the last member: nothing moves into its place
    expect(lists.size(0)).toBe(3);
    zeroPast(3);
    expect(lists.remove(0)).toBe(true); // a hole filled by the last member
    zeroPast(2);
    for (let pos = 0; pos < 2; pos++) for (let s = 0; s < m; s++) expect(fastScanNibble(lists.codes(0), m, pos, s)).toBe(15);
  });
});

describe('InvertedLists with the float prefix-block layout', () => {
  it('appends, removes and exports members as codeBytes one after another, blocks zero past the size', () => {
    const stride = 40; // groups of 16, 16 and 8 values
    const lists = new InvertedLists(2, stride * 4, [], undefined, 'lists', floatBlockLayout(stride, 4, { blockRows: 4, groupWidth: 16 }));
    const rows = 11;
    const values = Float32Array.from({ length: rows * stride }, (_, i) => i + 1);
    const bytes = new Uint8Array(values.buffer);
    for (let r = 0; r < rows; r++) lists.append(r % 2, r, bytes, r * stride * 4);
    expect(lists.size(0)).toBe(6);
    // list 0 (slots 0, 2, ..., 10) in blocks of 4: two blocks
    expect(lists.codes(0).length).toBe(8 * stride * 4);
    const member = (slot: number) => Array.from(values.subarray(slot * stride, (slot + 1) * stride));
    const located = (slot: number) => {
      const at = lists.locate(slot)!;
      return Array.from(new Float32Array(at.codes.slice(at.offset, at.offset + stride * 4).buffer));
    };
    for (let r = 0; r < rows; r++) expect(located(r)).toEqual(member(r));
    // slot 2 (position 1 of list 0) leaves: slot 10, the last, moves into its place
    expect(lists.remove(2)).toBe(true);
    expect(Array.from(lists.slots(0))).toEqual([0, 10, 4, 6, 8]);
    expect(located(10)).toEqual(member(10));
    expect(lists.remove(8)).toBe(true); // the last member: nothing moves
    const codes = new Float32Array(lists.codes(0).buffer, lists.codes(0).byteOffset, 4 * stride);
    // position 4 (in block 1) was emptied by the first removal, block 0 is full: the whole of block 1 is zero
    const held = lists.arrays()[0].array as Uint8Array; // list 0's code array, its capacity included
    expect(held.length).toBeGreaterThanOrEqual(8 * stride * 4);
    expect(held.subarray(4 * stride * 4, 8 * stride * 4).every((x) => x === 0)).toBe(true);
    // group 0 of block 0: values 0..15 of positions 0..3, one after another
    expect(Array.from(codes.subarray(16, 32))).toEqual(member(10).slice(0, 16));
    const saved = lists.export();
    expect(Array.from(saved.sizes)).toEqual([4, 5]);
    expect(Array.from(saved.slots)).toEqual([0, 10, 4, 6, 1, 3, 5, 7, 9]);
    const flat = new Float32Array(saved.codes.buffer);
    saved.slots.forEach((slot, i) => expect(Array.from(flat.subarray(i * stride, (i + 1) * stride))).toEqual(member(slot)));
    const again = InvertedLists.import(stride * 4, [], saved.sizes, saved.slots, saved.codes, undefined, undefined, 'lists', floatBlockLayout(stride, 4, { blockRows: 4, groupWidth: 16 }));
    for (let l = 0; l < 2; l++) expect(Array.from(again.codes(l))).toEqual(Array.from(lists.codes(l)).slice(0, again.codes(l).length));
    expect(again.scanSet('f32', stride).layout).toEqual({ blockRows: 4, groupWidth: 16 });
  });
});

describe('InvertedLists views', () => {
  it('hands out the same views while a list is unchanged, and views of its current members after every change', async () => {
    const { WasmSimdBackend } = await import('@adanns/compute');
    const backend = await WasmSimdBackend.create({ threads: 1 });
    try {
      // in the arena, as an index's lists are (appends grow the arrays, trim replaces them)
      const lists = new InvertedLists(2, 4, [4], backend.arena, 'codes');
      const code = (v: number) => new Uint8Array(Uint32Array.of(v).buffer);
      const add = (list: number, slot: number) => lists.append(list, slot, code(100 + slot), 0, Float32Array.of(1 / (slot + 1)));
      const seen = (list: number) => ({ codes: Array.from(new Uint32Array(lists.codes(list).slice().buffer)), slots: Array.from(lists.slots(list)), norms: Array.from(lists.invNorms(list, 4)!) });
      add(0, 0);
      add(1, 1);
      // kept while nothing changes (a scan asks several times per call)
      expect(lists.codes(0)).toBe(lists.codes(0));
      expect(lists.slots(0)).toBe(lists.slots(0));
      expect(lists.invNorms(0, 4)).toBe(lists.invNorms(0, 4));
      expect(lists.invNorms(0, 8)).toBeUndefined();
      const other = lists.codes(1);
      for (let slot = 2; slot < 40; slot++) add(0, slot); // grows list 0's arrays several times
      expect(lists.codes(1)).toBe(other); // another list's change leaves this one's views
      expect(seen(0).slots).toEqual([0, ...Array.from({ length: 38 }, (_, i) => i + 2)]);
      expect(seen(0).codes).toEqual(seen(0).slots.map((s) => 100 + s));
      expect(seen(0).norms).toEqual(seen(0).slots.map((s) => Math.fround(1 / (s + 1))));
      lists.remove(0); // the last member moves into the hole
      expect(seen(0).slots).toEqual([39, ...Array.from({ length: 37 }, (_, i) => i + 2)]);
      expect(seen(0).codes).toEqual(seen(0).slots.map((s) => 100 + s));
      const before = seen(0);
      lists.trim(); // new arrays of exactly the members
      expect(seen(0)).toEqual(before);
      lists.release();
      expect(lists.codes(0).length).toBe(0);
      expect(lists.slots(1).length).toBe(0);
    } finally {
      await backend.dispose();
    }
  });
});
