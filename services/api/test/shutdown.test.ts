import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { AdannsClient } from '@adanns/client';

// The built service as users run it (`node services/api/dist/main.js`), stopped with SIGTERM.

const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const dataDir = mkdtempSync(join(tmpdir(), 'adanns-shutdown-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

/** Polls `probe` until it returns true, or fails at the deadline. */
async function until(what: string, probe: () => Promise<boolean>, deadlineMs = 20_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!(await probe())) {
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function startProcess(): Promise<{ child: ChildProcess; url: string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [main, '--port', '0', '--threads', '1'], { env: { ...process.env, ADANNS_DATA_DIR: dataDir, ADANNS_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (match) resolve(match[1]);
    });
    child.on('exit', (code) => reject(new Error(`service exited with ${code} before listening: ${out}`)));
  });
  return { child, url, exited };
}

describe('graceful shutdown', () => {
  it('finishes the request in flight, exits 0 on SIGTERM, and keeps acknowledged data', async () => {
    const first = await startProcess();
    const client = new AdannsClient(first.url);
    await client.createCollection('keep', { dim: 4, metric: 'l2' });
    await client.upsert('keep', [{ id: 'a', vector: [1, 2, 3, 4], payload: { v: 1 } }]);

    // a search whose body is still arriving when SIGTERM lands
    const { hostname, port } = new URL(first.url);
    const body = JSON.stringify({ vector: [1, 2, 3, 4], k: 1 });
    const socket = await new Promise<ReturnType<typeof connect>>((resolve) => {
      const s = connect(Number(port), hostname, () => resolve(s));
    });
    let reply = '';
    socket.on('data', (chunk) => (reply += chunk.toString()));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.write(`POST /v1/collections/keep/search HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body.slice(0, 10)}`);
    // the server has its head: the /metrics request itself and the search are in flight
    await until('the search to be in flight', async () => /^adanns_http_requests_in_flight 2$/m.test(await client.metrics()));
    first.child.kill('SIGTERM');
    // draining: the listener is closed, new connections are refused
    await until('the server to drain', () => fetch(`${first.url}/healthz`).then(() => false, () => true));
    // (write, not end: a client that half-closes its side is taken as gone)
    socket.write(body.slice(10));
    await closed;
    expect(reply).toMatch(/^HTTP\/1\.1 200/);
    expect(reply).toContain('"id":"a"');
    expect(await first.exited).toBe(0);

    const second = await startProcess();
    // it listens at once and opens its collections in the background: ready once they are
    await until('the restarted service to be ready', () => fetch(`${second.url}/readyz`).then((r) => r.ok));
    const again = new AdannsClient(second.url);
    expect(await again.getPoint('keep', 'a')).toEqual({ id: 'a', vector: [1, 2, 3, 4], payload: { v: 1 } });
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });
});
