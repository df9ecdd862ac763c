import { parseArgs } from 'node:util';
import { ReferenceBackend } from '@adanns/compute';
import { formatSpec, loadIndex, readIndexManifest, type IndexSizes } from '@adanns/core';
import { parseOrUsage, required } from '@adanns/cli-kit';

export const infoUsage = `adanns info --index DIR [--json]
  What a saved index holds: spec (and why, when auto chose it), metric, vectors, format version, and its bytes by kind
  (lists, codes, norms, ids, centroids, rotation, codebooks, re-rank vectors in memory and on
  disk) with bytes per vector. --json prints one JSON object instead of the table.`;

const KINDS = ['lists', 'codes', 'norms', 'ids', 'centroids', 'rotation', 'codebooks', 'rerank'] as const satisfies readonly (keyof IndexSizes)[];

export async function infoCommand(argv: string[]): Promise<void> {
  const o = parseOrUsage(() => parseArgs({ args: argv, options: {
    index: { type: 'string' },
    json: { type: 'boolean', default: false },
  } }).values);
  const dir = required(o.index, 'index');
  const manifest = readIndexManifest(dir);
  // sizes do not depend on the backend: the plain one loads without kernels
  const index = loadIndex(new ReferenceBackend(), dir);
  try {
    const sizes = index.sizes();
    const n = Math.max(1, sizes.vectors);
    const perVector = (bytes: number) => Number((bytes / n).toFixed(2));
    if (o.json) {
      console.log(JSON.stringify({
        index: dir,
        spec: formatSpec(index.spec),
        specReason: index.choice?.reason ?? null,
        metric: index.metric,
        dim: index.dim,
        vectors: sizes.vectors,
        formatVersion: manifest.version,
        bytes: Object.fromEntries(KINDS.map((kind) => [kind, sizes[kind]])),
        residentBytes: sizes.resident,
        diskBytes: sizes.rerankDisk,
        bytesPerVector: { ...Object.fromEntries(KINDS.map((kind) => [kind, perVector(sizes[kind])])), resident: perVector(sizes.resident), disk: perVector(sizes.rerankDisk) },
      }));
      return;
    }
    console.log(`${dir}: ${index.describe()}, format version ${manifest.version}`);
    if (index.choice) console.log(`chosen by auto: ${index.choice.reason}`);
    console.log(`${'kind'.padEnd(22)}${'bytes'.padStart(16)}${'bytes/vector'.padStart(16)}`);
    const line = (label: string, bytes: number) => console.log(`${label.padEnd(22)}${bytes.toLocaleString('en-US').padStart(16)}${perVector(bytes).toFixed(2).padStart(16)}`);
    for (const kind of KINDS) if (sizes[kind] > 0) line(kind === 'rerank' ? 'rerank (in memory)' : kind, sizes[kind]);
    line('resident total', sizes.resident);
    if (sizes.rerankDisk > 0) line('rerank (on disk)', sizes.rerankDisk);
  } finally {
    index.release();
  }
}
