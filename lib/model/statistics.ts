/**
 * A retrieval head's statistics — the log prior and the successor table — computed from counts of a log, not
 * learned: shared by the trainer (which fills them before and during training) and the serving model (which
 * can take newer counts without retraining, {@link Model.withPrior} / {@link Model.withSuccessors}).
 */
import { ResolvedConfig, RetrievalTask } from '../network/config';
import { DupnError, inputError } from '../errors';
import { Categorical, bucketMany } from './hashing';
import { PRIOR_FLOOR, SUCCESSORS_UNUSED, Tensors, historyField, priorName, successorNames } from '../network/tensors';

/** Counts of a history field's values: `[value, count]` pairs (e.g. item id → times acted on). */
export type ValueCounts = Iterable<readonly [Categorical, number]>;
/** Sequential-rules weights: per value, the values that followed it and their weights. */
export type SuccessorWeights = Iterable<readonly [Categorical, Iterable<readonly [Categorical, number]>]>;

function retrievalTask(config: ResolvedConfig, task: string, needs: 'history' | 'successors'): RetrievalTask {
  const t = config.tasks.find((x) => x.name === task);
  if (t === undefined || t.kind !== 'retrieval' || !t[needs]) {
    const what = needs === 'history' ? 'with history features (only those have a prior)' : 'with a successor table (config successors)';
    throw new DupnError('E_TASK', `task: "${task}" is not a retrieval task ${what}`, { path: 'task' });
  }
  return t;
}

function historyBuckets(config: ResolvedConfig, t: RetrievalTask): number {
  return config.itemFields.find((f) => f.name === historyField(t))!.buckets;
}

/**
 * Writes retrieval head `task`'s log prior into `tensors` (its `head.<task>.prior` table, in place) from
 * counts of its history field's values: each bucket gets log(its count / the total); buckets with no count
 * get the floor, below every counted share. Throws `E_TASK` / `E_INPUT` naming the problem.
 */
export function fillPrior(config: ResolvedConfig, tensors: Tensors, task: string, counts: ValueCounts): void {
  const t = retrievalTask(config, task, 'history');
  const values: Categorical[] = [];
  const n: number[] = [];
  for (const [value, count] of counts) {
    if (typeof count !== 'number' || !Number.isFinite(count) || count < 0) inputError(`counts[${n.length}]`, `count must be a finite number ≥ 0, got ${String(count)}`);
    values.push(value);
    n.push(count);
  }
  const buckets = historyBuckets(config, t);
  const at = bucketMany(values, buckets);
  const sum = new Float64Array(buckets);
  let total = 0;
  for (let i = 0; i < n.length; i++) {
    sum[at[i]] += n[i];
    total += n[i];
  }
  const table = tensors.get(priorName(task))!;
  const floor = total > 0 ? Math.min(PRIOR_FLOOR, Math.log(0.5 / total)) : PRIOR_FLOOR;
  for (let b = 0; b < buckets; b++) table[b] = sum[b] > 0 ? Math.log(sum[b] / total) : floor;
}

/**
 * Writes retrieval head `task`'s successor table into `tensors` (in place) from sequential-rules weights:
 * values bucketed as the history field is (weights of values that share a bucket add up), the `perItem`
 * heaviest successors of the `items` most-followed items kept, rows ascending by bucket. Throws `E_TASK` /
 * `E_INPUT` naming the problem.
 */
export function fillSuccessors(config: ResolvedConfig, tensors: Tensors, task: string, weights: SuccessorWeights): void {
  const t = retrievalTask(config, task, 'successors');
  const froms: Categorical[] = [];
  const tos: Categorical[] = [];
  const ws: number[] = [];
  const starts: number[] = [];
  for (const [from, row] of weights) {
    starts.push(tos.length);
    froms.push(from);
    for (const [to, w] of row) {
      if (typeof w !== 'number' || !Number.isFinite(w) || w < 0) inputError(`weights[${froms.length - 1}]`, `a weight must be a finite number ≥ 0, got ${String(w)}`);
      tos.push(to);
      ws.push(w);
    }
  }
  starts.push(tos.length);
  const buckets = historyBuckets(config, t);
  const fromAt = bucketMany(froms, buckets);
  const toAt = bucketMany(tos, buckets);
  const merged = new Map<number, Map<number, number>>();
  for (let i = 0; i < froms.length; i++) {
    let row = merged.get(fromAt[i]);
    if (row === undefined) merged.set(fromAt[i], (row = new Map()));
    for (let j = starts[i]; j < starts[i + 1]; j++) if (ws[j] > 0) row.set(toAt[j], (row.get(toAt[j]) ?? 0) + ws[j]);
  }
  const { items, perItem } = t.successors!;
  const total = (row: Map<number, number>): number => [...row.values()].reduce((a, b) => a + b, 0);
  // The most-followed items when there are more than rows, then ascending by bucket for the binary search.
  const kept = [...merged].filter(([, row]) => row.size > 0).map(([b, row]) => ({ b, row, sum: total(row) }));
  kept.sort((x, y) => y.sum - x.sum || x.b - y.b);
  const rows = kept.slice(0, items).sort((x, y) => x.b - y.b);
  const names = successorNames(task);
  const from = tensors.get(names.from)!.fill(SUCCESSORS_UNUSED);
  const to = tensors.get(names.to)!.fill(0);
  const weight = tensors.get(names.weight)!.fill(0);
  rows.forEach(({ b, row }, r) => {
    from[r] = b;
    [...row].sort((x, y) => y[1] - x[1] || x[0] - y[0]).slice(0, perItem).forEach(([b2, w], j) => {
      to[r * perItem + j] = b2;
      weight[r * perItem + j] = w;
    });
  });
}
