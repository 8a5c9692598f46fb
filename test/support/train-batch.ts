// Small models of odd sizes with every head kind, random training batches for them, and the trainer's
// params over their tensors: shared by the gradient checks and the optimizer tests.
import { ResolvedConfig, resolveConfig } from '../../lib/network/config';
import { NativeTrainBatch } from '../../lib/native/addon';
import { mulberry32, seedFor } from '../../lib/random';
import { Tensors, tensorSpecs } from '../../lib/network/tensors';
import { randomCandidateColumns, randomUserColumns } from '../../lib/reference/random-model';

export function smallConfig(variant: number): ResolvedConfig {
  return resolveConfig({
    maxSeqLen: 6,
    itemFields: [
      { name: 'item', buckets: 23, dim: 5 },
      { name: 'category', buckets: 7, dim: 3 },
      { name: 'shop', buckets: 5, dim: variant === 1 ? 0 : 2 },
      { name: 'brand', buckets: 4, dim: 2 },
    ],
    properties: { typeDim: 3, gapBuckets: 5, gapDim: 2, sceneDim: variant === 1 ? 0 : 2 },
    query: variant === 1 ? null : { buckets: 11, dim: 3 },
    profileFields: variant === 1 ? [] : [{ name: 'age', buckets: 6, dim: 2 }, { name: 'city', buckets: 9, dim: 3 }],
    hidden: variant === 1 ? 4 : 5,
    bidirectional: variant !== 1,
    attentionHidden: 3,
    tasks: [
      { name: 'ctr', kind: 'binary', target: ['item', 'category'], layers: [6, 4] },
      { name: 'l2r', kind: 'rank', target: ['item', 'shop', 'brand'], layers: [5], denseFeatures: 2, history: variant !== 1 },
      { name: 'ppp', kind: 'multiclass', classes: 4, layers: [5] },
      // History features (on the brand) in one variant.
      { name: 'spp', kind: 'binary', target: ['brand'], layers: [3], history: variant !== 1 },
      // Two towers of odd widths; history features on in one variant, off in the other.
      { name: 'ret', kind: 'retrieval', target: ['item', 'shop'], layers: variant === 1 ? [3] : [4, 3], history: variant !== 1 },
    ],
  });
}

/** A batch with lengths 0, 1, max and random; 0–4 candidates per user per head, some users unlabelled. */
export function randomBatch(config: ResolvedConfig, seed: number, B: number, pairwise: boolean): NativeTrainBatch {
  const rand = mulberry32(seedFor(seed, 'batch'));
  const L = config.maxSeqLen;
  const lengths = Array.from({ length: B }, (_, i) => (i === 0 ? 0 : i === 1 ? 1 : i === 2 ? L : Math.floor(rand() * (L + 1))));
  const users = randomUserColumns(config, seed, lengths, { queryTokens: 3 });
  const heads = config.tasks.map((task, h) => {
    if (task.kind === 'multiclass') {
      const classes = Int32Array.from({ length: B }, () => (rand() < 0.25 ? -1 : Math.floor(rand() * task.classes)));
      const classWeight = Float32Array.from({ length: B }, () => 0.5 + rand());
      return { lambda: 0.7, pairwise: false, classes, classWeight };
    }
    const owner: number[] = [];
    for (let b = 0; b < B; b++) {
      const n = Math.floor(rand() * 5);
      for (let k = 0; k < n; k++) owner.push(b);
    }
    const C = owner.length;
    const cols = randomCandidateColumns(config, task, seed + h, C);
    const label = Float32Array.from({ length: C }, () => (task.kind === 'rank' ? Math.floor(rand() * 5) : rand() < 0.4 ? 1 : 0));
    const weight = Float32Array.from({ length: C }, () => 0.5 + rand());
    const offset = task.kind === 'retrieval' ? { offset: Float32Array.from({ length: C }, () => -3 * rand()) } : {};
    return { lambda: h === 0 ? 1 : 0.5 + h * 0.25, pairwise, items: cols.items, dense: cols.dense, owner: Int32Array.from(owner), label, weight, ...offset };
  });
  return { users, heads };
}

export function paramsOf(config: ResolvedConfig, tensors: Tensors): { data: Float32Array; m: Float32Array; v: Float32Array }[] {
  return tensorSpecs(config).map((s) => {
    const data = tensors.get(s.name)!;
    return { data, m: new Float32Array(data.length), v: new Float32Array(data.length) };
  });
}
