#!/usr/bin/env node
/**
 * Bundles the console (app/) into dist/public: console.js (esbuild, one
 * minified ES module with vega, vega-lite and vega-embed inside: no CDN, no
 * network at run time), index.html and console.css copied beside it. The
 * workspace packages it imports (@adanns/client) are bundled from source.
 *
 *   node services/console/scripts/bundle.mjs      prints the bundle's bytes, raw and gzipped
 */
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const app = join(here, '../app');

/** Builds the bundle into `out` (default dist/public); returns the files written with their sizes. */
export async function bundleConsole(out = join(here, '../dist/public')) {
  mkdirSync(out, { recursive: true });
  await build({
    entryPoints: [join(app, 'main.ts')],
    outfile: join(out, 'console.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    legalComments: 'linked',
    conditions: ['adanns-source'],
    logLevel: 'warning',
  });
  for (const file of ['index.html', 'console.css']) copyFileSync(join(app, file), join(out, file));
  return ['console.js', 'console.css', 'index.html'].map((file) => {
    const data = readFileSync(join(out, file));
    return { file, bytes: data.length, gzipBytes: gzipSync(data, { level: 9 }).length };
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const { file, bytes, gzipBytes } of await bundleConsole()) console.log(`console/${file}: ${bytes} bytes, ${gzipBytes} gzipped`);
}
