/**
 * Inverts per-query probe lists into per-list query groups (a counting sort
 * on list number), so a scan streams each probed list once for all the
 * queries that probe it. Queries of list l are members[start[l] .. start[l+1]).
 */
export function groupQueriesByList(probes: Int32Array, rows: number, nprobe: number, listCount: number): { start: Int32Array; members: Int32Array } {
  const start = new Int32Array(listCount + 1);
  for (const l of probes) if (l >= 0) start[l + 1]++;
  for (let l = 0; l < listCount; l++) start[l + 1] += start[l];
  const members = new Int32Array(start[listCount]);
  const fill = start.slice(0, listCount);
  for (let q = 0; q < rows; q++) {
    for (let p = 0; p < nprobe; p++) {
      const l = probes[q * nprobe + p];
      if (l >= 0) members[fill[l]++] = q;
    }
  }
  return { start, members };
}
