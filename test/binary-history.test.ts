// A binary head with history features (`history: true`): whether, how recently and how often the user acted on
// the candidate's history field enter its first layer. The config, the packing, scoring beside other heads that
// read other dense inputs, the float64 reference, onnxruntime, evaluation with each user's history, and training
// that learns from the features.
import t from 'tap';
import { HEAD_HISTORY_FEATURES, HISTORY_SCALE, denseCount, deriveDims, resolveConfig } from '../lib/network/config';
import { tensorSpecs } from '../lib/network/tensors';
import { Model } from '../lib/model/model';
import { UserInput } from '../lib/model/features';
import { randomTensors } from '../lib/reference/random-model';
import { referenceScore } from '../lib/reference/forward';
import { Trainer } from '../lib/train/trainer';
import { evaluate, modelScorer } from '../lib/eval/evaluate';
import { LabelledCandidate, TrainingExample } from '../lib/data/training-example';
import { mulberry32 } from '../lib/random';
import { smallTables } from './support/configs';
import { relError } from './support/compare';
import { throwsCode } from './support/errors';

const config = smallTables([
  { name: 'ctr', kind: 'binary', target: ['item', 'category'], layers: [11, 5] },
  { name: 'l2r', kind: 'rank', target: ['item', 'shop'], layers: [9], denseFeatures: 3 },
  { name: 'spp', kind: 'binary', target: ['shop'], layers: [7], history: true },
  { name: 'next', kind: 'retrieval', target: ['item', 'category'], layers: [6] },
  { name: 'bare', kind: 'binary', target: ['brand'], layers: [], history: true },
  // A rank head reads its own dense numbers, then the history features (of the item).
  { name: 'l2rh', kind: 'rank', target: ['item', 'shop'], layers: [6], denseFeatures: 3, history: true },
]);
const tensors = randomTensors(config, 6, 0.4);
const user: UserInput = {
  behaviors: [
    { item: 'i1', category: 1, shop: 's3', brand: 'b1', type: 'pv', time: 100 },
    { item: 'i2', category: 2, shop: 's1', brand: 'b2', type: 'pv', time: 200 },
    { item: 'i3', category: 1, shop: 's3', brand: 'b1', type: 'buy', time: 300 },
    { item: 'i4', category: 3, shop: 's2', brand: 'b2', type: 'pv', time: 400 },
  ],
};
const candidates = Array.from({ length: 40 }, (_, i) => ({ item: `i${i % 9}`, category: i % 4, shop: `s${i % 6}`, brand: `b${i % 3}`, dense: [i / 40, (i % 5) / 5, -1] }));

t.test('config: off by default and absent from the resolved config; on, nine more inputs to the first layer', async (t) => {
  const off = resolveConfig({ tasks: [{ name: 'spp', kind: 'binary', target: ['shop'] }] }).tasks[0];
  t.notOk('history' in off, 'absent: files written before it load and save as before');
  t.equal(denseCount(off), 0);
  const on = config.tasks[2];
  t.same(on, { name: 'spp', kind: 'binary', target: ['shop'], layers: [7], history: true });
  t.equal(denseCount(on), HEAD_HISTORY_FEATURES);
  t.equal(HEAD_HISTORY_FEATURES, 9);
  const w0 = tensorSpecs(config).find((s) => s.name === 'head.spp.0.w')!;
  t.same(w0.shape, [7, deriveDims(config).userDim + 4 + 9], 'U, the shop embedding (dim 4), the history features');
  throwsCode(t, () => resolveConfig({ tasks: [{ name: 'spp', kind: 'binary', history: 'yes' } as never] }), 'E_CONFIG', 'tasks[0].history');
  throwsCode(t, () => resolveConfig({ tasks: [{ name: 'r', kind: 'rank', history: 1 } as never] }), 'E_CONFIG', 'tasks[0].history');
  const rank = resolveConfig({ tasks: [{ name: 'r', kind: 'rank', denseFeatures: 2, history: true }] }).tasks[0];
  t.equal(denseCount(rank), 2 + 9, 'a rank head: its own numbers, then the history features');
});

t.test('packing: the candidate shop against the user\'s shops; each history head its own dense input', async (t) => {
  const m = Model.fromTensors(config, tensors, { threads: 1 });
  t.teardown(() => m.dispose());
  const shops = ['s3', 's2', 's0'].map((shop) => ({ item: 'x', category: 0, shop, brand: 'b9', dense: [0, 0, 0] }));
  const cols = m.packCandidates(shops, { tasks: ['spp', 'l2r', 'next', 'bare', 'l2rh'], user });
  const spp = cols.taskDense!['spp'];
  const row = (c: number): number[] => Array.from(spp.subarray(c * 9, (c + 1) * 9));
  // s3: the second-latest distinct shop (s2 is the latest), acted on twice.
  t.same(row(0), [0, HISTORY_SCALE, 0, 0, 0, 0, 0, 0, HISTORY_SCALE * Math.fround(Math.log1p(2))].map(Math.fround));
  t.same(row(1), [HISTORY_SCALE, 0, 0, 0, 0, 0, 0, 0, HISTORY_SCALE * Math.log1p(1)].map(Math.fround), 's2: the latest, once');
  t.same(row(2), new Array(9).fill(0), 's0: never');
  t.equal(cols.dense.length, 3 * 3, 'dense keeps the rank head\'s numbers');
  t.equal(cols.taskDense!['next'].length, 3 * denseCount(config.tasks[3]));
  t.same(Array.from(cols.taskDense!['bare'].subarray(0, 9)), new Array(9).fill(0), 'bare: b9 never seen');
  const l2rh = cols.taskDense!['l2rh'];
  t.equal(l2rh.length, 3 * 12, 'l2rh: 3 numbers of its own, then 9 history features');
  const items = [{ ...shops[0], item: 'i2', dense: [0.5, -1, 2] }, { ...shops[1], item: 'i1', dense: [3, 4, 5] }];
  const mixed = m.packCandidates(items, { tasks: ['l2r', 'l2rh'], user }).taskDense!['l2rh'];
  t.same(Array.from(mixed.subarray(0, 12)), [0.5, -1, 2, 0, 0, HISTORY_SCALE, 0, 0, 0, 0, 0, HISTORY_SCALE * Math.log1p(1)].map(Math.fround), 'i2: the third-latest item, once');
  t.same(Array.from(mixed.subarray(12, 24)), [3, 4, 5, 0, 0, 0, HISTORY_SCALE, 0, 0, 0, 0, HISTORY_SCALE * Math.log1p(1)].map(Math.fround), 'i1: the fourth-latest');
  const blind = m.packCandidates(shops, { tasks: ['spp'] });
  t.same(Array.from(blind.dense), new Array(27).fill(0), 'no user: no history');
});

t.test('native: every head in one scoreAll call equals each head scored alone with the user, and the float64 reference', async (t) => {
  const m = Model.fromTensors(config, tensors, { threads: 2 });
  t.teardown(() => m.dispose());
  const u = (await m.encode([user])).slice();
  const tasks = ['ctr', 'l2r', 'spp', 'next', 'bare', 'l2rh'];
  const all = await m.scoreAll(u, candidates, { tasks, user });
  const sync = m.scoreAllSync(u, candidates, { tasks, user });
  for (const task of tasks) {
    const one = await m.score(task, u, candidates, { user });
    t.same(Array.from(all[task]), Array.from(one), `${task}: scoreAll = score`);
    t.same(Array.from(sync[task]), Array.from(one), `${task}: synchronous`);
  }
  const packed = m.packCandidates(candidates, { tasks, user });
  const again = await m.scoreAll(u, packed, { tasks });
  for (const task of tasks) t.same(Array.from(again[task]), Array.from(all[task]), `${task}: from packed columns`);
  // Caller-given columns are untrusted: a bad taskDense entry is refused with its path.
  const bad = (taskDense: unknown, path: string): void =>
    throwsCode(t, () => m.scoreAllSync(u, { items: packed.items, dense: packed.dense, taskDense } as never, { tasks }), 'E_INPUT', path);
  bad('x', 'candidates.taskDense');
  bad({ ...packed.taskDense, spp: [1, 2] }, 'candidates.taskDense.spp');
  bad({ ...packed.taskDense, spp: new Float32Array(7) }, 'candidates.taskDense.spp');
  bad({ ...packed.taskDense, next: packed.taskDense!['next'].map((x, i) => (i === 5 ? Number.NaN : x)) }, 'candidates.taskDense.next[5]');
  const blind = await m.score('spp', u, candidates);
  t.ok(blind.some((s, i) => s !== all['spp'][i]), 'the history changes the shop head\'s scores');
  for (const task of ['spp', 'bare', 'l2rh']) {
    const want = referenceScore(config, tensors, task, u, packed);
    t.ok(relError(all[task], want) <= 1e-5, `${task} against float64: ${relError(all[task], want).toExponential(2)}`);
  }
});

t.test('onnxruntime: the exported heads take the history features and agree with native', async (t) => {
  const n = Model.fromTensors(config, tensors, { threads: 1 });
  const o = Model.fromTensors(config, tensors, { threads: 1, backend: 'onnxruntime' });
  t.teardown(() => {
    n.dispose();
    o.dispose();
  });
  const u = (await n.encode([user])).slice();
  const a = await n.scoreAll(u, candidates, { tasks: ['ctr', 'l2r', 'spp', 'bare', 'l2rh'], user });
  const b = await o.scoreAll(u, candidates, { tasks: ['ctr', 'l2r', 'spp', 'bare', 'l2rh'], user });
  for (const task of ['ctr', 'l2r', 'spp', 'bare', 'l2rh']) t.ok(relError(b[task], a[task]) <= 1e-5, `${task} ${relError(b[task], a[task]).toExponential(2)}`);
});

t.test('training: a rank head with its own dense numbers and history features trains on both', async (t) => {
  const trainer = Trainer.create(config, { batchSize: 4, seed: 1, threads: 1 });
  t.teardown(() => trainer.dispose());
  const label = (item: string, grade: number, dense: number[]): LabelledCandidate => ({ candidate: { item, shop: 's1', dense }, label: grade });
  const examples: TrainingExample[] = [0, 1, 2, 3].map((e) => ({
    user,
    userId: `u${e}`,
    time: 500,
    labels: { l2rh: [label('i3', 3, [1, 0, e]), label('i9', 0, [0, 1, -e])], l2r: [label('i4', 1, [0.5, 0.5, 0])] },
  }));
  const before = trainer.toModel();
  const report = await trainer.step(examples);
  t.ok(Number.isFinite(report.loss) && report.loss > 0, `one step, loss ${report.loss.toFixed(4)}`);
  const after = trainer.toModel();
  const moved = (name: string): boolean => before.weights.get(name)!.some((v, i) => v !== after.weights.get(name)![i]);
  t.ok(moved('head.l2rh.0.w'), "the head's first layer moved (its dense and history columns included)");
  before.dispose();
  after.dispose();
});

// Users who come back to their shops: the next behaviour's shop is one of the user's own, the negatives are
// other shops. Only the history says which shops are the user's.
function shopExamples(n: number, seed: number): TrainingExample[] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, (_, e) => {
    const own = Array.from({ length: 3 }, () => `s${Math.floor(rand() * 25)}`);
    const behaviors = Array.from({ length: 6 }, (_, k) => ({ item: `i${Math.floor(rand() * 400)}`, category: 0, shop: own[k % 3], brand: 'b', type: 'pv', time: 1000 + k }));
    const pos = own[Math.floor(rand() * 3)];
    const negs: string[] = [];
    while (negs.length < 4) {
      const s = `s${Math.floor(rand() * 25)}`;
      if (!own.includes(s)) negs.push(s);
    }
    return {
      user: { behaviors },
      userId: `u${e}`,
      time: 2000,
      labels: { spp: [{ candidate: { shop: pos }, label: 1 }, ...negs.map((shop) => ({ candidate: { shop }, label: 0 }))] },
    };
  });
}

t.test('training: the shop head learns a return to the user\'s own shops from the features, and evaluate() scores with each user\'s history', async (t) => {
  const train = shopExamples(1536, 1);
  const valid = shopExamples(300, 2);
  const auc: Record<string, number> = {};
  for (const history of [false, true]) {
    const cfg = resolveConfig({
      maxSeqLen: 8,
      itemFields: [{ name: 'item', buckets: 512, dim: 4 }, { name: 'category', buckets: 4, dim: 2 }, { name: 'shop', buckets: 64, dim: 4 }, { name: 'brand', buckets: 4, dim: 0 }],
      hidden: 6,
      attentionHidden: 4,
      tasks: [{ name: 'spp', kind: 'binary', target: ['shop'], layers: [8], history }],
    });
    const trainer = Trainer.create(cfg, { batchSize: 64, seed: 3, threads: 1 });
    for (let epoch = 0; epoch < 2; epoch++) for (let b = 0; b < train.length; b += 64) await trainer.step(train.slice(b, b + 64));
    const model = trainer.toModel();
    const report = await evaluate(modelScorer(model), valid, cfg);
    auc[String(history)] = report.tasks['spp'].auc;
    if (history) {
      // The report's scores are the model's with each example's own history.
      const got = await modelScorer(model).scoreExamples(valid.slice(0, 2));
      const u = await model.encode([valid[1].user]);
      const want = await model.score('spp', u, (valid[1].labels['spp'] as LabelledCandidate[]).map((c) => c.candidate), { user: valid[1].user });
      t.same(Array.from(got['spp'].slice(5, 10)), Array.from(want), 'the second example, scored with its history');
    }
    model.dispose();
    trainer.dispose();
  }
  t.ok(auc['true'] > 0.95, `with history: AUC ${auc['true'].toFixed(3)}`);
  t.ok(auc['true'] > auc['false'] + 0.05, `without: AUC ${auc['false'].toFixed(3)}`);
});
