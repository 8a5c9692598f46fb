/**
 * Successor features of a retrieval head (config `successors`): how often the candidate followed each of the
 * user's last few distinct items in training, by the weights of the sequential rules (every occurrence of b
 * within {@link SUCCESSOR_WINDOW} steps after a counts 1/distance). On sparse logs these exact item-to-item
 * transitions carry the head of a next-item ranking that the towers' smooth similarity misses; as features of
 * h with learned weights the model decides how far to trust them, and the search stays a dot product plus
 * the few rows they touch (retrieval.ts).
 */
import { HISTORY_SCALE, ResolvedConfig, RetrievalTask, SUCCESSOR_FEATURES, SUCCESSOR_WINDOW } from '../network/config';
import { DupnError } from '../errors';
import type { BehaviorInput } from './features';
import { hashKey } from './hashing';
import { native } from '../native/addon';
import { SUCCESSORS_UNUSED, historyField, successorNames } from '../network/tensors';

export { SUCCESSOR_WINDOW } from '../network/config';

/** A retrieval head's successor table as stored in its tensors, for lookups. */
export class SuccessorTable {
  private constructor(
    private readonly from: Float32Array,
    private readonly to: Float32Array,
    private readonly weight: Float32Array,
    private readonly perItem: number,
    private readonly used: number,
  ) {}

  /** The table of `task` in `tensors` (undefined: the head has none). Assumes a checked table ({@link checkSuccessorTable}). */
  static of(task: RetrievalTask, tensors: ReadonlyMap<string, Float32Array>): SuccessorTable | undefined {
    if (!task.successors) return undefined;
    const names = successorNames(task.name);
    const from = tensors.get(names.from)!;
    let used = 0;
    while (used < from.length && from[used] !== SUCCESSORS_UNUSED) used++;
    return new SuccessorTable(from, tensors.get(names.to)!, tensors.get(names.weight)!, task.successors.perItem, used);
  }

  /** The row of item bucket `b`, or -1 (binary search: the used rows are ascending). */
  row(b: number): number {
    let lo = 0;
    let hi = this.used - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const v = this.from[mid];
      if (v === b) return mid;
      if (v < b) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /**
   * Candidate bucket → its weights after each of `recent` (the user's recent distinct item buckets, the
   * latest first): only buckets that followed one of them appear.
   */
  after(recent: readonly number[]): Map<number, Float64Array> {
    const out = new Map<number, Float64Array>();
    recent.forEach((b, k) => {
      const r = this.row(b);
      if (r < 0) return;
      for (let j = r * this.perItem; j < (r + 1) * this.perItem; j++) {
        const w = this.weight[j];
        if (w === 0) continue;
        const to = this.to[j];
        let ws = out.get(to);
        if (ws === undefined) out.set(to, (ws = new Float64Array(SUCCESSOR_FEATURES)));
        ws[k] += w;
      }
    });
    return out;
  }
}

/**
 * What the successor features of one user start from: the buckets of the last {@link SUCCESSOR_FEATURES}
 * distinct items of the history field (the latest first), and for each of them the weight it gave the
 * *next* behaviour when the table was counted (Σ 1/d over the positions d ≤ {@link SUCCESSOR_WINDOW} back
 * that hold it). Training subtracts that weight from an example's own positive, whose occurrence the table
 * counted: the feature must not contain the label. Only the last `maxSeqLen` behaviours count, as only they
 * reach the model.
 */
export interface RecentItems {
  recent: number[];
  own: number[];
}

export function recentItems(config: ResolvedConfig, task: { target: string[] }, behaviors: readonly BehaviorInput[]): RecentItems {
  const field = historyField(task);
  const buckets = config.itemFields.find((f) => f.name === field)!.buckets;
  const from = Math.max(0, behaviors.length - config.maxSeqLen);
  const keys: string[] = [];
  const back: number[] = [];
  for (let i = behaviors.length - 1; i >= from; i--) {
    const v = behaviors[i]?.[field];
    if (v === undefined || v === null) continue;
    keys.push(hashKey(v, `behaviors[${i}].${field}`));
    back.push(behaviors.length - i);
  }
  const at = new Int32Array(keys.length);
  if (keys.length > 0) native().bucketStrings(keys, buckets, at, 0, 1);
  const recent: number[] = [];
  const own: number[] = [];
  for (let j = 0; j < at.length; j++) {
    let k = recent.indexOf(at[j]);
    if (k < 0) {
      if (recent.length === SUCCESSOR_FEATURES) {
        if (back[j] > SUCCESSOR_WINDOW) break;
        continue;
      }
      k = recent.push(at[j]) - 1;
      own.push(0);
    }
    if (back[j] <= SUCCESSOR_WINDOW) own[k] += 1 / back[j];
  }
  return { recent, own };
}

/**
 * Writes a candidate's {@link SUCCESSOR_FEATURES} features at out[at ..]: scale · log(1 + weight) per recent
 * item (0 where it never followed), with `minus` (a training example's own occurrence) taken off first.
 */
export function successorFeatures(weights: Float64Array | undefined, out: Float32Array, at: number, minus?: readonly number[]): void {
  for (let k = 0; k < SUCCESSOR_FEATURES; k++) {
    const w = (weights?.[k] ?? 0) - (minus?.[k] ?? 0);
    // Float32 sums of 1/d less the float64 own share: a rounding residue is no transition.
    // Scaled as the history features are, for the same reason (HISTORY_SCALE).
    out[at + k] = w > 1e-4 ? HISTORY_SCALE * Math.log1p(w) : 0;
  }
}

/** The largest weight a successor table may hold (a sequential-rules weight of 10^15 rows would be 3 × that). */
export const MAX_SUCCESSOR_WEIGHT = 1e15;

/**
 * Checks a successor table from an untrusted file: ids are whole bucket numbers, `from` ascends through
 * the used rows and then holds only {@link SUCCESSORS_UNUSED}, weights are in [0, {@link MAX_SUCCESSOR_WEIGHT}].
 * Throws `E_MODEL_FILE` naming the tensor and index.
 */
export function checkSuccessorTable(config: ResolvedConfig, tensors: ReadonlyMap<string, Float32Array>, source: string): void {
  for (const t of config.tasks) {
    if (t.kind !== 'retrieval' || !t.successors) continue;
    const names = successorNames(t.name);
    const buckets = config.itemFields.find((f) => f.name === historyField(t))!.buckets;
    const fail = (name: string, i: number, what: string): never => {
      throw new DupnError('E_MODEL_FILE', `${source}: tensor "${name}"[${i}] ${what}`);
    };
    const isId = (v: number): boolean => Number.isInteger(v) && v >= 0 && v < buckets;
    const from = tensors.get(names.from)!;
    let unused = false;
    for (let i = 0; i < from.length; i++) {
      const v = from[i];
      if (v === SUCCESSORS_UNUSED) unused = true;
      else if (unused) fail(names.from, i, `is ${v} after an unused row (${SUCCESSORS_UNUSED}): used rows must come first`);
      else if (!isId(v)) fail(names.from, i, `must be a bucket id 0..${buckets - 1} or ${SUCCESSORS_UNUSED} (unused), got ${v}`);
      else if (i > 0 && !(v > from[i - 1])) fail(names.from, i, `must be above the row before (${from[i - 1]}): rows ascend`);
    }
    const to = tensors.get(names.to)!;
    for (let i = 0; i < to.length; i++) if (!isId(to[i])) fail(names.to, i, `must be a bucket id 0..${buckets - 1}, got ${to[i]}`);
    const weight = tensors.get(names.weight)!;
    // A sequential-rules weight is at most about 3 × the rows counted; the cap keeps sums (and features) finite.
    for (let i = 0; i < weight.length; i++) if (!(weight[i] >= 0 && weight[i] <= MAX_SUCCESSOR_WEIGHT)) fail(names.weight, i, `must be in [0, ${MAX_SUCCESSOR_WEIGHT}], got ${weight[i]}`);
  }
}
