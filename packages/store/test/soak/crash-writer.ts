/**
 * The process the crash loop kills: writes random upsert and delete batches
 * to a collection (and now and then starts an index build), printing
 * `begin N op ids` before each batch and `ack N` once it is acknowledged.
 *
 *   node crash-writer.js DATA_DIR SEED
 */
import { createBackend, createRng } from '@adanns/compute';
import { Store } from '@adanns/store';
import { CRASH_COLLECTION, CRASH_DIM, crashVector } from './crash-model.js';

const [dataDir, seedText] = process.argv.slice(2);
const rng = createRng(Number(seedText));
const backend = await createBackend('cpu', { threads: 1 });
const store = await Store.open(dataDir, { backend, backendName: 'cpu', threads: 1, autoBuildAt: 0 });
const collection = store.names().includes(CRASH_COLLECTION)
  ? store.get(CRASH_COLLECTION)
  : await store.create(CRASH_COLLECTION, { dim: CRASH_DIM, metric: 'l2', index: 'ivf4@8,flat@8', payloadIndexes: { batch: 'integer' } });
const write = (line: string) => process.stdout.write(`${line}\n`);
write('ready');
for (let batch = Number(seedText) * 1_000_000; ; batch++) {
  const roll = rng.next();
  const ids = Array.from({ length: 1 + rng.int(20) }, () => rng.int(300));
  if (roll < 0.05 && collection.count >= 50 && collection.stats().index.state !== 'building') {
    collection.build().catch(() => undefined);
    continue;
  }
  if (roll < 0.3) {
    write(`begin ${batch} delete ${ids.join(',')}`);
    await collection.delete(ids);
  } else {
    write(`begin ${batch} upsert ${ids.join(',')}`);
    await collection.upsert(ids.map((id) => ({ id, vector: crashVector(id, batch), payload: { batch } })));
  }
  write(`ack ${batch}`);
}
