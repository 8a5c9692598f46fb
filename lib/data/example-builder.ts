/**
 * Training examples from user timelines (docs/model.md, Training data): the history before a cut time is the input, the labels
 * come from what follows. Which labels an example carries follows the model config's tasks:
 *
 * - `binary` task (CTR when its target includes `item`, SPP when it targets `shop`, …): the entity of the
 *   next behaviour (the first one at the cut time) is the positive (label 1), plus `negatives` sampled
 *   entities (label 0). The entity is the item when the target includes `item`, else the tuple of the
 *   target fields (a shop for `["shop"]`). Absent when the next behaviour lacks the entity (no shop column).
 * - `rank` task (L2R): every distinct entity acted on in the horizon, graded by its best behaviour
 *   ({@link GRADES}: pv 1, fav 2, cart 3, buy 4; other types count as a click), plus `negatives` sampled
 *   entities graded 0. Logs carry no dense ranking features: with `denseFeatures > 0` they are zeros.
 * - `multiclass` task (PPP): the class of the first purchase (`buy`) in the horizon; absent when there is
 *   none. `classOf: 'price'` (default): the price level, i.e. how many of the ascending `priceThresholds`
 *   the price reaches (default half-decades from 10: 10, 31.6, 100, 316, … for `classes - 1` levels);
 *   absent when the purchase has no price. `classOf: 'category'`: `categoryClasses[category]` when that map
 *   is given (an unmapped category: absent), else the hash bucket (docs/model.md, Feature hashing) of the category modulo `classes`.
 *
 * Cuts: a cut is at a behaviour i that has at least `minHistory` earlier behaviours and a strictly later
 * time than behaviour i-1 (so "strictly before the cut" and "from i on" separate cleanly, also for
 * day-level logs whose rows of one day share a time). At most `maxExamplesPerUser` cuts per timeline: the
 * eligible cuts are split into that many equal consecutive strata and one is drawn from each, so the cuts
 * spread across the timeline. History: the last `maxSeqLen` behaviours before the cut, `now` = the cut time.
 * Horizon: the behaviours from the cut on, at most `horizonBehaviors` of them and earlier than cut +
 * `horizonSeconds`.
 *
 * Negatives are sampled by popularity in a streaming, bounded way: uniformly from a ring buffer of the last
 * `popularityWindow` behaviours read (so in proportion to recent popularity), never an entity acted on in
 * the horizon, never twice in one list. A timeline's own rows enter the ring before its examples are cut (the
 * first users of a file would otherwise get none); a list may still come up short when the ring holds too
 * few distinct entities (counted in `shortOfNegatives`). Everything random is drawn from mulberry32 streams
 * seeded by `seed`, the user and the timeline's first time: the same log gives the same cuts in any row order.
 */
import { ResolvedConfig, TaskConfig } from '../network/config';
import { DupnError, describe } from '../errors';
import { BehaviorInput, CandidateInput } from '../model/features';
import { bucket } from '../model/hashing';
import { mulberry32, seedFor } from '../random';
import { LogRow } from './csv-log';
import { GRADES, LabelledCandidate, TrainingExample } from './training-example';
import { isHeldOutUser } from './split';
import { UserTimeline } from './timeline';

/** What the class of a multiclass task is. */
export type ClassOf = 'price' | 'category';

/** Options of example construction (defaults in brackets). */
export interface ExampleOptions {
  /** Seed of cut selection and negative sampling [0]. */
  seed?: number;
  /** Fewest behaviours before a cut [1]: short sessions give examples too. */
  minHistory?: number;
  /** Most examples per user timeline [64]; `Infinity` keeps every eligible cut. */
  maxExamplesPerUser?: number;
  /** Horizon length in seconds [86,400: one day]. */
  horizonSeconds?: number;
  /** Most behaviours in the horizon [50]. */
  horizonBehaviors?: number;
  /** Sampled negatives per binary/rank label list [4]. */
  negatives?: number;
  /**
   * Retrieval heads: further negatives per list drawn uniformly from the distinct items of the ring (not by
   * popularity), with their own log Q [4]: mixed negative sampling.
   */
  uniformNegatives?: number;
  /** Behaviours in the popularity ring buffer [100,000]. */
  popularityWindow?: number;
  /**
   * The train/validation split time (Unix seconds), when examples will be split by time there: a cut
   * before it draws its negatives only from rows before it and its horizon ends there, so nothing of the
   * validation period leaks into training (an item first seen then would otherwise be a training negative,
   * never a positive).
   */
  trainBefore?: number;
  /**
   * Leave-one-out split (the sequential-recommendation protocol, for logs with or without time): per user with
   * at least 3 behaviours, the last is the test target and the second-last the validation target. `train`:
   * cuts, horizons and negatives from the rest only (users with fewer behaviours train on all of theirs);
   * `valid` / `test`: one example per such user, the history before the target and the target as its label.
   */
  leaveOneOut?: 'train' | 'valid' | 'test';
  /**
   * Split by user: the share of users ({@link isHeldOutUser}) held out for validation. Their rows never enter
   * the ring that training users' negatives come from.
   */
  validUsers?: number;
  /** Class of multiclass tasks, for all or by task name ['price']. */
  classOf?: ClassOf | Record<string, ClassOf>;
  /** Ascending price thresholds of the price levels (at most classes - 1). */
  priceThresholds?: number[];
  /** Category → class for `classOf: 'category'` (otherwise the hash bucket). */
  categoryClasses?: Record<string, number>;
}

/** Counters of example construction. */
export interface ExampleStats {
  /** Examples produced. */
  examples: number;
  /** Cuts dropped because no task had a label. */
  unlabelled: number;
  /** Label lists that got fewer than `negatives` negatives. */
  shortOfNegatives: number;
  /** Timelines that gave no cut: fewer than `minHistory` + 1 behaviours, or no behaviour at a later time. */
  shortTimelines: number;
  /** Eligible cuts left out by `maxExamplesPerUser`. */
  cutsNotTaken: number;
}

/** The value of an item field (`item`, `category`, `shop`, `brand`, `price`, or an extra column) of a row. */
export function fieldOf(row: LogRow, name: string): string | number | undefined {
  switch (name) {
    case 'item':
    case 'category':
    case 'shop':
    case 'brand':
      return row[name];
    case 'price':
      return row.price;
    default:
      return row.extra?.[name];
  }
}

/**
 * A fixed-size ring of recent behaviours: a uniform draw from it is a draw in proportion to recent
 * popularity. Memory: `size` row references.
 */
export class PopularityRing {
  private readonly rows: LogRow[] = [];
  private next = 0;
  private readonly counted: Counter[] = [];

  constructor(readonly size: number) {}

  /**
   * Counts the rows held by `keyOf` from now on (for {@link logQ}); returns the counter's id. Register
   * before adding rows.
   */
  track(keyOf: (row: LogRow) => string | undefined): number {
    this.counted.push({ keyOf, held: new Map(), keys: [] });
    return this.counted.length - 1;
  }

  /**
   * Up to `count` rows of distinct entities (under counter `id`) drawn uniformly from the distinct entities
   * the ring holds — not by popularity — none in `exclude`, and the log of that draw's probability (1 / the
   * number of distinct entities).
   */
  uniform(id: number, rng: () => number, count: number, exclude: ReadonlySet<string>): { rows: LogRow[]; logQ: number } {
    const c = this.counted[id];
    const rows: LogRow[] = [];
    const taken = new Set<string>();
    for (let tries = 20 * count + 20; tries > 0 && rows.length < count && c.keys.length > 0; --tries) {
      const key = c.keys[Math.floor(rng() * c.keys.length)];
      if (exclude.has(key) || taken.has(key)) continue;
      taken.add(key);
      rows.push(c.held.get(key)!.row);
    }
    return { rows, logQ: -Math.log(Math.max(1, c.keys.length)) };
  }

  /**
   * log of the probability that a uniform draw from the ring has `key` under counter `id` (at least one
   * row's worth, so an entity not held gets the rarest entity's value).
   */
  logQ(id: number, key: string): number {
    const n = this.counted[id].held.get(key)?.n ?? 1;
    return Math.log(n / Math.max(1, this.rows.length));
  }

  private count(row: LogRow, by: number): void {
    for (const c of this.counted) {
      const k = c.keyOf(row);
      if (k === undefined) continue;
      const e = c.held.get(k);
      if (e === undefined) {
        c.held.set(k, { n: 1, at: c.keys.length, row });
        c.keys.push(k);
      } else if (e.n + by > 0) {
        e.n += by;
        if (by > 0) e.row = row;
      } else {
        // Swap-remove from the list of distinct keys, so a uniform draw stays O(1).
        c.held.delete(k);
        const last = c.keys.pop()!;
        if (last !== k) {
          c.keys[e.at] = last;
          c.held.get(last)!.at = e.at;
        }
      }
    }
  }

  /** Adds a behaviour, evicting the oldest when full. */
  add(row: LogRow): void {
    this.count(row, 1);
    if (this.rows.length < this.size) this.rows.push(row);
    else {
      this.count(this.rows[this.next], -1);
      this.rows[this.next] = row;
      this.next = (this.next + 1) % this.size;
    }
  }

  /** Behaviours held. */
  get length(): number {
    return this.rows.length;
  }

  /**
   * Up to `count` rows with distinct keys, none in `exclude`; `keyOf` returns undefined for rows that lack the
   * entity. Gives up after a bounded number of draws.
   */
  sample(rng: () => number, count: number, keyOf: (row: LogRow) => string | undefined, exclude: ReadonlySet<string>): LogRow[] {
    const out: LogRow[] = [];
    if (this.rows.length === 0 || count <= 0) return out;
    const taken = new Set<string>();
    for (let tries = 20 * count + 20; tries > 0 && out.length < count; --tries) {
      const row = this.rows[Math.floor(rng() * this.rows.length)];
      const key = keyOf(row);
      if (key === undefined || exclude.has(key) || taken.has(key)) continue;
      taken.add(key);
      out.push(row);
    }
    return out;
  }
}

/** Counts of one entity definition over the ring's rows, and its distinct entities (for uniform draws). */
interface Counter {
  keyOf: (row: LogRow) => string | undefined;
  /** Per distinct entity held: its rows in the ring, its place in `keys`, its latest row (a candidate's fields). */
  held: Map<string, { n: number; at: number; row: LogRow }>;
  keys: string[];
}

type Plan =
  | {
      kind: 'next' | 'rank';
      name: string;
      target: string[];
      key: string[];
      keyOf: (row: LogRow) => string | undefined;
      dense: number;
      /** retrieval: the rings' counter of this key (for log Q), else -1. */
      counter: number;
    }
  | { kind: 'class'; name: string; classes: number; classOf: ClassOf; thresholds: number[] };

/** The key of a row's entity: the value of one field, or the tuple of several; undefined when one is missing. */
function entityKey(fields: string[]): (row: LogRow) => string | undefined {
  if (fields.length === 1) {
    const f = fields[0];
    return (row) => {
      const v = fieldOf(row, f);
      return v === undefined ? undefined : String(v);
    };
  }
  return (row) => {
    const parts: string[] = [];
    for (const f of fields) {
      const v = fieldOf(row, f);
      if (v === undefined) return undefined;
      parts.push(String(v));
    }
    return parts.join('\u0001');
  };
}

function optionError(name: string, problem: string): never {
  throw new DupnError('E_INPUT', `options.${name}: ${problem}`, { path: `options.${name}` });
}

function intOption(value: unknown, name: string, min: number, def: number, infinite = false): number {
  if (value === undefined) return def;
  if (infinite && value === Infinity) return Infinity;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) optionError(name, `must be an integer >= ${min}, got ${describe(value)}`);
  return value;
}

const GRADE_OF: Record<string, number> = { pv: GRADES.click, click: GRADES.click, fav: GRADES.fav, cart: GRADES.cart, buy: GRADES.buy };

/** Turns user timelines into training examples for one model config (see the module comment for the policy). */
export class ExampleBuilder {
  readonly stats: ExampleStats = { examples: 0, unlabelled: 0, shortOfNegatives: 0, shortTimelines: 0, cutsNotTaken: 0 };
  private readonly plans: Plan[];
  private readonly ring: PopularityRing;
  /** Rows before `trainBefore` only (the ring of training cuts); undefined without a split. */
  private readonly trainRing?: PopularityRing;
  private readonly trainBefore: number;
  private readonly leaveOneOut?: 'train' | 'valid' | 'test';
  private readonly validUsers: number;
  private readonly seed: number;
  private readonly minHistory: number;
  private readonly maxCuts: number;
  private readonly horizonSeconds: number;
  private readonly horizonBehaviors: number;
  private readonly negatives: number;
  private readonly uniformNegatives: number;
  private readonly categoryClasses?: Record<string, number>;
  private readonly withPrice: boolean;

  constructor(
    private readonly config: ResolvedConfig,
    options: ExampleOptions = {},
  ) {
    const seed = options.seed ?? 0;
    if (typeof seed !== 'number' || !Number.isInteger(seed)) optionError('seed', `must be an integer, got ${describe(seed)}`);
    this.seed = seed;
    this.minHistory = intOption(options.minHistory, 'minHistory', 0, 1);
    this.maxCuts = intOption(options.maxExamplesPerUser, 'maxExamplesPerUser', 1, 64, true);
    this.horizonBehaviors = intOption(options.horizonBehaviors, 'horizonBehaviors', 1, 50);
    this.negatives = intOption(options.negatives, 'negatives', 0, 4);
    this.uniformNegatives = intOption(options.uniformNegatives, 'uniformNegatives', 0, 4);
    this.ring = new PopularityRing(intOption(options.popularityWindow, 'popularityWindow', 1, 100_000));
    this.validUsers = options.validUsers ?? 0;
    if (options.validUsers !== undefined && !(typeof options.validUsers === 'number' && options.validUsers > 0 && options.validUsers < 1)) {
      optionError('validUsers', `must be a share in (0, 1), got ${describe(options.validUsers)}`);
    }
    if (options.trainBefore !== undefined || options.validUsers !== undefined) {
      if (options.trainBefore !== undefined && (typeof options.trainBefore !== 'number' || !Number.isFinite(options.trainBefore))) {
        optionError('trainBefore', `must be a finite number (Unix seconds), got ${describe(options.trainBefore)}`);
      }
      this.trainRing = new PopularityRing(intOption(options.popularityWindow, 'popularityWindow', 1, 100_000));
    }
    this.trainBefore = options.trainBefore ?? Infinity;
    if (options.leaveOneOut !== undefined && !['train', 'valid', 'test'].includes(options.leaveOneOut)) {
      optionError('leaveOneOut', `must be "train", "valid" or "test", got ${describe(options.leaveOneOut)}`);
    }
    this.leaveOneOut = options.leaveOneOut;
    const hs = options.horizonSeconds ?? 86_400;
    if (typeof hs !== 'number' || !(hs > 0)) optionError('horizonSeconds', `must be a number > 0, got ${describe(hs)}`);
    this.horizonSeconds = hs;
    if (options.categoryClasses !== undefined) this.categoryClasses = options.categoryClasses;
    this.withPrice = config.itemFields.some((f) => f.name === 'price');
    this.plans = config.tasks.map((t) => this.plan(t, options));
  }

  private plan(task: TaskConfig, options: ExampleOptions): Plan {
    if (task.kind !== 'multiclass') {
      const key = task.target.includes('item') ? ['item'] : task.target;
      const kind = task.kind === 'rank' ? 'rank' : 'next';
      // A retrieval head's history features are computed from the user when batches are packed.
      let counter = -1;
      const keyOf = entityKey(key);
      if (task.kind === 'retrieval') {
        counter = this.ring.track(keyOf);
        this.trainRing?.track(keyOf);
      }
      return { kind, name: task.name, target: task.target, key, keyOf, dense: task.kind === 'rank' ? task.denseFeatures : 0, counter };
    }
    const c = options.classOf;
    const classOf = (typeof c === 'string' ? c : c?.[task.name]) ?? 'price';
    if (classOf !== 'price' && classOf !== 'category') optionError('classOf', `must be "price" or "category", got ${describe(classOf)}`);
    let thresholds: number[];
    if (options.priceThresholds !== undefined) {
      thresholds = options.priceThresholds;
      if (!Array.isArray(thresholds) || thresholds.length > task.classes - 1) {
        optionError('priceThresholds', `must be an array of at most ${task.classes - 1} numbers (task "${task.name}" has ${task.classes} classes)`);
      }
      thresholds.forEach((v, i) => {
        if (typeof v !== 'number' || !Number.isFinite(v) || (i > 0 && v <= thresholds[i - 1])) {
          optionError(`priceThresholds[${i}]`, `must be a finite number above the previous one, got ${describe(v)}`);
        }
      });
    } else {
      thresholds = Array.from({ length: task.classes - 1 }, (_, k) => 10 ** (1 + k / 2));
    }
    return { kind: 'class', name: task.name, classes: task.classes, classOf, thresholds };
  }

  /** The examples of one timeline (feeds its rows into the popularity ring first). */
  build(timeline: UserTimeline): TrainingExample[] {
    const rows = timeline.rows;
    // Leave-one-out holds a user's last two behaviours out of everything training sees, negatives included.
    const held = this.leaveOneOut !== undefined && rows.length >= 3 ? 2 : 0;
    const kept = rows.length - held;
    const heldOutUser = this.validUsers > 0 && isHeldOutUser(timeline.userId, this.validUsers);
    for (let r = 0; r < kept; r++) {
      this.ring.add(rows[r]);
      if (this.trainRing !== undefined && rows[r].time < this.trainBefore && !heldOutUser) this.trainRing.add(rows[r]);
    }
    // Seeded by the user and the timeline's first time, not by file position: the same log in another row
    // order (grouped by user, or sorted by time) gives the same cuts.
    const rng = mulberry32(seedFor(this.seed, `examples|${timeline.userId}|${rows[0]?.time ?? 0}`));
    let cuts: number[];
    let limit = kept;
    if (this.leaveOneOut === 'valid' || this.leaveOneOut === 'test') {
      if (held === 0) return [];
      const target = rows.length - (this.leaveOneOut === 'valid' ? 2 : 1);
      cuts = [target];
      limit = target + 1;
    } else {
      cuts = this.pickCuts(rows.slice(0, kept), rng);
    }
    if (cuts.length === 0) return [];
    const behaviors = rows.slice(0, cuts[cuts.length - 1]).map((r) => this.behavior(r));
    const out: TrainingExample[] = [];
    for (const i of cuts) {
      const time = rows[i].time;
      const training = time < this.trainBefore && !heldOutUser;
      const until = training ? Math.min(time + this.horizonSeconds, this.trainBefore) : time + this.horizonSeconds;
      let end = i + 1;
      while (end < limit && end - i < this.horizonBehaviors && rows[end].time < until) end++;
      const ring = training && this.trainRing !== undefined ? this.trainRing : this.ring;
      const labels: Record<string, LabelledCandidate[] | number> = {};
      for (const plan of this.plans) {
        const label = plan.kind === 'class' ? this.classLabel(plan, rows, i, end) : this.candidateLabels(plan, rows, i, end, rng, ring);
        if (label !== undefined) labels[plan.name] = label;
      }
      if (Object.keys(labels).length === 0) {
        this.stats.unlabelled++;
        continue;
      }
      const history = behaviors.slice(Math.max(0, i - this.config.maxSeqLen), i);
      out.push({ user: { behaviors: history, now: time }, userId: timeline.userId, time, labels });
      this.stats.examples++;
    }
    return out;
  }

  private pickCuts(rows: LogRow[], rng: () => number): number[] {
    const eligible: number[] = [];
    for (let i = Math.max(this.minHistory, 0); i < rows.length; ++i) {
      if (i === 0 || rows[i].time > rows[i - 1].time) eligible.push(i);
    }
    const E = eligible.length;
    if (E === 0) this.stats.shortTimelines++;
    if (E <= this.maxCuts) return eligible;
    this.stats.cutsNotTaken += E - this.maxCuts;
    const k = this.maxCuts;
    const cuts: number[] = new Array(k);
    for (let s = 0; s < k; ++s) {
      const lo = Math.floor((s * E) / k);
      const hi = Math.floor(((s + 1) * E) / k);
      cuts[s] = eligible[lo + Math.floor(rng() * (hi - lo))];
    }
    return cuts;
  }

  private behavior(row: LogRow): BehaviorInput {
    const b: BehaviorInput = { type: row.type, time: row.time, item: row.item };
    if (row.category !== undefined) b.category = row.category;
    if (row.shop !== undefined) b.shop = row.shop;
    if (row.brand !== undefined) b.brand = row.brand;
    if (row.scene !== undefined) b.scene = row.scene;
    if (this.withPrice && row.price !== undefined) b['price'] = row.price;
    if (row.extra !== undefined) for (const [k, v] of Object.entries(row.extra)) b[k] = v;
    return b;
  }

  private candidateLabels(
    plan: Extract<Plan, { kind: 'next' | 'rank' }>,
    rows: LogRow[],
    i: number,
    end: number,
    rng: () => number,
    ring: PopularityRing,
  ): LabelledCandidate[] | undefined {
    const keyOf = plan.keyOf;
    const candidate = (row: LogRow): CandidateInput => {
      const c: CandidateInput = {};
      for (const f of plan.target) {
        const v = fieldOf(row, f);
        if (v !== undefined) c[f] = v;
      }
      if (plan.dense > 0) c.dense = new Array<number>(plan.dense).fill(0);
      return c;
    };
    // Entities acted on in the horizon, with their best grade, in order of first appearance.
    const acted = new Map<string, { row: LogRow; grade: number }>();
    for (let j = i; j < end; ++j) {
      const key = keyOf(rows[j]);
      if (key === undefined) continue;
      const grade = GRADE_OF[rows[j].type] ?? GRADES.click;
      const seen = acted.get(key);
      if (seen === undefined) acted.set(key, { row: rows[j], grade });
      else if (grade > seen.grade) seen.grade = grade;
    }
    const out: LabelledCandidate[] = [];
    if (plan.kind === 'next') {
      const key = keyOf(rows[i]);
      if (key === undefined) return undefined;
      out.push({ candidate: candidate(rows[i]), label: 1 });
    } else {
      if (acted.size === 0) return undefined;
      for (const { row, grade } of acted.values()) out.push({ candidate: candidate(row), label: grade });
    }
    const negatives = ring.sample(rng, this.negatives, keyOf, new Set(acted.keys()));
    if (negatives.length < this.negatives) this.stats.shortOfNegatives++;
    for (const row of negatives) out.push({ candidate: candidate(row), label: 0 });
    if (plan.counter >= 0) {
      // The sampled softmax subtracts log Q; the positive's row is in the ring already (its timeline's rows are).
      out[0].logQ = ring.logQ(plan.counter, keyOf(rows[i])!);
      out.forEach((lc, n) => {
        if (n > 0) lc.logQ = ring.logQ(plan.counter, keyOf(negatives[n - 1])!);
      });
      // Mixed negative sampling: popular negatives alone never show the model the rare items a full catalogue
      // (or the sampled protocol's uniform draws) holds; these come uniformly from the distinct items.
      const taken = new Set([...acted.keys(), ...negatives.map((r) => keyOf(r)!)]);
      const uniform = ring.uniform(plan.counter, rng, this.uniformNegatives, taken);
      for (const row of uniform.rows) out.push({ candidate: candidate(row), label: 0, logQ: uniform.logQ });
    }
    return out;
  }

  private classLabel(plan: Extract<Plan, { kind: 'class' }>, rows: LogRow[], i: number, end: number): number | undefined {
    let j = i;
    while (j < end && rows[j].type !== 'buy') j++;
    if (j === end) return undefined;
    const row = rows[j];
    if (plan.classOf === 'price') {
      if (row.price === undefined) return undefined;
      let level = 0;
      while (level < plan.thresholds.length && row.price >= plan.thresholds[level]) level++;
      return level;
    }
    if (row.category === undefined) return undefined;
    if (this.categoryClasses === undefined) return bucket(row.category, plan.classes);
    if (!Object.hasOwn(this.categoryClasses, row.category)) return undefined;
    const cls = this.categoryClasses[row.category];
    if (!Number.isInteger(cls) || cls < 0 || cls >= plan.classes) {
      optionError(`categoryClasses.${row.category}`, `must be an integer in [0, ${plan.classes - 1}], got ${describe(cls)}`);
    }
    return cls;
  }
}
