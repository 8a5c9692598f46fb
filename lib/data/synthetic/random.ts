/**
 * Randomness helpers of the synthetic generator: draws from a seeded stream (normal, exponential, Poisson,
 * by cumulative weights, a uniform pick, a shuffle) and the small numeric helpers the samplers share. One
 * place, so every part of the world draws the same way.
 */

export type Rand = () => number;

export function normal(rand: Rand): number {
  const u = 1 - rand(); // (0, 1]: log(0) is impossible
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

export function exponential(rand: Rand): number {
  return -Math.log(1 - rand());
}

// Knuth's method: the means used here are small (≤ a few), where it is exact and fast.
export function poisson(rand: Rand, mean: number): number {
  const limit = Math.exp(-mean);
  let k = 0;
  let p = rand();
  while (p > limit) {
    k++;
    p *= rand();
  }
  return k;
}

export function cumulative(weights: ArrayLike<number>): Float64Array {
  const out = new Float64Array(weights.length);
  let s = 0;
  for (let i = 0; i < weights.length; i++) out[i] = s += weights[i];
  return out;
}

/** Index drawn in proportion to the increments of `cum`. */
export function sampleCum(rand: Rand, cum: Float64Array): number {
  const x = rand() * cum[cum.length - 1];
  let lo = 0;
  let hi = cum.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cum[mid] > x) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

export function pick<T>(rand: Rand, list: ArrayLike<T>): T {
  return list[Math.floor(rand() * list.length)];
}

export function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

export function clamp(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}

export function shuffle<T>(rand: Rand, list: T[]): T[] {
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [list[i], list[j]] = [list[j], list[i]];
  }
  return list;
}
