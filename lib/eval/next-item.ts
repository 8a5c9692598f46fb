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
 * true entity among the entities with its score), so a scorer gains nothing from ties. Cases whose true
 * entity is not in the catalogue (first seen in the test period) cannot be ranked by the count-based
 * baselines and are left out, and counted.
 */
import { TrainingExample } from '../data/example';
import { DupnError } from '../errors';
import { Model } from '../model';
import { mulberry32 } from '../random';
import { isAsyncIterable } from '../evaluate';
import { BASELINES, EntityStats, SequenceStats, behaviorKey, entityFields } from './baselines';
import { denseCount } from '../config';
import { historyFeatures, historyIndex } from '../features';
import { historyField } from '../tensors';

/** Metrics of one scorer. */
export interface NextItemMetrics {
  hr: number;
  mrr: number;
  ndcg: number;
  sampledHr: number;
  sampledNdcg: number;
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

interface Case {
  history: (string | undefined)[];
  example: TrainingExample;
  target: number;
  sample: number[];
}

/** Full-catalogue and sampled next-item metrics of a model (optional) and the four baselines. */
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
  const keys = [...es.count.keys()];
  const index = new Map(keys.map((key, i) => [key, i]));
  const rng = mulberry32(options.seed ?? 7);
  const cases: Case[] = [];
  let unseen = 0;
  const add = (ex: TrainingExample): void => {
    const label = ex.labels[taskName];
    if (!Array.isArray(label)) return;
    const positive = label.find((c) => c.label > 0);
    if (!positive) return;
    const target = index.get(behaviorKey(es.fields, positive.candidate) ?? '');
    if (target === undefined) {
      unseen++;
      return;
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
  };
  if (isAsyncIterable(examples)) for await (const ex of examples) add(ex);
  else for (const ex of examples) add(ex);

  const scorers: Record<string, NextItemMetrics> = {};
  const sums = (): NextItemMetrics => ({ hr: 0, mrr: 0, ndcg: 0, sampledHr: 0, sampledNdcg: 0 });
  const account = (m: NextItemMetrics, scores: ArrayLike<number>, c: Case): void => {
    const full = rankOf(scores, c.target, k);
    const samp = rankOf(scores, c.target, sampledK, c.sample);
    m.hr += full.hr;
    m.mrr += full.rr;
    m.ndcg += full.ndcg;
    m.sampledHr += samp.hr;
    m.sampledNdcg += samp.ndcg;
  };
  const mean = (m: NextItemMetrics): NextItemMetrics => {
    const n = Math.max(1, cases.length);
    return { hr: m.hr / n, mrr: m.mrr / n, ndcg: m.ndcg / n, sampledHr: m.sampledHr / n, sampledNdcg: m.sampledNdcg / n };
  };

  if (model !== undefined) {
    // Every head of the model whose entity is the item scores the catalogue: `model:<task>`, and for
    // binary/rank heads `model:<task>+prior`. Trained against negatives sampled by popularity, such a head
    // learns about log p(item | user) − log q(item): it demotes popular items. Adding the log prior back (the
    // training period's log count) turns that into log p(item | user) up to a constant (the log-Q correction
    // at scoring time). A retrieval head was trained with that correction already, and scores with its
    // history features (what the user did with each item).
    const heads = model.config.tasks.filter((t) => t.kind !== 'multiclass' && entityFields(t).join() === es.fields.join());
    if (heads.length === 0) throw new DupnError('E_TASK', `the model has no binary, rank or retrieval task over the entity of "${taskName}"`);
    const logPrior = Float64Array.from(keys, (key) => Math.log(es.count.get(key) ?? 1));
    const catalogue = keys.map((key) => es.features.get(key) ?? {});
    const batch = options.batchSize ?? 64;
    for (const task of heads) {
      const m = sums();
      const withPrior = sums();
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
      scorers[`model:${task.name}`] = mean(m);
      if (task.kind !== 'retrieval') scorers[`model:${task.name}+prior`] = mean(withPrior);
    }
  }
  for (const name of BASELINES) {
    const m = sums();
    const scores = new Float64Array(keys.length);
    for (const c of cases) {
      const score = es.scorerFor(name, c.history);
      for (let i = 0; i < keys.length; i++) scores[i] = score(keys[i]);
      account(m, scores, c);
    }
    scorers[name] = mean(m);
  }
  return { task: taskName, catalogue: keys.length, cases: cases.length, unseenTargets: unseen, k, sampledK, sampled, scorers };
}

/** The report as a table: one row per scorer. */
export function formatNextItem(r: NextItemReport): string {
  const head = ['scorer', `HR@${r.k}`, `MRR@${r.k}`, `NDCG@${r.k}`, `HR@${r.sampledK}/${r.sampled}`, `NDCG@${r.sampledK}/${r.sampled}`];
  const rows = Object.entries(r.scorers).map(([name, m]) => [name, ...[m.hr, m.mrr, m.ndcg, m.sampledHr, m.sampledNdcg].map((x) => x.toFixed(4))]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((x) => x[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [
    `next ${r.task === 'ctr' ? 'item' : 'entity'} (task ${r.task}): ${r.cases} cases over a catalogue of ${r.catalogue}` +
      `${r.unseenTargets ? `; ${r.unseenTargets} cases left out (the true entity is not in the training catalogue)` : ''}; sampled: the true one among ${r.sampled} the user never touched`,
    line(head),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.map(line),
  ].join('\n') + '\n';
}
