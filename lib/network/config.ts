/**
 * Model configuration (docs/model.md, Configuration and defaults): types, paper-size defaults, validation and the dimensions derived from it.
 * Validation is strict: unknown keys, wrong types, bad sizes, duplicate names and dangling references all
 * throw `DupnError('E_CONFIG')` naming the path of the offending key (`tasks[2].target[1]`).
 */
import { DupnError, describe } from '../errors';

/** One categorical input with its own embedding table. `dim: 0` switches it off (no table). */
export interface TableField {
  /** Field name, 1–64 characters of [A-Za-z0-9_-], unique in its list; the key in inputs and tensor names. */
  name: string;
  /** Rows of the table: a value goes to row fingerprint64(value) mod `buckets`; 1 to 2^31 − 1. */
  buckets: number;
  /** Embedding width, 0 to 4096 (0: the field is off and has no table). */
  dim: number;
}

/** The behaviour properties that steer the LSTM gates and the attention (p_t = [type ; gap ; scene]). */
export interface PropertiesConfig {
  /** Behaviour-type vocabulary (default pv, fav, cart, buy); `types[i]` → row i, anything else → row `types.length`. */
  types: string[];
  /** Width of the type embedding, 0 to 4096 (default 8; 0: off). */
  typeDim: number;
  /**
   * Number of time-gap buckets G, 1 to 64 (default 24): bucket = min(G-1, floor(log2(1 + max(0, now - ts) / 60))),
   * times in seconds.
   */
  gapBuckets: number;
  /** Width of the time-gap embedding, 0 to 4096 (default 4; 0: off). */
  gapDim: number;
  /** Scene vocabulary (default search, recommend, ads); missing or unknown → row `scenes.length`. */
  scenes: string[];
  /** Width of the scene embedding, 0 to 4096 (default 4; 0: off). */
  sceneDim: number;
}

/** The query input: its tokens share one table and q is the mean of their embeddings. */
export interface QueryConfig {
  /** Rows of the query-token table, 1 to 2^31 − 1 (default 2^18). */
  buckets: number;
  /** Width of q, 0 to 4096 (default 32; 0 is the same as `query: null`). */
  dim: number;
}

/**
 * A binary head (CTR, SPP, …): logit = MLP([U ; t]), or MLP([U ; t ; h]) with `history`; `target` lists the item
 * fields whose embeddings form t.
 */
export interface BinaryTask {
  /** Head name, 1–64 characters of [A-Za-z0-9_-], unique among the tasks (tensors `head.<name>.*`). */
  name: string;
  /** The kind: a binary head. */
  kind: 'binary';
  /** Item fields whose embeddings, concatenated in this order, form t (default: every item field). */
  target: string[];
  /** Widths of the hidden ReLU layers (default [64]); a 1-wide output layer follows. */
  layers: number[];
  /**
   * Whether the first layer also reads the candidate's history features h: whether, how recently and how often
   * the user acted on the candidate's history field (`item` when targeted, else the first target; e.g. the shop
   * for a shop head), the {@link HEAD_HISTORY_FEATURES} numbers a retrieval head's h starts with, computed by
   * dupn from the user's behaviours. Default false (the paper's head); present in a resolved config only when true.
   */
  history?: boolean;
}

/** A ranking head (L2R): like `binary`, plus `denseFeatures` per-candidate numbers appended to the input. */
export interface RankTask {
  /** Head name, unique among the tasks (see {@link BinaryTask.name}). */
  name: string;
  /** The kind: a ranking head. */
  kind: 'rank';
  /** Item fields whose embeddings form t, in this order (default: every item field). */
  target: string[];
  /** Widths of the hidden ReLU layers (default [64]); a 1-wide output layer (the raw score) follows. */
  layers: number[];
  /** Per-candidate dense numbers appended after t to the first layer's input, 0 to 4096 (default 0). */
  denseFeatures: number;
  /**
   * Whether the first layer also reads the candidate's history features, after the dense numbers: as
   * {@link BinaryTask.history}. Default false; present in a resolved config only when true.
   */
  history?: boolean;
}

/** A user-level classifier (PPP): softmax(MLP(U)). */
export interface MulticlassTask {
  /** Head name, unique among the tasks (see {@link BinaryTask.name}). */
  name: string;
  /** The kind: a user-level classifier. */
  kind: 'multiclass';
  /** Number of classes, 2 to 100000 (default 7, the paper's price levels). */
  classes: number;
  /** Widths of the hidden ReLU layers (default [64]); a `classes`-wide output layer follows. */
  layers: number[];
}

/**
 * A retrieval head (candidate generation): score = ⟨user tower(U), item tower(t)⟩ + w·h, where both towers
 * are ReLU MLPs of widths `layers` (the last width is the vectors' dimension, linear) and, with `history`,
 * h holds the {@link HISTORY_FEATURES} numbers that say whether and how recently the user acted on the
 * candidate (computed by dupn from the user's behaviours; see `historyFeatures`) and how popular it was in
 * training. Item vectors can be precomputed for a catalogue and searched for the top k (`Model.retrieve`).
 */
export interface RetrievalTask {
  /** Head name, unique among the tasks (see {@link BinaryTask.name}). */
  name: string;
  /** The kind: a retrieval head. */
  kind: 'retrieval';
  /** Item fields whose embeddings form the item tower's input t (default: every item field; one must have dim > 0). */
  target: string[];
  /** Widths of both towers' layers (default [64]); the last is the width of the user and item vectors. */
  layers: number[];
  /** Whether the score has the history term w·h (default true). */
  history: boolean;
  /**
   * Successor features (needs `history`): h also holds how often the candidate followed each of the user's
   * last {@link SUCCESSOR_FEATURES} distinct items in training (the sequential-rules weights), from a table of
   * up to `perItem` successors for each of up to `items` items (`head.<task>.successors.*`, set by
   * `Trainer.setSuccessors`). Absent: none.
   */
  successors?: SuccessorTableSize;
}

/** The capacity of a retrieval head's successor table. */
export interface SuccessorTableSize {
  /** Items that can have successors (the most-followed ones when the log has more). */
  items: number;
  /** Successors kept per item (the heaviest). */
  perItem: number;
}

/** One head of the model, told apart by `kind`. */
export type TaskConfig = BinaryTask | RankTask | MulticlassTask | RetrievalTask;

/**
 * Width of the dense input of a retrieval head with `history`: a one-hot of the candidate's recency among the
 * user's distinct items (8 buckets), log(1 + times the user acted on it), and the item's log prior (its log
 * popularity during training, kept in the tensor `head.<task>.prior`).
 */
export const HISTORY_FEATURES = 10;

/**
 * Width of a binary or rank head's history input (`BinaryTask.history`, `RankTask.history`): a retrieval head's h
 * without the prior.
 */
export const HEAD_HISTORY_FEATURES = HISTORY_FEATURES - 1;

/**
 * Successor features of a retrieval head with `successors`: one per recent distinct item (the last, the one
 * before, …), inserted before the prior, so h is [recency (8) ; log count ; successors (3) ; prior].
 */
export const SUCCESSOR_FEATURES = 3;

/** Steps after an item within which a later one counts as its successor (the sequential-rules window). */
export const SUCCESSOR_WINDOW = 10;

/**
 * Scale of the history features. Adam moves each weight by about the learning rate per step whatever its
 * gradient, and these few weights must grow to the size of the towers' dot products within an epoch: an
 * input scaled by 8 is the same as an 8× learning rate on them (about the embedding rows' rate, which they
 * resemble: one weight per bucket).
 */
export const HISTORY_SCALE = 32;

/** Successor tables hold bucket ids as float32, exact below 2^24. */
export const MAX_SUCCESSOR_BUCKETS = 1 << 24;

/** The fully resolved configuration: every key present, defaults applied (each key as in {@link DupnConfig}). */
export interface ResolvedConfig {
  /** Most recent behaviours kept per user. */
  maxSeqLen: number;
  /** The item fields of a behaviour, in the order of e_t. */
  itemFields: TableField[];
  /** The behaviour properties (p_t). */
  properties: PropertiesConfig;
  /** `null` when the model has no query input. */
  query: QueryConfig | null;
  /** The user's profile fields, in the order of u. */
  profileFields: TableField[];
  /** LSTM hidden size H per direction. */
  hidden: number;
  /** Two LSTM directions (true) or the forward one only. */
  bidirectional: boolean;
  /** Attention hidden size A. */
  attentionHidden: number;
  /** The heads, in config order. */
  tasks: TaskConfig[];
}

type TaskInput =
  | ({ name: string; kind: 'binary' } & Partial<Omit<BinaryTask, 'name' | 'kind'>>)
  | ({ name: string; kind: 'rank' } & Partial<Omit<RankTask, 'name' | 'kind'>>)
  | ({ name: string; kind: 'multiclass' } & Partial<Omit<MulticlassTask, 'name' | 'kind'>>)
  | ({ name: string; kind: 'retrieval' } & Partial<Omit<RetrievalTask, 'name' | 'kind'>>);

/** Config as a caller writes it: every key optional; `properties` merges key by key with the defaults. */
export interface DupnConfig {
  /** Behaviours kept per user: the most recent ones, 1 to 100000 (default 100). */
  maxSeqLen?: number;
  /**
   * The item fields of each behaviour (and of candidates), whose embeddings concatenated in this order form e_t;
   * at most 64, at least one with dim > 0. Default item (2^20 buckets, dim 32), category (2^16, 16),
   * shop (2^16, 8), brand (2^16, 8): Dx = 64.
   */
  itemFields?: TableField[];
  /** Behaviour properties, merged key by key with the defaults (type 8, gap 24 buckets × 4, scene 4: Dp = 16). */
  properties?: Partial<PropertiesConfig>;
  /** The query-token table (default 2^18 buckets, dim 32); `null` or dim 0: no query input. */
  query?: QueryConfig | null;
  /**
   * The user's profile fields, whose embeddings concatenated in this order form u; at most 64. Default age (64
   * buckets), gender (8), power (16), city (4096), each dim 8: Du = 32. `[]`: no profile.
   */
  profileFields?: TableField[];
  /** LSTM hidden size H per direction, 1 to 4096 (default 128). */
  hidden?: number;
  /** Run the LSTM in both directions, H_t = [h_fw ; h_bw] (default true); false: the forward direction only. */
  bidirectional?: boolean;
  /** Hidden size A of the attention scorer, 1 to 4096 (default 64). */
  attentionHidden?: number;
  /**
   * The heads, at most 64, with unique names; omitted keys of each take the defaults of its kind. Default: ctr
   * (binary, every item field, layers [128, 64]), l2r (rank, the same), ppp (multiclass, 7 classes, [64]),
   * spp (binary on shop, [64]).
   */
  tasks?: TaskInput[];
}

const ALL_ITEM_FIELDS = ['item', 'category', 'shop', 'brand'];

/** The paper-size defaults (docs/model.md, Configuration and defaults; ≈47 MFLOP per user at L = 100). */
export function defaultConfig(): ResolvedConfig {
  return {
    maxSeqLen: 100,
    itemFields: [
      { name: 'item', buckets: 1 << 20, dim: 32 },
      { name: 'category', buckets: 1 << 16, dim: 16 },
      { name: 'shop', buckets: 1 << 16, dim: 8 },
      { name: 'brand', buckets: 1 << 16, dim: 8 },
    ],
    properties: {
      types: ['pv', 'fav', 'cart', 'buy'],
      typeDim: 8,
      gapBuckets: 24,
      gapDim: 4,
      scenes: ['search', 'recommend', 'ads'],
      sceneDim: 4,
    },
    query: { buckets: 1 << 18, dim: 32 },
    profileFields: [
      { name: 'age', buckets: 64, dim: 8 },
      { name: 'gender', buckets: 8, dim: 8 },
      { name: 'power', buckets: 16, dim: 8 },
      { name: 'city', buckets: 4096, dim: 8 },
    ],
    hidden: 128,
    bidirectional: true,
    attentionHidden: 64,
    tasks: [
      { name: 'ctr', kind: 'binary', target: [...ALL_ITEM_FIELDS], layers: [128, 64] },
      { name: 'l2r', kind: 'rank', target: [...ALL_ITEM_FIELDS], layers: [128, 64], denseFeatures: 0 },
      { name: 'ppp', kind: 'multiclass', classes: 7, layers: [64] },
      { name: 'spp', kind: 'binary', target: ['shop'], layers: [64] },
    ],
  };
}

// Limits keep a hostile config (or model-file header) from asking for absurd allocations.
const MAX_BUCKETS = 0x7fffffff;
const MAX_DIM = 4096;
const MAX_SEQ = 100_000;
const MAX_VOCAB = 4096;
const NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;

function fail(path: string, problem: string): never {
  throw new DupnError('E_CONFIG', `${path === '' ? 'config' : `config.${path}`}: ${problem}`, { path });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

function checkKeys(obj: Record<string, unknown>, allowed: readonly string[], path: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      fail(path === '' ? key : `${path}.${key}`, `unknown key (allowed: ${allowed.join(', ')})`);
    }
  }
}

function int(v: unknown, path: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    fail(path, `must be an integer in [${min}, ${max}], got ${describe(v)}`);
  }
  return v;
}

function name(v: unknown, path: string): string {
  if (typeof v !== 'string' || !NAME_RE.test(v)) {
    fail(path, `must be 1–64 characters of [A-Za-z0-9_-], got ${describe(v)}`);
  }
  return v;
}

function array(v: unknown, path: string, maxLength: number): unknown[] {
  if (!Array.isArray(v)) fail(path, `must be an array, got ${describe(v)}`);
  if (v.length > maxLength) fail(path, `must have at most ${maxLength} entries, got ${v.length}`);
  return v;
}

function vocabulary(v: unknown, path: string): string[] {
  const out: string[] = [];
  array(v, path, MAX_VOCAB).forEach((s, i) => {
    if (typeof s !== 'string' || s.length === 0) fail(`${path}[${i}]`, `must be a non-empty string, got ${describe(s)}`);
    if (out.includes(s)) fail(`${path}[${i}]`, `duplicate entry ${JSON.stringify(s)}`);
    out.push(s);
  });
  return out;
}

function tableFields(v: unknown, path: string): TableField[] {
  const out: TableField[] = [];
  array(v, path, 64).forEach((f, i) => {
    const p = `${path}[${i}]`;
    if (!isPlainObject(f)) fail(p, `must be an object, got ${describe(f)}`);
    checkKeys(f, ['name', 'buckets', 'dim'], p);
    const field = {
      name: name(f['name'], `${p}.name`),
      buckets: int(f['buckets'], `${p}.buckets`, 1, MAX_BUCKETS),
      dim: int(f['dim'], `${p}.dim`, 0, MAX_DIM),
    };
    if (out.some((o) => o.name === field.name)) fail(`${p}.name`, `duplicate field name ${JSON.stringify(field.name)}`);
    out.push(field);
  });
  return out;
}

function bool(v: unknown, fallback: boolean, path: string): boolean {
  const b = v ?? fallback;
  if (typeof b !== 'boolean') fail(path, `must be true or false, got ${describe(b)}`);
  return b;
}

function layers(v: unknown, path: string): number[] {
  return array(v, path, 16).map((n, i) => int(n, `${path}[${i}]`, 1, MAX_DIM));
}

// The same rule as tensors.ts historyField (which imports this file).
const historyFieldOf = (target: string[]): string => (target.includes('item') ? 'item' : target[0]);

function successorSize(v: unknown, path: string, history: boolean, field: TableField): SuccessorTableSize | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isPlainObject(v)) fail(path, `must be { items, perItem } or absent, got ${describe(v)}`);
  checkKeys(v, ['items', 'perItem'], path);
  if (!history) fail(path, 'needs history: true (the successor features are part of the history features)');
  if (field.buckets > MAX_SUCCESSOR_BUCKETS) {
    fail(path, `needs the ${field.name} table to have at most ${MAX_SUCCESSOR_BUCKETS} buckets (bucket ids are stored as float32), it has ${field.buckets}`);
  }
  return { items: int(v['items'], `${path}.items`, 1, field.buckets), perItem: int(v['perItem'], `${path}.perItem`, 1, 256) };
}

function task(v: unknown, path: string, itemFields: TableField[]): TaskConfig {
  if (!isPlainObject(v)) fail(path, `must be an object, got ${describe(v)}`);
  const taskName = name(v['name'], `${path}.name`);
  const kind = v['kind'];
  if (kind === 'binary' || kind === 'rank' || kind === 'retrieval') {
    const keys = { binary: ['history'], rank: ['denseFeatures', 'history'], retrieval: ['history', 'successors'] }[kind];
    checkKeys(v, ['name', 'kind', 'target', 'layers', ...keys], path);
    const targetRaw = v['target'] === undefined ? itemFields.map((f) => f.name) : v['target'];
    const target: string[] = [];
    array(targetRaw, `${path}.target`, 64).forEach((t, i) => {
      const tp = `${path}.target[${i}]`;
      if (typeof t !== 'string') fail(tp, `must be an item field name, got ${describe(t)}`);
      if (!itemFields.some((f) => f.name === t)) {
        fail(tp, `names no item field: ${JSON.stringify(t)} (item fields: ${itemFields.map((f) => f.name).join(', ')})`);
      }
      if (target.includes(t)) fail(tp, `duplicate target field ${JSON.stringify(t)}`);
      target.push(t);
    });
    if (target.length === 0) fail(`${path}.target`, 'must name at least one item field');
    const hidden = layers(v['layers'] ?? [64], `${path}.layers`);
    if (kind === 'retrieval') {
      if (hidden.length === 0) fail(`${path}.layers`, 'must give at least the vector width (e.g. [64])');
      if (!target.some((t) => (itemFields.find((f) => f.name === t)?.dim ?? 0) > 0)) {
        fail(`${path}.target`, 'must name an item field with an embedding (dim > 0): the item tower needs an input');
      }
      const history = bool(v['history'], true, `${path}.history`);
      const successors = successorSize(v['successors'], `${path}.successors`, history, itemFields.find((f) => f.name === historyFieldOf(target))!);
      return { name: taskName, kind, target, layers: hidden, history, ...(successors ? { successors } : {}) };
    }
    // Present in the resolved config only when on, so the paper's heads resolve (and files save) as before.
    const history = bool(v['history'], false, `${path}.history`) ? { history: true } : {};
    if (kind === 'binary') return { name: taskName, kind, target, layers: hidden, ...history };
    const denseFeatures = int(v['denseFeatures'] ?? 0, `${path}.denseFeatures`, 0, MAX_DIM);
    return { name: taskName, kind, target, layers: hidden, denseFeatures, ...history };
  }
  if (kind === 'multiclass') {
    checkKeys(v, ['name', 'kind', 'classes', 'layers'], path);
    return {
      name: taskName,
      kind,
      classes: int(v['classes'] ?? 7, `${path}.classes`, 2, 100_000),
      layers: layers(v['layers'] ?? [64], `${path}.layers`),
    };
  }
  fail(`${path}.kind`, `must be "binary", "rank", "multiclass" or "retrieval", got ${describe(kind)}`);
}

/**
 * Applies defaults to `input` and validates every key. Throws `DupnError('E_CONFIG')` naming the path.
 * The result is a fresh object; `input` is not modified.
 */
export function resolveConfig(input: unknown = {}): ResolvedConfig {
  if (!isPlainObject(input)) fail('', `must be an object, got ${describe(input)}`);
  const def = defaultConfig();
  checkKeys(input, Object.keys(def), '');

  const maxSeqLen = int(input['maxSeqLen'] ?? def.maxSeqLen, 'maxSeqLen', 1, MAX_SEQ);
  const itemFields = input['itemFields'] === undefined ? def.itemFields : tableFields(input['itemFields'], 'itemFields');
  if (itemFields.reduce((s, f) => s + f.dim, 0) === 0) fail('itemFields', 'needs at least one field with dim > 0');

  const propsIn = input['properties'] ?? {};
  if (!isPlainObject(propsIn)) fail('properties', `must be an object, got ${describe(propsIn)}`);
  checkKeys(propsIn, Object.keys(def.properties), 'properties');
  const dp = def.properties;
  const properties: PropertiesConfig = {
    types: propsIn['types'] === undefined ? dp.types : vocabulary(propsIn['types'], 'properties.types'),
    typeDim: int(propsIn['typeDim'] ?? dp.typeDim, 'properties.typeDim', 0, MAX_DIM),
    gapBuckets: int(propsIn['gapBuckets'] ?? dp.gapBuckets, 'properties.gapBuckets', 1, 64),
    gapDim: int(propsIn['gapDim'] ?? dp.gapDim, 'properties.gapDim', 0, MAX_DIM),
    scenes: propsIn['scenes'] === undefined ? dp.scenes : vocabulary(propsIn['scenes'], 'properties.scenes'),
    sceneDim: int(propsIn['sceneDim'] ?? dp.sceneDim, 'properties.sceneDim', 0, MAX_DIM),
  };

  let query: QueryConfig | null = def.query;
  if (input['query'] === null) query = null;
  else if (input['query'] !== undefined) {
    const q = input['query'];
    if (!isPlainObject(q)) fail('query', `must be an object or null, got ${describe(q)}`);
    checkKeys(q, ['buckets', 'dim'], 'query');
    query = { buckets: int(q['buckets'], 'query.buckets', 1, MAX_BUCKETS), dim: int(q['dim'], 'query.dim', 0, MAX_DIM) };
    if (query.dim === 0) query = null;
  }

  const profileFields =
    input['profileFields'] === undefined ? def.profileFields : tableFields(input['profileFields'], 'profileFields');
  const hidden = int(input['hidden'] ?? def.hidden, 'hidden', 1, MAX_DIM);
  const bidirectional = input['bidirectional'] ?? def.bidirectional;
  if (typeof bidirectional !== 'boolean') fail('bidirectional', `must be a boolean, got ${describe(bidirectional)}`);
  const attentionHidden = int(input['attentionHidden'] ?? def.attentionHidden, 'attentionHidden', 1, MAX_DIM);

  // Default tasks are checked too: with custom itemFields their targets may name fields that are gone.
  const tasks: TaskConfig[] = array(input['tasks'] ?? def.tasks, 'tasks', 64).map((t, i) => {
    try {
      return task(t, `tasks[${i}]`, itemFields);
    } catch (e) {
      if (input['tasks'] !== undefined || !(e instanceof DupnError)) throw e;
      throw new DupnError('E_CONFIG', `${e.message} (a default task: give \`tasks\` explicitly for these itemFields)`, { path: e.path });
    }
  });
  tasks.forEach((t, i) => {
    if (tasks.findIndex((o) => o.name === t.name) !== i) fail(`tasks[${i}].name`, `duplicate task name ${JSON.stringify(t.name)}`);
    // Training takes a positive's own transitions out of its successor features, counted up to the window back:
    // a shorter history would leave part of the label in them.
    if (t.kind === 'retrieval' && t.successors && maxSeqLen < SUCCESSOR_WINDOW) {
      fail(`tasks[${i}].successors`, `needs maxSeqLen ≥ ${SUCCESSOR_WINDOW} (the successor window), got maxSeqLen ${maxSeqLen}`);
    }
  });

  return { maxSeqLen, itemFields, properties, query, profileFields, hidden, bidirectional, attentionHidden, tasks };
}

/** Dimensions derived from a resolved config (names follow docs/model.md, Notation). */
export interface Dims {
  /** Item-field embedding width (e_t). */
  dx: number;
  /** Property embedding width (p_t): type + gap + scene. */
  dp: number;
  /** Query vector width (0 without query). */
  dq: number;
  /** Profile embedding width (u). */
  du: number;
  /** LSTM hidden size H per direction. */
  hidden: number;
  /** 1 or 2 directions. */
  directions: number;
  /** Width of H_t and r: hidden × directions. */
  dh: number;
  /** Attention input width: dh + dq + du + dp. */
  attnIn: number;
  /** Attention hidden size A. */
  attentionHidden: number;
  /** Width of U = [r ; u ; q]. */
  userDim: number;
}

/** The widths that follow from a resolved config: Dx, Dp, Dq, Du, H_t, the attention input and U. */
export function deriveDims(c: ResolvedConfig): Dims {
  const dx = c.itemFields.reduce((s, f) => s + f.dim, 0);
  const p = c.properties;
  const dp = p.typeDim + p.gapDim + p.sceneDim;
  const dq = c.query?.dim ?? 0;
  const du = c.profileFields.reduce((s, f) => s + f.dim, 0);
  const directions = c.bidirectional ? 2 : 1;
  const dh = c.hidden * directions;
  return {
    dx,
    dp,
    dq,
    du,
    hidden: c.hidden,
    directions,
    dh,
    attnIn: dh + dq + du + dp,
    attentionHidden: c.attentionHidden,
    userDim: dh + du + dq,
  };
}

/** Width of a task's target embedding t (0 for multiclass). */
export function targetDim(c: ResolvedConfig, t: TaskConfig): number {
  if (t.kind === 'multiclass') return 0;
  return t.target.reduce((s, n) => s + (c.itemFields.find((f) => f.name === n)?.dim ?? 0), 0);
}

/**
 * Output width of a task's last layer: 1 for binary/rank, `classes` for multiclass, the vectors' width
 * (the last of `layers`) for retrieval.
 */
export function taskOutputs(t: TaskConfig): number {
  if (t.kind === 'retrieval') return t.layers[t.layers.length - 1];
  return t.kind === 'multiclass' ? t.classes : 1;
}

/**
 * Per-candidate dense numbers a task reads: rank's denseFeatures, then a binary or rank head's history features;
 * a retrieval head's history features.
 */
export function denseCount(t: TaskConfig): number {
  if (t.kind === 'retrieval') return t.history ? HISTORY_FEATURES + (t.successors ? SUCCESSOR_FEATURES : 0) : 0;
  if (t.kind === 'multiclass') return 0;
  return callerDense(t) + (t.history === true ? HEAD_HISTORY_FEATURES : 0);
}

/** The dense numbers of each candidate that the caller gives (a rank head's `denseFeatures`); the rest dupn computes. */
export function callerDense(t: TaskConfig): number {
  return t.kind === 'rank' ? t.denseFeatures : 0;
}

/** A task whose dense input includes history features dupn computes (a retrieval, binary or rank head with `history`). */
export type HistoryTask = RetrievalTask | (BinaryTask & { history: true }) | (RankTask & { history: true });

/** Whether a task's dense input includes its history features (computed by dupn from the user's behaviours). */
export function historyDense(t: TaskConfig): t is HistoryTask {
  return t.kind !== 'multiclass' && t.history === true;
}

/** Input width of a task's first layer: U, then t, then dense features (retrieval: U alone, its user tower). */
export function headInputDim(c: ResolvedConfig, t: TaskConfig): number {
  if (t.kind === 'retrieval') return deriveDims(c).userDim;
  return deriveDims(c).userDim + targetDim(c, t) + denseCount(t);
}

/** Task `name` of config `c` and its index. Throws `E_TASK` for an unknown name, listing the tasks there are. */
export function findTask(c: ResolvedConfig, name: unknown): { task: TaskConfig; index: number } {
  const index = c.tasks.findIndex((t) => t.name === name);
  if (index < 0) {
    throw new DupnError('E_TASK', `task: unknown task ${describe(name)} (tasks: ${c.tasks.map((t) => t.name).join(', ') || 'none'})`, { path: 'task' });
  }
  return { task: c.tasks[index], index };
}

/** {@link findTask} for a call that needs a `multiclass` head (predict): `E_TASK` for any other kind. */
export function findMulticlassTask(c: ResolvedConfig, name: unknown): { task: MulticlassTask; index: number } {
  const { task, index } = findTask(c, name);
  if (task.kind !== 'multiclass') throw new DupnError('E_TASK', `task "${task.name}" is ${task.kind}: use score(), not predict()`, { path: 'task' });
  return { task, index };
}
