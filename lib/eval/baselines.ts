/**
 * The simple baselines every learning claim is shown beside, counted from the training period of a log:
 *
 * - `popularity`: how often the entity was acted on.
 * - `recent` ("recently seen"): the user's own entities, the most recent first; the rest by popularity.
 * - `successors` (item-to-item): how often the entity directly followed the user's last one.
 * - `rules` (sequential rules, Ludewig & Jannach 2018): entities that followed the last one within
 *   `window` steps, each occurrence weighted 1/distance.
 *
 * An entity is what a task's candidates are compared by, as in example construction: the item when the
 * target includes `item`, else the tuple of the target fields (a shop for `["shop"]`). Ties are broken by
 * popularity, which is what these heuristics do in practice. They score binary and rank tasks (as Scorers of
 * evaluate.ts) and whole catalogues (next-item.ts).
 */
import { ResolvedConfig, TaskConfig } from '../network/config';
import { TrainingExample } from '../data/training-example';
import { fieldOf } from '../data/example-builder';
import { isHeldOutUser } from '../data/split';
import { UserTimeline } from '../data/timeline';
import { Scorer } from './evaluate';
import { BehaviorInput, CandidateInput } from '../model/features';
import { SUCCESSOR_WINDOW } from '../model/successors';

export const BASELINES = ['popularity', 'recent', 'successors', 'rules'] as const;
export type BaselineName = (typeof BASELINES)[number];

/** The fields that identify a task's entity. */
export function entityFields(task: TaskConfig): string[] {
  const target = task.kind === 'multiclass' ? [] : task.target;
  return target.includes('item') ? ['item'] : [...target];
}

function keyOf(fields: string[], get: (f: string) => unknown): string | undefined {
  const parts: string[] = [];
  for (const f of fields) {
    const v = get(f);
    if (v === undefined || v === null || v === '') return undefined;
    parts.push(String(v));
  }
  return parts.join('\u0001');
}

/** The entity of a history behaviour or a candidate for these fields (undefined when a field is missing). */
export const behaviorKey = (fields: string[], b: BehaviorInput | CandidateInput): string | undefined => keyOf(fields, (f) => b[f]);

/** Counts of one entity definition over the training timelines. */
export class EntityStats {
  readonly count = new Map<string, number>();
  readonly successors = new Map<string, Map<string, number>>();
  readonly rules = new Map<string, Map<string, number>>();
  /** The candidate fields of each entity as first seen (what a catalogue scores). */
  readonly features = new Map<string, CandidateInput>();
  maxCount = 0;

  constructor(
    readonly fields: string[],
    readonly target: string[],
    readonly window: number,
  ) {}

  /** Counts one sequence of entity keys; `featuresOf(i)` gives the candidate fields of entity i, asked once per entity. */
  add(keys: (string | undefined)[], featuresOf?: (i: number) => CandidateInput): void {
    for (let i = 0; i < keys.length; i++) {
      const a = keys[i];
      if (a === undefined) continue;
      const n = (this.count.get(a) ?? 0) + 1;
      this.count.set(a, n);
      if (n > this.maxCount) this.maxCount = n;
      if (featuresOf && n === 1) this.features.set(a, featuresOf(i));
      for (let d = 1; d <= this.window && i + d < keys.length; d++) {
        const b = keys[i + d];
        if (b === undefined) continue;
        if (d === 1) bump(this.successors, a, b, 1);
        bump(this.rules, a, b, 1 / d);
      }
    }
  }

  /** A popularity in [0, 1) small enough to only break ties of another score. */
  tieBreak(key: string | undefined): number {
    return key === undefined ? 0 : (this.count.get(key) ?? 0) / (this.maxCount + 1);
  }

  /**
   * What the baseline adds to the popularity tie-break after one `history` (oldest first), by entity: every
   * other entity scores its tie-break alone. `recent`: 1 + the entity's last position; `successors` and
   * `rules`: the counts after the last entity; `popularity`: nothing.
   */
  boosts(name: BaselineName, history: readonly (string | undefined)[]): ReadonlyMap<string, number> {
    if (name === 'recent') {
      const position = new Map<string, number>();
      history.forEach((k, j) => k !== undefined && position.set(k, 1 + j));
      return position;
    }
    const last = name === 'popularity' ? undefined : lastKey(history);
    return (last === undefined ? undefined : (name === 'successors' ? this.successors : this.rules).get(last)) ?? NO_BOOSTS;
  }

  /** The baseline's scores after one `history`: its {@link boosts} plus the tie-break, one map lookup per candidate. */
  scorerFor(name: BaselineName, history: readonly (string | undefined)[]): (candidate: string | undefined) => number {
    const boost = this.boosts(name, history);
    return (c) => (c === undefined ? 0 : (boost.get(c) ?? 0) + this.tieBreak(c));
  }

  /** The baseline's score of one `candidate` after `history` (oldest first). */
  score(name: BaselineName, history: readonly (string | undefined)[], candidate: string | undefined): number {
    return this.scorerFor(name, history)(candidate);
  }
}

const NO_BOOSTS: ReadonlyMap<string, number> = new Map();

function bump(m: Map<string, Map<string, number>>, a: string, b: string, w: number): void {
  let row = m.get(a);
  if (row === undefined) m.set(a, (row = new Map()));
  row.set(b, (row.get(b) ?? 0) + w);
}

function lastKey(history: readonly (string | undefined)[]): string | undefined {
  for (let j = history.length - 1; j >= 0; j--) if (history[j] !== undefined) return history[j];
  return undefined;
}

/** Options of {@link SequenceStats}. */
export interface SequenceStatsOptions {
  /** Only rows before this time (Unix seconds) count: the training period. */
  before?: number;
  /** Steps within which the sequential rules count a successor (default {@link SUCCESSOR_WINDOW}, 10: a retrieval head's successor table is filled from these counts). */
  window?: number;
  /** Leave-one-out: the last this many behaviours of each user with at least 3 are held out (2). */
  holdLast?: number;
  /** Split by user: the users held out for validation (this share, lib/data/split.ts) are not counted. */
  validUsers?: number;
}

/** The baselines' counts for every binary/rank task of a config, from training timelines. */
export class SequenceStats {
  readonly byTask = new Map<string, EntityStats>();
  private readonly before: number;
  private readonly holdLast: number;
  private readonly validUsers: number;

  constructor(config: ResolvedConfig, options: SequenceStatsOptions = {}) {
    this.before = options.before ?? Infinity;
    this.holdLast = options.holdLast ?? 0;
    this.validUsers = options.validUsers ?? 0;
    const window = options.window ?? SUCCESSOR_WINDOW;
    for (const task of config.tasks) {
      if (task.kind === 'multiclass') continue;
      this.byTask.set(task.name, new EntityStats(entityFields(task), task.target, window));
    }
  }

  /** Counts one timeline's rows before the split (and before its held-out last ones). */
  add(timeline: UserTimeline): void {
    if (this.validUsers > 0 && isHeldOutUser(timeline.userId, this.validUsers)) return;
    const all = timeline.rows;
    const rows = all.slice(0, all.length >= 3 ? all.length - this.holdLast : all.length).filter((r) => r.time < this.before);
    for (const stats of this.byTask.values()) {
      const keys = rows.map((r) => keyOf(stats.fields, (f) => fieldOf(r, f)));
      stats.add(keys, (i) => {
        const c: CandidateInput = {};
        for (const f of stats.target) {
          const v = fieldOf(rows[i], f);
          if (v !== undefined) c[f] = v;
        }
        return c;
      });
    }
  }

  /** The first task whose entity is the item (what next-item evaluation ranks), if any. */
  itemTask(): string | undefined {
    for (const [name, s] of this.byTask) if (s.fields.length === 1 && s.fields[0] === 'item') return name;
    return undefined;
  }

  /** Counts every timeline of a stream. */
  static async from(timelines: AsyncIterable<UserTimeline>, config: ResolvedConfig, options: SequenceStatsOptions = {}): Promise<SequenceStats> {
    const s = new SequenceStats(config, options);
    for await (const tl of timelines) s.add(tl);
    return s;
  }

  /** One baseline as a Scorer of the binary/rank tasks (evaluate with {@link candidateTasks}). */
  scorer(name: BaselineName): Scorer {
    return {
      scoreExamples: async (examples: TrainingExample[]) => {
        const out: Record<string, Float64Array> = {};
        for (const [task, stats] of this.byTask) {
          const scores: number[] = [];
          for (const ex of examples) {
            const label = ex.labels[task];
            if (!Array.isArray(label)) continue;
            const score = stats.scorerFor(name, ex.user.behaviors.map((b) => behaviorKey(stats.fields, b)));
            // x / (1 + x): the same order, inside [0, 1) as binary tasks' probabilities must be (the
            // log-loss of a baseline means nothing; its AUC, GAUC and NDCG do).
            for (const c of label) {
              const x = score(behaviorKey(stats.fields, c.candidate));
              scores.push(x / (1 + x));
            }
          }
          out[task] = Float64Array.from(scores);
        }
        return out;
      },
    };
  }
}

/** The config with its binary/rank tasks only: what the sequence baselines score. */
export function candidateTasks(config: ResolvedConfig): ResolvedConfig {
  return { ...config, tasks: config.tasks.filter((t) => t.kind !== 'multiclass') };
}
