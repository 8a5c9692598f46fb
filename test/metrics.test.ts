// Metrics: AUC against a brute-force pair count (ties included), GAUC, NDCG, log-loss, accuracy and
// precision/recall on hand-worked examples, and the undefined cases (NaN, never a made-up number).
import t from 'tap';
import {
  accuracy,
  argmaxRows,
  auc,
  gauc,
  gaucDetail,
  logLoss,
  macroAuc,
  multiclassLogLoss,
  ndcg,
  ndcgDetail,
  precisionRecall,
} from '../lib/eval/metrics';
import { mulberry32 } from '../lib/random';
import { throwsCode } from './support/errors';

/** P(random positive outscores random negative), ties ½, by counting every pair. */
function bruteAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  let pairs = 0;
  let wins = 0;
  for (let i = 0; i < scores.length; i++) {
    if (!(labels[i] > 0)) continue;
    for (let j = 0; j < scores.length; j++) {
      if (labels[j] > 0) continue;
      pairs++;
      wins += scores[i] > scores[j] ? 1 : scores[i] === scores[j] ? 0.5 : 0;
    }
  }
  return pairs === 0 ? NaN : wins / pairs;
}

t.test('AUC equals the brute-force pair count on random inputs with ties', async (t) => {
  const rand = mulberry32(11);
  let compared = 0;
  for (let trial = 0; trial < 300; trial++) {
    const n = 1 + Math.floor(rand() * 60);
    const levels = trial % 3 === 0 ? 3 : trial % 3 === 1 ? 12 : 1e6; // few distinct scores → many ties
    const scores = Float64Array.from({ length: n }, () => Math.floor(rand() * levels) / levels);
    const labels = Float64Array.from({ length: n }, () => (rand() < 0.3 ? 1 : 0));
    const want = bruteAuc(scores, labels);
    const got = auc(scores, labels);
    if (Number.isNaN(want)) {
      t.ok(Number.isNaN(got), `trial ${trial}: NaN when one class is missing`);
      continue;
    }
    compared++;
    if (Math.abs(got - want) > 1e-12) t.fail(`trial ${trial}: auc ${got} vs brute force ${want}`);
  }
  t.ok(compared > 200, `${compared} trials compared`);
});

t.test('AUC: perfect, reversed, all tied, grades as positives, plain arrays', async (t) => {
  t.equal(auc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]), 1);
  t.equal(auc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]), 0);
  t.equal(auc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]), 0.5);
  t.equal(auc(new Float32Array([1, 2, 3]), [0, 4, 2]), 0.75 + 0.25 * 1, 'grades > 0 are positives: 1 negative below both');
  t.ok(Number.isNaN(auc([1, 2], [1, 1])), 'no negatives → NaN');
  t.ok(Number.isNaN(auc([], [])), 'empty → NaN');
  throwsCode(t, () => auc([1, 2], [1]), 'E_INPUT', 'labels');
  throwsCode(t, () => auc([1, NaN], [1, 0]), 'E_INPUT', 'scores[1]');
});

t.test('GAUC: per-group AUC averaged, uniform and impression-weighted', async (t) => {
  const scores = [0.9, 0.1, 0.2, 0.8, 0.5, 0.3, 0.7];
  const labels = [1, 0, 1, 0, 0, 0, 0];
  const groups = ['a', 'a', 'b', 'b', 'b', 'c', 'c'];
  // a: 1 (2 rows); b: 0 (3 rows); c: no positive → skipped.
  t.equal(gauc(scores, labels, groups), 0.5);
  t.equal(gauc(scores, labels, groups, { weighting: 'impressions' }), (2 * 1 + 3 * 0) / 5);
  t.same(gaucDetail(scores, labels, groups), { gauc: 0.5, groups: 2 });
  t.ok(Number.isNaN(gauc([1, 2], [1, 0], ['x', 'y'])), 'no group with both classes → NaN');

  // Random groups (not contiguous) against the brute force per group.
  const rand = mulberry32(5);
  const n = 400;
  const s = Float64Array.from({ length: n }, () => Math.floor(rand() * 8));
  const y = Float64Array.from({ length: n }, () => (rand() < 0.4 ? 1 : 0));
  const g = Int32Array.from({ length: n }, () => Math.floor(rand() * 30));
  let sum = 0;
  let weighted = 0;
  let rows = 0;
  let count = 0;
  for (let k = 0; k < 30; k++) {
    const idx = [...g.keys()].filter((i) => g[i] === k);
    const a = bruteAuc(
      idx.map((i) => s[i]),
      idx.map((i) => y[i]),
    );
    if (Number.isNaN(a)) continue;
    sum += a;
    weighted += a * idx.length;
    rows += idx.length;
    count++;
  }
  t.ok(Math.abs(gauc(s, y, g) - sum / count) < 1e-12, 'uniform GAUC = mean of brute-force group AUCs');
  t.ok(Math.abs(gauc(s, y, g, { weighting: 'impressions' }) - weighted / rows) < 1e-12, 'weighted GAUC');
  throwsCode(t, () => gauc([1, 2], [1, 0], ['a']), 'E_INPUT', 'groups');
});

t.test('NDCG@k: hand examples, perfect ranking = 1, ties, groups without positives', async (t) => {
  t.equal(ndcg([3, 2, 1], [4, 1, 0], [0, 0, 0]), 1, 'perfect ranking');
  // Worst order of grades [0, 1, 2]: DCG = 1/log2(3) + 3/log2(4); ideal = 3 + 1/log2(3).
  const dcg = 1 / Math.log2(3) + 3 / 2;
  const ideal = 3 + 1 / Math.log2(3);
  t.ok(Math.abs(ndcg([3, 2, 1], [0, 1, 2], [7, 7, 7]) - dcg / ideal) < 1e-12, 'reversed order');
  t.equal(ndcg([3, 2, 1], [0, 1, 2], [7, 7, 7], 1), 0, 'k = 1: the top item has grade 0');
  // Two tied items, one relevant: expected DCG over both orders = (1 + 1/log2(3)) / 2.
  t.ok(Math.abs(ndcg([5, 5], [1, 0], [0, 0]) - (1 + 1 / Math.log2(3)) / 2) < 1e-12, 'ties share their mean discount');
  // Groups: a perfect one, a reversed one, one with nothing relevant (skipped).
  const r = ndcgDetail([2, 1, 1, 2, 9, 8], [1, 0, 1, 0, 0, 0], ['p', 'p', 'q', 'q', 'z', 'z']);
  t.equal(r.groups, 2);
  t.ok(Math.abs(r.ndcg - (1 + 1 / Math.log2(3)) / 2) < 1e-12, 'mean over groups with a positive');
  t.ok(Number.isNaN(ndcg([1, 2], [0, 0], [0, 0])), 'no positives anywhere → NaN');
  // Beyond k the order does not matter.
  t.equal(ndcg([4, 3, 2, 1], [1, 0, 0, 0], [0, 0, 0, 0], 1), 1);
  throwsCode(t, () => ndcg([1], [1], [0], 0), 'E_INPUT', 'k');
  throwsCode(t, () => ndcg([1], [-1], [0]), 'E_INPUT', 'grades[0]');
});

t.test('log-loss: binary and multiclass, with clipping', async (t) => {
  t.ok(Math.abs(logLoss([0.8, 0.3], [1, 0]) - -(Math.log(0.8) + Math.log(0.7)) / 2) < 1e-12);
  t.ok(Math.abs(logLoss([0], [1]) - -Math.log(1e-7)) < 1e-9, 'p = 0 for a positive is clipped to 1e-7');
  t.ok(Math.abs(logLoss([1], [0]) - -Math.log(1e-7)) < 1e-6, 'p = 1 for a negative is clipped to 1 − 1e-7');
  t.ok(Number.isNaN(logLoss([], [])));
  const probs = [0.7, 0.2, 0.1, 0.1, 0.1, 0.8];
  t.ok(Math.abs(multiclassLogLoss(probs, [0, 2], 3) - -(Math.log(0.7) + Math.log(0.8)) / 2) < 1e-12);
  t.ok(Math.abs(multiclassLogLoss([1, 0], [1], 2) - -Math.log(1e-7)) < 1e-9, 'clipped');
  throwsCode(t, () => multiclassLogLoss(probs, [0, 3], 3), 'E_INPUT', 'labels[1]');
  throwsCode(t, () => multiclassLogLoss(probs, [0], 3), 'E_INPUT', 'probs');
});

t.test('accuracy, argmax, per-class precision/recall, macro AUC', async (t) => {
  t.same(Array.from(argmaxRows([0.1, 0.6, 0.3, 0.5, 0.5, 0], 3)), [1, 0], 'the first of a tie wins');
  const predicted = [0, 0, 1, 1, 2];
  const labels = [0, 1, 1, 1, 0];
  t.equal(accuracy(predicted, labels), 3 / 5);
  const pr = precisionRecall(predicted, labels, 3);
  t.same(Array.from(pr.precision.slice(0, 3)), [0.5, 1, 0]);
  t.equal(pr.recall[0], 0.5);
  t.ok(Math.abs(pr.recall[1] - 2 / 3) < 1e-15);
  t.ok(Number.isNaN(pr.recall[2]), 'recall of a class that never occurs is NaN');
  t.same(Array.from(pr.support), [2, 3, 0]);
  t.ok(Number.isNaN(precisionRecall([0], [1], 2).precision[1]), 'precision of a never-predicted class is NaN');
  t.ok(Number.isNaN(accuracy([], [])));
  // Class 0's column ranks its one row first (AUC 1); class 1's splits its two rows around the negative
  // (AUC ½); class 2 never occurs (skipped).
  const probs = [0.9, 0.5, 0.0, 0.1, 0.8, 0.1, 0.2, 0.1, 0.7];
  t.equal(macroAuc(probs, [0, 1, 1], 3), (1 + 0.5) / 2);
  throwsCode(t, () => accuracy([1], []), 'E_INPUT', 'labels');
});
