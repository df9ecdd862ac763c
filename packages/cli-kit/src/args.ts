
/** A user error: printed as one line with the offending value, exit code 2, no stack. */
export class UsageError extends Error {}

/** Runs node:util parseArgs (strict: unknown flags are errors) and reports its failures as usage errors. */
export function parseOrUsage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

export function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw new UsageError(`missing required option --${flag}`);
  return value;
}

export function intOption(value: string | undefined, flag: string, fallback?: number): number {
  if (value === undefined) {
    if (fallback === undefined) throw new UsageError(`missing required option --${flag}`);
    return fallback;
  }
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${flag} must be a positive integer, got "${value}"`);
  return n;
}

/** Several positive integer options at once, each checked as intOption checks it and named by its flag. */
export function intOptions<F extends string>(values: Partial<Record<F, string>>, flags: readonly F[]): Record<F, number> {
  return Object.fromEntries(flags.map((flag) => [flag, intOption(values[flag], flag)])) as Record<F, number>;
}
