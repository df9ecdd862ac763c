import { parseArgs } from 'node:util';
import { AdannsClient, AdannsError, type Metric, type PayloadIndexType } from '@adanns/client';
import { loadVectors } from '@adanns/datasets';
import { PAYLOAD_INDEX_TYPES } from '@adanns/wire';
import { intOption, parseOrUsage, required, UsageError, progressBars } from '@adanns/cli-kit';
import { parseCalibrationKs } from '../calibration-flags.js';
import { checkPayloadFile, payloadRows, readPayloadColumn, setPayloadKey } from '../payload-sources.js';

export const importUsage = `adanns import --collection NAME --data SOURCE [--url http://127.0.0.1:8080] [--api-key KEY]
             [--metric cosine|ip|l2] [--index SPEC] [--limit N] [--first-id N] [--batch 1000] [--build]
             [--calibration-k 1,10,100] [--calibration-queries SOURCE] [--payload-index FIELD:TYPE]...
             [--payload-file FILE.jsonl] [--payload-column NAME=FILE.npy]...
  Uploads vectors into a collection of a running service (created with --metric and --index when it
  does not exist), in MessagePack batches, each acknowledged once durable. Point ids are row numbers
  from --first-id (default 0). A point's payload: its label when the source has labels ({label}), then
  the keys of line i of --payload-file (JSON lines, one object per row), then each --payload-column (a .npy
  of one number per row, integer dtypes as integers; NAME may nest with dots, e.g. meta.price); a later
  source replaces a key an earlier one set. Payload files must have one entry per row (at least the
  rows --limit takes) and are checked whole before anything is uploaded.
  --payload-index declares a payload index (TYPE keyword, integer, float, bool or datetime), e.g.
  label:integer, so filters on the labels read the index (an existing collection builds it in the background).
  --build then starts the index build and waits for it; with --calibration-queries it then re-calibrates the index
  on those queries (kept by the collection for later builds) and waits. --calibration-k sets the k values a new
  collection's budgets are calibrated at. The key defaults to ADANNS_API_KEY.`;

export async function importCommand(argv: string[]): Promise<void> {
  const o = parseOrUsage(() => parseArgs({ args: argv, options: {
    url: { type: 'string', default: 'http://127.0.0.1:8080' },
    'api-key': { type: 'string' },
    collection: { type: 'string' },
    data: { type: 'string' },
    metric: { type: 'string', default: 'cosine' },
    index: { type: 'string' },
    limit: { type: 'string' },
    'first-id': { type: 'string', default: '0' },
    batch: { type: 'string', default: '1000' },
    build: { type: 'boolean', default: false },
    'calibration-k': { type: 'string' },
    'calibration-queries': { type: 'string' },
    'payload-index': { type: 'string', multiple: true },
    'payload-file': { type: 'string' },
    'payload-column': { type: 'string', multiple: true },
  } }).values);
  const payloadIndexes: Record<string, PayloadIndexType> = {};
  for (const text of o['payload-index'] ?? []) {
    const m = /^([^:]+):(\w+)$/.exec(text);
    if (!m || !(PAYLOAD_INDEX_TYPES as readonly string[]).includes(m[2])) throw new UsageError(`--payload-index must be FIELD:TYPE with TYPE one of ${PAYLOAD_INDEX_TYPES.join(', ')}, got "${text}"`);
    payloadIndexes[m[1]] = m[2] as PayloadIndexType;
  }
  const calibrationK = parseCalibrationKs(o['calibration-k']);
  if (o['calibration-queries'] !== undefined && !o.build) throw new UsageError('--calibration-queries calibrates the index --build makes: give --build too');
  const name = required(o.collection, 'collection');
  if (!['cosine', 'ip', 'l2'].includes(o.metric)) throw new UsageError(`--metric must be cosine, ip or l2, got "${o.metric}"`);
  const batch = intOption(o.batch, 'batch');
  const firstId = Number(o['first-id']);
  if (!Number.isSafeInteger(firstId) || firstId < 0) throw new UsageError(`--first-id must be a non-negative integer, got "${o['first-id']}"`);
  const set = await loadVectors(required(o.data, 'data'), o.limit === undefined ? undefined : intOption(o.limit, 'limit'));
  // payload sources checked whole (alignment, JSON, values) before anything is uploaded
  const wholeRows = o.limit === undefined;
  const columns = (o['payload-column'] ?? []).map((text) => readPayloadColumn(text, set.rows, wholeRows));
  const named = new Set<string>();
  for (const c of columns) {
    if (named.has(c.name)) throw new UsageError(`--payload-column ${c.name} is given twice`);
    named.add(c.name);
  }
  if (o['payload-file'] !== undefined) await checkPayloadFile(o['payload-file'], set.rows, wholeRows);
  const nextPayload = o['payload-file'] === undefined ? undefined : payloadRows(o['payload-file']);
  const apiKey = o['api-key'] ?? process.env.ADANNS_API_KEY;
  const client = new AdannsClient(o.url, { format: 'msgpack', ...(apiKey ? { apiKey } : {}) });
  try {
    try {
      const existing = await client.getCollection(name);
      if (existing.dim !== set.dim) throw new UsageError(`collection ${name} has dimension ${existing.dim}, ${o.data} has ${set.dim}`);
      for (const [field, type] of Object.entries(payloadIndexes)) await client.createPayloadIndex(name, field, type);
    } catch (e) {
      if (!(e instanceof AdannsError && e.status === 404)) throw e;
      await client.createCollection(name, { dim: set.dim, metric: o.metric as Metric, ...(o.index ? { index: o.index } : {}), ...(calibrationK ? { calibrationK } : {}), ...(Object.keys(payloadIndexes).length ? { payloadIndexes } : {}) });
    }
    const bars = progressBars();
    const started = performance.now();
    for (let from = 0; from < set.rows; from += batch) {
      const to = Math.min(set.rows, from + batch);
      const points = [];
      for (let i = from; i < to; i++) {
        const label = set.labels?.[i];
        const payload: Record<string, unknown> = label === undefined ? {} : { label };
        if (nextPayload) Object.assign(payload, await nextPayload());
        for (const c of columns) setPayloadKey(payload, c.name, c.values[i]);
        points.push({ id: firstId + i, vector: set.data.subarray(i * set.dim, (i + 1) * set.dim), ...(Object.keys(payload).length > 0 ? { payload } : {}) });
      }
      await client.upsert(name, points);
      bars.update('import', to, set.rows);
    }
    bars.stop();
    const seconds = (performance.now() - started) / 1000;
    console.log(`imported ${set.rows} vectors of dimension ${set.dim} into ${name} in ${seconds.toFixed(1)} s (${Math.round(set.rows / seconds)} points/s)`);
    if (Object.keys(payloadIndexes).length > 0) {
      const indexes = await client.waitForPayloadIndexes(name, 200);
      console.log(`payload indexes: ${indexes.map((i) => `${i.field} (${i.type})`).join(', ')}`);
    }
    if (o.build) {
      await client.buildIndex(name);
      const index = await client.waitForIndex(name, 500);
      if (index.state === 'exact') console.log(`no index for ${name}: ${index.note}`);
      else if (index.state !== 'ready') throw new UsageError(`index build of ${name} failed: ${index.lastError}`);
      else console.log(`index ${index.spec} ready over ${index.trainedCount} points`);
      if (o['calibration-queries'] !== undefined && index.state === 'ready') {
        const given = await loadVectors(o['calibration-queries']);
        if (given.dim !== set.dim) throw new UsageError(`--calibration-queries ${o['calibration-queries']} has dimension ${given.dim}, the collection ${set.dim}`);
        await client.calibrate(name, Array.from({ length: given.rows }, (_, i) => given.data.subarray(i * given.dim, (i + 1) * given.dim)));
        const done = await client.waitForCalibration(name, 500);
        if (done.calibration?.lastError) throw new UsageError(`calibration of ${name} failed: ${done.calibration.lastError}`);
        console.log(`calibrated at k = ${done.calibration?.ks.join(', ')} on ${done.calibration?.queries} queries from ${o['calibration-queries']}`);
      }
    }
  } catch (e) {
    if (e instanceof AdannsError) throw new UsageError(`${o.url}: ${e.message} (HTTP ${e.status})`);
    if (e instanceof TypeError && /fetch failed/.test(e.message)) throw new UsageError(`no service at ${o.url} (start one with adanns serve)`);
    throw e;
  }
}
