import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WasmSimdBackend } from '@adanns/compute';
import { Store } from '../src/index.js';
import { alive } from './processes.js';

let backend: WasmSimdBackend;
const dir = mkdtempSync(join(tmpdir(), 'adanns-build-restart-'));
beforeAll(async () => {
  backend = await WasmSimdBackend.create({ threads: 1 });
});
afterAll(async () => {
  await backend.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe('a build interrupted by a crash', () => {
  it('ends with its server and starts again when the collection opens', async () => {
    // run from source like this file: the child gets the same TypeScript loader (process.execArgv)
    const child = spawn(process.execPath, [...process.execArgv, join(import.meta.dirname, 'build-child.ts'), dir, '4000', '16'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    let workerPid = 0;
    // kill the server once its build is calibrating: trained, not yet saved
    for await (const text of createInterface({ input: child.stdout! })) {
      const entry = JSON.parse(text) as { message: string; pid?: number; stage?: string };
      if (/build started/.test(entry.message)) workerPid = entry.pid!;
      if (entry.stage === 'calibrate') break;
    }
    expect(workerPid).toBeGreaterThan(0);
    expect(existsSync(join(dir, 'collections', 'resumed', 'index', 'BUILD_REQUESTED'))).toBe(true);
    child.kill('SIGKILL');
    await exited;
    // the build worker notices its server is gone and exits
    for (let waited = 0; alive(workerPid); waited += 50) {
      if (waited > 10_000) throw new Error(`build worker ${workerPid} outlived its server`);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(existsSync(join(dir, 'collections', 'resumed', 'index', 'CURRENT'))).toBe(false);

    const logs: string[] = [];
    const line = (fields: object, message: string) => logs.push(message);
    const store = await Store.open(dir, { backend, backendName: 'cpu', threads: 1, autoBuildAt: 0, calibrationSeconds: 2, logger: { debug: line, info: line, warn: line, error: line } });
    const c = store.get('resumed');
    expect(c.stats().index.state).toBe('building');
    expect(logs.some((l) => /a build was interrupted \(requested\): starting it again/.test(l))).toBe(true);
    await c.whenBuilt();
    expect(c.stats().index).toMatchObject({ state: 'ready', trainedCount: 4000, lastError: null });
    expect(existsSync(join(dir, 'collections', 'resumed', 'index', 'BUILD_REQUESTED'))).toBe(false);
    await store.close();
  }, 60_000);
});
