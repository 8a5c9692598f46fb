/**
 * Offline metrics for the DUPN tasks: AUC and GAUC (CTR, SPP, L2R), log-loss, NDCG@k (L2R), accuracy and
 * per-class precision/recall (PPP). Pure functions over plain arrays or TypedArrays; nothing is mutated.
 *
 * A metric that is undefined on its input (AUC without both classes, precision of a never-predicted class)
 * is `NaN`, never a made-up 0.5 or 0, so a report shows "undefined" instead of a plausible-looking number.
 */
import { DupnError, describe } from '../errors';

/** Numbers as the metrics take them: `number[]`, `Float64Array`, `Float32Array`, … */
export type Numbers = ArrayLike<number>;

/** A group key (a user id, a request index). */
export type GroupKey = string | number;

/** Probabilities are clipped to [EPS, 1 − EPS] so a confident miss costs a large but finite loss. */
export const LOGLOSS_EPS = 1e-7;

function sameLength(a: ArrayLike<unknown>, b: ArrayLike<unknown>, names: string): void {
  if (a.length !== b.length) {
    throw new DupnError('E_INPUT', `${names}: lengths differ (${a.length} vs ${b.length})`, { path: names.split(',')[1]?.trim() ?? names });
  }
}

function clip(p: number): number {
  return p < LOGLOSS_EPS ? LOGLOSS_EPS : p > 1 - LOGLOSS_EPS ? 1 - LOGLOSS_EPS : p;
}

/** Indices of `values` sorted ascending (a fresh Int32Array; `values` is untouched). */
function argsortAscending(values: Numbers, idx: ArrayLike<number> = identity(values.length)): Int32Array {
  const out = Int32Array.from(idx);
  out.sort((a, b) => values[a] - values[b]);
  return out;
}

function identity(n: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  return out;
}

function checkFinite(values: Numbers, name: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) throw new DupnError('E_INPUT', `${name}[${i}]: must be a finite number, got ${describe(values[i])}`, { path: `${name}[${i}]` });
  }
}

// AUC of the rows `idx` (all rows when omitted): the Mann–Whitney statistic with tied scores sharing their
// average rank, which equals the probability that a random positive outscores a random negative (ties ½).
function aucOf(scores: Numbers, labels: Numbers, idx?: ArrayLike<number>): { auc: number; positives: number; negatives: number } {
  const order = argsortAscending(scores, idx);
  const n = order.length;
  let positives = 0;
  let rankSum = 0;
  for (let i = 0; i < n; ) {
    let j = i + 1;
    while (j < n && scores[order[j]] === scores[order[i]]) j++;
    const avgRank = (i + 1 + j) / 2; // ranks i+1..j share their mean
    for (let k = i; k < j; k++) {
      if (labels[order[k]] > 0) {
        positives++;
        rankSum += avgRank;
      }
    }
    i = j;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return { auc: NaN, positives, negatives };
  return { auc: (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives), positives, negatives };
}

/**
 * Area under the ROC curve in O(n log n). A label > 0 is positive (so L2R grades work as "acted on").
 * Tied scores get their average rank (a tie counts ½). `NaN` when either class is missing.
 */
export function auc(scores: Numbers, labels: Numbers): number {
  sameLength(scores, labels, 'scores, labels');
  checkFinite(scores, 'scores');
  return aucOf(scores, labels).auc;
}

/** Rows of each group, in first-seen order of the groups. */
function groupRows(groups: ArrayLike<GroupKey>): number[][] {
  const byKey = new Map<GroupKey, number[]>();
  for (let i = 0; i < groups.length; i++) {
    const rows = byKey.get(groups[i]);
    if (rows) rows.push(i);
    else byKey.set(groups[i], [i]);
  }
  return [...byKey.values()];
}

/** How {@link gauc} averages the per-group AUCs. */
export interface GaucOptions {
  /**
   * `'uniform'` (default): every eligible group counts once. `'impressions'`: each group weighs by its
   * number of rows, as in the DIN/DUPN papers' GAUC.
   */
  weighting?: 'uniform' | 'impressions';
}

/** GAUC with the number of groups that had both classes (the others are skipped). */
export interface GaucResult {
  gauc: number;
  /** Groups with at least one positive and one negative. */
  groups: number;
}

/** {@link gauc} with the count of groups that entered the average. */
export function gaucDetail(scores: Numbers, labels: Numbers, groups: ArrayLike<GroupKey>, options: GaucOptions = {}): GaucResult {
  sameLength(scores, labels, 'scores, labels');
  sameLength(scores, groups, 'scores, groups');
  checkFinite(scores, 'scores');
  const byImpressions = options.weighting === 'impressions';
  let sum = 0;
  let weight = 0;
  let count = 0;
  for (const rows of groupRows(groups)) {
    const r = aucOf(scores, labels, rows);
    if (Number.isNaN(r.auc)) continue;
    const w = byImpressions ? rows.length : 1;
    sum += w * r.auc;
    weight += w;
    count++;
  }
  return { gauc: count === 0 ? NaN : sum / weight, groups: count };
}

/**
 * Group AUC: the AUC within each group (user), averaged over the groups that have both classes — what a
 * personalised ranker is judged by, since it only ever ranks candidates for one user against each other.
 * `NaN` when no group has both classes.
 */
export function gauc(scores: Numbers, labels: Numbers, groups: ArrayLike<GroupKey>, options: GaucOptions = {}): number {
  return gaucDetail(scores, labels, groups, options).gauc;
}

/**
 * Mean binary cross-entropy of probabilities `probs` against labels (label > 0 is positive), with the
 * probabilities clipped to [1e-7, 1 − 1e-7]. `NaN` for no rows.
 */
export function logLoss(probs: Numbers, labels: Numbers): number {
  sameLength(probs, labels, 'probs, labels');
  if (probs.length === 0) return NaN;
  let sum = 0;
  for (let i = 0; i < probs.length; i++) {
    const p = clip(probs[i]);
    sum -= labels[i] > 0 ? Math.log(p) : Math.log(1 - p);
  }
  return sum / probs.length;
}

function checkClasses(probs: Numbers, labels: Numbers, classes: number): void {
  if (!Number.isInteger(classes) || classes < 1) throw new DupnError('E_INPUT', `classes: must be a positive integer, got ${describe(classes)}`, { path: 'classes' });
  if (probs.length !== labels.length * classes) {
    throw new DupnError('E_INPUT', `probs: must hold labels.length × classes = ${labels.length * classes} entries, got ${probs.length}`, { path: 'probs' });
  }
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (!Number.isInteger(y) || y < 0 || y >= classes) throw new DupnError('E_INPUT', `labels[${i}]: must be a class in [0, ${classes}), got ${describe(y)}`, { path: `labels[${i}]` });
  }
}

/**
 * Mean categorical cross-entropy: `probs` is rows × classes (row-major), `labels` the class of each row;
 * the probability of the true class is clipped to [1e-7, 1 − 1e-7]. `NaN` for no rows.
 */
export function multiclassLogLoss(probs: Numbers, labels: Numbers, classes: number): number {
  checkClasses(probs, labels, classes);
  if (labels.length === 0) return NaN;
  let sum = 0;
  for (let i = 0; i < labels.length; i++) sum -= Math.log(clip(probs[i * classes + labels[i]]));
  return sum / labels.length;
}

/** The most probable class of each row of `probs` (rows × classes); the first wins a tie. */
export function argmaxRows(probs: Numbers, classes: number): Int32Array {
  if (!Number.isInteger(classes) || classes < 1 || probs.length % classes !== 0) {
    throw new DupnError('E_INPUT', `probs: length ${probs.length} is not a multiple of classes = ${describe(classes)}`, { path: 'probs' });
  }
  const rows = probs.length / classes;
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (probs[r * classes + c] > probs[r * classes + best]) best = c;
    out[r] = best;
  }
  return out;
}

/** Share of rows whose predicted class equals the label. `NaN` for no rows. */
export function accuracy(predicted: Numbers, labels: Numbers): number {
  sameLength(predicted, labels, 'predicted, labels');
  if (labels.length === 0) return NaN;
  let hits = 0;
  for (let i = 0; i < labels.length; i++) if (predicted[i] === labels[i]) hits++;
  return hits / labels.length;
}

/** Per-class precision, recall and support (index = class). */
export interface PerClass {
  /** Of the rows predicted as class c, the share that are c; `NaN` when c was never predicted. */
  precision: Float64Array;
  /** Of the rows of class c, the share predicted as c; `NaN` when c never occurs. */
  recall: Float64Array;
  /** Rows whose label is c. */
  support: Int32Array;
}

/** Precision and recall of every class 0..classes−1 from predicted and true classes. */
export function precisionRecall(predicted: Numbers, labels: Numbers, classes: number): PerClass {
  sameLength(predicted, labels, 'predicted, labels');
  if (!Number.isInteger(classes) || classes < 1) throw new DupnError('E_INPUT', `classes: must be a positive integer, got ${describe(classes)}`, { path: 'classes' });
  const tp = new Int32Array(classes);
  const predictedCount = new Int32Array(classes);
  const support = new Int32Array(classes);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    const p = predicted[i];
    if (y >= 0 && y < classes) support[y]++;
    if (p >= 0 && p < classes) predictedCount[p]++;
    if (p === y && y >= 0 && y < classes) tp[y]++;
  }
  const precision = new Float64Array(classes);
  const recall = new Float64Array(classes);
  for (let c = 0; c < classes; c++) {
    precision[c] = predictedCount[c] === 0 ? NaN : tp[c] / predictedCount[c];
    recall[c] = support[c] === 0 ? NaN : tp[c] / support[c];
  }
  return { precision, recall, support };
}

/**
 * One-vs-rest AUC of each class from rows × classes probabilities, averaged over the classes that occur
 * and do not cover every row (a macro AUC for multiclass heads). `NaN` when no class qualifies.
 */
export function macroAuc(probs: Numbers, labels: Numbers, classes: number): number {
  checkClasses(probs, labels, classes);
  const rows = labels.length;
  const column = new Float64Array(rows);
  const isClass = new Uint8Array(rows);
  let sum = 0;
  let count = 0;
  for (let c = 0; c < classes; c++) {
    for (let r = 0; r < rows; r++) {
      column[r] = probs[r * classes + c];
      isClass[r] = labels[r] === c ? 1 : 0;
    }
    const a = aucOf(column, isClass).auc;
    if (Number.isNaN(a)) continue;
    sum += a;
    count++;
  }
  return count === 0 ? NaN : sum / count;
}

/** NDCG@k with the number of groups that entered the average. */
export interface NdcgResult {
  ndcg: number;
  /** Groups with at least one grade > 0. */
  groups: number;
}

// DCG of one group under the score order. Tied scores share the mean discount of the positions they
// occupy — the expected DCG over random tie-breaking — so a constant scorer cannot profit from input order.
function dcgOf(scores: Numbers, grades: Numbers, rows: number[], k: number): number {
  const order = rows.slice().sort((a, b) => scores[b] - scores[a]);
  let dcg = 0;
  for (let i = 0; i < order.length && i < k; ) {
    let j = i + 1;
    while (j < order.length && scores[order[j]] === scores[order[i]]) j++;
    let disc = 0;
    for (let r = i; r < j && r < k; r++) disc += 1 / Math.log2(r + 2);
    disc /= j - i;
    for (let r = i; r < j; r++) dcg += (2 ** grades[order[r]] - 1) * disc;
    i = j;
  }
  return dcg;
}

function idealDcg(grades: Numbers, rows: number[], k: number): number {
  const sorted = rows.map((r) => grades[r]).sort((a, b) => b - a);
  let dcg = 0;
  for (let r = 0; r < sorted.length && r < k; r++) dcg += (2 ** sorted[r] - 1) / Math.log2(r + 2);
  return dcg;
}

/** {@link ndcg} with the count of groups that entered the average. */
export function ndcgDetail(scores: Numbers, grades: Numbers, groups: ArrayLike<GroupKey>, k = 10): NdcgResult {
  sameLength(scores, grades, 'scores, grades');
  sameLength(scores, groups, 'scores, groups');
  checkFinite(scores, 'scores');
  if (!Number.isInteger(k) || k < 1) throw new DupnError('E_INPUT', `k: must be a positive integer, got ${describe(k)}`, { path: 'k' });
  for (let i = 0; i < grades.length; i++) {
    if (!(grades[i] >= 0) || !Number.isFinite(grades[i])) throw new DupnError('E_INPUT', `grades[${i}]: must be a finite number ≥ 0, got ${describe(grades[i])}`, { path: `grades[${i}]` });
  }
  let sum = 0;
  let count = 0;
  for (const rows of groupRows(groups)) {
    const ideal = idealDcg(grades, rows, k);
    if (ideal === 0) continue;
    sum += dcgOf(scores, grades, rows, k) / ideal;
    count++;
  }
  return { ndcg: count === 0 ? NaN : sum / count, groups: count };
}

/**
 * NDCG@k (default k = 10) per request group with gains 2^grade − 1 and discounts 1/log2(rank + 1),
 * averaged over the groups that have at least one grade > 0 (a group with nothing to find is no evidence).
 * A perfect ranking scores 1. `NaN` when no group has a positive.
 */
export function ndcg(scores: Numbers, grades: Numbers, groups: ArrayLike<GroupKey>, k = 10): number {
  return ndcgDetail(scores, grades, groups, k).ndcg;
}
