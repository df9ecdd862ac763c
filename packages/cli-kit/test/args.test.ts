import { describe, expect, it } from 'vitest';
import { intOptions, UsageError } from '../src/index.js';

describe('intOptions', () => {
  it('reads each flag as a positive integer, by name', () => {
    expect(intOptions({ n: '20000', dim: '128', extra: 'x' }, ['n', 'dim'])).toEqual({ n: 20000, dim: 128 });
  });

  it('names the offending flag and value, and a missing one', () => {
    expect(() => intOptions({ n: '20000', dim: '12.5' }, ['n', 'dim'])).toThrow(new UsageError('--dim must be a positive integer, got "12.5"'));
    expect(() => intOptions<'n' | 'rows'>({ n: '3' }, ['n', 'rows'])).toThrow(/missing required option --rows/);
  });
});
