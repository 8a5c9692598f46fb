// The native backward pass against central finite differences of the float64 reference loss, for every
// tensor, on small models with odd sizes, lengths 0/1/max, every head kind (pairwise rank included), label
// masks and example weights — on every instruction-set path.
import t, { Test } from 'tap';
import { ResolvedConfig, resolveConfig } from '../lib/network/config';
import { NativeTrainBatch, native } from '../lib/native/addon';
import { nativeSpec } from '../lib/native/spec';
import { mulberry32, seedFor } from '../lib/random';
import { Tensors, tensorSpecs } from '../lib/network/tensors';
import { randomCandidateColumns, randomTensors, randomUserColumns } from '../lib/reference/random-model';
import { referenceLoss } from '../lib/reference/loss';

function smallConfig(variant: number): ResolvedConfig {
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
      { name: 'l2r', kind: 'rank', target: ['item', 'shop', 'brand'], layers: [5], denseFeatures: 2 },
      { name: 'ppp', kind: 'multiclass', classes: 4, layers: [5] },
      { name: 'spp', kind: 'binary', target: ['brand'], layers: [3] },
      // Two towers of odd widths; history features on in one variant, off in the other.
      { name: 'ret', kind: 'retrieval', target: ['item', 'shop'], layers: variant === 1 ? [3] : [4, 3], history: variant !== 1 },
    ],
  });
}

/** A batch with lengths 0, 1, max and random; 0–4 candidates per user per head, some users unlabelled. */
function randomBatch(config: ResolvedConfig, seed: number, B: number, pairwise: boolean): NativeTrainBatch {
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

function paramsOf(config: ResolvedConfig, tensors: Tensors): { data: Float32Array; m: Float32Array; v: Float32Array }[] {
  return tensorSpecs(config).map((s) => {
    const data = tensors.get(s.name)!;
    return { data, m: new Float32Array(data.length), v: new Float32Array(data.length) };
  });
}

/** Indices to probe in a tensor: all of a small one, else a spread sample plus the largest gradients. */
function probes(size: number, grad: Float32Array, rand: () => number): number[] {
  if (size <= 40) return Array.from({ length: size }, (_, i) => i);
  const set = new Set<number>();
  const order = Array.from({ length: size }, (_, i) => i).sort((a, b) => Math.abs(grad[b]) - Math.abs(grad[a]));
  for (let i = 0; i < 16; i++) set.add(order[i]);
  while (set.size < 40) set.add(Math.floor(rand() * size));
  return [...set];
}

function check(tt: Test, config: ResolvedConfig, isa: string, seed: number, pairwise: boolean): void {
  const tensors = randomTensors(config, seed, 0.6);
  const batch = randomBatch(config, seed, 9, pairwise);
  const specs = tensorSpecs(config);
  const trainer = new (native().NativeTrainer)(nativeSpec(config, tensors, 0, false), isa, paramsOf(config, tensors));
  const grads = specs.map((s) => new Float32Array(tensors.get(s.name)!.length));
  const report = new Float64Array(2 + 2 * config.tasks.length);
  trainer.gradients(batch, grads, report, 2);
  const ref = referenceLoss(config, tensors, batch);
  tt.ok(Math.abs(report[0] - ref.loss) <= 1e-5 * Math.max(1, Math.abs(ref.loss)), `loss ${report[0]} vs reference ${ref.loss}`);
  const rand = mulberry32(seed);
  specs.forEach((s, i) => {
    const data = tensors.get(s.name)!;
    if (data.length === 0) return;
    let diff2 = 0;
    let ref2 = 0;
    let worst = 0;
    let worstText = '';
    let kinks = 0;
    const fdAt = (j: number, eps: number): number => {
      const x = data[j];
      data[j] = x + eps;
      const up = data[j];
      const lp = referenceLoss(config, tensors, batch).loss;
      data[j] = x - eps;
      const down = data[j];
      const lm = referenceLoss(config, tensors, batch).loss;
      data[j] = x;
      return (lp - lm) / (up - down);
    };
    const points = probes(data.length, grads[i], rand);
    for (const j of points) {
      const eps = 1e-4 * Math.max(1, Math.abs(data[j]));
      const fd = fdAt(j, eps);
      // A ReLU kink inside ±eps makes the two step sizes disagree: such a point has no derivative to check.
      if (Math.abs(fd - fdAt(j, eps / 2)) > 1e-3 * (Math.abs(fd) + 1e-4)) {
        kinks++;
        continue;
      }
      const d = grads[i][j] - fd;
      diff2 += d * d;
      ref2 += fd * fd;
      if (Math.abs(d) > worst) {
        worst = Math.abs(d);
        worstText = `${worst.toExponential(2)} at [${j}] native ${grads[i][j]} fd ${fd}`;
      }
    }
    tt.ok(kinks <= points.length / 4, `${isa} ${s.name}: ${kinks} of ${points.length} probes at a ReLU kink`);
    const rel = Math.sqrt(diff2) / Math.max(Math.sqrt(ref2), 1e-4);
    tt.ok(rel < 2e-3, `${isa} ${s.name}: ‖native − fd‖/‖fd‖ = ${rel.toExponential(2)} (worst ${worstText})`);
  });
  trainer.release();
}

const isas = native().supportedIsas.split(',');

for (const isa of isas) {
  t.test(`gradients match finite differences (${isa})`, async (tt) => {
    check(tt, smallConfig(0), isa, 11, false);
    check(tt, smallConfig(1), isa, 12, false);
    check(tt, smallConfig(0), isa, 13, true);
  });
}

t.test('gradient of a batch whose users have no behaviours and no labels is zero, not NaN', async (tt) => {
  const config = smallConfig(0);
  const tensors = randomTensors(config, 5, 0.6);
  const batch = randomBatch(config, 5, 3, false);
  batch.users.lengths.fill(0);
  const users = randomUserColumns(config, 5, [0, 0, 0], { queryTokens: 0 });
  batch.users = users;
  for (const h of batch.heads) {
    if (h.classes) h.classes.fill(-1);
    else {
      h.items = new Int32Array(0);
      h.dense = new Float32Array(0);
      h.owner = new Int32Array(0);
      h.label = new Float32Array(0);
      h.weight = new Float32Array(0);
      if (h.offset) h.offset = new Float32Array(0);
    }
  }
  const trainer = new (native().NativeTrainer)(nativeSpec(config, tensors, 0, false), '', paramsOf(config, tensors));
  const grads = tensorSpecs(config).map((s) => new Float32Array(tensors.get(s.name)!.length));
  const report = new Float64Array(2 + 2 * config.tasks.length);
  trainer.gradients(batch, grads, report, 1);
  tt.equal(report[0], 0);
  tt.ok(grads.every((g) => g.every((x) => x === 0)), 'every gradient is 0');
});
