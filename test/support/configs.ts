// Configs shared by several test files.
import { ResolvedConfig, resolveConfig } from '../../lib/network/config';
import { mulberry32 } from '../../lib/random';

/** Paper-size network dims (H 128 × 2, Dx 64, Dp 16, Dq 32, Du 32) with small tables, so tests stay light. */
export function paperDims(): ResolvedConfig {
  return resolveConfig({
    itemFields: [
      { name: 'item', buckets: 4096, dim: 32 },
      { name: 'category', buckets: 512, dim: 16 },
      { name: 'shop', buckets: 512, dim: 8 },
      { name: 'brand', buckets: 512, dim: 8 },
    ],
    query: { buckets: 1024, dim: 32 },
  });
}

/** Batch lengths of one kind: all 0, all 1, all max, or random with 0 and max mixed in. */
export function lengthsFor(kind: string, batch: number, maxSeqLen: number, seed: number): number[] {
  const rand = mulberry32(seed);
  return Array.from({ length: batch }, (_, i) => {
    if (kind === 'zero') return 0;
    if (kind === 'one') return 1;
    if (kind === 'max') return maxSeqLen;
    return i % 7 === 0 ? 0 : i % 7 === 1 ? maxSeqLen : Math.floor(rand() * (maxSeqLen + 1));
  });
}

/** Dp = 0 (so lstm.fw.wp is [3H, 0] and may be left out), one direction, no query, no profile. */
export function noPropertiesConfig(): ResolvedConfig {
  return resolveConfig({
    maxSeqLen: 8,
    itemFields: [{ name: 'item', buckets: 23, dim: 4 }],
    properties: { typeDim: 0, gapDim: 0, sceneDim: 0 },
    query: null,
    profileFields: [],
    hidden: 5,
    bidirectional: false,
    attentionHidden: 3,
    tasks: [{ name: 'ctr', kind: 'binary', target: ['item'], layers: [] }],
  });
}
