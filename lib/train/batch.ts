/**
 * Training examples → one native training batch: the users packed like for `encode`, and per head the
 * labelled candidates (sorted by their user, as the addon requires) or the class labels. Every label is
 * checked and a bad one is reported with its path (`examples[3].labels.ctr[2].label`).
 */
import { ResolvedConfig, TaskConfig } from '../config';
import { describe, inputError } from '../errors';
import { CandidateInput, packCandidates, packUsers } from '../features';
import { NativeHeadLabels, NativeTrainBatch } from '../native';
import { LabelledCandidate, TrainingExample } from '../data/example';

/** Per head: the task weight λ (0: not trained) and, for rank heads, whether to add the pairwise loss. */
export interface HeadPlan {
  lambda: number;
  pairwise: boolean;
}

function weightOf(v: unknown, path: string): number {
  if (v === undefined) return 1;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) inputError(path, `must be a finite number ≥ 0, got ${describe(v)}`);
  return v;
}

function candidateLabels(task: TaskConfig, examples: TrainingExample[], plan: HeadPlan, config: ResolvedConfig): NativeHeadLabels {
  const cands: CandidateInput[] = [];
  const owner: number[] = [];
  const label: number[] = [];
  const weight: number[] = [];
  const index: number[] = []; // position of each candidate in its example's label list (for messages)
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
        cands.push(lc.candidate);
        owner.push(b);
        index.push(i);
        label.push(y);
        weight.push(w * weightOf(lc.weight, `${at}.weight`));
      });
    });
  }
  let cols;
  try {
    cols = packCandidates(config, task, cands);
  } catch (e) {
    // packCandidates names `candidates[i]`; say which example and label it was.
    const m = /^candidates\[(\d+)\](.*)$/.exec((e as { path?: string }).path ?? '');
    if (m) {
      const i = Number(m[1]);
      inputError(`examples[${owner[i]}].labels.${task.name}[${index[i]}].candidate${m[2]}`, (e as Error).message.replace(/^[^:]*: /, ''));
    }
    throw e;
  }
  return {
    lambda: plan.lambda,
    pairwise: plan.pairwise,
    items: cols.items,
    dense: cols.dense,
    owner: Int32Array.from(owner),
    label: Float32Array.from(label),
    weight: Float32Array.from(weight),
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
export function packTrainBatch(config: ResolvedConfig, examples: TrainingExample[], plans: HeadPlan[]): NativeTrainBatch {
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
    task.kind === 'multiclass' ? classLabels(task, examples, plans[h]) : candidateLabels(task, examples, plans[h], config),
  );
  return { users, heads };
}
