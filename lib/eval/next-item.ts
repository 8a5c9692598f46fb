/**
 * Next-item evaluation, the way sequential recommenders are compared:
 *
 * - **Full catalogue**: for each test case (a history and the entity that came next), every entity of the
 *   training catalogue is scored and the true one's rank gives HR@k, MRR@k and NDCG@k (k = 20 by default).
 * - **Sampled** (the protocol of SASRec and the papers after it): the true entity among `sampled` (100)
 *   entities drawn uniformly from the catalogue that the user never touched in the history or the label;
 *   HR@10 and NDCG@10.
 *
 * Ties are broken uniformly at random in expectation (the metric is averaged over every placement of the
 * true entity among the entities with its score), so a scorer gains nothing from ties. Both are done over
 * two catalogues: the training one, leaving out (and counting) the cases whose true entity first appears in
 * the test period, which the count-based baselines cannot rank; and the open one, which adds the test
 * period's new entities and keeps every case. Each model head is also compared with "recently seen" case by
 * case (the mean paired difference and its standard error), so a report says which gaps the test set can
 * tell apart.
 */
import { LabelledCandidate, TrainingExample } from '../data/example';
import { DupnError } from '../errors';
import { Model } from '../model';
import { mulberry32 } from '../random';
import { isAsyncIterable } from '../evaluate';
import { BASELINES, EntityStats, SequenceStats, behaviorKey, entityFields } from './baselines';
import { denseCount } from '../config';
import { BehaviorInput, CandidateInput, historyFeatures, historyIndex } from '../features';
import { historyField } from '../tensors';

/** Metrics of one scorer. */
export interface NextItemMetrics {
  hr: number;
  mrr: number;
  ndcg: number;
  sampledHr: number;
  sampledNdcg: number;
}

/** Mean and one standard error (of the mean over cases) of each metric. */
export interface NextItemSpread {
  hr: number;
  mrr: number;
  ndcg: number;
  sampledHr: number;
  sampledNdcg: number;
}

/**
 * A model head against a baseline on the same cases: the mean per-case difference of each metric (model
 * minus baseline) and its standard error. Pairing removes the spread that the cases share, so a difference
 * of more than about two standard errors is one the test set can tell apart.
 */
export interface NextItemComparison {
  scorer: string;
  baseline: string;
  difference: NextItemMetrics;
  standardError: NextItemSpread;
}

export interface NextItemReport {
  task: string;
  /** Catalogue size (entities of the training period). */
  catalogue: number;
  /** Cases ranked. */
  cases: number;
  /** Cases left out: the true entity is not in the catalogue. */
  unseenTargets: number;
  k: number;
  sampledK: number;
  sampled: number;
  /** By scorer: `model` and the baselines. */
  scorers: Record<string, NextItemMetrics>;
  /** By scorer: one standard error of each metric's mean. */
  standardErrors: Record<string, NextItemSpread>;
  /** Each retrieval head (else each head) against the strongest baseline on these logs, "recently seen" (paired, per case). */
  comparisons: NextItemComparison[];
  /**
   * The same over the open catalogue: the training entities plus the `newEntities` first seen in the test
   * period's histories and labels, and every case (none left out).
   */
  open: Ranking & { newEntities: number };
}

export interface NextItemOptions {
  /** The binary/rank task whose positive is the next entity (default: the first binary task targeting item). */
  task?: string;
  k?: number;
  sampledK?: number;
  /** Negatives of the sampled protocol (default 100). */
  sampled?: number;
  seed?: number;
  /** Users encoded per model call (default 64). */
  batchSize?: number;
}

/** Expected HR, reciprocal rank and NDCG at k when the target ties with `equal` others and `greater` beat it. */
export function tiedRankMetrics(greater: number, equal: number, k: number): { hr: number; rr: number; ndcg: number } {
  let hr = 0;
  let rr = 0;
  let ndcg = 0;
  const n = equal + 1;
  for (let p = greater + 1; p <= Math.min(k, greater + n); p++) {
    hr += 1;
    rr += 1 / p;
    ndcg += 1 / Math.log2(p + 1);
  }
  return { hr: hr / n, rr: rr / n, ndcg: ndcg / n };
}

function rankOf(scores: ArrayLike<number>, target: number, k: number, among?: readonly number[]): { hr: number; rr: number; ndcg: number } {
  const s = scores[target];
  let greater = 0;
  let equal = 0;
  const visit = (i: number): void => {
    if (i === target) return;
    if (scores[i] > s) greater++;
    else if (scores[i] === s) equal++;
  };
  if (among) for (const i of among) visit(i);
  else for (let i = 0; i < scores.length; i++) visit(i);
  return tiedRankMetrics(greater, equal, k);
}

const METRICS = ['hr', 'mrr', 'ndcg', 'sampledHr', 'sampledNdcg'] as const;

/** Per-case values of each metric of one scorer, in case order (so two scorers' tallies pair up). */
class Tally {
  readonly values: Record<(typeof METRICS)[number], number[]> = { hr: [], mrr: [], ndcg: [], sampledHr: [], sampledNdcg: [] };

  add(full: { hr: number; rr: number; ndcg: number }, sampled: { hr: number; ndcg: number }): void {
    this.values.hr.push(full.hr);
    this.values.mrr.push(full.rr);
    this.values.ndcg.push(full.ndcg);
    this.values.sampledHr.push(sampled.hr);
    this.values.sampledNdcg.push(sampled.ndcg);
  }

  mean(): NextItemMetrics {
    return metricsOf((m) => meanAndError(this.values[m])[0]);
  }

  standardError(): NextItemSpread {
    return metricsOf((m) => meanAndError(this.values[m])[1]);
  }

  /** Mean and standard error of this tally minus `other`, case by case. */
  minus(other: Tally): { difference: NextItemMetrics; standardError: NextItemSpread } {
    const d = metricsOf(() => 0);
    const e = metricsOf(() => 0);
    for (const m of METRICS) [d[m], e[m]] = meanAndError(this.values[m].map((v, i) => v - other.values[m][i]));
    return { difference: d, standardError: e };
  }
}

function metricsOf(f: (m: (typeof METRICS)[number]) => number): NextItemMetrics {
  return { hr: f('hr'), mrr: f('mrr'), ndcg: f('ndcg'), sampledHr: f('sampledHr'), sampledNdcg: f('sampledNdcg') };
}

function meanAndError(xs: number[]): [number, number] {
  const n = xs.length;
  if (n === 0) return [0, 0];
  let sum = 0;
  for (const x of xs) sum += x;
  const mean = sum / n;
  if (n < 2) return [mean, 0];
  let ss = 0;
  for (const x of xs) ss += (x - mean) ** 2;
  return [mean, Math.sqrt(ss / (n - 1) / n)];
}

interface Case {
  history: (string | undefined)[];
  example: TrainingExample;
  target: number;
  sample: number[];
}

/** The ranked part of a report: one catalogue, its cases and every scorer's metrics. */
export interface Ranking {
  catalogue: number;
  cases: number;
  scorers: Record<string, NextItemMetrics>;
  standardErrors: Record<string, NextItemSpread>;
  comparisons: NextItemComparison[];
}

/**
 * Full-catalogue and sampled next-item metrics of a model (optional) and the four baselines, twice: over
 * the training catalogue, leaving out the cases whose true entity first appears in the test period
 * (the warm cases, where the count-based baselines can compete at all), and over the open catalogue, the
 * training entities plus every entity the test period's histories and labels hold (what a shop's catalogue
 * has on the test day, new items included: the baselines give them nothing, a model scores them by their
 * attributes), with every case.
 */
export async function evaluateNextItem(
  examples: Iterable<TrainingExample> | AsyncIterable<TrainingExample>,
  stats: SequenceStats,
  model: Model | undefined,
  options: NextItemOptions = {},
): Promise<NextItemReport> {
  const taskName = options.task ?? stats.itemTask();
  const es: EntityStats | undefined = taskName === undefined ? undefined : stats.byTask.get(taskName);
  if (es === undefined || taskName === undefined) throw new DupnError('E_TASK', `next-item evaluation needs a binary or rank task over items${taskName ? `; "${taskName}" is not one` : ''}`);
  const labelled: { ex: TrainingExample; positive: CandidateInput }[] = [];
  const fresh = new Map<string, CandidateInput>(); // entities first seen in the test period, with their fields
  const note = (key: string | undefined, fields: BehaviorInput | CandidateInput): void => {
    if (key === undefined || es.count.has(key) || fresh.has(key)) return;
    const c: CandidateInput = {};
    for (const f of es.target) if (fields[f] !== undefined) c[f] = fields[f];
    fresh.set(key, c);
  };
  const add = (ex: TrainingExample): void => {
    const label = ex.labels[taskName];
    if (!Array.isArray(label)) return;
    const positive = label.find((c) => c.label > 0);
    if (!positive) return;
    labelled.push({ ex, positive: positive.candidate });
    for (const b of ex.user.behaviors) note(behaviorKey(es.fields, b), b);
    for (const c of label) if (c.label > 0) note(behaviorKey(es.fields, c.candidate), c.candidate);
  };
  if (isAsyncIterable(examples)) for await (const ex of examples) add(ex);
  else for (const ex of examples) add(ex);

  const warmKeys = [...es.count.keys()];
  const warm = await rank(warmKeys, es, labelled, taskName, model, options);
  const openKeys = [...warmKeys, ...fresh.keys()];
  const open = await rank(openKeys, es, labelled, taskName, model, options, fresh);
  return {
    task: taskName,
    ...warm.ranking,
    unseenTargets: warm.unseen,
    k: options.k ?? 20,
    sampledK: options.sampledK ?? 10,
    sampled: options.sampled ?? 100,
    open: { ...open.ranking, newEntities: fresh.size },
  };
}

async function rank(
  keys: string[],
  es: EntityStats,
  labelled: { ex: TrainingExample; positive: CandidateInput }[],
  taskName: string,
  model: Model | undefined,
  options: NextItemOptions,
  fresh?: Map<string, CandidateInput>,
): Promise<{ ranking: Ranking; unseen: number }> {
  const k = options.k ?? 20;
  const sampledK = options.sampledK ?? 10;
  const sampled = options.sampled ?? 100;
  const index = new Map(keys.map((key, i) => [key, i]));
  const rng = mulberry32(options.seed ?? 7);
  const cases: Case[] = [];
  let unseen = 0;
  for (const { ex, positive } of labelled) {
    const label = ex.labels[taskName] as LabelledCandidate[];
    const target = index.get(behaviorKey(es.fields, positive) ?? '');
    if (target === undefined) {
      unseen++;
      continue;
    }
    const history = ex.user.behaviors.map((b) => behaviorKey(es.fields, b));
    const touched = new Set<string | undefined>([...history, ...label.filter((c) => c.label > 0).map((c) => behaviorKey(es.fields, c.candidate))]);
    const sample: number[] = [];
    const free = keys.length - [...touched].filter((t) => t !== undefined && index.has(t)).length;
    const want = Math.min(sampled, free);
    const picked = new Set<number>();
    while (sample.length < want) {
      const i = Math.floor(rng() * keys.length);
      if (picked.has(i) || touched.has(keys[i])) continue;
      picked.add(i);
      sample.push(i);
    }
    cases.push({ history, example: ex, target, sample });
  }

  const tallies = new Map<string, Tally>();
  const account = (m: Tally, scores: ArrayLike<number>, c: Case): void => {
    m.add(rankOf(scores, c.target, k), rankOf(scores, c.target, sampledK, c.sample));
  };

  if (model !== undefined) {
    // Every head of the model whose entity is the item scores the catalogue: `model:<task>`, and for
    // binary/rank heads `model:<task>+prior`. Trained against negatives sampled by popularity, such a head
    // learns about log p(item | user) − log q(item): it demotes popular items. Adding the log prior back (the
    // training period's log count; half a count for an entity new in the test period) turns that into
    // log p(item | user) up to a constant (the log-Q correction at scoring time). A retrieval head was
    // trained with that correction already, and scores with its history features (what the user did with
    // each item).
    const heads = model.config.tasks.filter((t) => t.kind !== 'multiclass' && entityFields(t).join() === es.fields.join());
    if (heads.length === 0) throw new DupnError('E_TASK', `the model has no binary, rank or retrieval task over the entity of "${taskName}"`);
    const logPrior = Float64Array.from(keys, (key) => Math.log(es.count.get(key) ?? 0.5));
    const catalogue = keys.map((key) => es.features.get(key) ?? fresh?.get(key) ?? {});
    const batch = options.batchSize ?? 64;
    for (const task of heads) {
      const m = new Tally();
      const withPrior = new Tally();
      const packed = model.packCandidates(catalogue, { tasks: [task.name] });
      const D = denseCount(task);
      const corrected = new Float64Array(keys.length);
      let acted: number[] = []; // catalogue rows whose history features the previous case set
      for (let b = 0; b < cases.length; b += batch) {
        const part = cases.slice(b, b + batch);
        const U = await model.encode(part.map((c) => c.example.user));
        for (let i = 0; i < part.length; i++) {
          if (task.kind === 'retrieval' && D > 0) {
            // Only the items this user acted on have non-zero history features: clear the last case's, set these.
            for (const j of acted) historyFeatures(undefined, packed.dense, j * D);
            acted = [];
            for (const [key, seen] of historyIndex(part[i].example.user.behaviors, historyField(task), model.config.maxSeqLen)) {
              const j = index.get(key);
              if (j === undefined) continue;
              historyFeatures(seen, packed.dense, j * D);
              acted.push(j);
            }
          }
          const scores = await model.score(task.name, U.subarray(i * model.userDim, (i + 1) * model.userDim), packed);
          account(m, scores, part[i]);
          if (task.kind === 'retrieval') continue;
          for (let j = 0; j < keys.length; j++) {
            const logit = task.kind === 'binary' ? Math.log(scores[j] + 1e-30) - Math.log1p(-scores[j] + 1e-30) : scores[j];
            corrected[j] = logit + logPrior[j];
          }
          account(withPrior, corrected, part[i]);
        }
      }
      tallies.set(`model:${task.name}`, m);
      if (task.kind !== 'retrieval') tallies.set(`model:${task.name}+prior`, withPrior);
    }
  }
  for (const name of BASELINES) {
    const m = new Tally();
    const scores = new Float64Array(keys.length);
    for (const c of cases) {
      const score = es.scorerFor(name, c.history);
      for (let i = 0; i < keys.length; i++) scores[i] = score(keys[i]);
      account(m, scores, c);
    }
    tallies.set(name, m);
  }
  const scorers: Record<string, NextItemMetrics> = {};
  const standardErrors: Record<string, NextItemSpread> = {};
  for (const [name, m] of tallies) {
    scorers[name] = m.mean();
    standardErrors[name] = m.standardError();
  }
  // The retrieval heads are the ones meant for this; a model without one compares its other heads.
  const retrieval = new Set(model?.config.tasks.filter((t) => t.kind === 'retrieval').map((t) => `model:${t.name}`));
  const recent = tallies.get('recent')!;
  const comparisons = [...tallies]
    .filter(([name]) => name.startsWith('model:') && !name.endsWith('+prior') && (retrieval.size === 0 || retrieval.has(name)))
    .map(([name, m]) => ({ scorer: name, baseline: 'recent', ...m.minus(recent) }));
  return { ranking: { catalogue: keys.length, cases: cases.length, scorers, standardErrors, comparisons }, unseen };
}

function signed(x: number): string {
  return `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(4)}`;
}

/** The report as two tables (training catalogue, open catalogue): one row per scorer, then each model head against "recently seen". */
export function formatNextItem(r: NextItemReport): string {
  const head = ['scorer', `HR@${r.k}`, `MRR@${r.k}`, `NDCG@${r.k}`, `HR@${r.sampledK}/${r.sampled}`, `NDCG@${r.sampledK}/${r.sampled}`];
  const table = (x: Ranking): string[] => {
    const rows = Object.entries(x.scorers).map(([name, m]) => [name, ...[m.hr, m.mrr, m.ndcg, m.sampledHr, m.sampledNdcg].map((v) => v.toFixed(4))]);
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((v) => v[i].length)));
    const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
    return [
      line(head),
      widths.map((w) => '-'.repeat(w)).join('  '),
      ...rows.map(line),
      ...x.comparisons.map((c) => {
        const cells = METRICS.map((m, i) => `${head[i + 1]} ${signed(c.difference[m])} ± ${c.standardError[m].toFixed(4)}`);
        return `${c.scorer} − ${c.baseline} (paired, ± one standard error): ${cells.join(', ')}`;
      }),
    ];
  };
  const what = r.task === 'ctr' ? 'item' : 'entity';
  return [
    `next ${what} (task ${r.task}): ${r.cases} cases over a catalogue of ${r.catalogue}` +
      `${r.unseenTargets ? `; ${r.unseenTargets} cases left out (the true entity is not in the training catalogue)` : ''}; sampled: the true one among ${r.sampled} the user never touched`,
    ...table(r),
    `open catalogue: all ${r.open.cases} cases over the training catalogue and the ${r.open.newEntities} entities first seen in the test period (${r.open.catalogue})`,
    ...table(r.open),
  ].join('\n') + '\n';
}
