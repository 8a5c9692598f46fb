/**
 * Columnar (packed) inputs: the TypedArrays that cross into the native addon. Request objects are packed
 * into these by `features.ts`; callers that already hold hashed ids may build them directly.
 * All ids are table rows (already reduced modulo the table's bucket count).
 */
import { ResolvedConfig, TaskConfig, denseCount } from '../network/config';
import { DupnError } from '../errors';

/** A batch of B users with N = Σ lengths behaviours in total, oldest first within each user. */
export interface UserColumns {
  /** [B] number of behaviours kept per user, each in [0, maxSeqLen]. */
  lengths: Int32Array;
  /** [N × F] item-field rows, F = config.itemFields.length, fields in config order (dim-0 fields included). */
  items: Int32Array;
  /** [N × 3] property rows: type, gap bucket, scene (a column is ignored when its dim is 0). */
  properties: Int32Array;
  /** [B + 1] offsets into `queryTokens`; user b owns tokens queryOffsets[b] .. queryOffsets[b+1]. */
  queryOffsets: Int32Array;
  /** Query-token rows of all users, concatenated. */
  queryTokens: Int32Array;
  /** [B × P] profile rows, P = config.profileFields.length, fields in config order. */
  profile: Int32Array;
}

/** C candidates for one head: item-field rows in the same layout as behaviours, plus dense ranking features. */
export interface CandidateColumns {
  /** [C × F] item-field rows, F = config.itemFields.length (fields a task does not target are ignored). */
  items: Int32Array;
  /** [C × denseFeatures] for `rank` tasks with dense features; empty otherwise. */
  dense: Float32Array;
  /**
   * Per task, a dense input that is not `dense`: each history head's (a retrieval head, a binary or rank head
   * with `history`), whose features dupn computes from the user's behaviours, so that heads with different dense
   * inputs can be scored on the same candidates. A task not named here reads `dense`.
   */
  taskDense?: Record<string, Float32Array>;
}

/** The columns task `name` reads: its own entry of `taskDense` as `dense`, if it has one. */
export function columnsFor(cols: CandidateColumns, name: string): CandidateColumns {
  const own = cols.taskDense !== undefined && Object.prototype.hasOwnProperty.call(cols.taskDense, name) ? cols.taskDense[name] : undefined;
  return own === undefined ? cols : { items: cols.items, dense: own };
}

// The native checks (core/model.cpp, napi/spec.cpp) are the authority: every caller's ids, C++ and trainer ones too, reach the kernels through them.
// These repeat them check for check and word for word, for onnxruntime and the float64 reference; test/column-checks.test.ts holds them equal.

/** An E_INPUT error whose message is `path` followed by `rest` (the native check's wording, verbatim). */
function refuse(path: string, rest: string): never {
  throw new DupnError('E_INPUT', path + rest, { path });
}

/** Some users of a packed batch: `rows` of `cols` (every row when absent), for {@link gatherUserColumns}. */
export interface UserRows {
  cols: UserColumns;
  /** Row indices into `cols.lengths`, each once; absent: all rows in order. */
  rows?: readonly number[];
}

/**
 * The chosen rows of several packed batches as one batch, in order (part by part, row by row): how a batcher
 * joins requests packed apart into the columns of one encode call. One part of all its rows, in order, is returned as is.
 */
export function gatherUserColumns(config: ResolvedConfig, parts: readonly UserRows[]): UserColumns {
  if (parts.length === 1) {
    const { cols, rows } = parts[0];
    if (rows === undefined || (rows.length === cols.lengths.length && rows.every((r, i) => r === i))) return cols;
  }
  const F = config.itemFields.length;
  const P = config.profileFields.length;
  const picks = parts.map(({ cols, rows }) => {
    const starts = new Int32Array(cols.lengths.length + 1);
    for (let b = 0; b < cols.lengths.length; b++) starts[b + 1] = starts[b] + cols.lengths[b];
    return { cols, starts, rows: rows ?? Array.from(cols.lengths.keys()) };
  });
  let B = 0;
  let N = 0;
  let T = 0;
  for (const { cols, rows } of picks) {
    for (const b of rows) {
      B++;
      N += cols.lengths[b];
      T += cols.queryOffsets[b + 1] - cols.queryOffsets[b];
    }
  }
  const out: UserColumns = {
    lengths: new Int32Array(B),
    items: new Int32Array(N * F),
    properties: new Int32Array(N * 3),
    queryOffsets: new Int32Array(B + 1),
    queryTokens: new Int32Array(T),
    profile: new Int32Array(B * P),
  };
  let u = 0;
  let n = 0;
  for (const { cols, starts, rows } of picks) {
    for (const b of rows) {
      const L = cols.lengths[b];
      const q0 = cols.queryOffsets[b];
      const q1 = cols.queryOffsets[b + 1];
      const t = out.queryOffsets[u];
      out.lengths[u] = L;
      out.items.set(cols.items.subarray(starts[b] * F, (starts[b] + L) * F), n * F);
      out.properties.set(cols.properties.subarray(starts[b] * 3, (starts[b] + L) * 3), n * 3);
      out.queryTokens.set(cols.queryTokens.subarray(q0, q1), t);
      out.queryOffsets[u + 1] = t + q1 - q0;
      out.profile.set(cols.profile.subarray(b * P, (b + 1) * P), u * P);
      u++;
      n += L;
    }
  }
  return out;
}


function checkIds(ids: Int32Array, count: number, stride: number, col: number, rows: number, field: string, table: string): void {
  for (let i = 0; i < count; i++) {
    const at = i * stride + col;
    const v = ids[at];
    if (!(v >= 0 && v < rows)) refuse(`${field}[${at}]`, ` = ${v} is outside the ${table} table (rows 0..${rows - 1})`);
  }
}

function object(v: unknown, path: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null) refuse(path, ': expected an object');
  return v as Record<string, unknown>;
}

function int32(v: unknown, path: string): Int32Array {
  if (!(v instanceof Int32Array)) refuse(path, ': expected an Int32Array');
  return v;
}

/** The batch size B of user columns (`lengths.length`), checked as the full check would. */
export function userBatch(cols: unknown): number {
  return int32(object(cols, 'columns').lengths, 'columns.lengths').length;
}

/**
 * The checks the native addon makes on untrusted user columns: shapes consistent, every id inside its
 * table. Throws E_INPUT naming the entry; returns N = Σ lengths.
 */
export function validateUserColumns(c: ResolvedConfig, cols: UserColumns): number {
  const o = object(cols, 'columns');
  const lengths = int32(o.lengths, 'columns.lengths');
  const items = int32(o.items, 'columns.items');
  const properties = int32(o.properties, 'columns.properties');
  const queryOffsets = int32(o.queryOffsets, 'columns.queryOffsets');
  const queryTokens = int32(o.queryTokens, 'columns.queryTokens');
  const profile = int32(o.profile, 'columns.profile');
  const B = lengths.length;
  if (queryOffsets.length !== B + 1) refuse('columns.queryOffsets', ': expected lengths.length + 1 entries');
  const F = c.itemFields.length;
  const P = c.profileFields.length;
  let N = 0;
  for (let b = 0; b < B; b++) {
    if (!(lengths[b] >= 0 && lengths[b] <= c.maxSeqLen)) refuse(`columns.lengths[${b}]`, ` = ${lengths[b]} is outside 0..${c.maxSeqLen}`);
    N += lengths[b];
  }
  if (items.length !== N * F) refuse('columns.items', `: expected ${N * F} entries (Σ lengths × item fields), got ${items.length}`);
  if (properties.length !== N * 3) refuse('columns.properties', `: expected ${N * 3} entries (Σ lengths × 3), got ${properties.length}`);
  if (profile.length !== B * P) refuse('columns.profile', `: expected ${B * P} entries (batch × profile fields), got ${profile.length}`);
  if (queryOffsets[0] !== 0) refuse('columns.queryOffsets[0]', ' must be 0');
  for (let b = 0; b < B; b++) {
    if (queryOffsets[b + 1] < queryOffsets[b]) refuse(`columns.queryOffsets[${b + 1}]`, ' is smaller than the one before');
  }
  if (queryOffsets[B] !== queryTokens.length) refuse(`columns.queryOffsets[${B}]`, ` must equal queryTokens.length (${queryTokens.length})`);
  c.itemFields.forEach((f, i) => f.dim > 0 && checkIds(items, N, F, i, f.buckets, 'columns.items', 'item field'));
  const p = c.properties;
  if (p.typeDim > 0) checkIds(properties, N, 3, 0, p.types.length + 1, 'columns.properties', 'type');
  if (p.gapDim > 0) checkIds(properties, N, 3, 1, p.gapBuckets, 'columns.properties', 'gap');
  if (p.sceneDim > 0) checkIds(properties, N, 3, 2, p.scenes.length + 1, 'columns.properties', 'scene');
  if (c.query) checkIds(queryTokens, queryTokens.length, 1, 0, c.query.buckets, 'columns.queryTokens', 'query');
  c.profileFields.forEach((f, i) => f.dim > 0 && checkIds(profile, B, P, i, f.buckets, 'columns.profile', 'profile field'));
  return N;
}

/** The native addon's checks on candidate columns for one binary, rank or retrieval task. Returns the candidate count. */
export function validateCandidateColumns(c: ResolvedConfig, task: TaskConfig, cols: CandidateColumns): number {
  const o = object(cols, 'candidates');
  const items = int32(o.items, 'candidates.items');
  if (!(o.dense instanceof Float32Array)) refuse('candidates.dense', ': expected a Float32Array');
  const dense = o.dense;
  const F = c.itemFields.length;
  if (F === 0 || items.length % F !== 0) refuse('candidates.items', ': length is not a multiple of the item-field count');
  const C = items.length / F;
  // Tasks without dense features ignore the array (it may carry another rank task's features).
  const D = denseCount(task);
  if (D > 0 && dense.length !== C * D) refuse('candidates.dense', `: expected ${C * D} entries (candidates × denseFeatures), got ${dense.length}`);
  if (task.kind !== 'multiclass') {
    for (const name of task.target) {
      const f = c.itemFields.findIndex((x) => x.name === name);
      checkIds(items, C, F, f, c.itemFields[f].buckets, 'candidates.items', 'item field');
    }
  }
  for (let i = 0; D > 0 && i < dense.length; i++) {
    if (!Number.isFinite(dense[i])) refuse(`candidates.dense[${i}]`, ' is not a finite number');
  }
  return C;
}
