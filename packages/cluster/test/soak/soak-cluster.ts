/**
 * `npm run soak:cluster`: starts a fresh local cluster on loopback (3
 * nats-server with JetStream, 4 nodes of the built CLI), runs the fault
 * scenarios one after another and prints one JSON line per scenario; exits 1
 * if any guarantee failed (a failed search, an acknowledged write missing on
 * a replica, a deleted point back). Each scenario is bounded: its load runs
 * --seconds, every wait has a deadline.
 *
 *   npm run soak:cluster [-- --scenarios kill-replica,kill-nats --seconds 20 --points 2000 --keep]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { intOption } from '@adanns/cli-kit';
import { soakCluster } from './run.js';
import { DEFAULT_SOAK, SCENARIOS } from './scenarios.js';

const { values: v } = parseArgs({
  options: {
    scenarios: { type: 'string', default: Object.keys(SCENARIOS).join(',') },
    seconds: { type: 'string', default: String(DEFAULT_SOAK.seconds) },
    points: { type: 'string', default: String(DEFAULT_SOAK.points) },
    dir: { type: 'string' },
    keep: { type: 'boolean', default: false },
    source: { type: 'boolean', default: false },
  },
});
const dir = v.dir ?? mkdtempSync(join(tmpdir(), 'adanns-soak-cluster-'));
const run = await soakCluster(v.scenarios!.split(','), {
  dir,
  seconds: intOption(v.seconds, 'seconds'),
  points: intOption(v.points, 'points'),
  // the soak measures the product: the built CLI (npm run build first), unless --source
  nodeFrom: v.source ? 'source' : 'dist',
  log: (line) => console.error(line),
  emit: (r) => console.log(JSON.stringify(r)),
});
for (const c of run.crashes) console.error(`crash: ${c}`);
const failed = run.crashes.length > 0 || run.results.some((r) => !r.ok);
// a failure keeps the nodes' and servers' logs for whoever looks into it
if (v.keep || failed) console.error(`cluster data and logs kept in ${dir}`);
else rmSync(dir, { recursive: true, force: true });
if (failed) process.exitCode = 1;
