// evaluate(): the report of each scorer (popularity, oracle, a model) on synthetic data, streaming and
// batching invariance, label masks, the checks on labels and scores, and the text table.
import t from 'tap';
import { resolveConfig } from '../lib/network/config';
import { SyntheticRecord, synthesizeWithOracle } from '../lib/data/synthetic';
import { LabelledCandidate, TrainingExample } from '../lib/data/training-example';
import { EvalReport, Scorer, evaluate, formatReport, modelScorer, oracleScorer, popularityScorer } from '../lib/eval/evaluate';
import { Model } from '../lib/model/model';
import { rejectsCode } from './support/errors';

// Small tables and network so a random model runs in milliseconds; the data do not depend on dims.
const config = resolveConfig({
  maxSeqLen: 30,
  itemFields: [
    { name: 'item', buckets: 5000, dim: 8 },
    { name: 'category', buckets: 300, dim: 4 },
    { name: 'shop', buckets: 500, dim: 4 },
    { name: 'brand', buckets: 300, dim: 4 },
  ],
  query: { buckets: 500, dim: 4 },
  hidden: 8,
  attentionHidden: 6,
  tasks: [
    { name: 'ctr', kind: 'binary', target: ['item', 'category', 'shop', 'brand'], layers: [8] },
    { name: 'l2r', kind: 'rank', target: ['item', 'category', 'shop', 'brand'], layers: [8] },
    { name: 'ppp', kind: 'multiclass', classes: 7, layers: [8] },
    { name: 'spp', kind: 'binary', target: ['shop'], layers: [] },
  ],
});

const universe = { items: 5000, categories: 80, shops: 400, brands: 200 };
const train = [...synthesizeWithOracle({ seed: 21, users: 300, examplesPerUser: 2, config, ...universe })];
const test: SyntheticRecord[] = [...synthesizeWithOracle({ seed: 21, users: 150, firstUser: 300, examplesPerUser: 2, config, ...universe })];
const examples = test.map((r) => r.example);

function inUnit(x: number | undefined): boolean {
  return x !== undefined && x >= 0 && x <= 1;
}

t.test('popularity and oracle on synthetic data: complete reports, the oracle ahead', async (t) => {
  const pop = await evaluate(popularityScorer(train.map((r) => r.example), { config }), examples, config);
  const oracle = await evaluate(oracleScorer(test), examples, config, { batchSize: 64 });
  t.equal(pop.examples, 300);
  t.same(Object.keys(oracle.tasks), ['ctr', 'l2r', 'ppp', 'spp']);
  for (const r of [pop, oracle]) {
    const { ctr, l2r, ppp, spp } = r.tasks;
    t.match(ctr, { kind: 'binary', examples: 300, candidates: 1500, positives: 300 });
    t.match(spp, { kind: 'binary', examples: 300, candidates: 1500, positives: 300 });
    t.match(l2r, { kind: 'rank', examples: 300, candidates: 3000 });
    t.match(ppp, { kind: 'multiclass', examples: 300, candidates: 300 });
    for (const x of [ctr, spp, l2r]) {
      t.ok(inUnit(x.auc) && inUnit(x.gauc) && inUnit(x.gaucWeighted) && x.logloss > 0, `${x.task}: metrics in range`);
      t.ok(x.gaucUsers! > 100 && x.gaucUsers! <= 150, `${x.task}: GAUC over users`);
      t.equal(x.accuracy, undefined);
    }
    t.ok(inUnit(l2r.ndcg10) && ctr.ndcg10 === undefined, 'NDCG for rank tasks only');
    t.ok(inUnit(ppp.accuracy) && ppp.gauc === undefined && ppp.perClass!.precision.length === 7, 'multiclass: accuracy and per-class');
    t.equal(ppp.perClass!.support.reduce((s, x) => s + x, 0), 300);
  }
  for (const task of ['ctr', 'spp', 'l2r']) t.ok(oracle.tasks[task].auc > pop.tasks[task].auc + 0.1, `${task}: oracle ${oracle.tasks[task].auc.toFixed(3)} vs popularity ${pop.tasks[task].auc.toFixed(3)}`);
  t.ok(oracle.tasks.l2r.ndcg10! > pop.tasks.l2r.ndcg10!);
  t.ok(oracle.tasks.ppp.accuracy! > pop.tasks.ppp.accuracy!);

  const table = formatReport(oracle, { popularity: pop }, 'oracle');
  const lines = table.trimEnd().split('\n');
  t.equal(lines.length, 2 + 4 * 2 + 1, 'header, rule, two rows per task, per-class line of ppp');
  t.match(lines[lines.length - 1], /^ppp per class \(0\.\.6\): precision .* · recall /);
  t.match(lines[0], /^task\s+kind\s+scorer\s+examples\s+candidates\s+AUC\s+GAUC\s+GAUC\(w\)\s+logloss\s+NDCG@10\s+accuracy$/);
  t.match(lines[2], /^ctr\s+binary\s+oracle\s+300\s+1500\s+0\.\d{4}/);
  t.match(lines[3], /^\s+popularity\s+300/);
  t.match(formatReport(pop), /ppp\s+multiclass\s+model\s+300\s+300\s+0\.5000\s+-\s+-/, 'multiclass without GAUC shows "-"');
});

t.test('streaming and batch size do not change the report', async (t) => {
  const scorer = oracleScorer(test);
  const whole = await evaluate(scorer, examples, config, { batchSize: 1000 });
  async function* stream(): AsyncGenerator<TrainingExample> {
    for (const e of examples) yield e;
  }
  t.same(await evaluate(scorer, stream(), config, { batchSize: 7 }), whole, 'async iterable, batches of 7');
  t.same(await evaluate(scorer, new Set(examples), config, { batchSize: 1 }), whole, 'any iterable, batches of 1');
});

// Scores the labels themselves: a perfect scorer (the multiclass row puts all mass on the label).
const perfect: Scorer = {
  async scoreExamples(batch) {
    const out: Record<string, number[]> = {};
    for (const ex of batch) {
      for (const [task, label] of Object.entries(ex.labels)) {
        const col = (out[task] ??= []);
        if (typeof label === 'number') for (let c = 0; c < 7; c++) col.push(c === label ? 1 : 0);
        else for (const c of label) col.push(c.label); // 0/1 is a probability; a grade is a score
      }
    }
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, Float64Array.from(v)]));
  },
};

t.test('label masks: tasks missing on some examples line up with the scores', async (t) => {
  // Drop ppp from every other example and spp from every third.
  const masked = examples.map((e, i) => {
    const labels = { ...e.labels };
    if (i % 2) delete labels.ppp;
    if (i % 3 === 0) delete labels.spp;
    return { ...e, labels };
  });
  const r = await evaluate(perfect, masked, config, { batchSize: 13 });
  t.equal(r.tasks.ppp.examples, 150);
  t.equal(r.tasks.spp.examples, 200);
  t.equal(r.tasks.ctr.auc, 1);
  t.equal(r.tasks.spp.auc, 1);
  t.equal(r.tasks.l2r.ndcg10, 1);
  t.equal(r.tasks.ppp.accuracy, 1);
  t.equal(r.tasks.ppp.logloss < 1e-6, true);
  const none = await evaluate(perfect, masked.map((e) => ({ ...e, labels: { ctr: e.labels.ctr } })), config);
  t.same(Object.keys(none.tasks), ['ctr'], 'tasks without labels are left out of the report');
});

t.test('bad labels and bad scores are refused with the place named', async (t) => {
  const base = examples.slice(0, 3);
  const broken = base.map((e, i) => (i === 2 ? { ...e, labels: { ...e.labels, ppp: 9 } } : e));
  await rejectsCode(t, () => evaluate(perfect, broken, config), 'E_INPUT', 'examples[2].labels.ppp');
  const badGrade = base.map((e, i) => (i === 1 ? { ...e, labels: { ...e.labels, ctr: [{ candidate: { item: 1 }, label: 2 }] } } : e));
  await rejectsCode(t, () => evaluate(perfect, badGrade, config), 'E_INPUT', 'examples[1].labels.ctr[0].label');
  const short: Scorer = { scoreExamples: async (b) => ({ ...(await perfect.scoreExamples(b)), ctr: new Float64Array(1) }) };
  await rejectsCode(t, () => evaluate(short, base, config), 'E_INPUT', 'scores.ctr');
  const missing: Scorer = { scoreExamples: async (b) => ({ ...(await perfect.scoreExamples(b)), spp: undefined as unknown as Float64Array }) };
  await rejectsCode(t, () => evaluate(missing, base, config), 'E_INPUT', 'scores.spp');
  const outOfRange: Scorer = {
    scoreExamples: async (b) => {
      const s = await perfect.scoreExamples(b);
      s.ctr[3] = 1.5;
      return s;
    },
  };
  await rejectsCode(t, () => evaluate(outOfRange, base, config), 'E_INPUT', 'scores.ctr[3]');
  await rejectsCode(t, () => evaluate(perfect, base, config, { batchSize: 0 }), 'E_INPUT', 'options.batchSize');
  await rejectsCode(t, () => oracleScorer(test).scoreExamples([{ ...base[0], time: 1 }]), 'E_INPUT', 'examples[0]');
});

t.test('popularity without a config infers the kinds: rank tasks get logits', async (t) => {
  const scorer = popularityScorer(train.map((r) => r.example));
  const s = await scorer.scoreExamples(examples.slice(0, 20));
  t.ok(s.l2r.some((x) => x < 0), 'rank scores are logits');
  t.ok(s.ctr.every((x) => x > 0 && x < 1), 'binary scores are probabilities');
  t.equal(s.ppp.length, 20 * 7);
  t.ok(Math.abs(s.ppp.slice(0, 7).reduce((a, b) => a + b, 0) - 1) < 1e-12, 'class prior sums to 1');
});

t.test('modelScorer: a tiny random model runs through evaluate with metrics in range', async (t) => {
  const model = Model.create(config, { seed: 3, threads: 1 });
  t.teardown(() => model.dispose());
  const subset = examples.slice(0, 60);
  const r: EvalReport = await evaluate(modelScorer(model), subset, config, { batchSize: 25 });
  t.same(Object.keys(r.tasks), ['ctr', 'l2r', 'ppp', 'spp']);
  t.equal(r.tasks.ctr.candidates, 300);
  t.equal(r.tasks.l2r.candidates, 600);
  for (const x of Object.values(r.tasks)) t.ok(inUnit(x.auc) && Number.isFinite(x.logloss), `${x.task}: AUC ${x.auc.toFixed(3)}, log-loss ${x.logloss.toFixed(3)}`);
  t.ok(inUnit(r.tasks.l2r.ndcg10) && inUnit(r.tasks.ppp.accuracy));

  // The scorer's numbers are the model's own.
  const got = await modelScorer(model).scoreExamples(subset.slice(0, 2));
  const u = await model.encode([subset[1].user]);
  const want = await model.score('spp', u, (subset[1].labels.spp as LabelledCandidate[]).map((c) => c.candidate));
  t.same(Array.from(got.spp.slice(5, 10)), Array.from(want), 'spp scores of the second example');
  const probs = await model.predict('ppp', [subset[0].user]);
  t.same(Array.from(got.ppp.slice(0, 7)), Array.from(probs), 'ppp probabilities of the first example');
});
