/**
 * Held-out calibration of a retrieval head's history, successor and prior weights. Training fits them on examples
 * the towers have already learned (after an epoch the item embeddings hold the training log's own
 * transitions and repeats), so the weights come out trusting the features less than unseen users need: on
 * Amazon Beauty the successor weights ×8 raised full-catalogue HR@20 on the test users from 0.082 to 0.104,
 * and the validation users showed the same. This searches one scale for each group of weights (history:
 * recency and count; successors; the log prior) on held-out cases, by the score early stopping uses, and keeps a scale only
 * where it scores better than the weights kept so far by more than {@link CALIBRATION_FLOOR} standard errors of
 * the paired difference (0 turns a group off). The floor matters on small logs: Taobao's 86 selection cases
 * chose scales by gains the cases could not tell from noise.
 */
import { HISTORY_FEATURES, RetrievalTask, denseCount } from '../network/config';
import { TrainingExample } from '../data/training-example';
import { Model } from '../model/model';
import { historyWeightName } from '../network/tensors';
import { SequenceStats } from './baselines';
import { NextItemMetrics, evaluateNextItem, meanAndError } from './next-item';

/** What {@link calibrateHistoryWeights} chose. */
export interface Calibration {
  /** The scale of the history weights (the recency one-hot and the count). */
  history: number;
  /** The scale of the successor weights (1 when the head has none). */
  successors: number;
  /**
   * The scale of the log-prior weight. Its feature is not scaled up like the others (it moves slowly from its
   * start of 0.5), and what it should be depends on how popular the items users go to next are, which the
   * selection cases show directly: on Amazon Beauty's validation users ×1.5–2 scored 0.006 more sampled HR@10.
   */
  prior: number;
  /** The score at scale 1 and at the chosen scales. */
  before: number;
  after: number;
  cases: number;
}

/** Scales tried for the history and successor groups, beside 1 (0: the group off). */
export const CALIBRATION_SCALES = [0, 0.5, 2, 4, 8, 16];

/** Scales tried for the prior weight, beside 1: it starts near its useful range, so the steps are finer. */
export const PRIOR_SCALES = [0, 0.5, 1.5, 2, 3];

/** A scale is kept only when its gain over the weights kept so far exceeds this many paired standard errors. */
export const CALIBRATION_FLOOR = 2;

/**
 * The model with `task`'s history weights scaled by what scores best on `cases` (held out from training:
 * the epoch-selection cases), one group after the other (successors first, then history, then the prior), and what was
 * chosen. `model` itself is not changed; the returned model is new unless nothing beat scale 1 (then it is
 * `model`).
 */
export async function calibrateHistoryWeights(
  model: Model,
  task: RetrievalTask,
  cases: TrainingExample[],
  stats: SequenceStats,
  score: (m: NextItemMetrics) => number,
): Promise<{ model: Model; calibration: Calibration }> {
  const D = denseCount(task);
  const name = historyWeightName(task.name);
  const w0 = model.weights.get(name)!;
  // Each group: the columns [from, to) of the weight vector it scales, and the scales it tries.
  const groups: { group: keyof Pick<Calibration, 'history' | 'successors' | 'prior'>; from: number; to: number; scales: number[] }[] = [];
  if (D > HISTORY_FEATURES) groups.push({ group: 'successors', from: HISTORY_FEATURES - 1, to: D - 1, scales: CALIBRATION_SCALES });
  groups.push({ group: 'history', from: 0, to: HISTORY_FEATURES - 1, scales: CALIBRATION_SCALES });
  groups.push({ group: 'prior', from: D - 1, to: D, scales: PRIOR_SCALES });
  const chosen = { history: 1, successors: 1, prior: 1 };
  const scaled = (s: typeof chosen): Model => {
    const w = w0.slice();
    for (const { group, from, to } of groups) for (let k = from; k < to; k++) w[k] *= s[group];
    const tensors = new Map(model.weights);
    tensors.set(name, w);
    return Model.fromTensors(model.config, tensors, { threads: model.threads });
  };
  // The per-case selection scores of a model (undefined when the next-item table ranks none of the cases).
  const evaluate = async (m: Model): Promise<Float64Array | undefined> => {
    const r = await evaluateNextItem(cases, stats, m, { baselines: false, task: stats.itemTask(), perCase: true });
    const values = r.open.perCase?.[`model:${task.name}`];
    if (values === undefined || r.open.cases === 0) return undefined;
    return Float64Array.from(values.hr, (_, i) =>
      score({ hr: values.hr[i], mrr: values.mrr[i], ndcg: values.ndcg[i], sampledHr: values.sampledHr[i], sampledNdcg: values.sampledNdcg[i] }),
    );
  };
  let best = await evaluate(model);
  const before = best === undefined ? NaN : mean(best);
  // Nothing to choose on (no case, or a head the next-item table does not rank): leave the weights as trained.
  if (best === undefined) return { model, calibration: { ...chosen, before, after: before, cases: cases.length } };
  for (const { group, scales } of groups) {
    for (const s of scales) {
      const trial = { ...chosen, [group]: s };
      const m = scaled(trial);
      try {
        const x = await evaluate(m);
        if (x !== undefined && clearlyBetter(x, best)) {
          best = x;
          chosen[group] = s;
        }
      } finally {
        m.dispose();
      }
    }
  }
  const calibration = { ...chosen, before, after: mean(best), cases: cases.length };
  if (groups.every(({ group }) => chosen[group] === 1)) return { model, calibration };
  return { model: scaled(chosen), calibration };
}

function mean(xs: Float64Array): number {
  return meanAndError(xs)[0];
}

/** Whether `a` beats `b` case by case by more than CALIBRATION_FLOOR standard errors of the mean difference. */
export function clearlyBetter(a: Float64Array, b: Float64Array): boolean {
  if (a.length !== b.length || a.length < 2) return false;
  const [d, se] = meanAndError(a.map((x, i) => x - b[i]));
  return d > 0 && d > CALIBRATION_FLOOR * se;
}
