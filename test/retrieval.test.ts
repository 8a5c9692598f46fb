// The retrieval head end to end: its config, the history features, native scoring against the float64
// reference on every instruction-set path (cache on and off), item and query vectors, exact top-k against a
// brute-force sort of score() (exclusions, the history term, k past the catalogue), training batches with
// in-batch negatives and log Q, and learning a planted repeat-and-explore world well past popularity.
import t from 'tap';
import { HISTORY_FEATURES, resolveConfig } from '../lib/network/config';
import { LabelledCandidate, TrainingExample } from '../lib/data/training-example';
import { LogRow } from '../lib/data/csv-log';
import { PopularityRing } from '../lib/data/example-builder';
import { BehaviorInput, CandidateInput, HISTORY_SCALE, UserInput, historyFeatures, historyIndex } from '../lib/model/features';
import { Model } from '../lib/model/model';
import { referenceEncode, referenceScore } from '../lib/reference/forward';
import { mulberry32 } from '../lib/random';
import { randomCandidateColumns, randomTensors, randomUserColumns } from '../lib/reference/random-model';
import { fit } from '../lib/train/fit';
import { packTrainBatch } from '../lib/train/batch';
import { Trainer } from '../lib/train/trainer';
import { bucket } from '../lib/model/hashing';
import { isas, relError } from './support/compare';
import { rejectsCode, throwsCode } from './support/errors';

const TOL = 1e-5;

const config = resolveConfig({
  maxSeqLen: 12,
  itemFields: [
    { name: 'item', buckets: 997, dim: 11 },
    { name: 'category', buckets: 31, dim: 5 },
    { name: 'shop', buckets: 17, dim: 0 },
    { name: 'brand', buckets: 13, dim: 3 },
  ],
  hidden: 9,
  attentionHidden: 7,
  tasks: [
    { name: 'ctr', kind: 'binary', target: ['item', 'category'], layers: [6] },
    { name: 'next', kind: 'retrieval', target: ['item', 'category', 'shop', 'brand'], layers: [13, 7] },
    { name: 'plain', kind: 'retrieval', target: ['category'], layers: [5], history: false },
  ],
});

t.test('config: retrieval keys, defaults and refusals name the path', async (t) => {
  const next = config.tasks[1];
  t.same(next, { name: 'next', kind: 'retrieval', target: ['item', 'category', 'shop', 'brand'], layers: [13, 7], history: true });
  const bad = (task: unknown, path: string): void =>
    throwsCode(t, () => resolveConfig({ tasks: [task as never] }), 'E_CONFIG', path);
  bad({ name: 'r', kind: 'retrieval', layers: [] }, 'tasks[0].layers');
  bad({ name: 'r', kind: 'retrieval', history: 'yes' }, 'tasks[0].history');
  bad({ name: 'r', kind: 'retrieval', denseFeatures: 2 }, 'tasks[0]');
  throwsCode(t, () => resolveConfig({ itemFields: [{ name: 'item', buckets: 8, dim: 0 }, { name: 'category', buckets: 8, dim: 4 }], tasks: [{ name: 'r', kind: 'retrieval', target: ['item'] }] }), 'E_CONFIG', 'tasks[0].target');
});

t.test('history features: buckets of the distinct-item recency rank (1, 2, 3, 4, then log2), log count, only the last maxSeqLen', async (t) => {
  const b = (item: string): BehaviorInput => ({ type: 'pv', time: 0, item });
  const behaviors = ['x', 'a', 'b', 'a', 'm', 'c', 'm'].map(b);
  const index = historyIndex(behaviors, 'item', 6);
  t.notOk(index.has('x'), 'older than maxSeqLen: not seen');
  t.same(index.get('m'), { back: 1, count: 2 }, 'the latest, counted twice');
  t.same(index.get('c'), { back: 2, count: 1 }, 'the second distinct item back: the repeated m does not push it back');
  t.same(index.get('a'), { back: 3, count: 2 }, 'ranked by its later occurrence');
  t.same(index.get('b'), { back: 4, count: 1 });
  const out = new Float32Array(2 * HISTORY_FEATURES);
  const expect = (back: number, bucket: number): void => {
    out.fill(-7);
    historyFeatures({ back, count: 3 }, out, HISTORY_FEATURES);
    const want = new Float32Array(HISTORY_FEATURES);
    want[bucket] = HISTORY_SCALE;
    want[HISTORY_FEATURES - 2] = Math.fround(HISTORY_SCALE * Math.log1p(3));
    want[HISTORY_FEATURES - 1] = -7;
    t.same(Array.from(out.subarray(HISTORY_FEATURES)), Array.from(want), `back ${back} → bucket ${bucket}; the prior column untouched`);
  };
  [[1, 0], [2, 1], [3, 2], [4, 3], [5, 4], [7, 4], [8, 5], [15, 5], [16, 6], [31, 6], [32, 7], [5000, 7]].forEach(([back, bucket]) => expect(back, bucket));
  out.fill(5);
  historyFeatures(undefined, out, 0);
  t.ok(out.subarray(0, HISTORY_FEATURES - 1).every((x) => x === 0), 'never acted on: all zero');
});

for (const isa of isas()) {
  t.test(`native score, item and query vectors against the float64 reference (${isa})`, async (t) => {
    const tensors = randomTensors(config, 31, 0.7);
    for (const cache of [0, 64]) {
      const model = Model.fromTensors(config, tensors, { isa, candidateCache: cache, threads: 2 });
      const lengths = [0, 1, 12, 5, 9];
      const cols = randomUserColumns(config, 3, lengths);
      const U = model.encodeColumnsSync(cols);
      const ref = referenceEncode(config, tensors, cols);
      for (const task of ['next', 'plain']) {
        for (const C of [0, 1, 130, 300]) {
          for (const b of [0, 2, 4]) {
            const cands = randomCandidateColumns(config, task, C + b, C);
            const u = U.subarray(b * model.userDim, (b + 1) * model.userDim);
            const rs = referenceScore(config, tensors, task, ref.user.subarray(b * model.userDim, (b + 1) * model.userDim), cands);
            // Twice: the second call hits the cache when there is one, and must give the same bits.
            const s1 = model.scoreSync(task, u, cands);
            const s2 = model.scoreSync(task, u, cands);
            t.ok(C === 0 || relError(s1, rs) <= TOL, `${task} C=${C} user ${b} cache ${cache}: rel err ${relError(s1, rs).toExponential(2)}`);
            t.same(Array.from(s2), Array.from(s1), `${task} C=${C} cache ${cache}: repeat call bit-identical`);
          }
        }
        // ⟨query, item⟩ + w·h is the score.
        const cands = randomCandidateColumns(config, task, 77, 40);
        const u = U.subarray(4 * model.userDim, 5 * model.userDim);
        const q = await model.queryVectors(task, u);
        const v = await model.itemVectors(task, cands);
        const dim = q.length;
        const w = model.weights.get(`head.${task}.history.w`) ?? new Float32Array(0);
        const D = w.length;
        const viaVectors = Float64Array.from({ length: 40 }, (_, c) => {
          let s = 0;
          for (let j = 0; j < dim; j++) s += q[j] * v[c * dim + j];
          for (let j = 0; j < D; j++) s += w[j] * cands.dense[c * D + j];
          return s;
        });
        t.ok(relError(model.scoreSync(task, u, cands), viaVectors) <= TOL, `${task}: score = ⟨query, item⟩ + w·h`);
      }
      model.dispose();
    }
  });
}

/** A small catalogue and users whose histories overlap it. */
function world(seed: number, items: number): { catalogue: CandidateInput[]; users: UserInput[] } {
  const rand = mulberry32(seed);
  const catalogue = Array.from({ length: items }, (_, i) => ({ item: `i${i}`, category: `c${i % 7}`, brand: `b${i % 5}` }));
  const users = Array.from({ length: 6 }, (_, u) => ({
    behaviors: Array.from({ length: u === 0 ? 0 : 3 + Math.floor(rand() * 12) }, (_, k) => {
      const c = catalogue[Math.floor(rand() * items)];
      return { type: 'pv', time: 1000 + k, ...c } as BehaviorInput;
    }),
  }));
  return { catalogue, users };
}

for (const isa of isas()) {
  t.test(`retrieve (${isa}): exact top k equals sorting score() over the whole catalogue, with exclusions and history`, async (t) => {
    const tensors = randomTensors(config, 8, 0.7);
    const w = tensors.get('head.next.history.w')!;
    w.set([3, 2, 1, 0.5, 0.2, 0.1, 0, 0, 0.3]); // a history term large enough to reorder
    const model = Model.fromTensors(config, tensors, { threads: 2, isa });
    await rejectsCode(t, () => model.retrieve('next', new Float32Array(model.userDim), 3), 'E_TASK', 'setCatalogue');
    // 700 items: one search block; 40,001: two full blocks of 16,384 and a short one.
    for (const items of [700, 40_001]) {
      const { catalogue, users } = world(4, items);
      await model.setCatalogue('next', catalogue);
      await model.setCatalogue('plain', catalogue);
      const U = await model.encode(users);
      for (const task of ['next', 'plain']) {
        for (let b = 0; b < users.length; b += items > 1000 ? 3 : 1) {
          const u = U.subarray(b * model.userDim, (b + 1) * model.userDim);
          const full = await model.score(task, u, catalogue, { user: users[b] });
          const order = Array.from(full, (s, i) => [s, i]).sort((a, c) => c[0] - a[0] || a[1] - c[1]);
          for (const [k, exclude] of [[1, []], [10, [0, 1, 2]], [25, Array.from({ length: 300 }, (_, i) => i * 2)], [items + 5, [5]]] as [number, number[]][]) {
            const got = await model.retrieve(task, u, k, { exclude, user: users[b] });
            const skip = new Set(exclude);
            const want = order.filter(([, i]) => !skip.has(i)).slice(0, k);
            const label = `${items} items, ${task} user ${b} k=${k}`;
            t.equal(got.index.length, want.length, `${label}: min(k, rows left) results`);
            t.ok(relError(got.score, Float64Array.from(want, (x) => x[0])) <= TOL, `${label}: the k best scores`);
            // The search and score() round differently (one GEMM row against the head's own sum), so rows whose
            // scores differ by less than that rounding may trade places; nothing else may differ.
            const tol = 1e-5 * Math.max(...want.map((x) => Math.abs(x[0])), 1);
            const returned = new Set(got.index);
            let wrong = 0;
            got.index.forEach((r, i) => {
              if (skip.has(r) || Math.abs(got.score[i] - full[r]) > tol || (i > 0 && got.score[i] > got.score[i - 1] + tol)) wrong++;
            });
            const floor = got.score.length > 0 ? got.score[got.score.length - 1] : Infinity;
            for (let r = 0; r < items; r++) if (!returned.has(r) && !skip.has(r) && full[r] > floor + tol) wrong++;
            t.equal(wrong, 0, `${label}: every result is a true top-k row with its own score, in order`);
            if (items < 1000) t.same(Array.from(got.index), want.map((x) => x[1]), `${label}: the same rows in the same order`);
          }
        }
      }
      if (items > 1000) continue;
      const none = await model.retrieve('next', U.subarray(0, model.userDim), 0);
      t.equal(none.index.length, 0, 'k = 0 gives nothing');
      await rejectsCode(t, () => model.retrieve('ctr', U.subarray(0, model.userDim), 3), 'E_TASK', 'not a retrieval head');
      await rejectsCode(t, () => model.retrieve('next', U.subarray(0, model.userDim), -1), 'E_INPUT', 'k');
      await rejectsCode(t, () => model.retrieve('next', new Float32Array(3), 2), 'E_INPUT', 'userVector');
      await rejectsCode(t, () => model.retrieve('next', U.subarray(0, model.userDim), 2, { exclude: [3, 700] }), 'E_INPUT', 'options.exclude[1]');
      await rejectsCode(t, () => model.retrieve('next', U.subarray(0, model.userDim), 2, { exclude: [1.5] }), 'E_INPUT', 'options.exclude[0]');
      await rejectsCode(t, () => model.retrieve('next', U.subarray(0, model.userDim), 2, { exclude: 5 as never }), 'E_INPUT', 'options.exclude');
    }
    model.dispose();
  });
}

t.test('training batches: in-batch negatives from other users only, log Q offsets, history features per owner', async (t) => {
  const b = (item: string, time: number): BehaviorInput => ({ type: 'pv', time, item, category: 'c' });
  const ex = (userId: string, history: string[], next: string, logQ: number): TrainingExample => ({
    user: { behaviors: history.map((h, i) => b(h, i + 1)) },
    userId,
    time: 100,
    labels: { next: [{ candidate: { item: next, category: 'c' }, label: 1, logQ }, { candidate: { item: 'neg', category: 'c' }, label: 0, logQ: -9 }] },
  });
  const examples = [ex('u1', ['a', 'b'], 'b', -1), ex('u1', ['a', 'b', 'b'], 'c', -2), ex('u2', ['z'], 'd', -3), ex('u3', [], 'b', -4)];
  const plans = config.tasks.map((task) => ({ lambda: task.name === 'next' ? 1 : 0, pairwise: false }));
  const batch = packTrainBatch(config, examples, plans);
  const h = batch.heads[1];
  const F = config.itemFields.length;
  const owners = Array.from(h.owner!);
  // u1's two examples get the other users' positives, not each other's; u3's positive b equals u1's first
  // example's own b, so that example does not get it; u2 gets b, c and b again (two draws of b).
  t.same(owners, [0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3], 'grouped by owner');
  t.same(Array.from(h.label!), [1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0]);
  t.same(Array.from(h.offset!), [-1, -9, -3, -2, -9, -3, -4, -3, -9, -1, -2, -4, -4, -9, -2, -3], 'each candidate keeps its own log Q');
  const D = HISTORY_FEATURES;
  const inHistory = (c: number): boolean => h.dense!.subarray(c * D, c * D + D - 1).some((x) => x > 0);
  t.ok(inHistory(0), "u1's first positive b is in its own history");
  t.notOk(inHistory(7), "u2's positive d is not in u2's history");
  t.equal(h.items!.length, owners.length * F);
  const plansNoBatch = config.tasks.map((task) => ({ lambda: task.name === 'next' ? 1 : 0, pairwise: false, inBatch: false }));
  t.equal(packTrainBatch(config, examples, plansNoBatch).heads[1].owner!.length, 8, 'inBatch: false keeps the lists as given');
  const bad = [ex('u1', ['a'], 'b', Number.NaN)];
  throwsCode(t, () => packTrainBatch(config, bad, plans), 'E_INPUT', 'examples[0].labels.next[0].logQ');
});

t.test('learning: a world where the next item is mostly one of the last three seen, learned from 1,200 examples', async (t) => {
  const rand = mulberry32(11);
  const items = 300;
  const item = (i: number): CandidateInput => ({ item: `i${i}`, category: `c${i % 9}`, brand: `b${i % 4}` });
  const example = (u: number): TrainingExample => {
    const history = Array.from({ length: 8 }, () => Math.floor(rand() * items));
    const next = rand() < 0.8 ? history[history.length - 1 - Math.floor(rand() * 3)] : Math.floor(rand() * items);
    const negatives = Array.from({ length: 4 }, () => Math.floor(rand() * items)).filter((n) => n !== next);
    return {
      user: { behaviors: history.map((h, k) => ({ type: 'pv', time: 1000 + k, ...item(h) }) as BehaviorInput) },
      userId: `u${u}`,
      time: 2000,
      labels: { next: [next, ...negatives].map((n, j) => ({ candidate: item(n), label: j === 0 ? 1 : 0, logQ: Math.log(1 / items) })) },
    };
  };
  const train = Array.from({ length: 1200 }, (_, u) => example(u));
  const test = Array.from({ length: 200 }, (_, u) => example(10_000 + u));
  const trainer = Trainer.create(config, { batchSize: 32, seed: 3, tasks: ['next'] });
  await fit(trainer, { data: () => train, epochs: 2, shuffle: 256 });
  const model = trainer.toModel();
  trainer.dispose();
  const catalogue = Array.from({ length: items }, (_, i) => item(i));
  await model.setCatalogue('next', catalogue);
  const U = await model.encode(test.map((e) => e.user));
  let hits = 0;
  for (let b = 0; b < test.length; b++) {
    const truth = Number(String((test[b].labels.next as { candidate: CandidateInput }[])[0].candidate.item).slice(1));
    const top = await model.retrieve('next', U.subarray(b * model.userDim, (b + 1) * model.userDim), 3, { user: test[b].user });
    if (Array.from(top.index).includes(truth)) hits++;
  }
  // A random guess hits 3 / 300 = 1%; the planted repeats alone allow about 80%.
  t.ok(hits / test.length >= 0.6, `HR@3 ${(hits / test.length).toFixed(3)} ≥ 0.6 (random: 0.010)`);
  model.dispose();
});

t.test('freeze shared with tasks [next]: only the retrieval head moves (both towers, history weights, prior)', async (t) => {
  const rand = mulberry32(5);
  const item = (i: number): CandidateInput => ({ item: `i${i}`, category: `c${i % 9}`, brand: `b${i % 4}` });
  const examples: TrainingExample[] = Array.from({ length: 96 }, (_, u) => {
    const history = Array.from({ length: 5 }, () => Math.floor(rand() * 50));
    return {
      user: { behaviors: history.map((h, k) => ({ type: 'pv', time: 10 + k, ...item(h) }) as BehaviorInput) },
      userId: `u${u}`,
      time: 100,
      labels: { next: [history[4], 7, 9].map((n, j) => ({ candidate: item(n), label: j === 0 ? 1 : 0, logQ: -3 - j })) },
    };
  });
  // Shared weights with rows for these ids, as a model to transfer from has (a frozen table's unused rows stay zero).
  const pre = Trainer.create(config, { seed: 9, batchSize: 32 });
  const preExamples = examples.map((e) => ({ ...e, labels: { next: (e.labels.next as LabelledCandidate[]).map((l) => ({ ...l, logQ: l.logQ! - 1 })) } }));
  await fit(pre, { data: () => preExamples, epochs: 1 });
  const trainer = Trainer.fromModel(pre.toModel(), { seed: 9, freeze: 'shared', tasks: ['next'], batchSize: 32 });
  pre.dispose();
  const before = new Map([...trainer.toModel().weights].map(([k, v]) => [k, Float32Array.from(v)]));
  await fit(trainer, { data: () => examples, epochs: 1 });
  const after = trainer.toModel().weights;
  for (const [name, b] of before) {
    const changed = !b.every((v, i) => v === after.get(name)![i]);
    t.equal(changed, name.startsWith('head.next.'), `${name} ${changed ? 'changed' : 'unchanged'}`);
  }
  trainer.dispose();
});

t.test('mixed negatives: the ring draws distinct items uniformly, with log Q = -log(distinct), and forgets evicted ones', async (t) => {
  const ring = new PopularityRing(6);
  const id = ring.track((r) => r.item);
  const row = (item: string, time: number): LogRow => ({ userId: 'u', item, type: 'pv', time, line: time });
  // a a a a b c: popularity would draw a two times in three; uniform draws each of a, b, c a third of the time.
  ['a', 'a', 'a', 'a', 'b', 'c'].forEach((it, i) => ring.add(row(it, i)));
  const rng = mulberry32(1);
  const seen = new Map<string, number>();
  for (let n = 0; n < 3000; n++) {
    const d = ring.uniform(id, rng, 1, new Set());
    t.equal(d.rows.length, 1);
    seen.set(d.rows[0].item, (seen.get(d.rows[0].item) ?? 0) + 1);
    if (n === 0) t.equal(d.logQ, -Math.log(3), 'log Q = -log 3');
  }
  for (const k of ['a', 'b', 'c']) t.ok(Math.abs(seen.get(k)! / 3000 - 1 / 3) < 0.04, `${k} drawn ${seen.get(k)} of 3000 times`);
  t.same(ring.uniform(id, rng, 5, new Set(['a'])).rows.map((r) => r.item).sort(), ['b', 'c'], 'exclusions hold, no entity twice');
  // Six more rows evict everything: only d and e remain.
  ['d', 'd', 'e', 'd', 'e', 'e'].forEach((it, i) => ring.add(row(it, 10 + i)));
  t.same(ring.uniform(id, rng, 5, new Set()).rows.map((r) => r.item).sort(), ['d', 'e'], 'evicted entities are gone');
  t.equal(ring.logQ(id, 'd'), Math.log(3 / 6), 'popularity log Q of d: 3 of 6 rows');
});

t.test('Trainer.setPrior: log(count / total) per bucket of the history field, the floor below every share, refusals name the problem', async (t) => {
  const trainer = Trainer.create(config, { seed: 3 });
  // i1 and i2 may share a bucket of 997: the table holds the bucket's share either way.
  const counts: [string, number][] = [['i1', 6], ['i2', 3], ['i3', 1], ['i4', 0]];
  trainer.setPrior('next', counts);
  const prior = trainer.toModel().weights.get('head.next.prior')!;
  const share = new Map<number, number>();
  for (const [v, n] of counts) share.set(bucket(v, 997), (share.get(bucket(v, 997)) ?? 0) + n / 10);
  for (const [b, s] of share) if (s > 0) t.ok(Math.abs(prior[b] - Math.log(s)) < 1e-6, `bucket ${b}: log ${s}`);
  const floor = Math.min(...prior);
  t.ok(floor < Math.log(0.1), `the floor ${floor.toFixed(2)} is below the rarest share`);
  if (!share.get(bucket('i4', 997))) t.equal(prior[bucket('i4', 997)], floor, 'a zero count is no count');
  throwsCode(t, () => trainer.setPrior('ctr', counts), 'E_TASK', 'not a retrieval task');
  throwsCode(t, () => trainer.setPrior('plain', counts), 'E_TASK', 'history features');
  throwsCode(t, () => trainer.setPrior('next', [['i1', -1]]), 'E_INPUT', 'counts[0]');
  throwsCode(t, () => trainer.setPrior('next', [['i1', NaN]]), 'E_INPUT', 'finite');
  trainer.dispose();
});
