import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { packageScript } from '@adanns/compute';

/**
 * LMDB trusts its pages: a corrupt data file can crash the process that
 * opens it instead of raising an error. So each environment is first opened
 * and walked by a short-lived child process (this file's main below); only if
 * that succeeds is it opened here. One damaged collection then costs a
 * warning, not the server. The probe is awaited, not run synchronously: a
 * server answers health checks while its collections are probed at start.
 */
export function probeEnvironment(path: string): Promise<void> {
  const script = packageScript(import.meta.url, './probe');
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [...script.execArgv, script.path, path], { encoding: 'utf8', timeout: 120_000 }, (error, _stdout, stderr) => {
      if (!error) return resolve();
      const why = error.killed ? 'took over 120 s' : error.signal ? `crashed with ${error.signal}` : typeof error.code === 'number' ? `failed: ${stderr.trim().split('\n').pop() ?? ''}` : error.message;
      reject(new Error(`LMDB environment ${path} is unreadable (the probe ${why})`));
    });
  });
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
