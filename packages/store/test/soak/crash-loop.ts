/**
 * Crash loop: starts the writer, kills it with SIGKILL at a random moment,
 * reopens the data directory and checks that every acknowledged upsert is
 * present with its vector and payload, every acknowledged delete is absent
 * (also from search results), and that the one batch in flight at the kill
 * is either fully applied or not at all. Repeats on the same directory.
 *
 *   npm run soak:crash -- --iterations 100
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createBackend, createRng } from '@adanns/compute';
import { Store } from '@adanns/store';
import { CRASH_COLLECTION, crashVector } from './crash-model.js';

type State = { batch: number } | 'deleted';
interface Batch {
  batch: number;
  op: 'upsert' | 'delete';
  ids: number[];
}

export interface CrashLoopResult {
  iterations: number;
  acknowledged: number;
  inFlightApplied: number;
  inFlightNotApplied: number;
  checkedPoints: number;
}

/** Runs the writer until killed after `ms`; returns the acknowledged batches and the one in flight. */
async function runWriter(dataDir: string, seed: number, ms: number): Promise<{ acked: Batch[]; inFlight?: Batch }> {
  // run from source like this file: the writer gets the same TypeScript loader (process.execArgv)
  const script = fileURLToPath(new URL('./crash-writer.ts', import.meta.url));
  const child = spawn(process.execPath, [...process.execArgv, script, dataDir, String(seed)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8');
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  // the clock starts once the writer is ready (an event, not a poll), so every iteration writes for a while
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: string) => {
      out += chunk;
      if (out.includes('ready\n')) resolve();
    });
    child.once('exit', (code, signal) => reject(new Error(`crash writer exited (${signal ?? `exit ${code}`}) before it was ready`)));
  });
  // the kill lands at a random moment of the writer's work: this delay is the point of the test
  await new Promise((r) => setTimeout(r, ms));
  child.kill('SIGKILL');
  await exited;
  const acked: Batch[] = [];
  let inFlight: Batch | undefined;
  for (const line of out.split('\n').slice(0, -1)) {
    const [word, number, op, ids] = line.split(' ');
    if (word === 'begin') inFlight = { batch: Number(number), op: op as Batch['op'], ids: ids.split(',').map(Number) };
    else if (word === 'ack') {
      if (!inFlight || inFlight.batch !== Number(number)) throw new Error(`ack ${number} without its begin`);
      acked.push(inFlight);
      inFlight = undefined;
    }
  }
  return inFlight ? { acked, inFlight } : { acked };
}

function apply(model: Map<number, State>, b: Batch): void {
  for (const id of b.ids) model.set(id, b.op === 'delete' ? 'deleted' : { batch: b.batch });
}

export async function crashLoop(iterations: number, log: (line: string) => void = () => {}, seed = 1): Promise<CrashLoopResult> {
  const dataDir = mkdtempSync(join(tmpdir(), 'adanns-crash-'));
  const rng = createRng(seed);
  const backend = await createBackend('cpu', { threads: 1 });
  const model = new Map<number, State>();
  const result: CrashLoopResult = { iterations, acknowledged: 0, inFlightApplied: 0, inFlightNotApplied: 0, checkedPoints: 0 };
  try {
    for (let it = 0; it < iterations; it++) {
      const { acked, inFlight } = await runWriter(dataDir, seed * 1000 + it + 1, 150 + rng.int(900));
      for (const b of acked) apply(model, b);
      result.acknowledged += acked.length;
      const store = await Store.open(dataDir, { backend, backendName: 'cpu', threads: 1, autoBuildAt: 0 });
      try {
        const c = store.get(CRASH_COLLECTION);
        // the batch in flight is atomic: all of it or none of it
        if (inFlight) {
          const stateOf = (id: number) => c.get(id);
          const applied = inFlight.ids.every((id) => {
            const p = stateOf(id);
            return inFlight.op === 'delete' ? p === undefined : p?.payload?.batch === inFlight.batch;
          });
          // a delete of ids that were already absent is indistinguishable, and that is fine
          if (applied) {
            apply(model, inFlight);
            result.inFlightApplied++;
          } else result.inFlightNotApplied++;
        }
        for (const [id, state] of model) {
          const p = c.get(id);
          if (state === 'deleted') {
            if (p) throw new Error(`iteration ${it}: point ${id} was deleted (acknowledged) but is back with batch ${String(p.payload?.batch)}`);
            continue;
          }
          if (!p) throw new Error(`iteration ${it}: acknowledged point ${id} (batch ${state.batch}) is missing`);
          const want = crashVector(id, state.batch);
          if (p.payload?.batch !== state.batch || p.vector.some((x, i) => x !== want[i])) throw new Error(`iteration ${it}: point ${id} holds batch ${String(p.payload?.batch)}, expected ${state.batch}`);
        }
        // searches agree with the points: a live point finds itself, a deleted one is never returned
        const exhaustive = c.stats().index.state === 'none' ? {} : { params: { nprobe: 4 } };
        for (const [id, state] of [...model].slice(0, 40)) {
          const probe = state === 'deleted' ? crashVector(id, 0) : crashVector(id, state.batch);
          const hits = (await c.search([probe], { k: 3, ...exhaustive })).results[0].map((h) => h.id);
          if (state !== 'deleted' && hits[0] !== id) throw new Error(`iteration ${it}: live point ${id} is not its own nearest neighbour (got ${hits.join(',')})`);
          if (state === 'deleted' && hits.includes(id)) throw new Error(`iteration ${it}: deleted point ${id} is returned by search`);
        }
        // the payload index was written in the same transactions as the points: it agrees with them
        const problems = c.checkPayloadIndexes();
        if (problems.length > 0) throw new Error(`iteration ${it}: payload index disagrees with the payloads: ${problems.slice(0, 3).join('; ')}`);
        const batches = new Map<number, number>();
        for (const state of model.values()) if (state !== 'deleted') batches.set(state.batch, (batches.get(state.batch) ?? 0) + 1);
        for (const [batch, n] of [...batches].slice(0, 20)) {
          const { count, note } = await c.countPoints({ must: [{ key: 'batch', match: { value: batch } }] });
          if (count !== n || note !== null) throw new Error(`iteration ${it}: count by filter batch = ${batch} is ${count}${note ? ` (${note})` : ''}, ${n} points hold it`);
        }
        if (c.count !== [...model.values()].filter((s) => s !== 'deleted').length) throw new Error(`iteration ${it}: ${c.count} points stored, ${[...model.values()].filter((s) => s !== 'deleted').length} expected`);
        result.checkedPoints += model.size;
        log(`iteration ${it + 1}/${iterations}: ${acked.length} batches acknowledged, in flight ${inFlight ? `${inFlight.op} ${inFlight.batch}` : 'none'}, ${c.count} points, index ${c.stats().index.state}: ok`);
      } finally {
        await store.close();
      }
    }
  } finally {
    await backend.dispose();
    rmSync(dataDir, { recursive: true, force: true });
  }
  return result;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { iterations: { type: 'string', default: '100' }, seed: { type: 'string', default: '1' } } });
  const iterations = Number(values.iterations);
  if (!Number.isInteger(iterations) || iterations < 1) {
    console.error(`--iterations must be a positive integer, got "${values.iterations}"`);
    process.exit(2);
  }
  const started = performance.now();
  const result = await crashLoop(iterations, (line) => console.log(line), Number(values.seed));
  console.log(JSON.stringify({ ...result, seconds: Number(((performance.now() - started) / 1000).toFixed(1)) }));
}
