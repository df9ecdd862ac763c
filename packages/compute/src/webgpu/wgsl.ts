import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { KERNELS_DIR } from '../package-files.js';

const WGSL_DIR = new URL('wgsl/', KERNELS_DIR);
let prelude: string | undefined;

function read(file: string): string {
  const path = fileURLToPath(new URL(file, WGSL_DIR));
  try {
    return readFileSync(path, 'utf8');
  } catch {
    throw new Error(`WGSL kernel not found at ${path}: run "npm run build:kernels" first (it copies kernels/wgsl into the package)`);
  }
}

/**
 * A kernel's WGSL module: the shared prelude (kernels/wgsl/prelude.wgsl:
 * metric code, ranking order, packed-code readers, the Params uniform at
 * binding 0) followed by the kernel file. WGSL lets module-scope
 * declarations come in any order, so the prelude binds the kernel's Params.
 */
export function kernelSource(kernel: string): string {
  prelude ??= read('prelude.wgsl');
  return `${prelude}\n// ---- ${kernel}.wgsl ----\n${read(`${kernel}.wgsl`)}`;
}
