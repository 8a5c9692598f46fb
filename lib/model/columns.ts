/**
 * Columnar (packed) inputs: the TypedArrays that cross into the native addon. Request objects are packed
 * into these by `features.ts`; callers that already hold hashed ids may build them directly.
 * All ids are table rows (already reduced modulo the table's bucket count).
 */
import { ResolvedConfig, TaskConfig } from '../network/config';
import { inputError } from '../errors';

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
    if (!(v >= 0 && v < rows)) inputError(`columns.${field}[${at}]`, `${v} is outside the ${table} table (rows 0..${rows - 1})`);
  }
}

function int32(v: unknown, field: string): Int32Array {
  if (!(v instanceof Int32Array)) inputError(`columns.${field}`, 'must be an Int32Array');
  return v;
}

/**
 * The checks the native addon makes on untrusted columns, for engines that cannot make them
 * (onnxruntime): shapes consistent, every id inside its table. Throws E_INPUT naming the entry.
 */
export function validateUserColumns(c: ResolvedConfig, cols: UserColumns): void {
  const lengths = int32(cols?.lengths, 'lengths');
  const items = int32(cols.items, 'items');
  const properties = int32(cols.properties, 'properties');
  const queryOffsets = int32(cols.queryOffsets, 'queryOffsets');
  const queryTokens = int32(cols.queryTokens, 'queryTokens');
  const profile = int32(cols.profile, 'profile');
  const B = lengths.length;
  const F = c.itemFields.length;
  const P = c.profileFields.length;
  let N = 0;
  for (let b = 0; b < B; b++) {
    if (!(lengths[b] >= 0 && lengths[b] <= c.maxSeqLen)) inputError(`columns.lengths[${b}]`, `${lengths[b]} is outside 0..${c.maxSeqLen}`);
    N += lengths[b];
  }
  if (items.length !== N * F) inputError('columns.items', `expected ${N * F} entries (Σ lengths × item fields), got ${items.length}`);
  if (properties.length !== N * 3) inputError('columns.properties', `expected ${N * 3} entries (Σ lengths × 3), got ${properties.length}`);
  if (profile.length !== B * P) inputError('columns.profile', `expected ${B * P} entries (batch × profile fields), got ${profile.length}`);
  if (queryOffsets.length !== B + 1 || queryOffsets[0] !== 0) inputError('columns.queryOffsets', 'must have lengths.length + 1 entries starting at 0');
  for (let b = 0; b < B; b++) {
    if (queryOffsets[b + 1] < queryOffsets[b]) inputError(`columns.queryOffsets[${b + 1}]`, 'is smaller than the one before');
  }
  if (queryOffsets[B] !== queryTokens.length) inputError(`columns.queryOffsets[${B}]`, `must equal queryTokens.length (${queryTokens.length})`);
  c.itemFields.forEach((f, i) => f.dim > 0 && checkIds(items, N, F, i, f.buckets, 'items', 'item field'));
  const p = c.properties;
  if (p.typeDim > 0) checkIds(properties, N, 3, 0, p.types.length + 1, 'properties', 'type');
  if (p.gapDim > 0) checkIds(properties, N, 3, 1, p.gapBuckets, 'properties', 'gap');
  if (p.sceneDim > 0) checkIds(properties, N, 3, 2, p.scenes.length + 1, 'properties', 'scene');
  if (c.query) checkIds(queryTokens, queryTokens.length, 1, 0, c.query.buckets, 'queryTokens', 'query');
  c.profileFields.forEach((f, i) => f.dim > 0 && checkIds(profile, B, P, i, f.buckets, 'profile', 'profile field'));
}

/** Candidate-column checks for engines other than the native addon. Returns the candidate count. */
export function validateCandidateColumns(c: ResolvedConfig, task: TaskConfig, cols: CandidateColumns): number {
  const items = int32(cols?.items, 'items');
  const F = c.itemFields.length;
  if (items.length % F !== 0) inputError('candidates.items', 'length is not a multiple of the item-field count');
  const C = items.length / F;
  // Tasks without dense features ignore the array (it may carry another rank task's features).
  const D = task.kind === 'rank' ? task.denseFeatures : 0;
  if (!(cols.dense instanceof Float32Array) || (D > 0 && cols.dense.length !== C * D)) {
    inputError('candidates.dense', `expected a Float32Array of ${C * D} entries (candidates × denseFeatures)`);
  }
  for (let i = 0; D > 0 && i < cols.dense.length; i++) {
    if (!Number.isFinite(cols.dense[i])) inputError(`candidates.dense[${i}]`, 'is not a finite number');
  }
  if (task.kind !== 'multiclass') {
    for (const name of task.target) {
      const f = c.itemFields.findIndex((x) => x.name === name);
      if (c.itemFields[f].dim > 0) checkIds(items, C, F, f, c.itemFields[f].buckets, 'items', 'item field');
    }
  }
  return C;
}
