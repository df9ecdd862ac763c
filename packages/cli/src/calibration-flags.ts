import { UsageError } from '@adanns/cli-kit';

/** `--calibration-k 1,10,100`: the k values to calibrate at (each a positive integer, at most 8). */
export function parseCalibrationKs(text: string | undefined): number[] | undefined {
  if (text === undefined) return undefined;
  const ks = text.split(',').map((part) => {
    const k = Number(part.trim());
    if (part.trim() === '' || !Number.isInteger(k) || k < 1 || k > 10_000) throw new UsageError(`--calibration-k takes k values from 1 to 10000 separated by commas (e.g. 1,10,100), got "${part}" in "${text}"`);
    return k;
  });
  if (ks.length > 8) throw new UsageError(`--calibration-k takes at most 8 k values, got ${ks.length}`);
  return [...new Set(ks)].sort((a, b) => a - b);
}
