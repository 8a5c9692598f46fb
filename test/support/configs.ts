// Configs shared by several test files.
import { ResolvedConfig, resolveConfig } from '../../lib/config';

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
