/**
 * Request objects → packed columns (docs/model.md, Feature hashing and Inputs). Every value is validated on the way (the error names
 * the field: `users[3].behaviors[7].time`), histories are truncated to the most recent `maxSeqLen`, and
 * all strings of one table are hashed in a single native call.
 */
import { CandidateColumns, UserColumns } from './columns';
import { HISTORY_FEATURES, HISTORY_SCALE, HistoryTask, ResolvedConfig, TaskConfig, callerDense, denseCount, historyDense } from '../network/config';
import { DupnError, describe, inputError } from '../errors';
import { Categorical, hashKey, keyOf } from './hashing';
import { native } from '../native/addon';
import { PRIOR_FLOOR, historyField } from '../network/tensors';
import { SuccessorTable, recentItems, successorFeatures } from './successors';

/** One behaviour: item fields (config.itemFields; default item, category, shop, brand) plus properties. */
export interface BehaviorInput {
  /** Behaviour type, e.g. "pv" | "fav" | "cart" | "buy"; values outside the vocabulary share the unknown id. */
  type: string;
  /** Unix seconds. */
  time: number;
  /** Scene, e.g. "search"; missing or unknown → the unknown id. */
  scene?: string;
  /** Value of the `item` field (the default item fields are item, category, shop, brand); missing hashes as "". */
  item?: Categorical;
  /** Value of the `category` field; missing hashes as "". */
  category?: Categorical;
  /** Value of the `shop` field; missing hashes as "". */
  shop?: Categorical;
  /** Value of the `brand` field; missing hashes as "". */
  brand?: Categorical;
  /** Further item fields named in config.itemFields. */
  [field: string]: Categorical | undefined;
}

/** One user at request time. */
export interface UserInput {
  /** Oldest first; only the most recent `maxSeqLen` are used. */
  behaviors: BehaviorInput[];
  /** Text (NFKC-normalised, lower-cased, split on white space) or ready tokens. */
  query?: string | string[];
  /** Profile fields by name (config.profileFields). */
  profile?: Record<string, Categorical | undefined>;
  /** Request time in Unix seconds; defaults to the options' `now`, else this user's latest behaviour time. */
  now?: number;
}

/** One candidate to score: the item fields a task targets, plus dense features for `rank` tasks. */
export interface CandidateInput {
  /** Value of the `item` field, read when the task targets it; missing hashes as "". */
  item?: Categorical;
  /** Value of the `category` field, read when the task targets it. */
  category?: Categorical;
  /** Value of the `shop` field, read when the task targets it. */
  shop?: Categorical;
  /** Value of the `brand` field, read when the task targets it. */
  brand?: Categorical;
  /** Per-candidate dense ranking features (`rank` tasks with denseFeatures > 0). */
  dense?: ArrayLike<number>;
  [field: string]: Categorical | ArrayLike<number> | undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function finiteTime(v: unknown, path: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) inputError(path, `must be a finite number (Unix seconds), got ${describe(v)}`);
  return v;
}

/** The time-gap bucket (docs/model.md, Inputs): min(G-1, floor(log2(1 + max(0, now - ts) / 60))). */
export function gapBucket(now: number, ts: number, gapBuckets: number): number {
  const b = Math.floor(Math.log2(1 + Math.max(0, now - ts) / 60));
  return Math.min(gapBuckets - 1, b);
}

/** Query tokens (docs/model.md, Inputs): a string is NFKC-normalised, lower-cased and split on white space. */
export function queryTokens(query: unknown, path: string): string[] {
  if (query === undefined || query === null) return [];
  if (typeof query === 'string') return query.normalize('NFKC').toLowerCase().split(/\s+/u).filter((s) => s.length > 0);
  if (Array.isArray(query)) {
    return query.map((tok, i) => {
      if (typeof tok !== 'string') inputError(`${path}[${i}]`, `must be a string, got ${describe(tok)}`);
      return tok;
    });
  }
  inputError(path, `must be a string or an array of strings, got ${describe(query)}`);
}

/** Options of packing users into columns ({@link packUsers}, `Model.pack`, `Model.encode`). */
export interface PackOptions {
  /** Request time in Unix seconds for every user that has no `now` of its own (default: each user's latest behaviour time). */
  now?: number;
}

/** Packs users into columns. Throws DupnError('E_INPUT') naming the first bad field. */
export function packUsers(config: ResolvedConfig, users: unknown, options: PackOptions = {}): UserColumns {
  if (!Array.isArray(users)) inputError('users', `must be an array, got ${describe(users)}`);
  if (options.now !== undefined) finiteTime(options.now, 'options.now');
  const B = users.length;
  const F = config.itemFields.length;
  const P = config.profileFields.length;
  const props = config.properties;
  const typeIds = new Map(props.types.map((t, i) => [t, i]));
  const sceneIds = new Map(props.scenes.map((s, i) => [s, i]));

  const lengths = new Int32Array(B);
  const kept: { list: Record<string, unknown>[]; start: number }[] = new Array(B);
  let N = 0;
  for (let b = 0; b < B; ++b) {
    const u: unknown = users[b];
    if (!isObject(u)) inputError(`users[${b}]`, `must be an object, got ${describe(u)}`);
    const list = u['behaviors'];
    if (!Array.isArray(list)) inputError(`users[${b}].behaviors`, `must be an array, got ${describe(list)}`);
    const start = Math.max(0, list.length - config.maxSeqLen);
    lengths[b] = list.length - start;
    kept[b] = { list: list as Record<string, unknown>[], start };
    N += lengths[b];
  }

  const items = new Int32Array(N * F);
  const properties = new Int32Array(N * 3);
  const itemKeys: string[][] = config.itemFields.map(() => new Array<string>(N));
  const itemNames = config.itemFields.map((f) => f.name);
  const profileNames = new Set(config.profileFields.map((f) => f.name));
  const queryOffsets = new Int32Array(B + 1);
  const allTokens: string[] = [];
  const profileKeys: string[][] = config.profileFields.map(() => new Array<string>(B));

  // Paths of offending fields are built only on failure: a request has B·L·(F + 1) values to check.
  let row = 0;
  for (let b = 0; b < B; ++b) {
    const u = users[b] as Record<string, unknown>;
    const path = `users[${b}]`;
    const { list, start } = kept[b];
    const times = new Float64Array(lengths[b]);
    for (let i = start; i < list.length; ++i) {
      const beh: unknown = list[i];
      if (!isObject(beh)) inputError(`${path}.behaviors[${i}]`, `must be an object, got ${describe(beh)}`);
      const time = beh['time'];
      times[i - start] = typeof time === 'number' && Number.isFinite(time) ? time : finiteTime(time, `${path}.behaviors[${i}].time`);
      const type = beh['type'];
      if (typeof type !== 'string') inputError(`${path}.behaviors[${i}].type`, `must be a string, got ${describe(type)}`);
      const scene = beh['scene'];
      if (scene !== undefined && scene !== null && typeof scene !== 'string') inputError(`${path}.behaviors[${i}].scene`, `must be a string, got ${describe(scene)}`);
      const r = row + i - start;
      properties[r * 3] = typeIds.get(type) ?? props.types.length;
      properties[r * 3 + 2] = (typeof scene === 'string' ? sceneIds.get(scene) : undefined) ?? props.scenes.length;
      for (let f = 0; f < F; ++f) {
        const value = beh[itemNames[f]];
        itemKeys[f][r] = keyOf(value) ?? hashKey(value, `${path}.behaviors[${i}].${itemNames[f]}`);
      }
    }
    let now: number;
    if (u['now'] !== undefined) now = finiteTime(u['now'], `${path}.now`);
    else if (options.now !== undefined) now = options.now;
    else now = times.length > 0 ? times.reduce((a, t) => Math.max(a, t), -Infinity) : 0;
    for (let t = 0; t < times.length; ++t) properties[(row + t) * 3 + 1] = gapBucket(now, times[t], props.gapBuckets);
    row += lengths[b];

    if (config.query) for (const tok of queryTokens(u['query'], `${path}.query`)) allTokens.push(tok);
    queryOffsets[b + 1] = allTokens.length;

    const profile = u['profile'];
    if (profile !== undefined && profile !== null && !isObject(profile)) inputError(`${path}.profile`, `must be an object, got ${describe(profile)}`);
    const prof = (profile ?? {}) as Record<string, unknown>;
    for (const key of Object.keys(prof)) {
      if (!profileNames.has(key)) {
        inputError(`${path}.profile.${key}`, `is not a profile field (fields: ${config.profileFields.map((f) => f.name).join(', ') || 'none'})`);
      }
    }
    for (let f = 0; f < P; ++f) {
      const name = config.profileFields[f].name;
      profileKeys[f][b] = keyOf(prof[name]) ?? hashKey(prof[name], `${path}.profile.${name}`);
    }
  }

  const addon = native();
  config.itemFields.forEach((f, i) => addon.bucketStrings(itemKeys[i], f.buckets, items, i, F));
  const profile = new Int32Array(B * P);
  config.profileFields.forEach((f, i) => addon.bucketStrings(profileKeys[i], f.buckets, profile, i, P));
  const queryTokensOut = new Int32Array(allTokens.length);
  if (config.query) addon.bucketStrings(allTokens, config.query.buckets, queryTokensOut, 0, 1);
  return { lengths, items, properties, queryOffsets, queryTokens: queryTokensOut, profile };
}

/** What {@link historyIndex} returns: per entity key, its recency rank among the distinct ones and its count. */
export type HistoryIndex = Map<string, { back: number; count: number }>;

/**
 * Where a history head's dense input comes from when its candidates are packed (a retrieval head's, or a binary
 * or rank head's with `history`): per candidate c, the history its features are taken against (undefined: none, all
 * zero) and, for a retrieval head, its log prior given the bucket of its history field. Absent: no history, and
 * the prior of an item never seen ({@link PRIOR_FLOOR}).
 */
export interface RetrievalInputs {
  history(c: number): HistoryIndex | undefined;
  prior(c: number, bucket: number): number;
  /** With successor features: writes candidate c's ({@link successorFeatures}) at out[at ..]; absent: all 0. */
  successors?(c: number, bucket: number, out: Float32Array, at: number): void;
}

/**
 * The usual {@link RetrievalInputs}: every candidate against one user's history (`history`, when the caller has
 * it already: {@link userHistory} on the task's history field), the prior from `table`.
 */
export function userInputs(
  config: ResolvedConfig,
  task: HistoryTask,
  user: UserInput | undefined,
  table: Float32Array | undefined,
  successors?: SuccessorTable,
  history = userHistory(config, historyField(task), user),
): RetrievalInputs {
  const behaviors = behaviorsOf(user);
  const after = user === undefined || successors === undefined ? undefined : successors.after(recentItems(config, task, behaviors).recent);
  return {
    history: () => history,
    prior: (_c, bucket) => (table ? table[bucket] : PRIOR_FLOOR),
    successors: (_c, bucket, out, at) => successorFeatures(after?.get(bucket), out, at),
  };
}

function behaviorsOf(user: UserInput | undefined): readonly BehaviorInput[] {
  return isObject(user) && Array.isArray(user.behaviors) ? user.behaviors : [];
}

/** `user`'s {@link historyIndex} on `field`; undefined without a user. */
export function userHistory(config: ResolvedConfig, field: string, user: UserInput | undefined): HistoryIndex | undefined {
  return user === undefined ? undefined : historyIndex(behaviorsOf(user), field, config.maxSeqLen);
}

/**
 * How recently and how often the user acted on each entity of their history: key (the value of `field`, as
 * hashed) → { back: its rank among the distinct entities by last occurrence (1 = the latest; repeated rows
 * of one item do not push the others back), count }. Only the last `maxSeqLen` behaviours count, as only
 * they reach the model.
 */
export function historyIndex(behaviors: readonly BehaviorInput[], field: string, maxSeqLen: number): HistoryIndex {
  const index: HistoryIndex = new Map();
  const from = Math.max(0, behaviors.length - maxSeqLen);
  for (let i = behaviors.length - 1; i >= from; i--) {
    const v = behaviors[i]?.[field];
    if (v === undefined || v === null) continue;
    const key = hashKey(v, `behaviors[${i}].${field}`);
    const seen = index.get(key);
    if (seen === undefined) index.set(key, { back: index.size + 1, count: 1 });
    else seen.count++;
  }
  return index;
}

/**
 * The user part of a candidate's history features (a retrieval head's h, all but the last, the prior): a
 * one-hot of {@link recencyBucket}(back) (back: the {@link historyIndex} recency rank), then log(1 + count),
 * all times {@link HISTORY_SCALE}; all zero when the user never acted on it. Writes out[at .. at + 9).
 */
export function historyFeatures(seen: { back: number; count: number } | undefined, out: Float32Array, at: number): void {
  out.fill(0, at, at + HISTORY_FEATURES - 1);
  if (seen === undefined) return;
  out[at + recencyBucket(seen.back)] = HISTORY_SCALE;
  out[at + HISTORY_FEATURES - 2] = HISTORY_SCALE * Math.log1p(seen.count);
}

/**
 * The recency bucket of a distinct-item rank: ranks 1, 2, 3 and 4 each their own (the next item is most
 * often one of the last few, and their order matters), then 5–7, 8–15, 16–31, 32 and more.
 */
export function recencyBucket(back: number): number {
  if (back <= 4) return Math.max(0, back - 1);
  return Math.min(RECENCY_BUCKETS - 1, 2 + Math.floor(Math.log2(back)));
}

const RECENCY_BUCKETS = HISTORY_FEATURES - 2;

export { HISTORY_SCALE } from '../network/config';

/**
 * Packs candidates for one or more binary/rank/retrieval tasks: the union of their target fields is hashed
 * (other columns stay 0); `dense` carries the rank tasks' dense features (which must agree in width), and each
 * history head (a retrieval head, or a binary or rank head with `history`) gets its own dense input in
 * `taskDense`: a rank head's own numbers, then its history features from `inputs` (per task when a function),
 * with a retrieval head's successor features and log prior. Without rank dense features, `dense` is the first
 * history head's input.
 */
export function packCandidates(
  config: ResolvedConfig,
  tasks: TaskConfig | TaskConfig[],
  candidates: unknown,
  inputs?: RetrievalInputs | ((task: HistoryTask) => RetrievalInputs | undefined),
): CandidateColumns {
  if (!Array.isArray(candidates)) inputError('candidates', `must be an array, got ${describe(candidates)}`);
  const list = Array.isArray(tasks) ? tasks : [tasks];
  const names = new Set<string>();
  let D = 0;
  const historyTasks: HistoryTask[] = [];
  for (const task of list) {
    if (task.kind === 'multiclass') throw new DupnError('E_TASK', `task "${task.name}" is multiclass: use predict(), not score()`, { path: 'task' });
    task.target.forEach((n) => names.add(n));
    if (historyDense(task)) historyTasks.push(task);
    const d = callerDense(task);
    if (d > 0) {
      if (D > 0 && D !== d) {
        throw new DupnError('E_TASK', `tasks: tasks with different dense inputs (denseFeatures: ${D}, ${d}) cannot be scored in one call`, { path: 'tasks' });
      }
      D = d;
    }
  }
  const C = candidates.length;
  const F = config.itemFields.length;
  const fields = config.itemFields.map((f, i) => ({ name: f.name, buckets: f.buckets, index: i })).filter((f) => names.has(f.name));
  const keys: string[][] = fields.map(() => new Array<string>(C));
  const dense = new Float32Array(C * D);
  for (let c = 0; c < C; ++c) {
    const cand: unknown = candidates[c];
    if (!isObject(cand)) inputError(`candidates[${c}]`, `must be an object, got ${describe(cand)}`);
    for (let j = 0; j < fields.length; j++) {
      const value = cand[fields[j].name];
      keys[j][c] = keyOf(value) ?? hashKey(value, `candidates[${c}].${fields[j].name}`);
    }
    if (D > 0) {
      const path = `candidates[${c}]`;
      const d = cand['dense'];
      if (d === undefined || d === null || typeof d !== 'object' || typeof (d as ArrayLike<number>).length !== 'number') {
        inputError(`${path}.dense`, `must be an array of ${D} numbers, got ${describe(d)}`);
      }
      const arr = d as ArrayLike<unknown>;
      if (arr.length !== D) inputError(`${path}.dense`, `must have ${D} entries, got ${arr.length}`);
      for (let k = 0; k < D; ++k) {
        const v = arr[k];
        if (typeof v !== 'number' || !Number.isFinite(v)) inputError(`${path}.dense[${k}]`, `must be a finite number, got ${describe(v)}`);
        dense[c * D + k] = v;
      }
    }
  }
  const items = new Int32Array(C * F);
  const addon = native();
  fields.forEach((f, j) => addon.bucketStrings(keys[j], f.buckets, items, f.index, F));
  // The history fields are target fields, so their keys are hashed above already.
  return withHistory(config, historyTasks, { items, dense }, (field) => keys[fields.findIndex((f) => f.name === field)], inputs);
}

/**
 * Candidate columns already packed (`items`, and in `dense` the rank heads' own numbers, which a rank head's input
 * starts with) with the dense inputs of history heads `tasks` added as `taskDense`: `keys(field)[c]` is candidate
 * c's value of a field as {@link hashKey} gives it (a target field of the task). Their history features come from
 * `inputs` (per task when a function), with a retrieval head's successor features and log prior. Without rank
 * numbers, `dense` is the first history head's input (where a caller of one head always found it).
 */
export function withHistory(
  config: ResolvedConfig,
  tasks: HistoryTask[],
  cols: CandidateColumns,
  keys: (field: string) => ArrayLike<string>,
  inputs?: RetrievalInputs | ((task: HistoryTask) => RetrievalInputs | undefined),
): CandidateColumns {
  if (tasks.length === 0) return cols;
  const F = config.itemFields.length;
  const { items, dense } = cols;
  const C = F > 0 ? items.length / F : 0;
  const taskDense: Record<string, Float32Array> = {};
  // Heads on one field (ctr, l2r and the retrieval head all read the item's) ask for its keys once.
  const keysOf = new Map<string, ArrayLike<string>>();
  for (const task of tasks) {
    const W = denseCount(task);
    const D = callerDense(task);
    const out = new Float32Array(C * W);
    const source = typeof inputs === 'function' ? inputs(task) : inputs;
    const field = historyField(task);
    let key = keysOf.get(field);
    if (key === undefined) keysOf.set(field, (key = keys(field)));
    const fi = config.itemFields.findIndex((f) => f.name === field);
    for (let c = 0; c < C; c++) {
      for (let k = 0; k < D; k++) out[c * W + k] = dense[c * D + k];
      historyFeatures(source?.history(c)?.get(key[c]), out, c * W + D);
      if (task.kind !== 'retrieval') continue;
      const b = items[c * F + fi];
      if (W > HISTORY_FEATURES) source?.successors?.(c, b, out, c * W + HISTORY_FEATURES - 1);
      out[c * W + W - 1] = source ? source.prior(c, b) : PRIOR_FLOOR;
    }
    taskDense[task.name] = out;
  }
  return { items, dense: C > 0 && dense.length > 0 ? dense : taskDense[tasks[0].name], taskDense };
}
