import { BACKEND_NAMES, createBackend, type Backend } from '@adanns/compute';
import { intOption, UsageError } from './args.js';

/** The flags every command that computes takes. */
export const BACKEND_FLAGS = `[--backend ${BACKEND_NAMES.join('|')}] [--threads N]`;

export const backendOptions = {
  backend: { type: 'string', default: 'auto' },
  threads: { type: 'string' },
} as const;

/** Creates the backend named by --backend with --threads (default ADANNS_THREADS, else all cores). */
export async function openBackend(o: { backend?: string; threads?: string }): Promise<Backend> {
  const name = o.backend ?? 'auto';
  if (!(BACKEND_NAMES as readonly string[]).includes(name)) throw new UsageError(`--backend must be one of ${BACKEND_NAMES.join(', ')}, got "${name}"`);
  const threads = o.threads === undefined ? undefined : intOption(o.threads, 'threads');
  // stderr, so that --json and table output on stdout stay clean
  return createBackend(name, { threads, log: (line) => process.stderr.write(`${line}\n`) });
}
