/**
 * The prefix-blocked layout of float lists (float32, float16, sq8 members;
 * docs/ARCHITECTURE.md, "Kernels"). Members are grouped in blocks of
 * `blockRows` rows; inside a block the values lie dimension-group-major:
 * elements 0..w-1 (w = groupWidth) of the block's rows one row after
 * another, then elements w..2w-1 of them, and so on; the last group of a
 * stride that is not a multiple of w is narrower (stride - lastStart
 * elements per row). A scan at prefix d thus reads, per block, the first
 * ceil(d / w) groups, each one contiguous run of memory, instead of d of
 * every member's stride values. A member's place is fixed by its position:
 * appends write at the end, removals move the last member into the hole.
 * A list of n members occupies ceil(n / blockRows) whole blocks; rows past
 * the size are zero.
 */
export interface BlockLayout {
  /** Rows per block: a multiple of 4 (the kernels' row tiles stay inside a block). */
  readonly blockRows: number;
  /** Elements per dimension group: a multiple of 16 (one or more SIMD decode steps). */
  readonly groupWidth: number;
}

/** The largest blockRows and groupWidth the CPU kernels' directory word can carry (16 bits each). */
const FIELD_MAX = 0xffff;

/** Throws unless the layout is one the kernels read. */
export function checkBlockLayout(layout: BlockLayout): void {
  const { blockRows, groupWidth } = layout;
  if (!Number.isInteger(blockRows) || blockRows < 4 || blockRows > FIELD_MAX - 3 || blockRows % 4 !== 0) throw new Error(`block layout: blockRows must be a multiple of 4 from 4 to ${FIELD_MAX - 3}, got ${blockRows}`);
  if (!Number.isInteger(groupWidth) || groupWidth < 16 || groupWidth > FIELD_MAX - 15 || groupWidth % 16 !== 0) throw new Error(`block layout: groupWidth must be a multiple of 16 from 16 to ${FIELD_MAX - 15}, got ${groupWidth}`);
}

/** blockRows | groupWidth << 16: how a CPU kernel directory entry names the layout (0 = rows one after another). */
export function blockLayoutWord(layout: BlockLayout | undefined): number {
  return layout ? (layout.blockRows | (layout.groupWidth << 16)) >>> 0 : 0;
}

/** Bytes a blocked list of `members` members of `stride` elements of `elementBytes` bytes occupies (whole blocks). */
export function blockedBytes(layout: BlockLayout, stride: number, elementBytes: number, members: number): number {
  return Math.ceil(members / layout.blockRows) * layout.blockRows * stride * elementBytes;
}

/**
 * Calls `run(at, from, length)` for each dimension group of member `pos`:
 * the group's bytes lie at `at` in the list, its elements are `from` ..
 * from + length - 1 of the member (byte offsets and lengths).
 */
function eachGroup(layout: BlockLayout, stride: number, elementBytes: number, pos: number, run: (at: number, from: number, length: number) => void): void {
  const { blockRows: b, groupWidth: w } = layout;
  const block = Math.floor(pos / b) * b * stride * elementBytes;
  const row = pos % b;
  for (let g = 0; g * w < stride; g++) {
    const width = Math.min(w, stride - g * w);
    run(block + (g * b * w + row * width) * elementBytes, g * w * elementBytes, width * elementBytes);
  }
}

/** Writes a member's stride x elementBytes bytes (row-major in `src` from `offset`) at position `pos` of a blocked list. */
export function writeBlockedRow(codes: Uint8Array, layout: BlockLayout, stride: number, elementBytes: number, pos: number, src: Uint8Array, offset: number): void {
  eachGroup(layout, stride, elementBytes, pos, (at, from, length) => codes.set(src.subarray(offset + from, offset + from + length), at));
}

/** Reads position `pos`'s member of a blocked list into `out` from `offset` (row-major). */
export function readBlockedRow(codes: Uint8Array, layout: BlockLayout, stride: number, elementBytes: number, pos: number, out: Uint8Array, offset: number): void {
  eachGroup(layout, stride, elementBytes, pos, (at, from, length) => out.set(codes.subarray(at, at + length), offset + from));
}

/** Moves position `from`'s member of a blocked list to position `to` and zeroes `from` (rows past a list's size stay zero). */
export function moveBlockedRow(codes: Uint8Array, layout: BlockLayout, stride: number, elementBytes: number, from: number, to: number): void {
  const sources: number[] = [];
  eachGroup(layout, stride, elementBytes, from, (at) => sources.push(at));
  let g = 0;
  eachGroup(layout, stride, elementBytes, to, (at, _from, length) => {
    const source = sources[g++];
    codes.copyWithin(at, source, source + length);
    codes.fill(0, source, source + length);
  });
}

/** The first `members` members of a blocked list, row after row (members x stride x elementBytes bytes). */
export function unblockRows(codes: Uint8Array, layout: BlockLayout, stride: number, elementBytes: number, members: number): Uint8Array {
  const out = new Uint8Array(members * stride * elementBytes);
  for (let i = 0; i < members; i++) readBlockedRow(codes, layout, stride, elementBytes, i, out, i * stride * elementBytes);
  return out;
}
