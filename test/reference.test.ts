import t from 'tap';
import { DupnError } from '../lib/errors';
import { ResolvedConfig, deriveDims, resolveConfig } from '../lib/network/config';
import { Tensors, elementCount, tensorSpecs } from '../lib/network/tensors';
import { UserColumns } from '../lib/model/columns';
import { lstmWeights, referenceEncode, referenceLstm, referencePredict, referenceScore } from '../lib/reference/forward';
import { randomCandidateColumns, randomTensors, randomUserColumns } from '../lib/reference/random-model';

const sig = (x: number): number => 1 / (1 + Math.exp(-x));
const close = (a: number, b: number, tol = 1e-12): boolean => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));

/** Zero tensors for every spec; `set` fills one by name (checking the length), so a misnamed tensor fails. */
function handTensors(config: ResolvedConfig, values: Record<string, number[]>): Tensors {
  const m: Tensors = new Map();
  for (const s of tensorSpecs(config)) m.set(s.name, new Float32Array(elementCount(s.shape)));
  for (const [name, v] of Object.entries(values)) {
    const dst = m.get(name);
    if (!dst) throw new Error(`no tensor ${name}`);
    if (dst.length !== v.length) throw new Error(`${name}: ${v.length} values, expected ${dst.length}`);
    dst.set(v);
  }
  return m;
}

/** A small config with every part switched on. */
function smallConfig(over: Record<string, unknown> = {}): ResolvedConfig {
  return resolveConfig({
    maxSeqLen: 12,
    itemFields: [
      { name: 'item', buckets: 50, dim: 4 },
      { name: 'category', buckets: 7, dim: 3 },
      { name: 'shop', buckets: 9, dim: 0 },
      { name: 'brand', buckets: 11, dim: 2 },
    ],
    properties: { types: ['pv', 'fav', 'cart', 'buy'], typeDim: 3, gapBuckets: 5, gapDim: 2, scenes: ['a', 'b'], sceneDim: 2 },
    query: { buckets: 13, dim: 3 },
    profileFields: [
      { name: 'age', buckets: 6, dim: 2 },
      { name: 'gender', buckets: 3, dim: 0 },
      { name: 'city', buckets: 17, dim: 3 },
    ],
    hidden: 5,
    bidirectional: true,
    attentionHidden: 4,
    tasks: [
      { name: 'ctr', kind: 'binary', target: ['item', 'category', 'brand'], layers: [6, 4] },
      { name: 'l2r', kind: 'rank', target: ['brand', 'item'], layers: [5], denseFeatures: 2 },
      { name: 'ppp', kind: 'multiclass', classes: 4, layers: [6] },
      { name: 'spp', kind: 'binary', target: ['category'], layers: [3] },
    ],
    ...over,
  });
}

t.test('hand-computed tiny case: H = 1, one item field, no properties/query/profile, L = 2', async (t) => {
  const config = resolveConfig({
    maxSeqLen: 4,
    itemFields: [{ name: 'x', buckets: 3, dim: 1 }],
    properties: { typeDim: 0, gapDim: 0, sceneDim: 0 },
    query: null,
    profileFields: [],
    hidden: 1,
    bidirectional: false,
    attentionHidden: 1,
    tasks: [
      { name: 'ctr', kind: 'binary', target: ['x'], layers: [2] },
      { name: 'rk', kind: 'rank', target: ['x'], layers: [2], denseFeatures: 1 },
      { name: 'ppp', kind: 'multiclass', classes: 3, layers: [2] },
    ],
  });
  t.equal(deriveDims(config).userDim, 1);
  const E = [0.5, -1, 0.25];
  const [xi, xf, xg, xo] = [0.5, -0.25, 1.0, 0.75];
  const [hi, hf, hg, ho] = [0.25, 0.5, -0.5, 1.0];
  const [bi, bf, bg, bo] = [0.125, 1.0, -0.25, 0.0];
  const [wa, ba, va] = [1.5, -0.25, 2.0];
  const tensors = handTensors(config, {
    'emb.item.x': E,
    'lstm.fw.wx': [xi, xf, xg, xo],
    'lstm.fw.wh': [hi, hf, hg, ho],
    'lstm.fw.b': [bi, bf, bg, bo],
    'attn.w': [wa],
    'attn.b': [ba],
    'attn.v': [va],
    'head.ctr.0.w': [1, -0.5, -0.75, 2],
    'head.ctr.0.b': [0.125, -0.5],
    'head.ctr.1.w': [1.5, -1],
    'head.ctr.1.b': [0.25],
    'head.rk.0.w': [2, 1, -0.5, -1, 0.5, 1],
    'head.rk.0.b': [0, 0.25],
    'head.rk.1.w': [-1.25, 0.75],
    'head.rk.1.b': [0.5],
    'head.ppp.0.w': [3, -2],
    'head.ppp.0.b': [-0.5, 0.25],
    'head.ppp.1.w': [1, -1, 0.5, 0.5, -2, 0.25],
    'head.ppp.1.b': [0, 0.5, -0.5],
  });
  const cols: UserColumns = {
    lengths: Int32Array.of(2),
    items: Int32Array.of(2, 0),
    properties: new Int32Array(6),
    queryOffsets: Int32Array.of(0, 0),
    queryTokens: new Int32Array(0),
    profile: new Int32Array(0),
  };

  // Explicit scalar LSTM: e1 = E[2], e2 = E[0]; h0 = c0 = 0.
  const e1 = E[2];
  const e2 = E[0];
  const i1 = sig(xi * e1 + bi);
  const g1 = Math.tanh(xg * e1 + bg);
  const o1 = sig(xo * e1 + bo);
  const c1 = i1 * g1; // f1 · c0 = 0
  const h1 = o1 * Math.tanh(c1);
  const i2 = sig(xi * e2 + hi * h1 + bi);
  const f2 = sig(xf * e2 + hf * h1 + bf);
  const g2 = Math.tanh(xg * e2 + hg * h1 + bg);
  const o2 = sig(xo * e2 + ho * h1 + bo);
  const c2 = f2 * c1 + i2 * g2;
  const h2 = o2 * Math.tanh(c2);
  const s1 = va * Math.tanh(wa * h1 + ba);
  const s2 = va * Math.tanh(wa * h2 + ba);
  const a1 = Math.exp(s1) / (Math.exp(s1) + Math.exp(s2));
  const a2 = Math.exp(s2) / (Math.exp(s1) + Math.exp(s2));
  const r = a1 * h1 + a2 * h2;

  const out = referenceEncode(config, tensors, cols);
  t.equal(out.user.length, 1);
  t.equal(out.attention.length, 2);
  t.ok(close(out.attention[0], a1), `a1 ${out.attention[0]} vs ${a1}`);
  t.ok(close(out.attention[1], a2), `a2 ${out.attention[1]} vs ${a2}`);
  t.ok(close(out.user[0], r), `r ${out.user[0]} vs ${r}`);
  t.not(a1, a2, 'the case is not degenerate');

  // ctr: σ(W1 relu(W0 [r ; E[c]] + b0) + b1).
  const ctr = referenceScore(config, tensors, 'ctr', out.user, { items: Int32Array.of(1, 2, 0), dense: new Float32Array(0) });
  let reluBit = false;
  [1, 2, 0].forEach((id, c) => {
    const z0 = 1 * r - 0.5 * E[id] + 0.125;
    const z1 = -0.75 * r + 2 * E[id] - 0.5;
    if (z0 < 0 || z1 < 0) reluBit = true;
    const want = sig(1.5 * Math.max(0, z0) - 1 * Math.max(0, z1) + 0.25);
    t.ok(close(ctr[c], want), `ctr[${c}] ${ctr[c]} vs ${want}`);
  });
  t.ok(reluBit, 'the ReLU clips something in this case');

  // rk: raw W1 relu(W0 [r ; E[c] ; dense] + b0) + b1.
  const dense = [0.5, -2];
  const rk = referenceScore(config, tensors, 'rk', out.user, { items: Int32Array.of(0, 1), dense: Float32Array.from(dense) });
  [0, 1].forEach((id, c) => {
    const z0 = 2 * r + 1 * E[id] - 0.5 * dense[c];
    const z1 = -1 * r + 0.5 * E[id] + 1 * dense[c] + 0.25;
    const want = -1.25 * Math.max(0, z0) + 0.75 * Math.max(0, z1) + 0.5;
    t.ok(close(rk[c], want), `rk[${c}] ${rk[c]} vs ${want}`);
  });

  // ppp: softmax(W1 relu(W0 r + b0) + b1).
  const z = [Math.max(0, 3 * r - 0.5), Math.max(0, -2 * r + 0.25)];
  const logits = [1 * z[0] - 1 * z[1], 0.5 * z[0] + 0.5 * z[1] + 0.5, -2 * z[0] + 0.25 * z[1] - 0.5];
  const sum = logits.reduce((s, l) => s + Math.exp(l), 0);
  const ppp = referencePredict(config, tensors, 'ppp', out.user, 1);
  t.equal(ppp.length, 3);
  for (let k = 0; k < 3; k++) t.ok(close(ppp[k], Math.exp(logits[k]) / sum), `ppp[${k}]`);
});

t.test('hand-computed case with properties: wp gate order i, f, o and p_t order type, gap, scene', async (t) => {
  const config = resolveConfig({
    maxSeqLen: 4,
    itemFields: [{ name: 'x', buckets: 2, dim: 1 }],
    properties: { types: ['pv', 'buy'], typeDim: 1, gapBuckets: 3, gapDim: 1, scenes: ['s'], sceneDim: 1 },
    query: null,
    profileFields: [],
    hidden: 1,
    bidirectional: false,
    attentionHidden: 1,
    tasks: [],
  });
  const E = [0.75, -0.5];
  const T = [0.5, -0.25, 1.0]; // pv, buy, unknown
  const G = [0.125, -1.0, 0.5];
  const S = [-0.75, 0.25]; // s, unknown
  const wx = [0.5, -0.25, 1.0, 0.75];
  const wh = [0.25, 0.5, -0.5, 1.0];
  const b = [0.125, 1.0, -0.25, 0.0];
  const wp = [
    [1.0, -0.5, 0.25], // i: type, gap, scene
    [-0.75, 0.5, 1.5], // f
    [0.25, 1.25, -1.0], // o
  ];
  const wa = [1.5, -0.5, 0.75, 0.25]; // columns H_t, type, gap, scene
  const tensors = handTensors(config, {
    'emb.item.x': E,
    'emb.prop.type': T,
    'emb.prop.gap': G,
    'emb.prop.scene': S,
    'lstm.fw.wx': wx,
    'lstm.fw.wp': wp.flat(),
    'lstm.fw.wh': wh,
    'lstm.fw.b': b,
    'attn.w': wa,
    'attn.b': [0.125],
    'attn.v': [-1.5],
  });
  // Two behaviours: (x=1, type unknown, gap 2, scene s), (x=0, type buy, gap 0, scene unknown).
  const cols: UserColumns = {
    lengths: Int32Array.of(2),
    items: Int32Array.of(1, 0),
    properties: Int32Array.of(2, 2, 0, 1, 0, 1),
    queryOffsets: Int32Array.of(0, 0),
    queryTokens: new Int32Array(0),
    profile: new Int32Array(0),
  };
  const steps = [
    { e: E[1], p: [T[2], G[2], S[0]] },
    { e: E[0], p: [T[1], G[0], S[1]] },
  ];
  const dot3 = (w: number[], p: number[]): number => w[0] * p[0] + w[1] * p[1] + w[2] * p[2];
  let h = 0;
  let c = 0;
  const hs: number[] = [];
  for (const { e, p } of steps) {
    const i = sig(wx[0] * e + dot3(wp[0], p) + wh[0] * h + b[0]);
    const f = sig(wx[1] * e + dot3(wp[1], p) + wh[1] * h + b[1]);
    const g = Math.tanh(wx[2] * e + wh[2] * h + b[2]); // no property term
    const o = sig(wx[3] * e + dot3(wp[2], p) + wh[3] * h + b[3]);
    c = f * c + i * g;
    h = o * Math.tanh(c);
    hs.push(h);
  }
  const s = steps.map(({ p }, k) => -1.5 * Math.tanh(wa[0] * hs[k] + wa[1] * p[0] + wa[2] * p[1] + wa[3] * p[2] + 0.125));
  const den = Math.exp(s[0]) + Math.exp(s[1]);
  const a = s.map((x) => Math.exp(x) / den);
  const out = referenceEncode(config, tensors, cols);
  t.ok(close(out.attention[0], a[0]) && close(out.attention[1], a[1]), `attention ${[...out.attention]} vs ${a}`);
  const r = a[0] * hs[0] + a[1] * hs[1];
  t.ok(close(out.user[0], r), `r ${out.user[0]} vs ${r}`);
});

t.test('L = 0: r = 0, no attention entries, finite outputs and heads', async (t) => {
  const config = smallConfig();
  const d = deriveDims(config);
  const tensors = randomTensors(config, 7);
  const cols = randomUserColumns(config, 8, [0, 3, 0], { queryTokens: 2 });
  const out = referenceEncode(config, tensors, cols);
  t.equal(out.user.length, 3 * d.userDim);
  t.equal(out.attention.length, 3);
  t.ok(out.user.every(Number.isFinite));
  for (const b of [0, 2]) {
    const U = out.user.subarray(b * d.userDim, (b + 1) * d.userDim);
    t.ok(U.subarray(0, d.dh).every((x) => x === 0), `user ${b}: r = 0`);
    t.ok(U.subarray(d.dh).some((x) => x !== 0), `user ${b}: u and q still present`);
  }
  t.ok(out.user.subarray(d.userDim, d.userDim + d.dh).some((x) => x !== 0), 'user 1 has r ≠ 0');
  for (const task of ['ctr', 'l2r', 'spp']) {
    const s = referenceScore(config, tensors, task, out.user.subarray(0, d.userDim), randomCandidateColumns(config, task, 9, 5));
    t.equal(s.length, 5);
    t.ok(s.every(Number.isFinite), `${task} finite`);
  }
  const p = referencePredict(config, tensors, 'ppp', out.user, 3);
  t.ok(p.every(Number.isFinite));

  // A whole batch of empty users.
  const empty = referenceEncode(config, tensors, randomUserColumns(config, 10, [0, 0]));
  t.equal(empty.attention.length, 0);
  t.ok(empty.user.every(Number.isFinite));
});

t.test('attention weights of each user are > 0 and sum to 1; U = [r ; u ; q]', async (t) => {
  const config = smallConfig();
  const d = deriveDims(config);
  const tensors = randomTensors(config, 11, 1.0);
  const lengths = [1, 5, 7, 2, 12, 3];
  const cols = randomUserColumns(config, 12, lengths, { queryTokens: 4 });
  const out = referenceEncode(config, tensors, cols);
  let n = 0;
  lengths.forEach((L, b) => {
    const a = out.attention.subarray(n, n + L);
    t.ok(a.every((x) => x > 0), `user ${b}: all > 0`);
    t.ok(Math.abs(a.reduce((s, x) => s + x, 0) - 1) < 1e-12, `user ${b}: sums to 1`);
    n += L;
  });
  t.equal(out.attention[0], 1, 'a single behaviour gets weight 1');
  t.ok(
    new Set(out.attention.subarray(1, 6)).size > 1,
    'weights are not all equal (the attention actually looks at its input)',
  );

  // u (profile rows, dim-0 field skipped) and q (mean of token rows) by hand.
  const age = tensors.get('emb.profile.age')!;
  const city = tensors.get('emb.profile.city')!;
  const qt = tensors.get('emb.query')!;
  lengths.forEach((_, b) => {
    const U = out.user.subarray(b * d.userDim, (b + 1) * d.userDim);
    const P = config.profileFields.length;
    const ageRow = cols.profile[b * P + 0];
    const cityRow = cols.profile[b * P + 2];
    const u = [age[ageRow * 2], age[ageRow * 2 + 1], city[cityRow * 3], city[cityRow * 3 + 1], city[cityRow * 3 + 2]];
    const from = cols.queryOffsets[b];
    const to = cols.queryOffsets[b + 1];
    const q = [0, 0, 0];
    for (let k = from; k < to; k++) for (let j = 0; j < 3; j++) q[j] += qt[cols.queryTokens[k] * 3 + j] / (to - from);
    for (let j = 0; j < 5; j++) t.ok(close(U[d.dh + j], u[j]), `user ${b}: u[${j}]`);
    for (let j = 0; j < 3; j++) t.ok(close(U[d.dh + 5 + j], q[j]), `user ${b}: q[${j}]`);
  });
  t.ok(cols.queryOffsets.some((o, b) => b > 0 && o === cols.queryOffsets[b - 1]), 'some user has no query');
  t.ok(cols.queryOffsets.some((o, b) => b > 0 && o - cols.queryOffsets[b - 1] > 1), 'some user has several tokens');
});

t.test('full assembly by hand: e_t, p_t, q, u into attention columns [H_t ; q ; u ; p_t]', async (t) => {
  const config = smallConfig();
  const d = deriveDims(config);
  const H = config.hidden;
  const A = config.attentionHidden;
  const tensors = randomTensors(config, 61, 1.0);
  const lengths = [4, 6];
  const cols = randomUserColumns(config, 62, lengths, { queryTokens: 3 });
  const out = referenceEncode(config, tensors, cols);
  const F = config.itemFields.length;
  const P = config.profileFields.length;
  const row = (name: string, r: number, dim: number): number[] => Array.from(tensors.get(name)!.subarray(r * dim, (r + 1) * dim));
  let n0 = 0;
  lengths.forEach((L, b) => {
    const xs: number[] = [];
    const ps: number[] = [];
    for (let s = 0; s < L; s++) {
      const n = n0 + s;
      xs.push(...row('emb.item.item', cols.items[n * F + 0], 4));
      xs.push(...row('emb.item.category', cols.items[n * F + 1], 3));
      xs.push(...row('emb.item.brand', cols.items[n * F + 3], 2)); // shop has dim 0
      ps.push(...row('emb.prop.type', cols.properties[3 * n], 3));
      ps.push(...row('emb.prop.gap', cols.properties[3 * n + 1], 2));
      ps.push(...row('emb.prop.scene', cols.properties[3 * n + 2], 2));
    }
    const u = [...row('emb.profile.age', cols.profile[b * P], 2), ...row('emb.profile.city', cols.profile[b * P + 2], 3)];
    const q = [0, 0, 0];
    const nt = cols.queryOffsets[b + 1] - cols.queryOffsets[b];
    for (let k = cols.queryOffsets[b]; k < cols.queryOffsets[b + 1]; k++) {
      row('emb.query', cols.queryTokens[k], 3).forEach((v, j) => (q[j] += v / nt));
    }
    const hf = referenceLstm(lstmWeights(config, tensors, 'fw'), xs, ps, L, false);
    const hb = referenceLstm(lstmWeights(config, tensors, 'bw'), xs, ps, L, true);
    const W = tensors.get('attn.w')!;
    const ab = tensors.get('attn.b')!;
    const v = tensors.get('attn.v')!;
    const Hs: number[][] = [];
    const scores: number[] = [];
    for (let s = 0; s < L; s++) {
      const Ht = [...hf.subarray(s * H, (s + 1) * H), ...hb.subarray(s * H, (s + 1) * H)];
      Hs.push(Ht);
      const z = [...Ht, ...q, ...u, ...ps.slice(s * d.dp, (s + 1) * d.dp)];
      t.equal(z.length, d.attnIn);
      let sc = 0;
      for (let k = 0; k < A; k++) sc += v[k] * Math.tanh(z.reduce((acc, x, j) => acc + W[k * d.attnIn + j] * x, ab[k]));
      scores.push(sc);
    }
    const den = scores.reduce((acc, x) => acc + Math.exp(x), 0);
    const a = scores.map((x) => Math.exp(x) / den);
    for (let s = 0; s < L; s++) t.ok(close(out.attention[n0 + s], a[s]), `user ${b} a[${s}]`);
    const U = out.user.subarray(b * d.userDim, (b + 1) * d.userDim);
    for (let j = 0; j < d.dh; j++) t.ok(close(U[j], Hs.reduce((acc, Ht, s) => acc + a[s] * Ht[j], 0)), `user ${b} r[${j}]`);
    n0 += L;
  });
  t.ok(cols.queryTokens.length > 0, 'a query enters the attention');
});

t.test('bidirectional: reversing the sequence swaps fw and bw when their weights are equal', async (t) => {
  const config = smallConfig({ profileFields: [], query: null });
  const d = deriveDims(config);
  const H = config.hidden;
  const tensors = randomTensors(config, 21);
  for (const part of ['wx', 'wp', 'wh', 'b']) tensors.set(`lstm.bw.${part}`, Float32Array.from(tensors.get(`lstm.fw.${part}`)!));
  // Make the attention symmetric in the two halves of H_t, so s_t depends on {h^fw, h^bw} symmetrically.
  const aw = tensors.get('attn.w')!;
  for (let k = 0; k < config.attentionHidden; k++) {
    for (let j = 0; j < H; j++) aw[k * d.attnIn + H + j] = aw[k * d.attnIn + j];
  }

  const L = 6;
  const cols = randomUserColumns(config, 22, [L]);
  const F = config.itemFields.length;
  const rev: UserColumns = { ...cols, items: new Int32Array(cols.items.length), properties: new Int32Array(cols.properties.length) };
  for (let s = 0; s < L; s++) {
    rev.items.set(cols.items.subarray((L - 1 - s) * F, (L - s) * F), s * F);
    rev.properties.set(cols.properties.subarray((L - 1 - s) * 3, (L - s) * 3), s * 3);
  }
  const a = referenceEncode(config, tensors, cols);
  const b = referenceEncode(config, tensors, rev);
  for (let j = 0; j < H; j++) {
    t.ok(close(b.user[j], a.user[H + j]), `r'fw[${j}] = r bw[${j}]`);
    t.ok(close(b.user[H + j], a.user[j]), `r'bw[${j}] = r fw[${j}]`);
  }
  t.ok(a.user.subarray(0, H).some((x, j) => !close(x, a.user[H + j], 1e-6)), 'fw and bw halves differ (not a trivial case)');
  for (let s = 0; s < L; s++) t.ok(close(b.attention[s], a.attention[L - 1 - s]), `attention reversed at ${s}`);

  // The same at the level of the per-step states: H^fw' at position L+1-t equals H^bw at t.
  const w = lstmWeights(config, tensors, 'fw');
  const xs = Float64Array.from({ length: L * d.dx }, (_, k) => Math.sin(k + 1));
  const ps = Float64Array.from({ length: L * d.dp }, (_, k) => Math.cos(3 * k));
  const xr = new Float64Array(xs.length);
  const pr = new Float64Array(ps.length);
  for (let s = 0; s < L; s++) {
    xr.set(xs.subarray((L - 1 - s) * d.dx, (L - s) * d.dx), s * d.dx);
    pr.set(ps.subarray((L - 1 - s) * d.dp, (L - s) * d.dp), s * d.dp);
  }
  const bwOrig = referenceLstm(w, xs, ps, L, true);
  const fwRev = referenceLstm(w, xr, pr, L, false);
  for (let s = 0; s < L; s++) {
    for (let j = 0; j < H; j++) t.ok(close(fwRev[(L - 1 - s) * H + j], bwOrig[s * H + j]), `step ${s} unit ${j}`);
  }
});

t.test('decoupled scoring: score = head(W_U U + W_t t + W_d dense + b, ...) computed by hand', async (t) => {
  const config = smallConfig();
  const d = deriveDims(config);
  const tensors = randomTensors(config, 31, 0.8);
  const out = referenceEncode(config, tensors, randomUserColumns(config, 32, [9, 4]));
  const U = out.user.subarray(d.userDim, 2 * d.userDim);
  const F = config.itemFields.length;

  for (const task of config.tasks) {
    if (task.kind === 'multiclass') continue;
    const C = 6;
    const cands = randomCandidateColumns(config, task, 33, C);
    const got = referenceScore(config, tensors, task.name, U, cands);
    const widths = [0, ...task.layers, 1];
    const D = task.kind === 'rank' ? task.denseFeatures : 0;
    // W_U U once per user.
    const w0 = tensors.get(`head.${task.name}.0.w`)!;
    const b0 = tensors.get(`head.${task.name}.0.b`)!;
    const in0 = w0.length / b0.length;
    const wu = Array.from({ length: b0.length }, (_, r) => {
      let s = 0;
      for (let j = 0; j < d.userDim; j++) s += w0[r * in0 + j] * U[j];
      return s;
    });
    for (let c = 0; c < C; c++) {
      const tvec: number[] = [];
      for (const name of task.target) {
        const fi = config.itemFields.findIndex((f) => f.name === name);
        const f = config.itemFields[fi];
        const tab = tensors.get(`emb.item.${name}`)!;
        for (let j = 0; j < f.dim; j++) tvec.push(tab[cands.items[c * F + fi] * f.dim + j]);
      }
      for (let k = 0; k < D; k++) tvec.push(cands.dense[c * D + k]);
      t.equal(d.userDim + tvec.length, in0);
      let x = wu.map((v, r) => {
        let s = v + b0[r];
        for (let j = 0; j < tvec.length; j++) s += w0[r * in0 + d.userDim + j] * tvec[j];
        return s;
      });
      for (let k = 1; k + 1 < widths.length; k++) {
        const w = tensors.get(`head.${task.name}.${k}.w`)!;
        const bb = tensors.get(`head.${task.name}.${k}.b`)!;
        const relu = x.map((v) => Math.max(0, v));
        x = Array.from(bb, (bv, r) => relu.reduce((s, v, j) => s + w[r * relu.length + j] * v, bv));
      }
      const want = task.kind === 'binary' ? sig(x[0]) : x[0];
      t.ok(close(got[c], want), `${task.name}[${c}] ${got[c]} vs ${want}`);
    }
  }
});

t.test('task errors', async (t) => {
  const config = smallConfig();
  const d = deriveDims(config);
  const tensors = randomTensors(config, 41);
  const U = new Float64Array(d.userDim);
  const cands = randomCandidateColumns(config, 'ctr', 1, 2);
  const isTask = { name: 'DupnError', code: 'E_TASK' };
  t.throws(() => referenceScore(config, tensors, 'nope', U, cands), isTask);
  t.throws(() => referenceScore(config, tensors, 'ppp', U, cands), isTask);
  t.throws(() => referencePredict(config, tensors, 'ctr', U, 1), isTask);
  t.throws(() => referencePredict(config, tensors, 'nope', U, 1), isTask);
  t.throws(() => randomCandidateColumns(config, 'nope', 1, 1), isTask);
  try {
    referenceScore(config, tensors, 'ppp', U, cands);
  } catch (e) {
    t.ok(e instanceof DupnError, 'a DupnError instance');
  }
});

t.test('paper-size defaults run and stay finite', async (t) => {
  const config = resolveConfig({});
  const d = deriveDims(config);
  const tensors = randomTensors(config, 51);
  const out = referenceEncode(config, tensors, randomUserColumns(config, 52, [100, 0, 37]));
  t.equal(out.user.length, 3 * d.userDim);
  t.equal(out.attention.length, 137);
  t.ok(out.user.every(Number.isFinite));
  const s = referenceScore(config, tensors, 'l2r', out.user.subarray(0, d.userDim), randomCandidateColumns(config, 'l2r', 53, 10));
  t.ok(s.every(Number.isFinite));
  const p = referencePredict(config, tensors, 'ppp', out.user, 3);
  for (let b = 0; b < 3; b++) t.ok(close(p.subarray(b * 7, b * 7 + 7).reduce((a, x) => a + x, 0), 1), `ppp row ${b} sums to 1`);
});
