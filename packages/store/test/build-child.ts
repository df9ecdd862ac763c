/**
 * The server the build-restart test kills: opens a store, fills a collection,
 * starts its index build and prints the store's log lines as JSON, one a line
 * (the build's worker pid and its stages among them).
 *
 *   node build-child.js DATA_DIR POINTS DIM
 */
import { createBackend, createRng } from '@adanns/compute';
import { Store, type StoreLogger } from '@adanns/store';

const [dataDir, pointsText, dimText] = process.argv.slice(2);
const points = Number(pointsText);
const dim = Number(dimText);
const line = (level: string) => (fields: object, message: string) => process.stdout.write(`${JSON.stringify({ level, message, ...fields })}\n`);
const logger: StoreLogger = { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') };
const backend = await createBackend('cpu', { threads: 1 });
// a long calibration bound: the build is still running when the test kills this process
const store = await Store.open(dataDir, { backend, backendName: 'cpu', threads: 1, autoBuildAt: 0, calibrationSeconds: 60, logger });
const collection = await store.create('resumed', { dim, metric: 'l2' });
const rng = createRng(3);
for (let from = 0; from < points; from += 1000) {
  const batch = Array.from({ length: Math.min(1000, points - from) }, (_, i) => ({ id: from + i, vector: Array.from({ length: dim }, () => rng.next() * 2 - 1) }));
  await collection.upsert(batch);
}
void collection.build();
