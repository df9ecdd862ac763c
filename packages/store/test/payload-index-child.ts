/**
 * The server the payload index crash test kills: opens a store, fills a
 * collection with payloads, declares a payload index (built in the
 * background) and keeps rewriting payloads while it builds. Prints
 * "building" once the build has indexed its first chunk, then "ack N" after
 * each acknowledged rewrite batch.
 *
 *   node payload-index-child.js DATA_DIR POINTS
 */
import { createBackend } from '@adanns/compute';
import { Store } from '@adanns/store';

const [dataDir, pointsText] = process.argv.slice(2);
const points = Number(pointsText);
const backend = await createBackend('cpu', { threads: 1 });
const store = await Store.open(dataDir, { backend, backendName: 'cpu', threads: 1, autoBuildAt: 0 });
const collection = await store.create('indexed', { dim: 4, metric: 'l2' });
const point = (id: number, round: number) => ({ id, vector: [id % 7, 1, round, 0.5], payload: { n: (id * 7 + round) % 1000, tag: `t${(id + round) % 5}` } });
for (let from = 0; from < points; from += 2000) await collection.upsert(Array.from({ length: Math.min(2000, points - from) }, (_, i) => point(from + i, 0)));
await collection.createPayloadIndex('n', 'integer');
await collection.createPayloadIndex('tag', 'keyword');
const started = () => collection.stats().payloadIndexes.some((i) => i.progress > 0);
while (!started()) await new Promise((resolve) => setImmediate(resolve));
process.stdout.write('building\n');
// rewrites during the build: the writes index themselves, the build must not undo them
for (let round = 1; ; round++) {
  await collection.upsert(Array.from({ length: 200 }, (_, i) => point((round * 211 + i * 37) % points, round)));
  process.stdout.write(`ack ${round}\n`);
}
