import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { packageScript } from '@adanns/compute';

/**
 * LMDB trusts its pages: a corrupt data file can crash the process that
 * opens it instead of raising an error. So each environment is first opened
 * and walked by a short-lived child process (this file's main below); only if
 * that succeeds is it opened here. One damaged collection then costs a
 * warning, not the server.
 */
export function probeEnvironment(path: string): void {
  const script = packageScript(import.meta.url, './probe');
  const probe = spawnSync(process.execPath, [...script.execArgv, script.path, path], { encoding: 'utf8', timeout: 120_000 });
  if (probe.status === 0) return;
  const why = probe.error?.message ?? (probe.signal ? `crashed with ${probe.signal}` : `failed: ${probe.stderr.trim().split('\n').pop() ?? ''}`);
  throw new Error(`LMDB environment ${path} is unreadable (the probe ${why})`);
}

async function main(path: string): Promise<void> {
  const { open } = await import('lmdb');
  const root = open({ path, maxDbs: 8, readOnly: true });
  for (const name of ['meta', 'points', 'external-ids', 'changes', 'vectors']) {
    const db = root.openDB(name, name === 'vectors' ? { encoding: 'binary' } : {});
    for (const entry of db.getRange({})) void entry.value;
  }
  await root.close();
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv[2]).catch((e: Error) => {
    console.error(e.message);
    process.exit(1);
  });
}
