import { describe, expect, it } from 'vitest';
import { crashLoop } from './soak/crash-loop.js';

// The short version of `npm run soak:crash -- --iterations 100`: a writer
// process killed with SIGKILL at random moments, its data directory checked
// after every kill. crashLoop throws on the first lost or resurrected point.
describe('crash recovery', () => {
  it('keeps every acknowledged write and delete through SIGKILLs', async () => {
    const result = await crashLoop(4, () => {}, 7);
    expect(result.iterations).toBe(4);
    expect(result.acknowledged).toBeGreaterThan(0);
    expect(result.checkedPoints).toBeGreaterThan(0);
  }, 120_000);
});
