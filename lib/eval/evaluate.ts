/**
 * Offline evaluation: scores labelled examples with a {@link Scorer} (a model, the popularity baseline, or
 * the synthetic oracle) and reports per task the metrics of metrics.ts, plus a plain-text table for the
 * CLI and the docs.
 */
import { ResolvedConfig, TaskConfig, historyDense } from '../network/config';
import { exampleKey, SyntheticRecord } from '../data/synthetic';
import { GRADES, LabelledCandidate, TrainingExample } from '../data/training-example';
import { DupnError, describe } from '../errors';
import { CandidateInput } from '../model/features';
import { accuracy, argmaxRows, auc, gaucDetail, logLoss, macroAuc, multiclassLogLoss, ndcgDetail, precisionRecall } from './metrics';
import { Model } from '../model/model';

/**
 * Anything that scores labelled examples. For a batch it returns, by task name:
 * - `binary` tasks: one probability per labelled candidate — examples in batch order, then candidates in
 *   label order, over the examples that carry a label for the task;
 * - `rank` tasks: the same layout, any real score (read as a logit where a probability is needed);
 * - `multiclass` tasks: labelled examples × classes probabilities, row-major.
 * Tasks it cannot score may be absent; evaluating such a task is an error.
 */
export interface Scorer {
  /** Scores of a batch of examples, by task name, laid out as above. */
  scoreExamples(examples: TrainingExample[]): Promise<Record<string, Float64Array>>;
}

/** Options of {@link evaluate}. */
export interface EvaluateOptions {
  /** Examples per {@link Scorer.scoreExamples} call (default 256). */
  batchSize?: number;
  /** Cut-off of NDCG for rank tasks (default 10; the report field keeps the name `ndcg10`). */
  k?: number;
}

/** Metrics of one task. A metric that does not apply to the kind is absent; one undefined on the data is NaN. */
export interface TaskReport {
  /** The task's name. */
  task: string;
  /** The task's kind. */
  kind: TaskConfig['kind'];
  /** Examples that carry a label for the task. */
  examples: number;
  /** Labelled candidates (binary/rank) or labelled examples (multiclass). */
  candidates: number;
  /** binary: label 1; rank: grade > 0; multiclass: not counted (0). */
  positives: number;
  /** binary/rank: ROC AUC (rank: grade > 0 is positive); multiclass: mean one-vs-rest AUC. */
  auc: number;
  /** binary/rank: per-user AUC averaged over users with both classes. */
  gauc?: number;
  /** binary/rank: {@link gauc} weighted by each user's candidate count. */
  gaucWeighted?: number;
  /** binary/rank: users that entered GAUC. */
  gaucUsers?: number;
  /** binary: log-loss of the probabilities; rank: of σ(score) against grade > 0; multiclass: categorical. */
  logloss: number;
  /** rank: NDCG@k (k = 10 by default) over request groups (examples) with a positive. */
  ndcg10?: number;
  /** multiclass: share of examples whose most probable class is the label. */
  accuracy?: number;
  /** multiclass: precision, recall and support per class (NaN precision: class never predicted). */
  perClass?: { precision: number[]; recall: number[]; support: number[] };
}

/** What {@link evaluate} returns. */
export interface EvalReport {
  /** Examples read. */
  examples: number;
  /** By task name, in config order. */
  tasks: Record<string, TaskReport>;
}

// Per-task accumulation; columns grow as batches arrive.
interface Acc {
  task: TaskConfig;
  examples: number;
  scores: number[];
  labels: number[];
  users: string[];
  requests: number[];
}

/** Whether an example source is async (a file stream) rather than an array or other iterable. */
export function isAsyncIterable<T>(x: Iterable<T> | AsyncIterable<T>): x is AsyncIterable<T> {
  return typeof (x as AsyncIterable<T>)[Symbol.asyncIterator] === 'function';
}

function labelError(path: string, problem: string): never {
  throw new DupnError('E_INPUT', `${path}: ${problem}`, { path });
}

// Checks one example's label for a task; returns the candidates (binary/rank) or the class (multiclass).
function checkedLabel(task: TaskConfig, label: unknown, path: string): LabelledCandidate[] | number {
  if (task.kind === 'multiclass') {
    if (typeof label !== 'number' || !Number.isInteger(label) || label < 0 || label >= task.classes) {
      labelError(path, `must be a class in [0, ${task.classes}), got ${describe(label)}`);
    }
    return label;
  }
  if (!Array.isArray(label)) labelError(path, `must be an array of labelled candidates, got ${describe(label)}`);
  label.forEach((c: unknown, j) => {
    const l = typeof c === 'object' && c !== null ? (c as { label?: unknown }).label : undefined;
    const binary = task.kind !== 'rank';
    const ok = binary ? l === 0 || l === 1 : typeof l === 'number' && Number.isInteger(l) && l >= GRADES.none && l <= GRADES.buy;
    if (!ok) labelError(`${path}[${j}].label`, `must be ${binary ? '0 or 1' : `a grade in 0..${GRADES.buy}`}, got ${describe(l)}`);
  });
  return label as LabelledCandidate[];
}

function checkScores(task: TaskConfig, scores: unknown, expected: number): Float64Array | Float32Array | number[] {
  const path = `scores.${task.name}`;
  if (scores === undefined) throw new DupnError('E_INPUT', `${path}: the scorer gave no scores for task "${task.name}"`, { path });
  if (!(scores instanceof Float64Array || scores instanceof Float32Array || Array.isArray(scores))) {
    throw new DupnError('E_INPUT', `${path}: must be a Float64Array, got ${describe(scores)}`, { path });
  }
  if (scores.length !== expected) throw new DupnError('E_INPUT', `${path}: expected ${expected} scores for this batch, got ${scores.length}`, { path });
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i];
    const raw = task.kind === 'rank' || task.kind === 'retrieval';
    const bad = typeof s !== 'number' || !Number.isFinite(s) || (!raw && (s < 0 || s > 1));
    if (bad) throw new DupnError('E_INPUT', `${path}[${i}]: must be a finite ${raw ? 'number' : 'probability in [0, 1]'}, got ${describe(s)}`, { path: `${path}[${i}]` });
  }
  return scores;
}

async function scoreBatch(scorer: Scorer, batch: TrainingExample[], firstIndex: number, accs: Acc[]): Promise<void> {
  const expected = new Map<string, number>();
  const labelled: { acc: Acc; example: number; label: LabelledCandidate[] | number }[] = [];
  batch.forEach((ex, b) => {
    const path = `examples[${firstIndex + b}]`;
    if (typeof ex !== 'object' || ex === null || typeof ex.labels !== 'object' || ex.labels === null) labelError(`${path}.labels`, 'must be an object of labels by task');
    for (const acc of accs) {
      const raw = ex.labels[acc.task.name];
      if (raw === undefined) continue;
      const label = checkedLabel(acc.task, raw, `${path}.labels.${acc.task.name}`);
      const count = typeof label === 'number' ? (acc.task.kind === 'multiclass' ? acc.task.classes : 1) : label.length;
      expected.set(acc.task.name, (expected.get(acc.task.name) ?? 0) + count);
      labelled.push({ acc, example: firstIndex + b, label });
    }
  });
  if (labelled.length === 0) return;
  const out = await scorer.scoreExamples(batch);
  const offsets = new Map<string, number>();
  const checked = new Map<string, ArrayLike<number>>();
  for (const acc of accs) {
    const n = expected.get(acc.task.name);
    if (n !== undefined) checked.set(acc.task.name, checkScores(acc.task, out[acc.task.name], n));
  }
  for (const { acc, example, label } of labelled) {
    const scores = checked.get(acc.task.name)!;
    let at = offsets.get(acc.task.name) ?? 0;
    const userId = String(batch[example - firstIndex].userId);
    acc.examples++;
    if (typeof label === 'number') {
      const classes = acc.task.kind === 'multiclass' ? acc.task.classes : 1;
      for (let c = 0; c < classes; c++) acc.scores.push(scores[at + c]);
      acc.labels.push(label);
      acc.users.push(userId);
      acc.requests.push(example);
      at += classes;
    } else {
      for (const c of label) {
        acc.scores.push(scores[at++]);
        acc.labels.push(c.label);
        acc.users.push(userId);
        acc.requests.push(example);
      }
    }
    offsets.set(acc.task.name, at);
  }
}

function report(acc: Acc, k: number): TaskReport {
  const t = acc.task;
  const scores = Float64Array.from(acc.scores);
  const labels = Float64Array.from(acc.labels);
  const base = { task: t.name, kind: t.kind, examples: acc.examples, candidates: acc.labels.length };
  if (t.kind === 'multiclass') {
    const predicted = argmaxRows(scores, t.classes);
    const pr = precisionRecall(predicted, labels, t.classes);
    return {
      ...base,
      positives: 0,
      auc: macroAuc(scores, labels, t.classes),
      logloss: multiclassLogLoss(scores, labels, t.classes),
      accuracy: accuracy(predicted, labels),
      perClass: { precision: Array.from(pr.precision), recall: Array.from(pr.recall), support: Array.from(pr.support) },
    };
  }
  const positives = acc.labels.reduce((s, l) => s + (l > 0 ? 1 : 0), 0);
  const probs = t.kind === 'rank' || t.kind === 'retrieval' ? scores.map((s) => 1 / (1 + Math.exp(-s))) : scores;
  const g = gaucDetail(scores, labels, acc.users);
  const out: TaskReport = {
    ...base,
    positives,
    auc: auc(scores, labels),
    gauc: g.gauc,
    gaucWeighted: gaucDetail(scores, labels, acc.users, { weighting: 'impressions' }).gauc,
    gaucUsers: g.groups,
    logloss: logLoss(probs, labels),
  };
  if (t.kind === 'rank') out.ndcg10 = ndcgDetail(scores, labels, acc.requests, k).ndcg;
  return out;
}

/**
 * Scores `examples` batch by batch with `scorer` and reports the metrics of every task of `config` that
 * has labels. Examples may come from any iterable or async iterable (a reader streaming a file). Labels
 * are checked (binary 0/1, grades 0..4, classes in range) and so are the scorer's outputs (count, finite,
 * probabilities in [0, 1]); a problem throws `DupnError('E_INPUT')` naming the example or task.
 */
export async function evaluate(
  scorer: Scorer,
  examples: Iterable<TrainingExample> | AsyncIterable<TrainingExample>,
  config: ResolvedConfig,
  options: EvaluateOptions = {},
): Promise<EvalReport> {
  const batchSize = options.batchSize ?? 256;
  if (!Number.isInteger(batchSize) || batchSize < 1) labelError('options.batchSize', `must be a positive integer, got ${describe(batchSize)}`);
  const k = options.k ?? 10;
  if (!Number.isInteger(k) || k < 1) labelError('options.k', `must be a positive integer, got ${describe(k)}`);
  const accs: Acc[] = config.tasks.map((task) => ({ task, examples: 0, scores: [], labels: [], users: [], requests: [] }));
  let count = 0;
  let batch: TrainingExample[] = [];
  const flush = async (): Promise<void> => {
    await scoreBatch(scorer, batch, count - batch.length, accs);
    batch = [];
  };
  const take = async (ex: TrainingExample): Promise<void> => {
    batch.push(ex);
    count++;
    if (batch.length === batchSize) await flush();
  };
  if (isAsyncIterable(examples)) for await (const ex of examples) await take(ex);
  else for (const ex of examples) await take(ex);
  if (batch.length > 0) await flush();
  const tasks: Record<string, TaskReport> = {};
  for (const acc of accs) if (acc.examples > 0) tasks[acc.task.name] = report(acc, k);
  return { examples: count, tasks };
}

// ---------------------------------------------------------------------------------------------------
// Scorers

/**
 * Scores with a {@link Model}: one `encode` per batch (users at their own `now`), then each binary/rank
 * task's candidates per example with `score` (decoupled: the user part is reused), and multiclass tasks
 * with `predictFromVectors` on the vectors already computed.
 */
export function modelScorer(model: Model): Scorer {
  return {
    async scoreExamples(examples: TrainingExample[]): Promise<Record<string, Float64Array>> {
      const dim = model.userDim;
      const vectors = await model.encode(examples.map((e) => e.user));
      const out: Record<string, Float64Array> = {};
      for (const task of model.config.tasks) {
        const rows = examples.map((e, i) => ({ label: e.labels[task.name], i })).filter((r) => r.label !== undefined);
        if (rows.length === 0) continue;
        if (task.kind === 'multiclass') {
          const picked = new Float32Array(rows.length * dim);
          rows.forEach((r, j) => picked.set(vectors.subarray(r.i * dim, (r.i + 1) * dim), j * dim));
          out[task.name] = Float64Array.from(await model.predictFromVectors(task.name, picked));
          continue;
        }
        const parts: Float32Array[] = [];
        for (const r of rows) {
          if (!Array.isArray(r.label)) continue; // evaluate() reports the malformed label
          const user = historyDense(task) ? { user: examples[r.i].user } : {};
          parts.push(await model.score(task.name, vectors.subarray(r.i * dim, (r.i + 1) * dim), r.label.map((c) => c.candidate), user));
        }
        const scores = new Float64Array(parts.reduce((s, p) => s + p.length, 0));
        let at = 0;
        for (const p of parts) {
          scores.set(p, at);
          at += p.length;
        }
        out[task.name] = scores;
      }
      return out;
    },
  };
}

/** Options of {@link popularityScorer}. */
export interface PopularityOptions {
  /**
   * Task kinds (binary tasks give probabilities, rank tasks logits). Without it, a task whose labels are
   * class numbers is multiclass, one with a candidate label above 1 is rank, any other binary.
   */
  config?: ResolvedConfig;
  /** Pseudo-count pulling a rarely seen key's positive rate towards the task's overall rate (default 5). */
  prior?: number;
}

/** The key a candidate is counted under: its categorical fields (not `dense`), in name order. */
function candidateKey(c: CandidateInput): string {
  return Object.keys(c)
    .filter((k) => k !== 'dense' && c[k] !== undefined && c[k] !== null)
    .sort()
    .map((k) => `${k}=${String(c[k])}`)
    .join('|');
}

/**
 * The non-personal baseline: for binary/rank tasks, how often each candidate (by its target fields) was
 * positive among its appearances in `train`, smoothed towards the task's overall positive rate; unseen
 * candidates get that rate. For multiclass tasks, the class prior (add-one smoothed). Every user gets the
 * same scores, so whatever a model adds over it is personalisation.
 */
export function popularityScorer(train: Iterable<TrainingExample>, options: PopularityOptions = {}): Scorer {
  const prior = options.prior ?? 5;
  if (typeof prior !== 'number' || !Number.isFinite(prior) || prior <= 0) labelError('options.prior', `must be a positive number, got ${describe(prior)}`);
  const counts = new Map<string, Map<string, { seen: number; positive: number }>>();
  const totals = new Map<string, { seen: number; positive: number }>();
  const classCounts = new Map<string, number[]>();
  const rankLike = new Set<string>();
  for (const ex of train) {
    for (const [task, label] of Object.entries(ex.labels)) {
      if (typeof label === 'number') {
        const c = classCounts.get(task) ?? [];
        while (c.length <= label) c.push(0);
        c[label]++;
        classCounts.set(task, c);
        continue;
      }
      let byKey = counts.get(task);
      if (!byKey) counts.set(task, (byKey = new Map()));
      const total = totals.get(task) ?? { seen: 0, positive: 0 };
      for (const c of label) {
        const key = candidateKey(c.candidate);
        const s = byKey.get(key) ?? { seen: 0, positive: 0 };
        s.seen++;
        total.seen++;
        if (c.label > 0) {
          s.positive++;
          total.positive++;
        }
        if (c.label > 1) rankLike.add(task);
        byKey.set(key, s);
      }
      totals.set(task, total);
    }
  }
  const kindOf = (task: string): TaskConfig['kind'] | undefined =>
    options.config?.tasks.find((t) => t.name === task)?.kind ?? (classCounts.has(task) ? 'multiclass' : counts.has(task) ? (rankLike.has(task) ? 'rank' : 'binary') : undefined);
  const classesOf = (task: string): number => {
    const t = options.config?.tasks.find((x) => x.name === task);
    return t?.kind === 'multiclass' ? t.classes : (classCounts.get(task)?.length ?? 0);
  };

  return {
    async scoreExamples(examples: TrainingExample[]): Promise<Record<string, Float64Array>> {
      const columns = new Map<string, number[]>();
      for (const ex of examples) {
        for (const [task, label] of Object.entries(ex.labels)) {
          const kind = kindOf(task);
          if (kind === undefined) continue;
          let col = columns.get(task);
          if (!col) columns.set(task, (col = []));
          if (kind === 'multiclass') {
            const classes = classesOf(task);
            const seen = classCounts.get(task) ?? [];
            const n = seen.reduce((s, x) => s + x, 0);
            for (let c = 0; c < classes; c++) col.push(((seen[c] ?? 0) + 1) / (n + classes));
            continue;
          }
          if (!Array.isArray(label)) continue;
          const total = totals.get(task) ?? { seen: 0, positive: 0 };
          const base = (total.positive + 1) / (total.seen + 2);
          const byKey = counts.get(task);
          for (const c of label) {
            const s = byKey?.get(candidateKey(c.candidate));
            const p = s ? (s.positive + prior * base) / (s.seen + prior) : base;
            col.push(kind === 'rank' || kind === 'retrieval' ? Math.log(p / (1 - p)) : p);
          }
        }
      }
      return Object.fromEntries([...columns].map(([task, col]) => [task, Float64Array.from(col)]));
    },
  };
}

/**
 * The synthetic generator's ground truth as a scorer: for each example (matched by user id and time) the
 * oracle of {@link SyntheticRecord}. The examples must be the records' own (same labels, same order of
 * candidates); an unknown example throws `DupnError('E_INPUT')`.
 */
export function oracleScorer(records: Iterable<SyntheticRecord>): Scorer {
  const byKey = new Map<string, Record<string, Float64Array>>();
  for (const r of records) byKey.set(exampleKey(r.example), r.oracle);
  return {
    async scoreExamples(examples: TrainingExample[]): Promise<Record<string, Float64Array>> {
      const parts = new Map<string, Float64Array[]>();
      examples.forEach((ex, i) => {
        const oracle = byKey.get(exampleKey(ex));
        if (!oracle) throw new DupnError('E_INPUT', `examples[${i}]: no oracle for user ${describe(ex.userId)} at ${ex.time}`, { path: `examples[${i}]` });
        for (const task of Object.keys(ex.labels)) {
          const o = oracle[task];
          if (!o) continue;
          const list = parts.get(task) ?? [];
          list.push(o);
          parts.set(task, list);
        }
      });
      const out: Record<string, Float64Array> = {};
      for (const [task, list] of parts) {
        const all = new Float64Array(list.reduce((s, p) => s + p.length, 0));
        let at = 0;
        for (const p of list) {
          all.set(p, at);
          at += p.length;
        }
        out[task] = all;
      }
      return out;
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Text table

const COLUMNS: { title: string; value: (r: TaskReport) => number | undefined; digits: number }[] = [
  { title: 'examples', value: (r) => r.examples, digits: 0 },
  { title: 'candidates', value: (r) => r.candidates, digits: 0 },
  { title: 'AUC', value: (r) => r.auc, digits: 4 },
  { title: 'GAUC', value: (r) => r.gauc, digits: 4 },
  { title: 'GAUC(w)', value: (r) => r.gaucWeighted, digits: 4 },
  { title: 'logloss', value: (r) => r.logloss, digits: 4 },
  { title: 'NDCG@10', value: (r) => r.ndcg10, digits: 4 },
  { title: 'accuracy', value: (r) => r.accuracy, digits: 4 },
];

function cell(v: number | undefined, digits: number): string {
  if (v === undefined) return '-';
  if (Number.isNaN(v)) return 'n/a';
  return v.toFixed(digits);
}

/**
 * A plain-text table of `report`: one row per task, one column per metric ("-": does not apply to the
 * kind; "n/a": undefined on these data). Each baseline adds a row per task under the report's row, named
 * by its key, so a model reads directly against e.g. `{ popularity, oracle }`.
 */
export function formatReport(report: EvalReport, baselines: Record<string, EvalReport> = {}, name = 'model'): string {
  const header = ['task', 'kind', 'scorer', ...COLUMNS.map((c) => c.title)];
  const rows: string[][] = [];
  for (const [task, r] of Object.entries(report.tasks)) {
    const row = (label: string, x: TaskReport, first: boolean): string[] => [first ? task : '', first ? r.kind : '', label, ...COLUMNS.map((c) => cell(c.value(x), c.digits))];
    rows.push(row(name, r, true));
    for (const [label, b] of Object.entries(baselines)) {
      const x = b.tasks[task];
      if (x) rows.push(row(label, x, false));
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  // Per-class precision and recall of multiclass tasks (the model's), one line each under the table.
  const classes: string[] = [];
  for (const [task, r] of Object.entries(report.tasks)) {
    if (!r.perClass) continue;
    const f = (xs: ArrayLike<number>): string => Array.from(xs, (x) => (Number.isNaN(x) ? 'n/a' : x.toFixed(2))).join(' ');
    classes.push(`${task} per class (0..${r.perClass.precision.length - 1}): precision ${f(r.perClass.precision)} · recall ${f(r.perClass.recall)}`);
  }
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line), ...classes].join('\n') + '\n';
}
