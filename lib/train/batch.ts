/**
 * Training examples → one native training batch: the users packed like for `encode`, and per head the
 * labelled candidates (sorted by their user, as the addon requires) or the class labels. Every label is
 * checked and a bad one is reported with its path (`examples[3].labels.ctr[2].label`).
 */
import { ResolvedConfig, RetrievalTask, TaskConfig, denseCount } from '../config';
import { describe, inputError } from '../errors';
import { CandidateInput, historyFeatures, historyField, historyIndex, packCandidates, packUsers } from '../features';
import { hashKey } from '../hashing';
import { PRIOR_FLOOR } from '../tensors';
import { NativeHeadLabels, NativeTrainBatch } from '../native';
import { LabelledCandidate, TrainingExample } from '../data/example';

/**
 * Per head: the task weight λ (0: not trained), for rank heads whether to add the pairwise loss, and for
 * retrieval heads whether each user's softmax also takes the other examples' positives as negatives
 * (in-batch negatives, with their log Q; default true).
 */
export interface HeadPlan {
  lambda: number;
  pairwise: boolean;
  inBatch?: boolean;
}

function weightOf(v: unknown, path: string): number {
  if (v === undefined) return 1;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) inputError(path, `must be a finite number ≥ 0, got ${describe(v)}`);
  return v;
}

function candidateLabels(task: TaskConfig, examples: TrainingExample[], plan: HeadPlan, config: ResolvedConfig, prior?: Float32Array): NativeHeadLabels {
  const cands: CandidateInput[] = [];
  const owner: number[] = [];
  const label: number[] = [];
  const weight: number[] = [];
  const offset: number[] = [];
  const index: number[] = []; // position of each candidate in its example's label list (for messages)
  const source: number[] = []; // the example whose label list holds it (an in-batch negative's own example)
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
        // NaN marks "not given" until the history features are filled (offset 0, prior from the table).
        const q = lc.logQ ?? Number.NaN;
        if (lc.logQ !== undefined && (typeof q !== 'number' || !Number.isFinite(q))) inputError(`${at}.logQ`, `must be a finite number, got ${describe(q)}`);
        cands.push(lc.candidate);
        owner.push(b);
        index.push(i);
        source.push(b);
        label.push(y);
        weight.push(w * weightOf(lc.weight, `${at}.weight`));
        offset.push(q);
      });
    });
    if (task.kind === 'retrieval' && plan.inBatch !== false) addInBatch(task, examples, cands, owner, index, source, label, weight, offset);
  }
  let cols;
  try {
    cols = packCandidates(config, task, cands);
  } catch (e) {
    // packCandidates names `candidates[i]`; say which example and label it was.
    const m = /^candidates\[(\d+)\](.*)$/.exec((e as { path?: string }).path ?? '');
    if (m) {
      const i = Number(m[1]);
      inputError(`examples[${source[i]}].labels.${task.name}[${index[i]}].candidate${m[2]}`, (e as Error).message.replace(/^[^:]*: /, ''));
    }
    throw e;
  }
  if (task.kind === 'retrieval' && denseCount(task) > 0) fillHistory(config, task, examples, cands, owner, offset, cols, prior);
  for (let c = 0; c < offset.length; c++) if (Number.isNaN(offset[c])) offset[c] = 0;
  return {
    lambda: plan.lambda,
    pairwise: plan.pairwise,
    items: cols.items,
    dense: cols.dense,
    owner: Int32Array.from(owner),
    label: Float32Array.from(label),
    weight: Float32Array.from(weight),
    ...(task.kind === 'retrieval' ? { offset: Float32Array.from(offset) } : {}),
  };
}

/**
 * In-batch negatives: every example's list also gets the other users' positives (label 0, their own log Q),
 * except those equal to one of its own candidates. Another example of the same user is no draw from the
 * catalogue's distribution (its positive is often in this one's history), so it gives none. Keeps the lists
 * grouped by owner.
 */
function addInBatch(task: RetrievalTask, examples: TrainingExample[], cands: CandidateInput[], owner: number[], index: number[], source: number[],
  label: number[], weight: number[], offset: number[]): void {
  const field = historyField(task);
  const keyOf = (c: CandidateInput, i: number): string => hashKey(c?.[field], `candidates[${i}].${field}`);
  const positives: { cand: CandidateInput; key: string; logQ: number; owner: number; index: number }[] = [];
  const own = new Map<number, Set<string>>();
  for (let i = 0; i < cands.length; i++) {
    const key = keyOf(cands[i], i);
    if (!own.has(owner[i])) own.set(owner[i], new Set());
    own.get(owner[i])!.add(key);
    if (label[i] > 0) positives.push({ cand: cands[i], key, logQ: offset[i], owner: owner[i], index: index[i] });
  }
  if (positives.length < 2) return;
  const n = cands.length;
  const lists: { cands: CandidateInput[]; owner: number[]; index: number[]; source: number[]; label: number[]; weight: number[]; offset: number[] } = {
    cands: [], owner: [], index: [], source: [], label: [], weight: [], offset: [],
  };
  let i = 0;
  while (i < n) {
    const b = owner[i];
    let w = 1;
    let j = i;
    for (; j < n && owner[j] === b; j++) {
      lists.cands.push(cands[j]); lists.owner.push(b); lists.index.push(index[j]); lists.source.push(source[j]);
      lists.label.push(label[j]); lists.weight.push(weight[j]); lists.offset.push(offset[j]);
      if (label[j] > 0) w = weight[j];
    }
    const mine = own.get(b)!;
    for (const p of positives) {
      if (p.owner === b || examples[p.owner].userId === examples[b].userId || mine.has(p.key)) continue;
      lists.cands.push(p.cand); lists.owner.push(b); lists.index.push(p.index); lists.source.push(p.owner);
      lists.label.push(0); lists.weight.push(w); lists.offset.push(p.logQ);
    }
    i = j;
  }
  const replace = <T>(dst: T[], src: T[]): void => {
    dst.length = 0;
    for (const v of src) dst.push(v);
  };
  replace(cands, lists.cands); replace(owner, lists.owner); replace(index, lists.index); replace(source, lists.source);
  replace(label, lists.label); replace(weight, lists.weight); replace(offset, lists.offset);
}

/**
 * A retrieval head's history features of each candidate against its owner's behaviours, and its log prior:
 * the candidate's log Q when the example gives one (which then also becomes the prior table's value for its
 * bucket: the table ends training holding each item's latest estimate), else the table's value.
 */
function fillHistory(config: ResolvedConfig, task: RetrievalTask, examples: TrainingExample[], cands: CandidateInput[], owner: number[],
  offset: number[], cols: { items: Int32Array; dense: Float32Array }, prior: Float32Array | undefined): void {
  const field = historyField(task);
  const D = denseCount(task);
  const F = config.itemFields.length;
  const fi = config.itemFields.findIndex((f) => f.name === field);
  const dense = cols.dense;
  for (let c = 0; c < cands.length; c++) {
    const bucket = cols.items[c * F + fi];
    if (!Number.isNaN(offset[c])) {
      dense[c * D + D - 1] = offset[c];
      if (prior) prior[bucket] = offset[c];
    } else {
      dense[c * D + D - 1] = prior ? prior[bucket] : PRIOR_FLOOR;
    }
  }
  let b = -1;
  let history = new Map<string, { back: number; count: number }>();
  for (let c = 0; c < cands.length; c++) {
    if (owner[c] !== b) {
      b = owner[c];
      history = historyIndex(examples[b].user.behaviors, field, config.maxSeqLen);
    }
    historyFeatures(history.get(hashKey(cands[c]?.[field], `candidates[${c}].${field}`)), dense, c * D);
  }
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
export function packTrainBatch(config: ResolvedConfig, examples: TrainingExample[], plans: HeadPlan[], priors?: (task: string) => Float32Array | undefined): NativeTrainBatch {
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
  const heads = config.tasks.map((task, h) =>
    task.kind === 'multiclass' ? classLabels(task, examples, plans[h]) : candidateLabels(task, examples, plans[h], config, priors?.(task.name)),
  );
  return { users, heads };
}
