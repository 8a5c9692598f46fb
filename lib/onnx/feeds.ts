/**
 * The onnxruntime backend's feeds: dupn's ragged columns as the padded inputs of the exported graphs
 * (export.ts), and the user graph's padded attention back in ragged order. Pure: no onnxruntime here.
 */
import { CandidateColumns, UserColumns } from '../model/columns';
import { ResolvedConfig, TaskConfig, denseCount, deriveDims } from '../network/config';
import { historyField } from '../network/tensors';
import { DupnError, inputError } from '../errors';

/** One graph input, ready for `new ort.Tensor(type, data, dims)`. */
export interface Feed {
  type: 'int64' | 'int32' | 'float32';
  data: BigInt64Array | Int32Array | Float32Array;
  dims: number[];
}

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** int64 values from non-negative int32 rows: `get(i)` for i < n. */
function int64s(n: number, get: (i: number) => number): BigInt64Array {
  const out = new BigInt64Array(n);
  if (LITTLE_ENDIAN) {
    const words = new Int32Array(out.buffer);
    for (let i = 0; i < n; i++) {
      const v = get(i);
      words[2 * i] = v;
      words[2 * i + 1] = v < 0 ? -1 : 0;
    }
  } else {
    for (let i = 0; i < n; i++) out[i] = BigInt(get(i));
  }
  return out;
}

/**
 * The user graph's feeds for a batch of ragged columns: T = the longest history (at least 1), padding rows 0;
 * Q = the most query tokens (at least 1), weights 1/n per token and 0 for padding. Assumes valid columns
 * (see `validateUserColumns`).
 */
export function padUsers(config: ResolvedConfig, cols: UserColumns): Record<string, Feed> {
  const B = cols.lengths.length;
  const F = config.itemFields.length;
  const P = config.profileFields.length;
  let T = 1;
  for (let b = 0; b < B; b++) T = Math.max(T, cols.lengths[b]);
  // (b, t) → behaviour row n, or -1 for padding.
  const rowOf = new Int32Array(B * T).fill(-1);
  for (let b = 0, n = 0; b < B; b++) {
    for (let t = 0; t < cols.lengths[b]; t++) rowOf[b * T + t] = n++;
  }
  const padded = (src: Int32Array, stride: number, col: number): Feed => ({
    type: 'int64',
    data: int64s(B * T, (i) => (rowOf[i] < 0 ? 0 : src[rowOf[i] * stride + col])),
    dims: [B, T],
  });

  const feeds: Record<string, Feed> = {};
  config.itemFields.forEach((f, fi) => {
    if (f.dim > 0) feeds[`behavior.${f.name}`] = padded(cols.items, F, fi);
  });
  const p = config.properties;
  if (p.typeDim > 0) feeds['behavior.type'] = padded(cols.properties, 3, 0);
  if (p.gapDim > 0) feeds['behavior.gap'] = padded(cols.properties, 3, 1);
  if (p.sceneDim > 0) feeds['behavior.scene'] = padded(cols.properties, 3, 2);
  feeds['lengths'] = { type: 'int32', data: Int32Array.from(cols.lengths), dims: [B] };

  if (config.query) {
    let Q = 1;
    for (let b = 0; b < B; b++) Q = Math.max(Q, cols.queryOffsets[b + 1] - cols.queryOffsets[b]);
    const tokens = new Int32Array(B * Q);
    const weights = new Float32Array(B * Q);
    for (let b = 0; b < B; b++) {
      const from = cols.queryOffsets[b];
      const n = cols.queryOffsets[b + 1] - from;
      for (let k = 0; k < n; k++) {
        tokens[b * Q + k] = cols.queryTokens[from + k];
        weights[b * Q + k] = 1 / n;
      }
    }
    feeds['query.tokens'] = { type: 'int64', data: int64s(B * Q, (i) => tokens[i]), dims: [B, Q] };
    feeds['query.weights'] = { type: 'float32', data: weights, dims: [B, Q] };
  }
  config.profileFields.forEach((f, fi) => {
    if (f.dim > 0) feeds[`profile.${f.name}`] = { type: 'int64', data: int64s(B, (b) => cols.profile[b * P + fi]), dims: [B] };
  });
  return feeds;
}

/** The user graph's `attention` output [B, T] (row-major) back in ragged order: Σ lengths weights, oldest first. */
export function raggedAttention(cols: Pick<UserColumns, 'lengths'>, padded: ArrayLike<number>, T: number): Float32Array {
  let N = 0;
  for (let b = 0; b < cols.lengths.length; b++) N += cols.lengths[b];
  const out = new Float32Array(N);
  for (let b = 0, n = 0; b < cols.lengths.length; b++) {
    for (let t = 0; t < cols.lengths[b]; t++) out[n++] = padded[b * T + t];
  }
  return out;
}

/**
 * A binary or rank head graph's feeds for one user vector (userDim values) and C candidates: `user` [1, userDim],
 * `candidate.<field>` [C] per target field with dim > 0, `dense` [C, denseFeatures] for rank tasks with dense
 * features. Assumes valid columns (see `validateCandidateColumns`).
 */
export function candidateFeeds(
  config: ResolvedConfig,
  task: TaskConfig | string,
  user: Float32Array,
  cands: CandidateColumns,
): Record<string, Feed> {
  const t = typeof task === 'string' ? config.tasks.find((x) => x.name === task) : task;
  if (!t) throw new DupnError('E_TASK', `unknown task ${JSON.stringify(task)}`);
  if (t.kind === 'multiclass') throw new DupnError('E_TASK', `task ${JSON.stringify(t.name)} is multiclass: it has no candidates`);
  const { userDim } = deriveDims(config);
  if (user.length !== userDim) inputError('user', `must have userDim = ${userDim} values, got ${user.length}`);
  const F = config.itemFields.length;
  const C = cands.items.length / F;
  const feeds: Record<string, Feed> = { user: { type: 'float32', data: Float32Array.from(user), dims: [1, userDim] } };
  let any = false;
  for (const name of t.target) {
    const fi = config.itemFields.findIndex((f) => f.name === name);
    if (config.itemFields[fi].dim === 0) continue;
    feeds[`candidate.${name}`] = { type: 'int64', data: int64s(C, (c) => cands.items[c * F + fi]), dims: [C] };
    any = true;
  }
  const D = denseCount(t);
  if (t.kind === 'retrieval' && D > 0) {
    // The graph looks the prior up itself: the feed holds the user's history features only.
    feeds['dense'] = { type: 'float32', data: Float32Array.from({ length: C * (D - 1) }, (_, i) => cands.dense[Math.floor(i / (D - 1)) * D + (i % (D - 1))]), dims: [C, D - 1] };
    const field = historyField(t);
    const fi = config.itemFields.findIndex((f) => f.name === field);
    feeds[`candidate.${field}`] = { type: 'int64', data: int64s(C, (c) => cands.items[c * F + fi]), dims: [C] };
  } else if (D > 0) feeds['dense'] = { type: 'float32', data: Float32Array.from(cands.dense), dims: [C, D] };
  else if (!any) {
    // See buildHeadGraph: with no per-candidate data, the first target field's ids carry C.
    const fi = config.itemFields.findIndex((f) => f.name === t.target[0]);
    feeds[`candidate.${t.target[0]}`] = { type: 'int64', data: int64s(C, (c) => cands.items[c * F + fi]), dims: [C] };
  }
  return feeds;
}

/** A multiclass head graph's feed: `user` [B, userDim]. */
export function predictFeeds(config: ResolvedConfig, users: Float32Array): Record<string, Feed> {
  const { userDim } = deriveDims(config);
  if (users.length % userDim !== 0) inputError('users', `length ${users.length} is not a multiple of userDim = ${userDim}`);
  return { user: { type: 'float32', data: users, dims: [users.length / userDim, userDim] } };
}
