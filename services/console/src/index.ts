import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The console's static files (index.html, console.js, console.css), bundled
 * from app/ by scripts/bundle.mjs into dist/public. The same path from
 * src/index.ts (tests, tsx) and dist/index.js (the built service).
 */
export const consoleRoot: string = fileURLToPath(new URL('../dist/public/', import.meta.url));

/** Whether the bundle has been built (npm run build): the service says so instead of serving 404s. */
export function consoleBuilt(root = consoleRoot): boolean {
  return existsSync(`${root}index.html`) && existsSync(`${root}console.js`);
}
