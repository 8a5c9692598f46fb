// Successor features of a retrieval head: the config, the table Trainer.setSuccessors builds (heaviest
// successors, most-followed items, shared buckets added up), the features of a user's recent items, training
// batches that take an example's own occurrence out of its positive, retrieve against a brute-force sort of
// score() with the successor rows in play, refusals of bad tables in untrusted files, and an ONNX round trip.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { HISTORY_FEATURES, RetrievalTask, SUCCESSOR_FEATURES, denseCount, resolveConfig } from '../lib/network/config';
import { TrainingExample } from '../lib/data/training-example';
import { BehaviorInput, CandidateInput, HISTORY_SCALE, UserInput, packCandidates, userInputs } from '../lib/model/features';
import { bucket } from '../lib/model/hashing';
import { Model } from '../lib/model/model';
import { saveModelFile } from '../lib/io/model-file';
import { parseSafetensors } from '../lib/io/safetensors';
import { SUCCESSOR_WINDOW, SuccessorTable, recentItems } from '../lib/model/successors';
import { SUCCESSORS_UNUSED, historyWeightName, itemTableName, priorName, successorNames } from '../lib/network/tensors';
import { packTrainBatch } from '../lib/train/batch';
import { Trainer } from '../lib/train/trainer';
import { EntityStats, SequenceStats } from '../lib/eval/baselines';
import { calibrateHistoryWeights, clearlyBetter } from '../lib/eval/calibrate';
import { selectionScore } from '../lib/eval/next-item';
import { mulberry32 } from '../lib/random';
import { randomTensors } from '../lib/reference/random-model';
import { rejectsCode, throwsCode } from './support/errors';

const ITEM_BUCKETS = 211;
const config = resolveConfig({
  maxSeqLen: 20,
  itemFields: [
    { name: 'item', buckets: ITEM_BUCKETS, dim: 6 },
    { name: 'category', buckets: 13, dim: 3 },
  ],
  hidden: 5,
  attentionHidden: 4,
  tasks: [
    { name: 'ctr', kind: 'binary', layers: [4] },
    { name: 'next', kind: 'retrieval', target: ['item', 'category'], layers: [7, 5], successors: { items: 40, perItem: 4 } },
  ],
});
const next = config.tasks[1] as RetrievalTask;
const D = denseCount(next);
const S0 = HISTORY_FEATURES - 1; // the first successor column
const feature = (w: number): number => Math.fround(HISTORY_SCALE * Math.log1p(w));
const b = (item: string, time = 0): BehaviorInput => ({ type: 'pv', time, item, category: 'c' });

t.test('config: successors need history, sizes in range, and widen h by three before the prior', async (t) => {
  t.same(next.successors, { items: 40, perItem: 4 });
  t.equal(D, HISTORY_FEATURES + SUCCESSOR_FEATURES);
  const bad = (successors: unknown, path: string, history = true): void =>
    throwsCode(t, () => resolveConfig({ tasks: [{ name: 'r', kind: 'retrieval', target: ['item'], history, successors } as never] }), 'E_CONFIG', path);
  bad({ items: 5, perItem: 3 }, 'tasks[0].successors', false);
  bad({ items: 0, perItem: 3 }, 'tasks[0].successors.items');
  bad({ items: 5, perItem: 0 }, 'tasks[0].successors.perItem');
  bad({ items: 5, perItem: 3, extra: 1 }, 'tasks[0].successors');
  bad(7, 'tasks[0].successors');
  throwsCode(t, () => resolveConfig({ itemFields: [{ name: 'item', buckets: 1 << 25, dim: 4 }], tasks: [{ name: 'r', kind: 'retrieval', successors: { items: 5, perItem: 3 } }] }), 'E_CONFIG', 'tasks[0].successors');
  t.notOk('successors' in resolveConfig({ tasks: [{ name: 'r', kind: 'retrieval' }] }).tasks[0], 'absent by default: files without it load as before');
  // A history shorter than the window would keep part of a positive's own transitions in its features.
  throwsCode(t, () => resolveConfig({ maxSeqLen: 9, tasks: [{ name: 'r', kind: 'retrieval', successors: { items: 5, perItem: 3 } }] }), 'E_CONFIG', 'maxSeqLen ≥ 10');
});

t.test('recent items: the last three distinct buckets, and what each gave the next behaviour (1/d within the window)', async (t) => {
  const bk = (item: string): number => bucket(item, ITEM_BUCKETS);
  // Latest last: c at 1 back, b at 2 and 4, a at 3, x at 5 (the fourth distinct: not kept).
  const r = recentItems(config, next, ['x', 'b', 'a', 'b', 'c'].map((i) => b(i)));
  t.same(r.recent, [bk('c'), bk('b'), bk('a')]);
  t.same(r.own, [1, 1 / 2 + 1 / 4, 1 / 3]);
  const far = Array.from({ length: 14 }, (_, i) => b(i === 0 ? 'a' : 'z'));
  const f = recentItems(config, next, far);
  t.same(f.recent, [bk('z'), bk('a')]);
  t.same(f.own, [Array.from({ length: SUCCESSOR_WINDOW }, (_, d) => 1 / (d + 1)).reduce((x, y) => x + y, 0), 0], 'a is 14 back: past the window, no own weight');
  t.same(recentItems(config, next, []), { recent: [], own: [] });
});

/** Sequences whose transitions the table is built from; item i<n> mostly followed by i<n+1>. */
function sequences(users: number, seed: number): string[][] {
  const rand = mulberry32(seed);
  return Array.from({ length: users }, () => {
    let at = Math.floor(rand() * 60);
    return Array.from({ length: 6 + Math.floor(rand() * 6) }, () => {
      at = rand() < 0.7 ? (at + 1) % 60 : Math.floor(rand() * 60);
      return `i${at}`;
    });
  });
}

function rulesOf(seqs: string[][]): EntityStats {
  const es = new EntityStats(['item'], ['item'], SUCCESSOR_WINDOW);
  for (const s of seqs) es.add(s);
  return es;
}

t.test('Trainer.setSuccessors: the heaviest per item, the most-followed items, shared buckets added up, ascending rows', async (t) => {
  const trainer = Trainer.create(config, { seed: 3 });
  const es = rulesOf(sequences(300, 5));
  trainer.setSuccessors('next', es.rules);
  const model = trainer.toModel();
  const names = successorNames('next');
  const from = model.weights.get(names.from)!;
  const to = model.weights.get(names.to)!;
  const weight = model.weights.get(names.weight)!;
  // The expected table, built here the slow way from the same counts.
  const merged = new Map<number, Map<number, number>>();
  for (const [a, row] of es.rules) {
    const ba = bucket(a, ITEM_BUCKETS);
    if (!merged.has(ba)) merged.set(ba, new Map());
    for (const [c, w] of row) merged.get(ba)!.set(bucket(c, ITEM_BUCKETS), (merged.get(ba)!.get(bucket(c, ITEM_BUCKETS)) ?? 0) + w);
  }
  const sum = (m: Map<number, number>): number => [...m.values()].reduce((x, y) => x + y, 0);
  const keep = [...merged].sort((x, y) => sum(y[1]) - sum(x[1]) || x[0] - y[0]).slice(0, 40).map(([k]) => k).sort((x, y) => x - y);
  t.equal(merged.size > 40, true, 'more items than rows: the test reaches the cut');
  t.same(Array.from(from), keep, 'the 40 most-followed buckets, ascending');
  keep.forEach((ba, r) => {
    const want = [...merged.get(ba)!].sort((x, y) => y[1] - x[1] || x[0] - y[0]).slice(0, 4);
    t.same(Array.from(to.subarray(r * 4, r * 4 + want.length)), want.map((e) => e[0]), `row ${r}: the heaviest successors`);
    want.forEach(([, w], j) => t.ok(Math.abs(weight[r * 4 + j] - w) < 1e-4, `row ${r} slot ${j}: weight ${w}`));
  });
  throwsCode(t, () => trainer.setSuccessors('ctr', es.rules), 'E_TASK', 'task');
  throwsCode(t, () => trainer.setSuccessors('next', [['a', [['b', -1]]]]), 'E_INPUT', 'weights[0]');
  // A short log: rows left over are unused, empty slots weigh 0.
  trainer.setSuccessors('next', [['a', [['b', 2], ['c', 1]]]]);
  const small = trainer.toModel();
  t.same(Array.from(small.weights.get(names.from)!.subarray(0, 2)), [bucket('a', ITEM_BUCKETS), SUCCESSORS_UNUSED]);
  t.same(Array.from(small.weights.get(names.weight)!.subarray(0, 4)), [2, 1, 0, 0]);
  model.dispose();
  small.dispose();
  trainer.dispose();
});

t.test('checkpoints: the prior and successor tables have no optimizer state, and come back on resume', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dupn-succ-ckpt-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const trainer = Trainer.create(config, { seed: 3 });
  trainer.setSuccessors('next', rulesOf(sequences(300, 5)).rules);
  const ckpt = path.join(dir, 'run.ckpt');
  await trainer.saveCheckpoint(ckpt, { epoch: 0, examples: 0 });
  const names = parseSafetensors(fs.readFileSync(ckpt)).tensors;
  const statistics = [priorName('next'), ...Object.values(successorNames('next'))];
  for (const s of statistics) {
    t.ok(names.has(s), `${s} is in the checkpoint`);
    t.notOk(names.has(`opt.m.${s}`) || names.has(`opt.v.${s}`), `${s} has no optimizer state`);
  }
  t.ok(names.has(`opt.v.${itemTableName('item')}`), 'a trained tensor keeps its state');
  const { trainer: resumed } = await Trainer.resume(ckpt);
  const a = trainer.toModel();
  const b = resumed.toModel();
  for (const s of statistics) t.same(Array.from(b.weights.get(s)!), Array.from(a.weights.get(s)!), `${s} comes back`);
  for (const m of [a, b, resumed, trainer]) m.dispose();
});

/** History weights where every column counts: recency, count, the successor weights given and the prior. */
function everyColumn(successorWeights: number[]): Float32Array {
  const w = new Float32Array(D);
  w.set([0.05, 0.04, 0.03, 0.02, 0.01, 0, 0, 0, 0.01]);
  w.set(successorWeights, S0);
  w[D - 1] = 0.3;
  return w;
}

/**
 * A random model whose successor table holds `seqs`' rules and whose history weights make every column count
 * (`history`, when given, is the whole history weight vector instead).
 */
function modelWithSuccessors(seqs: string[][], successorWeights = [0.09, 0.05, 0.03], history?: Float32Array): Model {
  const trainer = Trainer.create(config, { seed: 11 });
  trainer.setSuccessors('next', rulesOf(seqs).rules);
  const tensors = new Map(randomTensors(config, 4, 0.6));
  const base = trainer.toModel();
  for (const n of Object.values(successorNames('next'))) tensors.set(n, base.weights.get(n)!.slice());
  tensors.set(priorName('next'), base.weights.get(priorName('next'))!.slice());
  tensors.set(historyWeightName('next'), history ?? everyColumn(successorWeights));
  base.dispose();
  trainer.dispose();
  return Model.fromTensors(config, tensors, { threads: 2 });
}

t.test('features at scoring time: log(1 + weight) after each recent item, for every candidate that shares the bucket', async (t) => {
  const seqs = [['a', 'b', 'c'], ['a', 'b'], ['b', 'd']];
  const model = modelWithSuccessors(seqs);
  const table = SuccessorTable.of(next, model.weights)!;
  const user: UserInput = { behaviors: [b('a'), b('b')] };
  const cands: CandidateInput[] = ['c', 'd', 'b', 'zz'].map((item) => ({ item, category: 'c' }));
  const cols = packCandidates(config, next, cands, userInputs(config, next, user, model.weights.get(priorName('next')), table));
  const at = (c: number): number[] => Array.from(cols.dense.subarray(c * D + S0, c * D + S0 + 3));
  // After b (latest): c (1, once), d (1). After a (second): b (1 + 1), c (1/2).
  t.same(at(0), [feature(1), feature(0.5), 0], 'c followed b once at 1 step and a once at 2');
  t.same(at(1), [feature(1), 0, 0]);
  t.same(at(2), [0, feature(2), 0], 'b followed a twice');
  t.same(at(3), [0, 0, 0], 'never followed');
  t.equal(cols.dense[D - 1], model.weights.get(priorName('next'))![cols.items[1]], 'the prior stays last');
  const none = packCandidates(config, next, cands, userInputs(config, next, undefined, undefined, table));
  t.ok(none.dense.every((x, i) => i % D === D - 1 || x === 0), 'no user: no history or successor features');
  model.dispose();
});

t.test('Model.withPrior / withSuccessors: newer counts without retraining, the same tables as the trainer builds', async (t) => {
  const old = modelWithSuccessors([['a', 'b', 'c'], ['a', 'b']]);
  const newer = rulesOf([['a', 'd'], ['a', 'd'], ['d', 'e']]);
  const counts: [string, number][] = [['a', 5], ['d', 3], ['e', 1]];
  const trainer = Trainer.create(config, { seed: 3 });
  trainer.setSuccessors('next', newer.rules);
  trainer.setPrior('next', counts);
  const expected = trainer.toModel();
  const refreshed = old.withSuccessors('next', newer.rules).withPrior('next', counts);
  const names = [priorName('next'), ...Object.values(successorNames('next'))];
  // Each `weights` read copies every tensor: read each model's once, compare bytes.
  const [ow, rw, ew] = [old.weights, refreshed.weights, expected.weights];
  const equal = (x: Float32Array, y: Float32Array): boolean => Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength));
  for (const n of names) t.ok(equal(rw.get(n)!, ew.get(n)!), `${n}: as the trainer builds it`);
  t.ok([...ow].every(([n, w]) => names.includes(n) || equal(rw.get(n)!, w)), 'every other tensor kept');
  const before = modelWithSuccessors([['a', 'b', 'c'], ['a', 'b']]);
  const bw = before.weights;
  for (const n of names) t.ok(equal(ow.get(n)!, bw.get(n)!), `${n}: the old model is unchanged`);
  t.notOk(equal(ow.get(priorName('next'))!, rw.get(priorName('next'))!), 'and the prior did change');
  // The features follow: after a, d is now a successor (it was not).
  const user: UserInput = { behaviors: [b('a')] };
  const cands: CandidateInput[] = [{ item: 'd', category: 'c' }];
  const [sOld] = await old.score('next', await old.encode([user]), cands, { user });
  const [sNew] = await refreshed.score('next', await refreshed.encode([user]), cands, { user });
  t.ok(sNew > sOld, `d after a scores higher once the table knows it (${sOld.toFixed(4)} → ${sNew.toFixed(4)})`);
  throwsCode(t, () => old.withPrior('ctr', counts), 'E_TASK', 'task');
  throwsCode(t, () => old.withSuccessors('next', [['a', [['b', Number.NaN]]]]), 'E_INPUT', 'weights[0]');
  old.dispose();
  throwsCode(t, () => old.withPrior('next', counts), 'E_DISPOSED', 'disposed');
  for (const m of [refreshed, expected, before]) m.dispose();
  trainer.dispose();
});

t.test('training batches: the positive loses its own occurrence, the in-batch negatives keep theirs', async (t) => {
  const seqs = [['a', 'b', 'c'], ['a', 'b', 'c'], ['x', 'b', 'c', 'a']];
  const model = modelWithSuccessors(seqs);
  const table = SuccessorTable.of(next, model.weights)!;
  const ex = (userId: string, history: string[], positive: string): TrainingExample => ({
    user: { behaviors: history.map((h, i) => b(h, i + 1)) },
    userId,
    time: 100,
    labels: { next: [{ candidate: { item: positive, category: 'c' }, label: 1, logQ: -2 }] },
  });
  // u1's example is one of the counted sequences: a, b → c. Its c followed b (1) and a (1/2) in its own sequence.
  const examples = [ex('u1', ['a', 'b'], 'c'), ex('u2', ['x', 'b'], 'a')];
  const plans = config.tasks.map((task) => ({ lambda: task.name === 'next' ? 1 : 0, pairwise: false }));
  const h = packTrainBatch(config, examples, plans, undefined, () => table).heads[1];
  t.same(Array.from(h.owner!), [0, 0, 1, 1]);
  t.same(Array.from(h.label!), [1, 0, 1, 0]);
  const at = (c: number): number[] => Array.from(h.dense!.subarray(c * D + S0, c * D + S0 + 3));
  // Counts: b→c 3 (weight 3), a→c 2 × 1/2 = 1 (and c→a, b→a… from the third sequence).
  t.same(at(0), [feature(3 - 1), feature(1 - 0.5), 0], "u1's positive c: its own b→c and a→c taken out");
  t.same(at(1), [feature(0.5), 0, 0], "u1's in-batch negative a (u2's positive): b→a 1/2 in full");
  t.same(at(3), [feature(3), feature(0.5), 0], "u2's in-batch negative c after b and x: the full counts");
  // u2's positive a: b→a 1/2 and x→a 1/3 in the counts, less its own shares (b 1 back: 1, x 2 back: 1/2): nothing left.
  t.same(at(2), [0, 0, 0], "u2's positive a: own shares above the counts leave nothing (never below 0)");
  const zeros = (dense: Float32Array, c: number): boolean => dense.subarray(c * D + S0, c * D + S0 + 3).every((x) => x === 0);
  const dropped = packTrainBatch(config, examples, plans.map((p) => ({ ...p, successorDropout: 1 })), undefined, () => table).heads[1];
  t.ok([0, 1, 2, 3].every((c) => zeros(dropped.dense!, c)), 'successorDropout 1: every example without successor features');
  // Half of 200 examples (by a hash of user and time), the same ones on every call.
  const many = Array.from({ length: 200 }, (_, i) => ex(`v${i}`, ['a', 'b'], 'c'));
  const half = (): boolean[] => {
    const h2 = packTrainBatch(config, many, plans.map((p) => ({ ...p, successorDropout: 0.5, inBatch: false })), undefined, () => table).heads[1];
    return many.map((_, i) => zeros(h2.dense!, i));
  };
  const first = half();
  const n = first.filter(Boolean).length;
  t.ok(n > 70 && n < 130, `successorDropout 0.5: ${n} of 200 examples dropped`);
  t.same(half(), first, 'the same examples on every call');
  const noTable = packTrainBatch(config, examples, plans).heads[1];
  t.ok(Array.from({ length: 4 }, (_, c) => noTable.dense!.subarray(c * D + S0, c * D + S0 + 3)).every((v) => v.every((x) => x === 0)), 'no table given: zeros');
  model.dispose();
});

t.test('retrieve: exact top k with the successor rows equals sorting score() over the whole catalogue', async (t) => {
  const seqs = sequences(400, 21);
  const model = modelWithSuccessors(seqs, [2, 1, 0.5]);
  const catalogue: CandidateInput[] = Array.from({ length: 260 }, (_, i) => ({ item: `i${i % 70}${i >= 70 ? `-${i}` : ''}`, category: `c${i % 9}` }));
  await model.setCatalogue('next', catalogue);
  const users: UserInput[] = sequences(12, 77).map((s) => ({ behaviors: s.map((i, j) => b(i, j + 1)) }));
  const U = await model.encode(users);
  const plain = modelWithSuccessors(seqs, [0, 0, 0]);
  let moved = 0;
  for (let u = 0; u < users.length; u++) {
    const vec = U.subarray(u * model.userDim, (u + 1) * model.userDim);
    const full = await model.score('next', vec, catalogue, { user: users[u] });
    const without = await plain.score('next', vec, catalogue, { user: users[u] });
    moved += full.some((s, i) => Math.abs(s - without[i]) > 1e-3) ? 1 : 0;
    const order = Array.from(full, (s, i) => [s, i]).sort((a, c) => c[0] - a[0] || a[1] - c[1]);
    for (const [k, exclude] of [[5, []], [20, [0, 1, 2, 3]], [300, [7]]] as [number, number[]][]) {
      const got = await model.retrieve('next', vec, k, { user: users[u], exclude });
      const skip = new Set(exclude);
      const want = order.filter(([, i]) => !skip.has(i)).slice(0, k);
      const tol = 1e-5 * Math.max(1, ...want.map((x) => Math.abs(x[0])));
      t.equal(got.index.length, want.length);
      let wrong = 0;
      got.index.forEach((r, i) => {
        if (skip.has(r) || Math.abs(got.score[i] - full[r]) > tol || Math.abs(got.score[i] - want[i][0]) > tol) wrong++;
      });
      t.equal(wrong, 0, `user ${u}, k = ${k}: the true top k with their own scores`);
    }
  }
  t.ok(moved >= 10, `the successor features change the scores of most users (${moved} of ${users.length})`);
  model.dispose();
  plain.dispose();
});

t.test('scoreRows: catalogue rows score bit for bit as score() scores the same candidates; bad rows are refused by index', async (t) => {
  const seqs = sequences(400, 21);
  const model = modelWithSuccessors(seqs, [2, 1, 0.5]);
  const catalogue: CandidateInput[] = Array.from({ length: 260 }, (_, i) => ({ item: `i${i % 70}${i >= 70 ? `-${i}` : ''}`, category: `c${i % 9}` }));
  await rejectsCode(t, () => model.scoreRows('next', new Float32Array(model.userDim), [0]), 'E_TASK', 'setCatalogue');
  await model.setCatalogue('next', catalogue);
  const users: UserInput[] = sequences(12, 78).map((s) => ({ behaviors: s.map((i, j) => b(i, j + 1)) }));
  const U = await model.encode(users);
  let differing = 0;
  let withTerms = 0;
  for (let u = 0; u < users.length; u++) {
    const vec = U.subarray(u * model.userDim, (u + 1) * model.userDim);
    // Rows in any order, repeated, the history and successor rows among them; and no user (the plain score).
    const rows = Array.from({ length: 101 }, (_, i) => (i * 37 + u * 11) % catalogue.length);
    for (const user of [users[u], undefined]) {
      const want = await model.score('next', vec, rows.map((r) => catalogue[r]), { user });
      const got = await model.scoreRows('next', vec, rows, { user });
      if (Buffer.compare(Buffer.from(got.buffer), Buffer.from(want.buffer)) !== 0) differing++;
      if (user !== undefined) {
        const bare = await model.scoreRows('next', vec, rows);
        withTerms += got.some((x, i) => x !== bare[i]) ? 1 : 0;
      }
    }
  }
  t.equal(differing, 0, 'bit-identical to score() for all 24 calls');
  t.ok(withTerms >= 6, `the user's history and successor terms are in (${withTerms} of ${users.length} users' scores change with them)`);
  const vec = U.subarray(0, model.userDim);
  await rejectsCode(t, () => model.scoreRows('next', vec, [0, 260]), 'E_INPUT', 'rows[1]');
  await rejectsCode(t, () => model.scoreRows('next', vec, [0.5]), 'E_INPUT', 'rows[0]');
  await rejectsCode(t, () => model.scoreRows('next', vec, 'abc' as unknown as number[]), 'E_INPUT', 'rows');
  await rejectsCode(t, () => model.scoreRows('next', new Float32Array(3), [0]), 'E_INPUT', 'userVector');
  await rejectsCode(t, () => model.scoreRows('next', vec, [0], { out: new Float32Array(2) }), 'E_INPUT', 'options.out');
  model.dispose();
});

t.test('calibration on held-out cases: successor weights trained too small are scaled up, the original model untouched', async (t) => {
  const seqs = sequences(500, 31);
  const model = modelWithSuccessors(seqs, [0.002, 0.001, 0.0005]);
  const stats = new SequenceStats(config);
  seqs.forEach((s, u) => stats.add({ userId: `u${u}`, firstLine: 1, rows: s.map((item, j) => ({ userId: `u${u}`, item, category: 'c', type: 'pv', time: j + 1, line: j + 1 })) }));
  // Held-out users of the same world: their next item mostly follows their last one.
  const cases: TrainingExample[] = sequences(300, 32).map((s, u) => ({
    user: { behaviors: s.slice(0, -1).map((i, j) => b(i, j + 1)) },
    userId: `h${u}`,
    time: 100,
    labels: { ctr: [{ candidate: { item: s[s.length - 1], category: 'c' }, label: 1 }] },
  }));
  const w = Array.from(model.weights.get(historyWeightName('next'))!);
  const { model: scaled, calibration } = await calibrateHistoryWeights(model, next, cases, stats, selectionScore);
  t.ok(calibration.successors >= 4, `the successor weights are scaled up (×${calibration.successors})`);
  t.ok(calibration.after > calibration.before + 0.05, `and score better on the held-out cases (${calibration.before.toFixed(3)} → ${calibration.after.toFixed(3)})`);
  t.equal(calibration.cases, 300);
  t.not(scaled, model, 'a new model');
  const got = scaled.weights.get(historyWeightName('next'))!;
  t.same(Array.from(got.subarray(S0, S0 + 3)), w.slice(S0, S0 + 3).map((x) => Math.fround(x * calibration.successors)), 'the successor weights times the scale');
  t.same(Array.from(got.subarray(0, S0)), w.slice(0, S0).map((x) => Math.fround(x * calibration.history)), 'the history weights times theirs');
  t.equal(got[D - 1], Math.fround(w[D - 1] * calibration.prior), 'the prior weight times its scale');
  t.same(Array.from(model.weights.get(historyWeightName('next'))!), w, 'the original model is not changed');
  const none = await calibrateHistoryWeights(model, next, [], stats, selectionScore);
  t.equal(none.model, model, 'no case to choose on: the model as it was');
  t.same([none.calibration.history, none.calibration.successors, none.calibration.cases], [1, 1, 0]);
  // Three held-out cases cannot tell a scale from noise: the weights stay as trained.
  const few = await calibrateHistoryWeights(model, next, cases.slice(0, 3), stats, selectionScore);
  t.equal(few.model, model, 'three cases: no scale clears the floor');
  t.same([few.calibration.history, few.calibration.successors], [1, 1]);
  scaled.dispose();
  model.dispose();
});

t.test('calibration of the prior: a prior weight trained too small is scaled up where users go to popular items', async (t) => {
  // 120 items with Zipf popularity; every user's next item is drawn by it, whatever the history (random).
  const items = Array.from({ length: 120 }, (_, k) => `p${k}`);
  const weight = items.map((_, k) => 1 / (k + 1));
  const total = weight.reduce((x, y) => x + y, 0);
  const rand = mulberry32(41);
  const draw = (): string => {
    let r = rand() * total;
    for (let k = 0; k < items.length; k++) if ((r -= weight[k]) <= 0) return items[k];
    return items[items.length - 1];
  };
  // An empty successor table and every weight of h 0 but the prior's: the towers and the prior decide.
  const w = new Float32Array(D);
  w[D - 1] = 0.1;
  const plain = modelWithSuccessors([], undefined, w);
  const model = plain.withPrior('next', new Map(items.map((item, k) => [item, weight[k]])));
  const stats = new SequenceStats(config);
  for (let u = 0; u < 200; u++) stats.add({ userId: `u${u}`, firstLine: 1, rows: Array.from({ length: 5 }, (_, j) => ({ userId: `u${u}`, item: draw(), category: 'c', type: 'pv', time: j + 1, line: j + 1 })) });
  const cases: TrainingExample[] = Array.from({ length: 400 }, (_, u) => ({
    user: { behaviors: Array.from({ length: 4 }, (_, j) => b(items[Math.floor(rand() * items.length)], j + 1)) },
    userId: `h${u}`,
    time: 100,
    labels: { ctr: [{ candidate: { item: draw(), category: 'c' }, label: 1 }] },
  }));
  const { model: scaled, calibration } = await calibrateHistoryWeights(model, next, cases, stats, selectionScore);
  t.ok(calibration.prior >= 1.5, `the prior weight is scaled up (×${calibration.prior})`);
  t.ok(calibration.after > calibration.before, `and scores better (${calibration.before.toFixed(3)} → ${calibration.after.toFixed(3)})`);
  t.equal(scaled.weights.get(historyWeightName('next'))![D - 1], Math.fround(0.1 * calibration.prior));
  t.same([calibration.history, calibration.successors], [1, 1], 'the history and successor weights are 0: no scale of them changes a score');
  scaled.dispose();
  model.dispose();
  plain.dispose();
});

t.test('the calibration floor: a scale is kept only for a paired gain beyond two standard errors', async (t) => {
  const base = Float64Array.from({ length: 400 }, (_, i) => (i % 7) / 7);
  const shifted = (d: number, noise: number): Float64Array => base.map((x, i) => x + d + noise * Math.sin(i * 12.9898));
  t.ok(clearlyBetter(shifted(0.01, 0), base), 'a gain on every case');
  t.notOk(clearlyBetter(shifted(0.01, 0.5), base), 'the same mean gain, with case-to-case noise 50 times larger');
  t.ok(clearlyBetter(shifted(0.1, 0.5), base), 'a gain large beside that noise');
  t.notOk(clearlyBetter(shifted(-0.01, 0), base), 'a loss');
  t.notOk(clearlyBetter(base, base), 'no change');
  t.notOk(clearlyBetter(base.subarray(0, 1), base.subarray(0, 1).map((x) => x + 1)), 'one case is never enough');
});

t.test('untrusted tables: ids that are not whole buckets, rows out of order, negative weights are refused by name', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dupn-successors-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const good = randomTensors(config, 9);
  const names = successorNames('next');
  Model.fromTensors(config, good).dispose();
  let n = 0;
  const bad = async (name: string, edit: (x: Float32Array) => void, what: string): Promise<void> => {
    const tensors = new Map(good);
    const copy = good.get(name)!.slice();
    edit(copy);
    tensors.set(name, copy);
    throwsCode(t, () => Model.fromTensors(config, tensors), 'E_MODEL_FILE', name, what);
    // A file that only the structure check can refuse (its tensors are finite and of the right shapes).
    const file = path.join(dir, `bad-${n++}.safetensors`);
    await saveModelFile(file, config, tensors);
    await rejectsCode(t, () => Model.load(file), 'E_MODEL_FILE', name, `${what}: Model.load`);
    await rejectsCode(t, () => Trainer.fromModelFile(file), 'E_MODEL_FILE', name, `${what}: Trainer.fromModelFile`);
  };
  await bad(names.from, (x) => (x[1] = x[0]), 'from not ascending');
  await bad(names.from, (x) => (x[0] = 0.5), 'from not a whole number');
  await bad(names.from, (x) => (x[2] = ITEM_BUCKETS), 'from past the table');
  await bad(names.from, (x) => (x[x.length - 1] = ITEM_BUCKETS - 1), 'a used row after an unused one');
  await bad(names.to, (x) => (x[3] = -1), 'to negative');
  await bad(names.to, (x) => (x[3] = 1e9), 'to past the table');
  await bad(names.weight, (x) => (x[5] = -0.5), 'weight negative');
  await bad(names.weight, (x) => (x[5] = 3e38), 'weight past the cap (sums of such would overflow to Infinity)');
});

t.test('model file and ONNX: the table round-trips and the imported model scores the same', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dupn-successors-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const model = modelWithSuccessors(sequences(200, 3), [1, 0.5, 0.2]);
  const file = path.join(dir, 'm.safetensors');
  await model.save(file);
  const loaded = await Model.load(file);
  await model.exportOnnx(path.join(dir, 'm.onnx'));
  const imported = await Model.fromOnnx(path.join(dir, 'm.onnx'));
  for (const n of Object.values(successorNames('next'))) {
    t.same(Array.from(loaded.weights.get(n)!), Array.from(model.weights.get(n)!), `${n}: the model file keeps it`);
    t.same(Array.from(imported.weights.get(n)!), Array.from(model.weights.get(n)!), `${n}: the ONNX files keep it`);
  }
  const user: UserInput = { behaviors: ['i3', 'i4', 'i5'].map((i, j) => b(i, j + 1)) };
  const cands = Array.from({ length: 30 }, (_, i) => ({ item: `i${i}`, category: 'c' }));
  const u = await model.encode([user]);
  const want = await model.score('next', u, cands, { user });
  const ort = await Model.fromOnnx(path.join(dir, 'm.onnx'), { backend: 'onnxruntime' });
  for (const [label, m] of [['loaded', loaded], ['imported', imported], ['onnxruntime', ort]] as const) {
    const got = await m.score('next', u, cands, { user });
    t.ok(Array.from(got).every((x, i) => Math.abs(x - want[i]) <= 1e-4 * Math.max(1, Math.abs(want[i]))), `${label}: the same scores`);
  }
  for (const m of [model, loaded, imported, ort]) m.dispose();
});
