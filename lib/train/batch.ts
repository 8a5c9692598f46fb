/**
 * Training examples → one native training batch: the users packed like for `encode`, and per head the
 * labelled candidates (sorted by their user, as the addon requires) or the class labels. Every label is
 * checked and a bad one is reported with its path (`examples[3].labels.ctr[2].label`).
 */
import { HistoryTask, ResolvedConfig, RetrievalTask, TaskConfig, historyDense } from '../network/config';
import { describe, inputError } from '../errors';
import { CandidateInput, HistoryIndex, RetrievalInputs, historyIndex, packCandidates, packUsers } from '../model/features';
import { columnsFor } from '../model/columns';
import { hashKey } from '../model/hashing';
import { PRIOR_FLOOR, historyField } from '../network/tensors';
import { NativeHeadLabels, NativeTrainBatch } from '../native/addon';
import { LabelledCandidate, TrainingExample } from '../data/training-example';
import { SuccessorTable, recentItems, successorFeatures } from '../model/successors';
import { seedFor } from '../random';

/**
 * Per head: the task weight λ (0: not trained), for rank heads whether to add the pairwise loss, and for
 * retrieval heads whether each user's softmax also takes the other examples' positives as negatives
 * (in-batch negatives, with their log Q; default true).
 */
export interface HeadPlan {
  lambda: number;
  pairwise: boolean;
  inBatch?: boolean;
  /** Share of examples whose successor features are zeroed (TrainOptions.successorDropout; default 0). */
  successorDropout?: number;
}

/** A number in [0, 1) fixed by the example (a hash of its user and time): which examples a dropout share takes. */
function exampleDraw(ex: TrainingExample): number {
  return seedFor(0, `successor-dropout|${String(ex.userId)}|${String(ex.time)}`) / 2 ** 32;
}

function weightOf(v: unknown, path: string): number {
  if (v === undefined) return 1;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) inputError(path, `must be a finite number ≥ 0, got ${describe(v)}`);
  return v;
}

/** One labelled candidate of a head, where it came from (for messages) and, for retrieval, its log Q. */
interface Labelled {
  cand: CandidateInput;
  owner: number;
  /** The example whose label list holds it (an in-batch negative's own example) and its position there. */
  source: number;
  index: number;
  label: number;
  weight: number;
  /** undefined: not given (offset 0, prior from the table). */
  logQ?: number;
}

/** Per history field, each example's {@link HistoryIndex}: computed once per batch, whichever heads read it. */
type BatchHistories = Map<string, Map<number, HistoryIndex>>;

function candidateLabels(
  task: TaskConfig,
  examples: TrainingExample[],
  plan: HeadPlan,
  config: ResolvedConfig,
  histories: BatchHistories,
  prior?: Float32Array,
  successors?: SuccessorTable,
): NativeHeadLabels {
  let rows: Labelled[] = [];
  if (plan.lambda > 0) {
    examples.forEach((ex, b) => {
      const list = ex.labels?.[task.name];
      if (list === undefined) return;
      const path = `examples[${b}].labels.${task.name}`;
      if (!Array.isArray(list)) inputError(path, `must be an array of labelled candidates for ${task.kind} task "${task.name}", got ${describe(list)}`);
      const w = weightOf(ex.weight, `examples[${b}].weight`);
      list.forEach((lc: LabelledCandidate, i) => {
        const at = `${path}[${i}]`;
        if (typeof lc !== 'object' || lc === null) inputError(at, `must be {candidate, label}, got ${describe(lc)}`);
        const y = lc.label;
        if (task.kind === 'rank') {
          if (typeof y !== 'number' || !Number.isInteger(y) || y < 0 || y > 4) inputError(`${at}.label`, `must be a grade 0..4, got ${describe(y)}`);
        } else if (typeof y !== 'number' || !(y >= 0 && y <= 1)) {
          inputError(`${at}.label`, `must be a number in [0, 1], got ${describe(y)}`);
        }
        const q = lc.logQ;
        if (q !== undefined && (typeof q !== 'number' || !Number.isFinite(q))) inputError(`${at}.logQ`, `must be a finite number, got ${describe(q)}`);
        rows.push({ cand: lc.candidate, owner: b, source: b, index: i, label: y, weight: w * weightOf(lc.weight, `${at}.weight`), logQ: q });
      });
    });
    if (task.kind === 'retrieval' && plan.inBatch !== false) rows = withInBatch(task, examples, rows);
  }
  let cols;
  try {
    cols = packCandidates(config, task, rows.map((r) => r.cand), historyDense(task) ? trainingInputs(config, task, examples, rows, histories, prior, successors, plan.successorDropout ?? 0) : undefined);
  } catch (e) {
    // packCandidates names `candidates[i]`; say which example and label it was.
    const m = /^candidates\[(\d+)\](.*)$/.exec((e as { path?: string }).path ?? '');
    if (m) {
      const r = rows[Number(m[1])];
      inputError(`examples[${r.source}].labels.${task.name}[${r.index}].candidate${m[2]}`, (e as Error).message.replace(/^[^:]*: /, ''));
    }
    throw e;
  }
  return {
    lambda: plan.lambda,
    pairwise: plan.pairwise,
    items: cols.items,
    dense: columnsFor(cols, task.name).dense,
    owner: Int32Array.from(rows, (r) => r.owner),
    label: Float32Array.from(rows, (r) => r.label),
    weight: Float32Array.from(rows, (r) => r.weight),
    ...(task.kind === 'retrieval' ? { offset: Float32Array.from(rows, (r) => r.logQ ?? 0) } : {}),
  };
}

/**
 * In-batch negatives: every example's list also gets the other users' positives (label 0, the weight of
 * its own positive, their own log Q), except those equal to one of its own candidates. Another example of
 * the same user is no draw from the catalogue's distribution (its positive is often in this one's history),
 * so it gives none. Keeps the lists grouped by owner.
 */
function withInBatch(task: RetrievalTask, examples: TrainingExample[], rows: Labelled[]): Labelled[] {
  const field = historyField(task);
  const keys = rows.map((r, i) => hashKey(r.cand?.[field], `candidates[${i}].${field}`));
  const positives = rows.map((r, i) => ({ r, key: keys[i] })).filter((p) => p.r.label > 0);
  if (positives.length < 2) return rows;
  const out: Labelled[] = [];
  for (let i = 0; i < rows.length; ) {
    const b = rows[i].owner;
    const mine = new Set<string>();
    let w = 1;
    for (; i < rows.length && rows[i].owner === b; i++) {
      out.push(rows[i]);
      mine.add(keys[i]);
      if (rows[i].label > 0) w = rows[i].weight;
    }
    for (const { r, key } of positives) {
      if (r.owner === b || examples[r.owner].userId === examples[b].userId || mine.has(key)) continue;
      out.push({ ...r, owner: b, label: 0, weight: w });
    }
  }
  return out;
}

/**
 * A history head's dense inputs in training: each candidate against its owner's history (shared with the other
 * heads on the same field through `batchHistories`) and, for a retrieval head, as its log
 * prior the log Q the example gives — which also becomes the prior table's value for its bucket, so the
 * table ends training holding each item's latest estimate — else the table's value. Successor features
 * come from the table with an example's own positive less its own occurrence (the table counted the
 * training log, this very transition included: left in, the feature would hold the label).
 */
function trainingInputs(
  config: ResolvedConfig,
  task: HistoryTask,
  examples: TrainingExample[],
  rows: Labelled[],
  batchHistories: BatchHistories,
  table: Float32Array | undefined,
  successors: SuccessorTable | undefined,
  dropout: number,
): RetrievalInputs {
  const field = historyField(task);
  let histories = batchHistories.get(field);
  if (histories === undefined) batchHistories.set(field, (histories = new Map()));
  const recents = new Map<number, { own: number[]; after: Map<number, Float64Array> }>();
  return {
    successors: (c, bucket, out, at) => {
      if (successors === undefined) return;
      const r = rows[c];
      let u = recents.get(r.owner);
      if (u === undefined) {
        const dropped = dropout > 0 && exampleDraw(examples[r.owner]) < dropout;
        const { recent, own } = dropped ? { recent: [], own: [] } : recentItems(config, task, examples[r.owner].user.behaviors);
        recents.set(r.owner, (u = { own, after: successors.after(recent) }));
      }
      successorFeatures(u.after.get(bucket), out, at, r.source === r.owner && r.label > 0 ? u.own : undefined);
    },
    history: (c) => {
      const b = rows[c].owner;
      let h = histories.get(b);
      if (h === undefined) histories.set(b, (h = historyIndex(examples[b].user.behaviors, field, config.maxSeqLen)));
      return h;
    },
    prior: (c, bucket) => {
      const q = rows[c].logQ;
      if (q === undefined) return table ? table[bucket] : PRIOR_FLOOR;
      if (table) table[bucket] = q;
      return q;
    },
  };
}

function classLabels(task: TaskConfig & { kind: 'multiclass' }, examples: TrainingExample[], plan: HeadPlan): NativeHeadLabels {
  const B = examples.length;
  const classes = new Int32Array(B).fill(-1);
  const classWeight = new Float32Array(B);
  if (plan.lambda > 0) {
    examples.forEach((ex, b) => {
      const y = ex.labels?.[task.name];
      if (y === undefined) return;
      const path = `examples[${b}].labels.${task.name}`;
      if (typeof y !== 'number' || !Number.isInteger(y) || y < 0 || y >= task.classes) {
        inputError(path, `must be a class index 0..${task.classes - 1}, got ${describe(y)}`);
      }
      classes[b] = y;
      classWeight[b] = weightOf(ex.weight, `examples[${b}].weight`);
    });
  }
  return { lambda: plan.lambda, pairwise: false, classes, classWeight };
}

/**
 * Packs `examples` for the native trainer. Labels of tasks the model does not have are ignored (a data
 * set may carry more tasks than a model trains); heads with λ = 0 get no labels.
 */
export function packTrainBatch(
  config: ResolvedConfig,
  examples: TrainingExample[],
  plans: HeadPlan[],
  priors?: (task: string) => Float32Array | undefined,
  successors?: (task: string) => SuccessorTable | undefined,
): NativeTrainBatch {
  if (!Array.isArray(examples)) inputError('examples', `must be an array, got ${describe(examples)}`);
  examples.forEach((ex, b) => {
    if (typeof ex !== 'object' || ex === null) inputError(`examples[${b}]`, `must be a training example, got ${describe(ex)}`);
    if (typeof ex.labels !== 'object' || ex.labels === null) inputError(`examples[${b}].labels`, `must be an object, got ${describe(ex.labels)}`);
  });
  let users;
  try {
    users = packUsers(config, examples.map((e) => e.user));
  } catch (e) {
    const path = (e as { path?: string }).path ?? '';
    const m = /^users\[(\d+)\](.*)$/.exec(path);
    if (m) inputError(`examples[${m[1]}].user${m[2]}`, (e as Error).message.replace(/^[^:]*: /, ''));
    throw e;
  }
  const histories: BatchHistories = new Map();
  const heads = config.tasks.map((task, h) =>
    task.kind === 'multiclass' ? classLabels(task, examples, plans[h]) : candidateLabels(task, examples, plans[h], config, histories, priors?.(task.name), successors?.(task.name)),
  );
  return { users, heads };
}
