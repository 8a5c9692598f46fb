// Configs shared by several test files.
import { DupnConfig, ResolvedConfig, resolveConfig } from '../../lib/network/config';
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

/** What {@link oddConfig} varies. */
export interface OddOptions {
  bidirectional: boolean;
  query: boolean;
  /** Profile fields age, gender (dim 0) and city; false: none. */
  profile: boolean;
  scene: boolean;
  /** false: every property dim 0 (Dp = 0). Default true. */
  props?: boolean;
  maxSeqLen: number;
}

/** The variants of {@link oddConfig} the forward and ONNX tests sweep (with their names): one and two directions, each with none, all and some of the optional parts. */
export function oddVariants(): { variant: Omit<OddOptions, 'props' | 'maxSeqLen'>; tag: string }[] {
  const out: { variant: Omit<OddOptions, 'props' | 'maxSeqLen'>; tag: string }[] = [];
  for (const bidirectional of [false, true]) {
    for (const [query, profile, scene] of [
      [false, false, false],
      [true, true, true],
      [true, false, true],
      [false, true, false],
    ]) {
      out.push({ variant: { bidirectional, query, profile, scene }, tag: `bi=${bidirectional} q=${query} prof=${profile} scene=${scene}` });
    }
  }
  return out;
}

/**
 * Dims deliberately not multiples of 16 (or of 8), so every kernel tail is exercised; brand (and, with a
 * profile, gender) has dim 0. Every head kind: binary and rank heads of 0–2 hidden layers, one with dense
 * features, a multiclass head, and two retrieval heads, one without history features.
 */
export function oddConfig(o: OddOptions): DupnConfig {
  const props = o.props ?? true;
  return {
    maxSeqLen: o.maxSeqLen,
    itemFields: [
      { name: 'item', buckets: 1009, dim: 13 },
      { name: 'category', buckets: 97, dim: 7 },
      { name: 'shop', buckets: 61, dim: 5 },
      { name: 'brand', buckets: 31, dim: 0 },
    ],
    properties: {
      types: ['pv', 'fav', 'cart', 'buy'],
      typeDim: props ? 3 : 0,
      gapBuckets: 9,
      gapDim: props ? 2 : 0,
      scenes: ['search', 'ads'],
      sceneDim: props && o.scene ? 3 : 0,
    },
    query: o.query ? { buckets: 53, dim: 11 } : null,
    profileFields: o.profile ? [{ name: 'age', buckets: 9, dim: 3 }, { name: 'gender', buckets: 3, dim: 0 }, { name: 'city', buckets: 101, dim: 6 }] : [],
    hidden: 37,
    bidirectional: o.bidirectional,
    attentionHidden: 19,
    tasks: [
      { name: 'ctr', kind: 'binary', target: ['item', 'category', 'shop', 'brand'], layers: [23, 9] },
      // A rank head with history features after its own dense numbers.
      { name: 'l2r', kind: 'rank', target: ['item', 'shop'], layers: [17], denseFeatures: 3, history: true },
      { name: 'ppp', kind: 'multiclass', classes: 7, layers: [21] },
      // A binary head with history features (on its shop) and no hidden layer.
      { name: 'spp', kind: 'binary', target: ['shop'], layers: [], history: true },
      { name: 'plain', kind: 'rank', target: ['category'], layers: [4, 3] },
      { name: 'ret', kind: 'retrieval', target: ['item', 'shop', 'brand'], layers: [11, 6] },
      { name: 'ret1', kind: 'retrieval', target: ['category'], layers: [5], history: false },
    ],
  };
}

/** Four item fields with small tables of unequal dims (12, 6, 4, 2), H 13, A 7, histories up to 20: the caller's heads on small, fast models. */
export function smallTables(tasks: DupnConfig['tasks']): ResolvedConfig {
  return resolveConfig({
    maxSeqLen: 20,
    itemFields: [
      { name: 'item', buckets: 500, dim: 12 },
      { name: 'category', buckets: 40, dim: 6 },
      { name: 'shop', buckets: 30, dim: 4 },
      { name: 'brand', buckets: 20, dim: 2 },
    ],
    hidden: 13,
    attentionHidden: 7,
    tasks,
  });
}
