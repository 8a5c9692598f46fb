/**
 * The training dropout mask as the native trainer draws it (native/src/core/train/trainer.cpp, dropout_scale):
 * splitmix64 of (seed, stream, row, column), the top 24 bits as a uniform in [0, 1). Written again here with
 * BigInt so the float64 reference loss can apply the very mask the native pass used.
 */

/** A dropout rate and the seed of one step's mask. */
export interface DropoutMask {
  rate: number;
  seed: number;
}

const M64 = (1n << 64n) - 1n;

/** Multiplier of (stream, row, col): 0 with probability `rate`, else 1 / (1 − rate) (in float32, as native). */
export function dropoutScale(d: DropoutMask, stream: number, row: number, col: number): number {
  let z = BigInt(d.seed) ^ ((BigInt(stream) * 0x9e3779b97f4a7c15n) & M64) ^ ((BigInt(row) * 0xd1b54a32d192ed03n) & M64) ^ ((BigInt(col) * 0x8cb92ba72f3d8dd7n) & M64);
  z = (z + 0x9e3779b97f4a7c15n) & M64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
  z ^= z >> 31n;
  const u = Number(z >> 40n) / 16777216;
  const rate = Math.fround(d.rate);
  return u < rate ? 0 : Math.fround(1 / Math.fround(1 - rate));
}
