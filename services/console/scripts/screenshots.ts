/**
 * Regenerates the console screenshots the README shows
 * (docs/console-collection.png, docs/console-playground.png): a service on a
 * loopback port with a seeded 3,000-point collection, the bundle as built,
 * Debian's chromium.
 *
 *   npm run console:screenshots
 */
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { bundleConsole } from './bundle.mjs';
import { ADMIN_KEY, chromiumProblem, launch, openPage, seed, startService } from './harness.js';

const docs = fileURLToPath(new URL('../../../docs/', import.meta.url));
const problem = chromiumProblem();
if (problem) {
  console.error(`console:screenshots: ${problem}`);
  process.exit(2);
}
await bundleConsole();
const service = await startService();
const browser = await launch();
try {
  await seed(service, 'docs', 3000, 64, { spec: 'pca,ivf32@16,flat@32,rerank@64' });
  const width = 1000;
  const collection = await openPage(browser, service.url, ADMIN_KEY, width);
  await collection.page.goto(`${service.url}/console/#/c/docs`, { waitUntil: 'load' });
  await collection.page.waitForSelector('#plot-spectrum svg');
  await collection.page.screenshot({ path: `${docs}console-collection.png`, fullPage: true });

  const playground = await openPage(browser, service.url, ADMIN_KEY, width);
  await playground.page.goto(`${service.url}/console/#/c/docs/search`, { waitUntil: 'load' });
  await playground.page.waitForSelector('#search-form');
  await playground.page.type('#query-id', '42');
  await playground.page.click('#compare');
  await playground.page.click('#run');
  await playground.page.waitForSelector('#plot-answer-mflops svg g.answer_marks path');
  await playground.page.screenshot({ path: `${docs}console-playground.png`, fullPage: true });

  for (const { watch } of [collection, playground]) if (watch.errors.length > 0 || watch.offline.length > 0) throw new Error(`the console logged errors: ${JSON.stringify(watch)}`);
  for (const name of ['console-collection.png', 'console-playground.png']) console.log(`docs/${name}: ${statSync(`${docs}${name}`).size} bytes`);
} finally {
  await browser.close();
  await service.stop();
}
