/**
 * Runs fault scenarios on a fresh local cluster (the soak's CLI is soak-cluster.ts; the test suite runs a small form).
 */
import { LocalCluster } from '@adanns/cluster';
import { DEFAULT_SOAK, SCENARIOS, type ScenarioResult, type SoakOptions } from './scenarios.js';

export interface SoakRun {
  results: ScenarioResult[];
  /** Children that exited on their own (not killed by a scenario): a crash the JSON lines would not show. */
  crashes: string[];
}

/** Runs `names` on a fresh cluster in `dir` and stops it; scenario failures are results, crashes of the harness throw. */
export async function soakCluster(names: string[], options: Partial<SoakOptions> & { dir: string; nodeFrom?: 'source' | 'dist'; emit?: (r: ScenarioResult) => void }): Promise<SoakRun> {
  for (const name of names) if (!SCENARIOS[name]) throw new Error(`unknown scenario "${name}" (expected ${Object.keys(SCENARIOS).join(', ')})`);
  const o: SoakOptions = { ...DEFAULT_SOAK, ...options };
  const crashes: string[] = [];
  const cluster = await LocalCluster.start({
    dir: options.dir,
    fresh: true,
    ports: 'free',
    ...(options.nodeFrom ? { nodeFrom: options.nodeFrom } : {}),
    // builds only when a scenario asks (lagging-artefact); info logs (DIR/logs) say which replica trained and which loaded;
    // the CPU backend named, so a restart does not probe for a GPU first (seconds on a busy machine)
    nodeEnv: { ADANNS_LOG_LEVEL: 'info', ADANNS_AUTO_BUILD_AT: '0', ADANNS_BACKEND: 'cpu' },
    onUnexpectedExit: (name, pid, exit, tail) => crashes.push(`${name} (pid ${pid}) exited (${exit.signal ?? `code ${exit.code}`}): ${tail.split('\n').slice(-3).join(' | ')}`),
  });
  const results: ScenarioResult[] = [];
  try {
    for (const name of names) {
      o.log(`scenario ${name} ...`);
      let r: ScenarioResult;
      try {
        r = await SCENARIOS[name](cluster, o);
      } catch (e) {
        // a deadline passed or a request the scenario needed failed: that is a failed scenario, and the next one still runs
        r = { scenario: name, ok: false, seconds: 0, searchesSent: 0, searchesFailed: 0, writesAcknowledged: 0, writesMissing: 0, deletesResurrected: 0, error: (e as Error).message };
      }
      results.push(r);
      options.emit?.(r);
    }
  } finally {
    await cluster.stop();
  }
  return { results, crashes };
}
