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
import { LabelledCandidate, TrainingExample } from '../data/training-example';
import { DupnError } from '../errors';
import { Model } from '../model/model';
import { columnsFor } from '../model/columns';
import { mulberry32 } from '../random';
import { isAsyncIterable } from './evaluate';
import { BASELINES, EntityStats, SequenceStats, behaviorKey, entityFields } from './baselines';
import { RetrievalTask, TaskConfig, callerDense, denseCount, historyDense } from '../network/config';
import { BehaviorInput, CandidateInput, historyFeatures, historyIndex } from '../model/features';
import { hashKey } from '../model/hashing';
import { historyField } from '../network/tensors';

/** Metrics of one scorer. */
export interface NextItemMetrics {
  hr: number;
  mrr: number;
  ndcg: number;
  sampledHr: number;
  sampledNdcg: number;
}

/** One standard error (of the mean over cases) of each metric. */
export type NextItemSpread = NextItemMetrics;

/**
 * The score that chooses among a retrieval head's models (early stopping's epoch, the calibration's scales):
 * NDCG@20 over the whole catalogue and NDCG@10 of the sampled protocol, averaged.
 */
export const selectionScore = (n: NextItemMetrics): number => (n.ndcg + n.sampledNdcg) / 2;

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
  /**
   * Which of the model's heads over the entity score the catalogue: `retrieval` (default when the model has a
   * retrieval head) or `all` (binary and rank heads too, with and without the log prior: slow on large logs).
   */
  heads?: 'retrieval' | 'all';
  /** Score the four baselines too (default true; a per-epoch validation of the model alone skips them). */
  baselines?: boolean;
  /** Keep every scorer's per-case values in the report (`Ranking.perCase`; default false). */
  perCase?: boolean;
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

/** The target's tied-rank metrics among the first `size` scores, or among the rows `among` when given. */
function rankOf(scores: ArrayLike<number>, target: number, k: number, size: number, among?: readonly number[]): { hr: number; rr: number; ndcg: number } {
  const s = scores[target];
  let greater = 0;
  let equal = 0;
  if (among) {
    for (const i of among) {
      if (i === target) continue;
      const x = scores[i];
      if (x > s) greater++;
      else if (x === s) equal++;
    }
  } else {
    // The hot loop of an evaluation (every catalogue entry, per case, scorer and view): no per-entry test
    // for the target; it ties with itself once, taken back below (unless its score is NaN, which ties nothing).
    for (let i = 0; i < size; i++) {
      const x = scores[i];
      if (x > s) greater++;
      else if (x === s) equal++;
    }
    if (Number.isInteger(target) && target >= 0 && target < size && s === s) equal--;
  }
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

  /** The mean of each metric and its standard error. */
  summary(): { mean: NextItemMetrics; standardError: NextItemSpread } {
    const mean = metricsOf(() => 0);
    const standardError = metricsOf(() => 0);
    for (const m of METRICS) [mean[m], standardError[m]] = meanAndError(this.values[m]);
    return { mean, standardError };
  }

  /** This tally minus `other`, case by case. */
  minus(other: Tally): Tally {
    const d = new Tally();
    for (const m of METRICS) d.values[m] = this.values[m].map((v, i) => v - other.values[m][i]);
    return d;
  }
}

function metricsOf(f: (m: (typeof METRICS)[number]) => number): NextItemMetrics {
  return { hr: f('hr'), mrr: f('mrr'), ndcg: f('ndcg'), sampledHr: f('sampledHr'), sampledNdcg: f('sampledNdcg') };
}

/** The mean of `xs` and its standard error. */
export function meanAndError(xs: Iterable<number> & { length: number }): [number, number] {
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

/** A test case in one catalogue view: the row of its true entity and the rows of its sampled negatives. */
interface Case {
  target: number;
  sample: number[];
}

/**
 * One view of the evaluation: the first `size` entities of the catalogue, and per labelled example its case
 * there (undefined when its true entity is not among them), with a tally per scorer.
 */
interface View {
  size: number;
  cases: (Case | undefined)[];
  tallies: Map<string, Tally>;
}

/** The ranked part of a report: one catalogue, its cases and every scorer's metrics. */
export interface Ranking {
  catalogue: number;
  cases: number;
  scorers: Record<string, NextItemMetrics>;
  standardErrors: Record<string, NextItemSpread>;
  comparisons: NextItemComparison[];
  /** With `perCase`: by scorer, each metric's value on every ranked case, in case order (two scorers pair up). */
  perCase?: Record<string, Record<keyof NextItemMetrics, readonly number[]>>;
}

/**
 * Full-catalogue and sampled next-item metrics of a model (optional) and the four baselines, twice: over
 * the training catalogue, leaving out the cases whose true entity first appears in the test period
 * (the warm cases, where the count-based baselines can compete at all), and over the open catalogue, the
 * training entities plus every entity the test period's histories and labels hold (what a shop's catalogue
 * has on the test day, new items included: the baselines give them nothing, a model scores them by their
 * attributes), with every case. The training entities come first in the open catalogue, so one scoring of
 * it serves both views (a scorer's score of an entity does not depend on the others).
 */
export async function evaluateNextItem(
  examples: Iterable<TrainingExample> | AsyncIterable<TrainingExample>,
  stats: SequenceStats,
  model: Model | undefined,
  options: NextItemOptions = {},
): Promise<NextItemReport> {
  const k = options.k ?? 20;
  const sampledK = options.sampledK ?? 10;
  const sampled = options.sampled ?? 100;
  const taskName = options.task ?? stats.itemTask();
  const es: EntityStats | undefined = taskName === undefined ? undefined : stats.byTask.get(taskName);
  if (es === undefined || taskName === undefined) throw new DupnError('E_TASK', `next-item evaluation needs a binary or rank task over items${taskName ? `; "${taskName}" is not one` : ''}`);
  const labelled: { ex: TrainingExample; label: LabelledCandidate[]; positive: CandidateInput }[] = [];
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
    labelled.push({ ex, label, positive: positive.candidate });
    for (const b of ex.user.behaviors) note(behaviorKey(es.fields, b), b);
    for (const c of label) if (c.label > 0) note(behaviorKey(es.fields, c.candidate), c.candidate);
  };
  if (isAsyncIterable(examples)) for await (const ex of examples) add(ex);
  else for (const ex of examples) add(ex);

  const keys = [...es.count.keys(), ...fresh.keys()];
  const index = new Map(keys.map((key, i) => [key, i]));
  const histories = labelled.map(({ ex }) => ex.user.behaviors.map((b) => behaviorKey(es.fields, b)));
  // Each view draws its sampled negatives from its own catalogue, with its own stream of the seed.
  const views: View[] = [es.count.size, keys.length].map((size) => {
    const rng = mulberry32(options.seed ?? 7);
    const cases = labelled.map(({ label, positive }, j): Case | undefined => {
      const target = index.get(behaviorKey(es.fields, positive) ?? '');
      if (target === undefined || target >= size) return undefined;
      const touched = new Set<string | undefined>([...histories[j], ...label.filter((c) => c.label > 0).map((c) => behaviorKey(es.fields, c.candidate))]);
      const free = size - [...touched].filter((t) => t !== undefined && (index.get(t) ?? size) < size).length;
      const want = Math.min(sampled, free);
      const sample: number[] = [];
      const picked = new Set<number>();
      while (sample.length < want) {
        const i = Math.floor(rng() * size);
        if (picked.has(i) || touched.has(keys[i])) continue;
        picked.add(i);
        sample.push(i);
      }
      return { target, sample };
    });
    return { size, cases, tallies: new Map() };
  });
  // The examples some view ranks: every one whose true entity is in the open catalogue.
  const ranked = labelled.map((_, j) => j).filter((j) => views.some((v) => v.cases[j] !== undefined));
  /** Scorer `name`'s tallies, one per view. */
  const accounts = (name: string): Tally[] =>
    views.map((v) => {
      const t = new Tally();
      v.tallies.set(name, t);
      return t;
    });
  /** Scorer `name`'s scores of example j's catalogue into every view's tally of it. */
  const accountant = (name: string): ((scores: ArrayLike<number>, j: number) => void) => {
    const tallies = accounts(name);
    return (scores, j) =>
      views.forEach((v, n) => {
        const c = v.cases[j];
        if (c !== undefined) tallies[n].add(rankOf(scores, c.target, k, v.size), rankOf(scores, c.target, sampledK, v.size, c.sample));
      });
  };

  if (model !== undefined) {
    // Every head of the model whose entity is the item scores the catalogue: `model:<task>`, and for
    // binary/rank heads `model:<task>+prior`. Trained against negatives sampled by popularity, such a head
    // learns about log p(item | user) − log q(item): it demotes popular items. Adding the log prior back (the
    // training period's log count; half a count for an entity new in the test period) turns that into
    // log p(item | user) up to a constant (the log-Q correction at scoring time). A retrieval head was
    // trained with that correction already, and scores with its history features (what the user did with
    // each item). With a retrieval head, only retrieval heads are scored unless `heads: 'all'`: scoring the
    // others' MLPs over a whole catalogue per case costs minutes on a log of 20,000 users.
    const itemHeads = model.config.tasks.filter((t) => t.kind !== 'multiclass' && entityFields(t).join() === es.fields.join());
    if (itemHeads.length === 0) throw new DupnError('E_TASK', `the model has no binary, rank or retrieval task over the entity of "${taskName}"`);
    const anyRetrieval = itemHeads.some((t) => t.kind === 'retrieval');
    const heads = options.heads === 'all' || !anyRetrieval ? itemHeads : itemHeads.filter((t) => t.kind === 'retrieval');
    const logPrior = Float64Array.from(keys, (key) => Math.log(es.count.get(key) ?? 0.5));
    const catalogue = keys.map((key) => es.features.get(key) ?? fresh.get(key) ?? {});
    const batch = options.batchSize ?? 64;
    for (const task of heads) {
      if (task.kind === 'retrieval') {
        await rankRetrieval(model, task, catalogue, index, labelled, ranked, views, k, sampledK, accounts(`model:${task.name}`), batch);
        continue;
      }
      const account = accountant(`model:${task.name}`);
      const accountPrior = accountant(`model:${task.name}+prior`);
      const packed = model.packCandidates(catalogue, { tasks: [task.name] });
      const history = historyRows(model, task, catalogue);
      const historyDenseOf = columnsFor(packed, task.name).dense;
      const corrected = new Float64Array(keys.length);
      for (let b = 0; b < ranked.length; b += batch) {
        const part = ranked.slice(b, b + batch);
        const U = await model.encode(part.map((j) => labelled[j].ex.user));
        for (let i = 0; i < part.length; i++) {
          const j = part[i];
          const undo = history?.(labelled[j].ex.user.behaviors, historyDenseOf);
          const scores = await model.score(task.name, U.subarray(i * model.userDim, (i + 1) * model.userDim), packed);
          undo?.();
          account(scores, j);
          for (let r = 0; r < keys.length; r++) {
            const logit = task.kind === 'binary' ? Math.log(scores[r] + 1e-30) - Math.log1p(-scores[r] + 1e-30) : scores[r];
            corrected[r] = logit + logPrior[r];
          }
          accountPrior(corrected, j);
        }
      }
    }
  }
  // A baseline's score is the popularity tie-break plus a few boosts (EntityStats.boosts): the same numbers as
  // scorerFor, without a lookup per catalogue entity and case.
  const tieBreak = Float64Array.from(keys, (key) => es.tieBreak(key));
  const scores = new Float64Array(keys.length);
  for (const name of options.baselines === false ? [] : BASELINES) {
    const account = accountant(name);
    for (const j of ranked) {
      scores.set(tieBreak);
      for (const [key, x] of es.boosts(name, histories[j])) {
        const r = index.get(key);
        if (r !== undefined) scores[r] = x + tieBreak[r];
      }
      account(scores, j);
    }
  }

  // The retrieval heads are the ones meant for this; a model without one compares its other heads.
  const retrieval = new Set(model?.config.tasks.filter((t) => t.kind === 'retrieval').map((t) => `model:${t.name}`));
  const rankingOf = (v: View): Ranking => {
    const scorers: Record<string, NextItemMetrics> = {};
    const standardErrors: Record<string, NextItemSpread> = {};
    for (const [name, t] of v.tallies) ({ mean: scorers[name], standardError: standardErrors[name] } = t.summary());
    const recent = v.tallies.get('recent');
    const comparisons =
      recent === undefined
        ? []
        : [...v.tallies]
            .filter(([name]) => name.startsWith('model:') && !name.endsWith('+prior') && (retrieval.size === 0 || retrieval.has(name)))
            .map(([name, t]) => {
              const { mean, standardError } = t.minus(recent).summary();
              return { scorer: name, baseline: 'recent', difference: mean, standardError };
            });
    const ranking: Ranking = { catalogue: v.size, cases: v.cases.filter((c) => c !== undefined).length, scorers, standardErrors, comparisons };
    if (options.perCase) ranking.perCase = Object.fromEntries([...v.tallies].map(([name, t]) => [name, t.values]));
    return ranking;
  };
  const [warm, open] = views;
  return {
    task: taskName,
    ...rankingOf(warm),
    unseenTargets: warm.cases.filter((c) => c === undefined).length,
    k,
    sampledK,
    sampled,
    open: { ...rankingOf(open), newEntities: fresh.size },
  };
}

/**
 * A retrieval head's metrics for every ranked case in every view, by exact search: the catalogue's item vectors
 * once ({@link Model.setCatalogue}: the model's catalogue for this head is replaced), then per case the top
 * k + a margin + the new entities by {@link Model.retrieve} (history terms included), which holds every
 * entity of either view that can outrank the target within k, and the target with each view's sampled
 * negatives scored by {@link Model.scoreRows} (one arithmetic path for the sampled ranking; the rows come
 * packed from the catalogue, so nothing is hashed per case).
 */
async function rankRetrieval(
  model: Model,
  task: RetrievalTask,
  catalogue: CandidateInput[],
  index: Map<string, number>,
  labelled: { ex: TrainingExample; positive: CandidateInput }[],
  ranked: number[],
  views: View[],
  k: number,
  sampledK: number,
  tallies: Tally[],
  batch: number,
): Promise<void> {
  const fields = entityFields(task);
  await model.setCatalogue(task.name, catalogue);
  const warm = Math.min(...views.map((v) => v.size));
  const depth = Math.min(catalogue.length, k + 10 + (catalogue.length - warm));
  for (let b = 0; b < ranked.length; b += batch) {
    const part = ranked.slice(b, b + batch);
    const U = await model.encode(part.map((j) => labelled[j].ex.user));
    // The batch's cases are scored concurrently (the JavaScript packing of one overlaps the native calls of
    // others) and tallied in case order, as the paired comparisons need.
    const settled = await Promise.allSettled(
      part.map(async (j, i) => {
        const { ex, positive } = labelled[j];
        const u = U.subarray(i * model.userDim, (i + 1) * model.userDim);
        const target = index.get(behaviorKey(fields, positive) ?? '');
        if (target === undefined) return undefined;
        const top = await model.retrieve(task.name, u, depth, { user: ex.user });
        // The target and each view's sample, scored in one call with the user's history and successor terms.
        const rows = [target];
        for (const v of views) rows.push(...(v.cases[j]?.sample ?? []));
        const scores = await model.scoreRows(task.name, u, rows, { user: ex.user });
        return { j, target, top, scores };
      }),
    );
    // Every call has ended before an error is passed on (none still runs on the model when the caller moves on).
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    for (const x of settled) {
      if (x.status !== 'fulfilled' || x.value === undefined) continue;
      const r = x.value;
      let at = 1;
      views.forEach((v, n) => {
        const c = v.cases[r.j];
        if (c === undefined) return;
        const sample = Array.from({ length: c.sample.length }, (_, x) => at + x);
        at += c.sample.length;
        tallies[n].add(listRank(r.top, r.target, v.size, k), rankOf(r.scores, 0, sampledK, 0, sample));
      });
    }
  }
}

/** The target's tied-rank metrics at k among the rows below `size` of a best-first top list (zero when not in it). */
function listRank(top: { index: Int32Array; score: Float32Array }, target: number, size: number, k: number): { hr: number; rr: number; ndcg: number } {
  let s: number | undefined;
  for (let i = 0; i < top.index.length; i++) if (top.index[i] === target) s = top.score[i];
  if (s === undefined) return { hr: 0, rr: 0, ndcg: 0 };
  let greater = 0;
  let equal = 0;
  for (let i = 0; i < top.index.length; i++) {
    const r = top.index[i];
    if (r === target || r >= size) continue;
    if (top.score[i] > s) greater++;
    else if (top.score[i] === s) equal++;
  }
  return tiedRankMetrics(greater, equal, k);
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

/**
 * For a binary or rank head with history features: a function that writes one user's features into the catalogue's
 * packed dense columns (only the rows of entities the user acted on are nonzero, so packing the whole
 * catalogue again per case is not needed) and returns how to zero them again. Undefined for other heads.
 */
function historyRows(model: Model, task: TaskConfig, catalogue: CandidateInput[]): ((behaviors: readonly BehaviorInput[], dense: Float32Array) => () => void) | undefined {
  if (task.kind === 'retrieval' || !historyDense(task)) return undefined;
  const field = historyField(task);
  const D = denseCount(task);
  const at = callerDense(task); // a rank head's own numbers come first (zeros here: a catalogue has none)
  const rowsOf = new Map<string, number[]>();
  catalogue.forEach((c, r) => {
    const v = c[field];
    if (v === undefined || v === null) return;
    const key = hashKey(v, `catalogue[${r}].${field}`);
    const rows = rowsOf.get(key);
    if (rows) rows.push(r);
    else rowsOf.set(key, [r]);
  });
  return (behaviors, dense) => {
    const touched: number[] = [];
    for (const [key, seen] of historyIndex(behaviors, field, model.config.maxSeqLen)) {
      for (const r of rowsOf.get(key) ?? []) {
        historyFeatures(seen, dense, r * D + at);
        touched.push(r);
      }
    }
    return () => touched.forEach((r) => dense.fill(0, r * D + at, (r + 1) * D));
  };
}
