import { describe, expect, it } from 'vitest';
import { createRng, sampleIndices } from '@adanns/random';

describe('seeded random numbers', () => {
  it('repeat per seed and differ between seeds', () => {
    const draw = (seed: number) => {
      const rng = createRng(seed);
      return Array.from({ length: 8 }, () => rng.next());
    };
    expect(draw(7)).toEqual(draw(7));
    expect(draw(7)).not.toEqual(draw(8));
    for (const x of draw(3)) expect(x >= 0 && x < 1).toBe(true);
  });

  it('give normals with mean 0 and variance 1', () => {
    const rng = createRng(1);
    const xs = Array.from({ length: 20_000 }, () => rng.normal());
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length;
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(variance - 1)).toBeLessThan(0.05);
  });

  it('sample distinct indices in increasing order', () => {
    const picked = Array.from(sampleIndices(1000, 50, createRng(2)));
    expect(new Set(picked).size).toBe(50);
    expect(picked).toEqual([...picked].sort((a, b) => a - b));
    expect(picked.every((i) => i >= 0 && i < 1000)).toBe(true);
    expect(Array.from(sampleIndices(5, 9, createRng(2)))).toEqual([0, 1, 2, 3, 4]);
  });
});
