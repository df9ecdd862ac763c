export const CRASH_COLLECTION = 'crash';
export const CRASH_DIM = 8;

/** The vector point `id` gets from batch `batch`: distinct per write, so a read shows which write it came from. */
export function crashVector(id: number, batch: number): number[] {
  return Array.from({ length: CRASH_DIM }, (_, i) => Math.fround(Math.sin(id * 12.9898 + batch * 78.233 + i * 37.719) * 100));
}
