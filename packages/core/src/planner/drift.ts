/**
 * How far the lists' shape has moved since calibration: the total variation
 * distance between the list-size shares then and now (half the sum of the
 * absolute differences; 0 when every list kept its share, 1 when the points
 * moved to lists that were empty). Growth that keeps the shares is not
 * drift: pricing follows the sizes (pricing.ts), and the probed lists keep
 * their mix of neighbours. Null when it cannot be told (no lists, a
 * different list count).
 */
export function listSizeDrift(then: ArrayLike<number>, now: ArrayLike<number>): number | null {
  if (then.length === 0 || then.length !== now.length) return null;
  let a = 0;
  let b = 0;
  for (let l = 0; l < then.length; l++) {
    a += then[l];
    b += now[l];
  }
  if (a === 0 || b === 0) return null;
  let tv = 0;
  for (let l = 0; l < then.length; l++) tv += Math.abs(then[l] / a - now[l] / b);
  return tv / 2;
}
