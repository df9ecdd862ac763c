import { describe, expect, it } from 'vitest';
import { pointsAtK, UNCALIBRATED_K_MARGIN, type Calibration, type SearchParams } from '../src/index.js';

const point = (params: SearchParams, recall: number) => ({ params, recall, recallStdErr: 0, mflops: 1, mflopsStdErr: 0, latencyMs: 1 });

describe('pointsAtK', () => {
  it('pairs an adaptive point with itself across calibrated k, not with the fixed point at its nprobe', () => {
    const fixed: SearchParams = { coarseDim: 8, nprobe: 8, scanDim: 16, shortlist: 100 };
    const adaptive: SearchParams = { ...fixed, probeMargin: 0.5 };
    const levels = [
      { k: 1, points: [point(fixed, 0.9), point(adaptive, 0.7)] },
      { k: 100, points: [point(fixed, 0.85), point(adaptive, 0.6)] },
    ];
    const calibration: Calibration = { k: 1, queries: 10, selfExcluded: false, points: levels[0].points, levels, seconds: 1, complete: true };
    const { points, calibratedK } = pointsAtK(calibration, 10);
    expect(calibratedK).toBeNull();
    const recallOf = (p: SearchParams) => points.find((q) => q.params.probeMargin === p.probeMargin)!.recall;
    expect(points).toHaveLength(2);
    expect(recallOf(fixed)).toBeCloseTo(0.85 - UNCALIBRATED_K_MARGIN, 12);
    expect(recallOf(adaptive)).toBeCloseTo(0.6 - UNCALIBRATED_K_MARGIN, 12);
  });
});
