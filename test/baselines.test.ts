// The simple baselines (popularity, recently seen, item-to-item successors, sequential rules) and the
// next-item protocols (full catalogue, sampled 1 + 100) that every learning claim is shown beside.
import t from 'tap';
import { resolveConfig } from '../lib/network/config';
import { LogRow } from '../lib/data/csv-log';
import { TrainingExample } from '../lib/data/training-example';
import { EntityStats, SequenceStats, candidateTasks } from '../lib/eval/baselines';
import { evaluateNextItem, formatNextItem, tiedRankMetrics } from '../lib/eval/next-item';
import { evaluate } from '../lib/eval/evaluate';
import { Model } from '../lib/model/model';

t.test('tied ranks count in expectation over every placement of the target among its ties', async (t) => {
  t.same(tiedRankMetrics(0, 0, 10), { hr: 1, rr: 1, ndcg: 1 });
  const m = tiedRankMetrics(2, 1, 3); // positions 3 or 4, k = 3
  t.equal(m.hr, 0.5);
  t.ok(Math.abs(m.rr - 1 / 6) < 1e-12);
  t.ok(Math.abs(m.ndcg - 0.25) < 1e-12);
  t.same(tiedRankMetrics(25, 0, 20), { hr: 0, rr: 0, ndcg: 0 });
  // All of 50 tied: HR@20 is 20/50, whatever the order the scorer happened to emit.
  t.ok(Math.abs(tiedRankMetrics(0, 49, 20).hr - 0.4) < 1e-12);
});

t.test('counts: popularity, recency, direct successors and distance-weighted rules', async (t) => {
  const s = new EntityStats(['item'], ['item'], 3);
  s.add(['a', 'b', 'c', 'a', 'b']);
  t.equal(s.count.get('a'), 2);
  t.equal(s.successors.get('a')?.get('b'), 2);
  t.equal(s.successors.get('b')?.get('a'), undefined, 'b → a is two steps: not a direct successor');
  t.ok(Math.abs((s.rules.get('b')?.get('a') ?? 0) - 0.5) < 1e-12, 'b → a at distance 2 weighs 1/2');
  t.ok(Math.abs((s.rules.get('a')?.get('a') ?? 0) - 1 / 3) < 1e-12, 'a → a at distance 3 weighs 1/3');
  const history = ['c', 'b', 'x'];
  t.ok(s.score('recent', history, 'b') > s.score('recent', history, 'c'), 'the more recent one first');
  t.ok(s.score('recent', history, 'c') > s.score('recent', history, 'a'), 'seen before unseen, however popular');
  t.ok(s.score('successors', ['b'], 'c') > s.score('successors', ['b'], 'a'));
  t.ok(s.score('popularity', [], 'a') > s.score('popularity', [], 'c'));
  t.equal(s.score('successors', ['zzz'], 'q'), 0, 'nothing known: 0');
});

// A world where every user walks the cycle i0 → i1 → … → i49 → i0 from a random start.
const config = resolveConfig({ itemFields: [{ name: 'item', buckets: 211, dim: 6 }], hidden: 8, attentionHidden: 4, tasks: [{ name: 'ctr', kind: 'binary', target: ['item'], layers: [8] }] });
const N = 50;
const row = (u: string, i: number, time: number): LogRow => ({ userId: u, item: `i${i % N}`, type: 'pv', time, line: time });
const timelines = Array.from({ length: 40 }, (_, u) => ({ userId: `u${u}`, rows: Array.from({ length: 30 }, (_, k) => row(`u${u}`, u * 7 + k, 1000 + k)), firstLine: 0 }));
const split = 1020;
const tests: TrainingExample[] = timelines.map((tl) => {
  const k = 25;
  const rows = tl.rows;
  return {
    user: { behaviors: rows.slice(0, k).map((r) => ({ item: r.item, type: 'pv', time: r.time })), now: rows[k].time },
    userId: tl.userId,
    time: rows[k].time,
    labels: { ctr: [{ candidate: { item: rows[k].item }, label: 1 }, { candidate: { item: `i${(Number(rows[k].item.slice(1)) + 25) % N}` }, label: 0 }] },
  };
});

t.test('on a deterministic cycle, the successor baselines are perfect and popularity is chance', async (t) => {
  const stats = new SequenceStats(config, { before: split });
  for (const tl of timelines) stats.add(tl);
  const ctr = stats.byTask.get('ctr')!;
  t.equal([...ctr.count.values()].reduce((a, b) => a + b, 0), 40 * 20, 'only rows before the split count');
  const r = await evaluateNextItem(tests, stats, undefined, { seed: 1 });
  t.equal(r.cases, 40);
  t.equal(r.catalogue, N);
  t.equal(r.scorers['successors'].hr, 1);
  t.equal(r.scorers['successors'].mrr, 1);
  t.equal(r.scorers['rules'].mrr, 1, 'the direct successor weighs most');
  t.equal(r.scorers['successors'].sampledHr, 1);
  t.ok(r.scorers['popularity'].hr > 0.2 && r.scorers['popularity'].hr < 0.7, `popularity near chance (HR@20 ${r.scorers['popularity'].hr.toFixed(3)}; 20/50 = 0.4)`);
  t.ok(r.scorers['recent'].hr < r.scorers['successors'].hr);
  t.match(formatNextItem(r), /successors\s+1\.0000\s+1\.0000\s+1\.0000\s+1\.0000\s+1\.0000/);

  const report = await evaluate(stats.scorer('successors'), tests, candidateTasks(config));
  t.equal(report.tasks['ctr'].auc, 1, 'as a Scorer of candidate lists too');
});

t.test('the model is ranked over the same catalogue and samples', async (t) => {
  const stats = new SequenceStats(config, { before: split });
  for (const tl of timelines) stats.add(tl);
  const model = Model.create(config, { seed: 4, threads: 1 });
  t.teardown(() => model.dispose());
  const r = await evaluateNextItem(tests, stats, model, { seed: 1 });
  const m = r.scorers['model:ctr'];
  t.ok(m, 'a model row');
  for (const v of Object.values(m)) t.ok(v >= 0 && v <= 1, 'metrics in [0, 1]');
  t.same(Object.keys(r.scorers), ['model:ctr', 'model:ctr+prior', 'popularity', 'recent', 'successors', 'rules']);
});

// Half the tests repeat an item of their history, so the history term decides part of the ranking.
const repeatCases = (): TrainingExample[] =>
  tests.map((ex, n) => (n % 2 === 0 ? ex : { ...ex, labels: { ctr: [{ candidate: { item: ex.user.behaviors[ex.user.behaviors.length - 3].item }, label: 1 }] } }));

/**
 * HR@20 and MRR@20 of `task` by scoring every catalogue entity for each case with its user (ties in expectation);
 * `seen` gets each case's user vector and scores.
 */
async function bruteForce(model: Model, task: string, cases: TrainingExample[], keys: string[], seen?: (u: Float32Array, scores: Float32Array) => Promise<void>): Promise<{ hr: number; mrr: number }> {
  const catalogue = keys.map((item) => ({ item }));
  let hr = 0;
  let mrr = 0;
  for (const ex of cases) {
    const u = await model.encode([ex.user]);
    const scores = await model.score(task, u, catalogue, { user: ex.user });
    await seen?.(u, scores);
    const target = keys.indexOf(String((ex.labels['ctr'] as { candidate: { item: string } }[])[0].candidate.item));
    const m = tiedRankMetrics(scores.filter((s) => s > scores[target]).length, scores.filter((s) => s === scores[target]).length - 1, 20);
    hr += m.hr / cases.length;
    mrr += m.rr / cases.length;
  }
  return { hr, mrr };
}

t.test('a retrieval head is ranked by exact search: the same full-catalogue ranks as scoring every entity', async (t) => {
  const withNext = resolveConfig({ ...config, tasks: [...config.tasks, { name: 'next', kind: 'retrieval', target: ['item'], layers: [6] }] });
  const stats = new SequenceStats(withNext, { before: split });
  for (const tl of timelines) stats.add(tl);
  const model = Model.create(withNext, { seed: 9, threads: 1 });
  t.teardown(() => model.dispose());
  const cases = repeatCases();
  const r = await evaluateNextItem(cases, stats, model, { seed: 1 });
  t.same(Object.keys(r.scorers), ['model:next', 'popularity', 'recent', 'successors', 'rules'], 'with a retrieval head, only retrieval heads by default');
  const { hr, mrr } = await bruteForce(model, 'next', cases, [...stats.byTask.get('ctr')!.count.keys()]);
  t.ok(Math.abs(r.scorers['model:next'].hr - hr) < 1e-9, `HR@20 ${r.scorers['model:next'].hr} = ${hr} by brute force`);
  t.ok(Math.abs(r.scorers['model:next'].mrr - mrr) < 1e-6, `MRR@20 ${r.scorers['model:next'].mrr} = ${mrr} by brute force`);
  const all = await evaluateNextItem(cases, stats, model, { seed: 1, heads: 'all' });
  t.same(Object.keys(all.scorers), ['model:ctr', 'model:ctr+prior', 'model:next', 'popularity', 'recent', 'successors', 'rules'], "heads: 'all' scores the others too");
  t.same(all.scorers['model:next'], r.scorers['model:next']);
});

t.test('a binary head with history features is ranked with each case\'s own history, as scoring every entity with the user', async (t) => {
  const withHistory = resolveConfig({ ...config, tasks: [{ name: 'ctr', kind: 'binary', target: ['item'], layers: [8], history: true }] });
  const stats = new SequenceStats(withHistory, { before: split });
  for (const tl of timelines) stats.add(tl);
  const model = Model.create(withHistory, { seed: 5, threads: 1 });
  t.teardown(() => model.dispose());
  const cases = repeatCases();
  const r = await evaluateNextItem(cases, stats, model, { seed: 1 });
  const keys = [...stats.byTask.get('ctr')!.count.keys()];
  const catalogue = keys.map((item) => ({ item }));
  let differs = 0;
  const { hr, mrr } = await bruteForce(model, 'ctr', cases, keys, async (u, scores) => {
    const blind = await model.score('ctr', u, catalogue);
    if (scores.some((s, i) => s !== blind[i])) differs++;
  });
  t.equal(differs, cases.length, 'the history features change the scores of every case');
  t.ok(Math.abs(r.scorers['model:ctr'].hr - hr) < 1e-9, `HR@20 ${r.scorers['model:ctr'].hr} = ${hr} by brute force`);
  t.ok(Math.abs(r.scorers['model:ctr'].mrr - mrr) < 1e-6, `MRR@20 ${r.scorers['model:ctr'].mrr} = ${mrr} by brute force`);
});
