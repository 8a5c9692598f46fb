// The native trainer is reachable from JavaScript with hand-made columns: every bad batch must be refused
// with E_INPUT naming the field, before any work, and leave the weights untouched.
import t from 'tap';
import { resolveConfig } from '../lib/network/config';
import { NativeHeadLabels, NativeTrainBatch, native } from '../lib/native/addon';
import { nativeSpec } from '../lib/native/spec';
import { tensorSpecs } from '../lib/network/tensors';
import { randomTensors, randomUserColumns } from '../lib/reference/random-model';

const config = resolveConfig({
  maxSeqLen: 5,
  itemFields: [{ name: 'item', buckets: 20, dim: 4 }, { name: 'category', buckets: 6, dim: 2 }],
  properties: { typeDim: 2, gapBuckets: 4, gapDim: 2, sceneDim: 0 },
  query: null,
  profileFields: [],
  hidden: 3,
  attentionHidden: 2,
  tasks: [
    { name: 'ctr', kind: 'binary', target: ['item'], layers: [3] },
    { name: 'l2r', kind: 'rank', target: ['item', 'category'], layers: [2], denseFeatures: 1 },
    { name: 'ppp', kind: 'multiclass', classes: 3, layers: [2] },
  ],
});
const tensors = randomTensors(config, 1);
const params = tensorSpecs(config).map((s) => {
  const data = tensors.get(s.name)!;
  return { data, m: new Float32Array(data.length), v: new Float32Array(data.length) };
});
const trainer = new (native().NativeTrainer)(nativeSpec(config, tensors, 0, false), '', params);
const options = { lr: 0.01, embeddingLr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, clipNorm: 1, embeddingAdagrad: false, trainShared: true, step: 1 };

function good(): NativeTrainBatch {
  const users = randomUserColumns(config, 3, [2, 0, 5], { queryTokens: 0 });
  const ctr: NativeHeadLabels = {
    lambda: 1, pairwise: false, items: Int32Array.from([1, 0, 2, 0, 3, 0]), dense: new Float32Array(0),
    owner: Int32Array.from([0, 0, 2]), label: Float32Array.from([1, 0, 1]), weight: Float32Array.from([1, 1, 1]),
  };
  const l2r: NativeHeadLabels = {
    lambda: 1, pairwise: true, items: Int32Array.from([4, 1, 5, 2]), dense: Float32Array.from([0.5, -1]),
    owner: Int32Array.from([1, 1]), label: Float32Array.from([4, 0]), weight: Float32Array.from([1, 2]),
  };
  const ppp: NativeHeadLabels = { lambda: 1, pairwise: false, classes: Int32Array.from([2, -1, 0]), classWeight: Float32Array.from([1, 1, 1]) };
  return { users, heads: [ctr, l2r, ppp] };
}

const report = new Float64Array(2 + 2 * 3);
const snapshot = (): Float32Array[] => params.map((p) => Float32Array.from(p.data));

t.test('a good batch steps', async (t) => {
  trainer.step(good(), options, report, 1, false);
  t.ok(Number.isFinite(report[0]) && report[0] > 0);
});

const cases: [string, (b: NativeTrainBatch) => void, RegExp][] = [
  ['owner out of range', (b) => (b.heads[0].owner![2] = 3), /heads\[0\]\.owner\[2\] = 3 is outside/],
  ['negative owner', (b) => (b.heads[0].owner![0] = -1), /owner\[0\] = -1/],
  ['unsorted owners', (b) => b.heads[0].owner!.set([2, 0, 0]), /sorted by owner/],
  ['binary label 2', (b) => (b.heads[0].label![1] = 2), /heads\[0\]\.label\[1\].*\[0, 1\]/],
  ['binary label NaN', (b) => (b.heads[0].label![1] = NaN), /label\[1\]/],
  ['rank grade 5', (b) => (b.heads[1].label![0] = 5), /heads\[1\]\.label\[0\].*grade/],
  ['rank grade 2.5', (b) => (b.heads[1].label![0] = 2.5), /grade/],
  ['negative weight', (b) => (b.heads[0].weight![0] = -1), /weight\[0\]/],
  ['infinite weight', (b) => (b.heads[1].weight![1] = Infinity), /weight\[1\]/],
  ['candidate item out of range', (b) => (b.heads[0].items![2] = 20), /candidates\.items\[2\] = 20 is outside/],
  ['candidate category out of range', (b) => (b.heads[1].items![3] = 6), /items\[3\] = 6/],
  ['items length', (b) => (b.heads[0].items = new Int32Array(5)), /same C candidates/],
  ['label length', (b) => (b.heads[0].label = new Float32Array(2)), /same C candidates/],
  ['dense NaN', (b) => (b.heads[1].dense![1] = NaN), /dense\[1\] is not a finite number/],
  ['dense length', (b) => (b.heads[1].dense = new Float32Array(1)), /dense: expected 2/],
  ['class out of range', (b) => (b.heads[2].classes![0] = 3), /classes\[0\] = 3 is outside/],
  ['class below -1', (b) => (b.heads[2].classes![0] = -2), /classes\[0\] = -2/],
  ['class weight NaN', (b) => (b.heads[2].classWeight![2] = NaN), /classWeight\[2\]/],
  ['class arrays length', (b) => (b.heads[2].classes = new Int32Array(2)), /one entry per user/],
  ['negative lambda', (b) => (b.heads[0].lambda = -1), /lambda/],
  ['NaN lambda', (b) => (b.heads[0].lambda = NaN), /lambda/],
  ['missing head', (b) => b.heads.pop(), /one entry per head/],
  ['length over maxSeqLen', (b) => (b.users.lengths[0] = 6), /lengths\[0\] = 6/],
  ['behaviour item out of range', (b) => (b.users.items[0] = 99), /users\.items\[0\] = 99/],
  ['property out of range', (b) => (b.users.properties[1] = 4), /properties\[1\] = 4/],
  ['wrong typed array', (b) => ((b.heads[0] as { owner: unknown }).owner = [0, 0, 2]), /owner: expected an Int32Array/],
];

t.test('bad batches are refused with the field named, weights untouched', async (t) => {
  const before = snapshot();
  for (const [what, spoil, message] of cases) {
    const b = good();
    spoil(b);
    let err: { code?: string; message?: string } | undefined;
    try {
      trainer.step(b, options, report, 1, false);
    } catch (e) {
      err = e as { code?: string; message?: string };
    }
    t.equal(err?.code, 'E_INPUT', `${what}: E_INPUT`);
    t.match(err?.message ?? '', message, `${what}: ${err?.message}`);
    const grads = params.map((p) => new Float32Array(p.data.length));
    t.throws(() => trainer.gradients(b, grads, report, 1), message, `${what}: gradients() refuses it too`);
  }
  const after = snapshot();
  t.ok(before.every((v, i) => v.every((x, j) => Object.is(x, after[i][j]))), 'no weight changed');
});

t.test('bad options and parameter lists are refused', async (t) => {
  t.throws(() => trainer.step(good(), { ...options, lr: -1 }, report, 1, false), /options\.lr/);
  t.throws(() => trainer.step(good(), { ...options, step: 0 }, report, 1, false), /options\.step/);
  t.throws(() => trainer.step(good(), options, new Float64Array(3), 1, false), /report/);
  t.throws(() => trainer.step(good(), { ...options, frozen: [true] }, report, 1, false), /frozen/);
  t.throws(() => new (native().NativeTrainer)(nativeSpec(config, tensors, 0, false), '', params.slice(1)), /no trainable parameter/);
  const short = params.map((p) => ({ ...p }));
  short[3] = { ...short[3], m: new Float32Array(1) };
  t.throws(() => new (native().NativeTrainer)(nativeSpec(config, tensors, 0, false), '', short), /m and v must match/);
  for (const [what, avg] of [['short', new Float32Array(1)], ['not a Float32Array', new Float64Array(params[3].data.length)]] as const) {
    const averaged = params.map((p, i) => (i === 3 ? { ...p, avg: avg as Float32Array } : p));
    t.throws(() => new (native().NativeTrainer)(nativeSpec(config, tensors, 0, false), '', averaged), /params\[3\]\.avg/, `an average ${what}`);
  }
  for (const averageRate of [-0.1, 1.5, Number.NaN]) t.throws(() => trainer.step(good(), { ...options, averageRate }, report, 1, false), /options\.averageRate/);
  // No optimizer state marks a statistic, which keeps no gradient buffer: a weight the backward pass writes
  // (here attn.w) cannot be one.
  const names = tensorSpecs(config).map((s) => s.name);
  const stateless = params.map((p, i) => (names[i] === 'attn.w' ? { ...p, m: new Float32Array(0), v: new Float32Array(0) } : p));
  t.throws(() => new (native().NativeTrainer)(nativeSpec(config, tensors, 0, false), '', stateless), /needs optimizer state/);
  const other = new (native().NativeTrainer)(nativeSpec(config, tensors, 0, false), '', params);
  other.release();
  t.throws(() => other.step(good(), options, report, 1, false), /disposed/);
});
