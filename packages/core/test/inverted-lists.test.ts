import { describe, expect, it } from 'vitest';
import { fastScanBytes, fastScanNibble, moveFastScan, packFastScan, unpackFastScan } from '@adanns/compute';
import { InvertedLists, type CodeLayout } from '../src/index/inverted-lists.js';

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
