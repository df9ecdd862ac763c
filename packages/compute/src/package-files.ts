import { fileURLToPath } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Files this package ships beside its code (docs/ARCHITECTURE.md, "Packages").
 * src/ and dist/ sit at the same depth, so every path below resolves to the
 * package's own dist/kernels whether the code runs built or from source.
 */
export const KERNELS_DIR = new URL('../dist/kernels/', import.meta.url);

/** A script to start in a worker thread or a child process. */
export interface PackageScript {
  url: URL;
  path: string;
  /** Node options for the child: none when built; this process's when from source. */
  execArgv: string[];
  fromSource: boolean;
}

/**
 * A script of the calling package: `name` beside the calling module
 * (`moduleUrl`, its import.meta.url). Built, that is `name.js`; run from
 * source (tests import src/), it is `name.ts`, and the child gets this
 * process's execArgv, where the test runner put a TypeScript loader and the
 * `adanns-source` export condition (vitest.config.ts), so the child loads
 * the workspace packages from source too.
 */
export function packageScript(moduleUrl: string, name: string): PackageScript {
  const fromSource = moduleUrl.endsWith('.ts');
  const url = new URL(`${name}${fromSource ? '.ts' : '.js'}`, moduleUrl);
  return { url, path: fileURLToPath(url), execArgv: fromSource ? [...process.execArgv] : [], fromSource };
}

/** Starts `script` in a worker thread. */
export function startWorker(script: PackageScript, options: WorkerOptions = {}): Worker {
  if (!script.fromSource) return new Worker(script.url, { ...options, execArgv: script.execArgv });
  // Node 20 does not run a loader given with --import on a worker's entry file,
  // so from source the entry is imported through tsx's own loader (tsx is a
  // development dependency of the repository; built code never gets here).
  const boot = `import('tsx/esm/api').then((tsx) => tsx.tsImport(${JSON.stringify(script.url.href)}, ${JSON.stringify(import.meta.url)}))`;
  return new Worker(boot, { ...options, eval: true, execArgv: script.execArgv });
}
