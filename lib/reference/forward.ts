/**
 * Plain float64 reference of the whole DUPN forward pass, written straight from docs/model.md. It is the yardstick
 * the native kernels are tested against: clarity over speed (simple loops, no blocking, no caching), but
 * linear in the input size. Weights are read from the float32 tensors; every intermediate is a double.
 */
import { DupnError, inputError } from '../errors';
import { ResolvedConfig, TaskConfig, deriveDims, denseCount, targetDim } from '../network/config';
import { ATTENTION_NAMES, LstmDirection, QUERY_TABLE_NAME, Tensors, historyWeightName, itemTableName, layerNames, layerStacks, lstmNames, profileTableName, propertyTableName } from '../network/tensors';
import { CandidateColumns, UserColumns, columnsFor, validateCandidateColumns, validateUserColumns } from '../model/columns';
import { DropoutMask, dropoutScale } from './dropout';

export interface ReferenceOutput {
  /** B × userDim, row-major: U = [r ; u ; q] per user. */
  user: Float64Array;
  /** N = Σ lengths: the attention weight of each behaviour, in input order. */
  attention: Float64Array;
}

// ---------------------------------------------------------------------------------------------------------
// Small helpers

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/**
 * Σ_k a[aAt + k] · b[bAt + k] for k < len. Four partial sums only to shorten the floating-point dependency
 * chain (about 1.3× faster in V8); in float64 the result differs from a left-to-right sum by rounding only.
 */
function dot(a: Float64Array, aAt: number, b: Float64Array, bAt: number, len: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let k = 0;
  for (; k + 3 < len; k += 4) {
    s0 += a[aAt + k] * b[bAt + k];
    s1 += a[aAt + k + 1] * b[bAt + k + 1];
    s2 += a[aAt + k + 2] * b[bAt + k + 2];
    s3 += a[aAt + k + 3] * b[bAt + k + 3];
  }
  for (; k < len; k++) s0 += a[aAt + k] * b[bAt + k];
  return s0 + s1 + (s2 + s3);
}

/** The tensor `name`, checked to hold exactly `length` values. */
function tensor(tensors: Tensors, name: string, length: number): Float32Array {
  const t = tensors.get(name);
  if (!t) throw new DupnError('E_MODEL_FILE', `missing tensor ${name}`);
  if (t.length !== length) {
    throw new DupnError('E_MODEL_FILE', `tensor ${name} has ${t.length} values, expected ${length}`);
  }
  return t;
}

/** Copies row `row` (of width `dim`) of `table` to out[at ..]: ids are range-checked up front, by the columns' checks. */
function copyRow(table: Float32Array, dim: number, row: number, out: Float64Array, at: number): void {
  for (let j = 0; j < dim; j++) out[at + j] = table[row * dim + j];
}

/** y = W x + b for W [rows, cols] row-major. */
function affine(w: Float64Array, b: Float64Array, rows: number, cols: number, x: Float64Array): Float64Array {
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) y[r] = b[r] + dot(w, r * cols, x, 0, cols);
  return y;
}

function findTask(config: ResolvedConfig, name: string): TaskConfig {
  const task = config.tasks.find((t) => t.name === name);
  if (!task) {
    throw new DupnError('E_TASK', `unknown task ${JSON.stringify(name)} (tasks: ${config.tasks.map((t) => t.name).join(', ')})`);
  }
  return task;
}

// ---------------------------------------------------------------------------------------------------------
// Property-gated LSTM (one direction)

/** Weights of one LSTM direction: wx [4H, dx] and wh [4H, H] and b [4H] in gate order i, f, g, o; wp [3H, dp] in i, f, o. */
export interface LstmWeights {
  hidden: number;
  dx: number;
  dp: number;
  wx: ArrayLike<number>;
  wp: ArrayLike<number>;
  wh: ArrayLike<number>;
  b: ArrayLike<number>;
}

export function lstmWeights(config: ResolvedConfig, tensors: Tensors, dir: LstmDirection): LstmWeights {
  const d = deriveDims(config);
  const H = config.hidden;
  const names = lstmNames(dir);
  return {
    hidden: H,
    dx: d.dx,
    dp: d.dp,
    wx: tensor(tensors, names.wx, 4 * H * d.dx),
    wp: tensor(tensors, names.wp, 3 * H * d.dp),
    wh: tensor(tensors, names.wh, 4 * H * H),
    b: tensor(tensors, names.b, 4 * H),
  };
}

/**
 * Runs one direction over L steps. xs is L × dx (e_t rows), ps is L × dp (p_t rows), oldest first.
 * Forward consumes t = 0..L-1; `reverse` consumes t = L-1..0. Returns L × H where row t is the hidden state
 * right after consuming step t (for the reverse direction: after steps L-1..t).
 */
export function referenceLstm(w: LstmWeights, xs: ArrayLike<number>, ps: ArrayLike<number>, L: number, reverse: boolean): Float64Array {
  const H = w.hidden;
  const dx = w.dx;
  const dp = w.dp;
  // Local float64 copies keep the inner loops monomorphic (a speed matter only; the values are the same).
  const wx = Float64Array.from(w.wx);
  const wp = Float64Array.from(w.wp);
  const wh = Float64Array.from(w.wh);
  const bias = Float64Array.from(w.b);
  const x = Float64Array.from(xs);
  const p = Float64Array.from(ps);
  const out = new Float64Array(L * H);
  const h = new Float64Array(H);
  const c = new Float64Array(H);
  const pre = new Float64Array(4 * H);
  for (let s = 0; s < L; s++) {
    const t = reverse ? L - 1 - s : s;
    // Pre-activations of all four gates: W_x e_t + W_h h_{t-1} + b, plus W_p p_t for gates i, f, o.
    for (let gate = 0; gate < 4; gate++) {
      // wp row block of this gate: i → 0, f → 1, g → none, o → 2.
      const pBlock = gate === 0 ? 0 : gate === 1 ? 1 : gate === 3 ? 2 : -1;
      for (let j = 0; j < H; j++) {
        const r = gate * H + j;
        let acc = bias[r] + dot(wx, r * dx, x, t * dx, dx) + dot(wh, r * H, h, 0, H);
        if (pBlock >= 0) acc += dot(wp, (pBlock * H + j) * dp, p, t * dp, dp);
        pre[r] = acc;
      }
    }
    // All pre-activations used h_{t-1}; only now is h overwritten with h_t.
    for (let j = 0; j < H; j++) {
      const i = sigmoid(pre[j]);
      const f = sigmoid(pre[H + j]);
      const g = Math.tanh(pre[2 * H + j]);
      const o = sigmoid(pre[3 * H + j]);
      c[j] = f * c[j] + i * g;
      h[j] = o * Math.tanh(c[j]);
      out[t * H + j] = h[j];
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// User part: embeddings → (bi-)LSTM → attention → U = [r ; u ; q]

/** Forward pass of the user part for a batch of users. */
export function referenceEncode(config: ResolvedConfig, tensors: Tensors, cols: UserColumns, dropout?: DropoutMask): ReferenceOutput {
  const d = deriveDims(config);
  const N = validateUserColumns(config, cols);
  const B = cols.lengths.length;
  const H = config.hidden;
  const A = config.attentionHidden;
  const F = config.itemFields.length;
  const P = config.profileFields.length;
  const props = config.properties;

  const itemTables = config.itemFields.map((f) =>
    f.dim > 0 ? tensor(tensors, itemTableName(f.name), f.buckets * f.dim) : new Float32Array(0),
  );
  const typeTable = props.typeDim > 0 ? tensor(tensors, propertyTableName('type'), (props.types.length + 1) * props.typeDim) : null;
  const gapTable = props.gapDim > 0 ? tensor(tensors, propertyTableName('gap'), props.gapBuckets * props.gapDim) : null;
  const sceneTable = props.sceneDim > 0 ? tensor(tensors, propertyTableName('scene'), (props.scenes.length + 1) * props.sceneDim) : null;
  const queryTable = config.query ? tensor(tensors, QUERY_TABLE_NAME, config.query.buckets * config.query.dim) : null;
  const profileTables = config.profileFields.map((f) =>
    f.dim > 0 ? tensor(tensors, profileTableName(f.name), f.buckets * f.dim) : new Float32Array(0),
  );
  const fw = lstmWeights(config, tensors, 'fw');
  const bw = config.bidirectional ? lstmWeights(config, tensors, 'bw') : null;
  const attnW = Float64Array.from(tensor(tensors, ATTENTION_NAMES.w, A * d.attnIn));
  const attnB = Float64Array.from(tensor(tensors, ATTENTION_NAMES.b, A));
  const attnV = Float64Array.from(tensor(tensors, ATTENTION_NAMES.v, A));

  const user = new Float64Array(B * d.userDim);
  const attention = new Float64Array(N);

  let n0 = 0; // first behaviour row of user b
  for (let b = 0; b < B; b++) {
    const L = cols.lengths[b];

    // e_t and p_t, oldest first.
    const xs = new Float64Array(L * d.dx);
    const ps = new Float64Array(L * d.dp);
    for (let t = 0; t < L; t++) {
      const n = n0 + t;
      let at = t * d.dx;
      config.itemFields.forEach((f, fi) => {
        if (f.dim === 0) return;
        copyRow(itemTables[fi], f.dim, cols.items[n * F + fi], xs, at);
        at += f.dim;
      });
      at = t * d.dp;
      if (typeTable) {
        copyRow(typeTable, props.typeDim, cols.properties[3 * n], ps, at);
        at += props.typeDim;
      }
      if (gapTable) {
        copyRow(gapTable, props.gapDim, cols.properties[3 * n + 1], ps, at);
        at += props.gapDim;
      }
      if (sceneTable) {
        copyRow(sceneTable, props.sceneDim, cols.properties[3 * n + 2], ps, at);
      }
    }

    // Training dropout: stream 1 masks the input row [e_t ; p_t] (row = the batch's behaviour row).
    if (dropout && dropout.rate > 0) {
      for (let t = 0; t < L; t++) {
        for (let j = 0; j < d.dx; j++) xs[t * d.dx + j] *= dropoutScale(dropout, 1, n0 + t, j);
        for (let j = 0; j < d.dp; j++) ps[t * d.dp + j] *= dropoutScale(dropout, 1, n0 + t, d.dx + j);
      }
    }

    // q: mean of the user's query-token rows (zero when none).
    const q = new Float64Array(d.dq);
    if (config.query && queryTable) {
      const from = cols.queryOffsets[b];
      const to = cols.queryOffsets[b + 1];
      const row = new Float64Array(d.dq);
      for (let k = from; k < to; k++) {
        copyRow(queryTable, d.dq, cols.queryTokens[k], row, 0);
        for (let j = 0; j < d.dq; j++) q[j] += row[j];
      }
      if (to > from) for (let j = 0; j < d.dq; j++) q[j] /= to - from;
    }

    // u: concatenated profile rows.
    const u = new Float64Array(d.du);
    {
      let at = 0;
      config.profileFields.forEach((f, fi) => {
        if (f.dim === 0) return;
        copyRow(profileTables[fi], f.dim, cols.profile[b * P + fi], u, at);
        at += f.dim;
      });
    }

    // H_t = [h_t^fw ; h_t^bw], L × dh.
    const hFw = referenceLstm(fw, xs, ps, L, false);
    const hBw = bw ? referenceLstm(bw, xs, ps, L, true) : null;
    const Hs = new Float64Array(L * d.dh);
    for (let t = 0; t < L; t++) {
      for (let j = 0; j < H; j++) Hs[t * d.dh + j] = hFw[t * H + j];
      if (hBw) for (let j = 0; j < H; j++) Hs[t * d.dh + H + j] = hBw[t * H + j];
    }

    // Attention: s_t = vᵀ tanh(W_a [H_t ; q ; u ; p_t] + b_a), softmax over the L steps.
    const scores = new Float64Array(L);
    const z = new Float64Array(d.attnIn);
    for (let t = 0; t < L; t++) {
      let at = 0;
      for (let j = 0; j < d.dh; j++) z[at++] = Hs[t * d.dh + j];
      for (let j = 0; j < d.dq; j++) z[at++] = q[j];
      for (let j = 0; j < d.du; j++) z[at++] = u[j];
      for (let j = 0; j < d.dp; j++) z[at++] = ps[t * d.dp + j];
      const hidden = affine(attnW, attnB, A, d.attnIn, z);
      let s = 0;
      for (let k = 0; k < A; k++) s += attnV[k] * Math.tanh(hidden[k]);
      scores[t] = s;
    }
    let max = -Infinity;
    for (let t = 0; t < L; t++) max = Math.max(max, scores[t]);
    let sum = 0;
    for (let t = 0; t < L; t++) sum += Math.exp(scores[t] - max);
    const r = new Float64Array(d.dh);
    for (let t = 0; t < L; t++) {
      const a = Math.exp(scores[t] - max) / sum;
      attention[n0 + t] = a;
      for (let j = 0; j < d.dh; j++) r[j] += a * Hs[t * d.dh + j];
    }

    // U = [r ; u ; q].
    const U = user.subarray(b * d.userDim, (b + 1) * d.userDim);
    U.set(r, 0);
    U.set(u, d.dh);
    U.set(q, d.dh + d.du);
    // Stream 2 masks U (row = the batch's user).
    if (dropout && dropout.rate > 0) for (let j = 0; j < d.userDim; j++) U[j] *= dropoutScale(dropout, 2, b, j);

    n0 += L;
  }
  return { user, attention };
}

// ---------------------------------------------------------------------------------------------------------
// Heads

interface Layer {
  w: Float64Array;
  b: Float64Array;
  rows: number;
  cols: number;
}

/** Layers of a task's stack (0: the head, or a retrieval head's user tower; 1: its item tower). */
function headLayers(config: ResolvedConfig, tensors: Tensors, task: TaskConfig, stack = 0): Layer[] {
  const { stem, widths } = layerStacks(config, task)[stack];
  const layers: Layer[] = [];
  for (let k = 0; k + 1 < widths.length; k++) {
    const rows = widths[k + 1];
    const cols = widths[k];
    const names = layerNames(stem, k);
    layers.push({
      w: Float64Array.from(tensor(tensors, names.w, rows * cols)),
      b: Float64Array.from(tensor(tensors, names.b, rows)),
      rows,
      cols,
    });
  }
  return layers;
}

/** Affine layers with ReLU between them (not after the last). */
function runHead(layers: Layer[], input: Float64Array): Float64Array {
  let x = input;
  layers.forEach((layer, k) => {
    const y = affine(layer.w, layer.b, layer.rows, layer.cols, x);
    if (k + 1 < layers.length) for (let j = 0; j < y.length; j++) y[j] = Math.max(0, y[j]);
    x = y;
  });
  return x;
}

/** The head MLP of `task` over one input vector (width headInputDim): the raw output layer (logits). */
export function referenceHead(config: ResolvedConfig, tensors: Tensors, task: TaskConfig, input: ArrayLike<number>): Float64Array {
  const layers = headLayers(config, tensors, task);
  if (input.length !== layers[0].cols) {
    throw new DupnError('E_INTERNAL', `head ${task.name}: input has ${input.length} values, expected ${layers[0].cols}`);
  }
  return runHead(layers, Float64Array.from(input));
}

/**
 * Scores C candidates for one user on a binary or rank task: the head input is [U ; t ; dense] with t the
 * candidate's target-field embeddings. Binary → σ(logit); rank → the raw logit.
 */
export function referenceScore(
  config: ResolvedConfig,
  tensors: Tensors,
  task: string,
  user: ArrayLike<number>,
  all: CandidateColumns,
): Float64Array {
  const t = findTask(config, task);
  const cands = columnsFor(all, t.name);
  if (t.kind === 'multiclass') throw new DupnError('E_TASK', `task ${JSON.stringify(task)} is multiclass: use predict, not score`);
  const d = deriveDims(config);
  if (user.length !== d.userDim) inputError('user', `must have userDim = ${d.userDim} values, got ${user.length}`);
  const F = config.itemFields.length;
  const C = validateCandidateColumns(config, t, cands);
  const D = denseCount(t);

  const dt = targetDim(config, t);
  const targets = t.target.map((name) => {
    const fi = config.itemFields.findIndex((f) => f.name === name);
    const f = config.itemFields[fi];
    return { fi, f, table: f.dim > 0 ? tensor(tensors, itemTableName(f.name), f.buckets * f.dim) : new Float32Array(0) };
  });

  if (t.kind === 'retrieval') {
    // ⟨user tower(U), item tower(t)⟩ + w·h.
    const u = runHead(headLayers(config, tensors, t, 0), Float64Array.from(user));
    const itemLayers = headLayers(config, tensors, t, 1);
    const w = D > 0 ? tensor(tensors, historyWeightName(t.name), D) : new Float32Array(0);
    const out = new Float64Array(C);
    const x = new Float64Array(dt);
    for (let c = 0; c < C; c++) {
      let at = 0;
      for (const { fi, f, table } of targets) {
        if (f.dim === 0) continue;
        copyRow(table, f.dim, cands.items[c * F + fi], x, at);
        at += f.dim;
      }
      const v = runHead(itemLayers, x);
      let s = 0;
      for (let j = 0; j < v.length; j++) s += u[j] * v[j];
      for (let k = 0; k < D; k++) s += w[k] * cands.dense[c * D + k];
      out[c] = s;
    }
    return out;
  }
  const layers = headLayers(config, tensors, t);
  const out = new Float64Array(C);
  const input = new Float64Array(d.userDim + dt + D);
  for (let j = 0; j < d.userDim; j++) input[j] = user[j];
  for (let c = 0; c < C; c++) {
    let at = d.userDim;
    for (const { fi, f, table } of targets) {
      if (f.dim === 0) continue;
      copyRow(table, f.dim, cands.items[c * F + fi], input, at);
      at += f.dim;
    }
    for (let k = 0; k < D; k++) input[at + k] = cands.dense[c * D + k];
    const logit = runHead(layers, input)[0];
    out[c] = t.kind === 'binary' ? sigmoid(logit) : logit;
  }
  return out;
}

/** Multiclass task on `batch` user vectors (B × userDim): softmax probabilities, B × classes. */
export function referencePredict(
  config: ResolvedConfig,
  tensors: Tensors,
  task: string,
  users: ArrayLike<number>,
  batch: number,
): Float64Array {
  const t = findTask(config, task);
  if (t.kind !== 'multiclass') throw new DupnError('E_TASK', `task ${JSON.stringify(task)} is ${t.kind}: use score, not predict`);
  const d = deriveDims(config);
  if (users.length !== batch * d.userDim) inputError('users', `must have B × userDim = ${batch * d.userDim} values, got ${users.length}`);
  const K = t.classes;
  const layers = headLayers(config, tensors, t);
  const out = new Float64Array(batch * K);
  const U = new Float64Array(d.userDim);
  for (let b = 0; b < batch; b++) {
    for (let j = 0; j < d.userDim; j++) U[j] = users[b * d.userDim + j];
    const logits = runHead(layers, U);
    let max = -Infinity;
    for (let k = 0; k < K; k++) max = Math.max(max, logits[k]);
    let sum = 0;
    for (let k = 0; k < K; k++) sum += Math.exp(logits[k] - max);
    for (let k = 0; k < K; k++) out[b * K + k] = Math.exp(logits[k] - max) / sum;
  }
  return out;
}
