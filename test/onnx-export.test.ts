// The ONNX export (docs/format.md, "## ONNX") run by onnxruntime-node directly, against the float64
// reference (lib/reference/forward.ts): random odd-dim configs, lengths 0 / 1 / random / max, B = 1 and B ≥ 64,
// every head kind; the file contract (initializers, metadata, inputs); and a fresh process with nothing
// but onnxruntime-node loading the exported files from disk.
import t, { Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import * as ort from 'onnxruntime-node';
import { DupnConfig, ResolvedConfig, denseCount, deriveDims, resolveConfig } from '../lib/network/config';
import { elementCount, tensorSpecs } from '../lib/network/tensors';
import { referenceEncode, referencePredict, referenceScore } from '../lib/reference/forward';
import { randomCandidateColumns, randomTensors, randomUserColumns, withPrior } from '../lib/reference/random-model';
import { buildOnnxGraphs, exportOnnx } from '../lib/onnx/export';
import { Feed, candidateFeeds, padUsers, predictFeeds, raggedAttention } from '../lib/onnx/feeds';
import { decodeModel, floatTensorData, metadataOf } from '../lib/onnx/proto';
import { allFinite, relError } from './support/compare';
import { lengthsFor, oddConfig, oddVariants, paperDims } from './support/configs';
import { toOrt } from '../lib/onnx/backend';

const TOL = 1e-5;
const SESSION: ort.InferenceSession.SessionOptions = { logSeverityLevel: 3 };

interface Sessions {
  user: ort.InferenceSession;
  heads: Map<string, ort.InferenceSession>;
}

async function sessionsFor(config: ResolvedConfig, tensors: Map<string, Float32Array>): Promise<Sessions> {
  const g = buildOnnxGraphs(config, tensors);
  const heads = new Map<string, ort.InferenceSession>();
  for (const [name, bytes] of g.heads) heads.set(name, await ort.InferenceSession.create(bytes, SESSION));
  return { user: await ort.InferenceSession.create(g.user, SESSION), heads };
}

async function release(s: Sessions): Promise<void> {
  await s.user.release();
  for (const h of s.heads.values()) await h.release();
}

async function check(t: Test, config: ResolvedConfig, tensors: Map<string, Float32Array>, s: Sessions, lengths: number[], seed: number, label: string): Promise<void> {
  const d = deriveDims(config);
  const B = lengths.length;
  const cols = randomUserColumns(config, seed, lengths);
  const feeds = padUsers(config, cols);
  const r = await s.user.run(toOrt(feeds));
  const U = r['user'].data as Float32Array;
  const att = r['attention'].data as Float32Array;
  const T = Math.max(1, ...lengths);
  t.same(r['user'].dims, [B, d.userDim], `${label}: user dims`);
  t.same(r['attention'].dims, [B, T], `${label}: attention dims`);
  t.ok(allFinite(U) && allFinite(att), `${label}: finite`);

  const ref = referenceEncode(config, tensors, cols);
  const eU = relError(U, ref.user);
  t.ok(eU <= TOL, `${label}: U rel err ${eU.toExponential(2)}`);
  const ragged = raggedAttention(cols, att, T);
  if (ref.attention.length > 0) {
    const eA = relError(ragged, ref.attention);
    t.ok(eA <= TOL, `${label}: attention rel err ${eA.toExponential(2)}`);
  }
  let padNonZero = 0;
  let emptyR = 0;
  lengths.forEach((L, b) => {
    for (let k = L; k < T; k++) if (att[b * T + k] !== 0) padNonZero++;
    if (L === 0 && !U.subarray(b * d.userDim, b * d.userDim + d.dh).every((x) => x === 0)) emptyR++;
  });
  t.equal(padNonZero, 0, `${label}: attention exactly 0 at padded steps`);
  t.equal(emptyR, 0, `${label}: r exactly 0 for L = 0`);

  for (const task of config.tasks) {
    const head = s.heads.get(task.name)!;
    if (task.kind === 'multiclass') {
      const p = (await head.run(toOrt(predictFeeds(config, U))))['probabilities'];
      t.same(p.dims, [B, task.classes], `${label}: ${task.name} dims`);
      const rp = referencePredict(config, tensors, task.name, ref.user, B);
      const e = relError(p.data as Float32Array, rp);
      t.ok(e <= TOL, `${label}: ${task.name} rel err ${e.toExponential(2)}`);
      continue;
    }
    for (const b of new Set([0, B - 1])) {
      const cands = withPrior(config, tensors, task.name, randomCandidateColumns(config, task, seed + b, 41));
      const out = (await head.run(toOrt(candidateFeeds(config, task, U.subarray(b * d.userDim, (b + 1) * d.userDim), cands))))['score'];
      t.same(out.dims, [41], `${label}: ${task.name} dims`);
      const rs = referenceScore(config, tensors, task.name, ref.user.subarray(b * d.userDim, (b + 1) * d.userDim), cands);
      const e = relError(out.data as Float32Array, rs);
      t.ok(e <= TOL, `${label}: ${task.name} user ${b} rel err ${e.toExponential(2)}`);
    }
  }
}

async function checkAll(t: Test, cfg: DupnConfig, seed: number, tag: string, maxSeqLen: number): Promise<void> {
  const config = resolveConfig(cfg);
  const tensors = randomTensors(config, seed);
  const s = await sessionsFor(config, tensors);
  for (const kind of ['zero', 'one', 'random', 'max']) {
    await check(t, config, tensors, s, lengthsFor(kind, 1, maxSeqLen, seed), seed + 1, `${tag} B=1 L=${kind}`);
  }
  await check(t, config, tensors, s, lengthsFor('random', 67, maxSeqLen, seed), seed + 2, `${tag} B=67 ragged`);
  await check(t, config, tensors, s, lengthsFor('zero', 64, maxSeqLen, seed), seed + 3, `${tag} B=64 all empty`);
  await check(t, config, tensors, s, lengthsFor('max', 64, maxSeqLen, seed), seed + 4, `${tag} B=64 all max`);
  await release(s);
}

t.test('onnxruntime vs reference, odd dims', async (t) => {
  let seed = 5000;
  for (const { variant, tag } of oddVariants()) {
    seed += 10;
    await checkAll(t, oddConfig({ ...variant, maxSeqLen: 23 }), seed, tag, 23);
  }
});

t.test('no properties (Dp = 0), heads without target embeddings', async (t) => {
  for (const bidirectional of [false, true]) {
    const cfg = oddConfig({ bidirectional, query: true, profile: true, scene: false, props: false, maxSeqLen: 9 });
    cfg.tasks!.push(
      { name: 'nodims', kind: 'binary', target: ['brand'], layers: [5] }, // t has width 0, no dense
      { name: 'denseonly', kind: 'rank', target: ['brand'], layers: [], denseFeatures: 2 },
    );
    await checkAll(t, cfg, bidirectional ? 71 : 72, `Dp=0 bi=${bidirectional}`, 9);
  }
});

t.test('paper-size dims, L = 100', async (t) => {
  const config = paperDims();
  const tensors = randomTensors(config, 77, 0.2);
  const s = await sessionsFor(config, tensors);
  await check(t, config, tensors, s, [100, 0, 1, 57, 100], 99, 'paper');
  await release(s);
});

t.test('file contract: opset, initializers, inputs, metadata', async (t) => {
  for (const [label, cfg] of [
    ['full', oddConfig({ bidirectional: true, query: true, profile: true, scene: true, maxSeqLen: 5 })],
    ['sparse', oddConfig({ bidirectional: false, query: false, profile: false, scene: false, props: false, maxSeqLen: 5 })],
  ] as const) {
    const config = resolveConfig(cfg);
    const tensors = randomTensors(config, 3);
    const g = buildOnnxGraphs(config, tensors, 'stem');
    const d = deriveDims(config);
    const files: [string, Uint8Array][] = [['user', g.user], ...[...g.heads].map(([k, v]) => [k, v] as [string, Uint8Array])];
    t.same([...g.heads.keys()], config.tasks.map((x) => x.name), `${label}: one head per task`);
    for (const [name, bytes] of files) {
      const m = decodeModel(bytes);
      t.equal(Number(m.irVersion), 8, `${label} ${name}: IR 8`);
      t.same(m.opsetImport.map((o) => [o.domain ?? '', Number(o.version)]), [['', 17]], `${label} ${name}: opset 17, default domain only`);
      t.ok(m.graph!.node!.every((n) => !n.domain), `${label} ${name}: nodes in the default domain`);
      const meta = metadataOf(m);
      t.equal(meta['dupn.format'], 'dupn');
      t.equal(meta['dupn.format_version'], '1');
      t.same(JSON.parse(meta['dupn.config']), config, `${label} ${name}: resolved config`);
      t.equal(meta['dupn.graph'], name === 'user' ? 'user' : 'head');
      // Initializers: dupn tensors unchanged, by name, none with zero elements, exactly those the graph uses.
      const inits = m.graph!.initializer!;
      const specs = new Map(tensorSpecs(config).map((s) => [s.name, s.shape]));
      for (const init of inits) {
        const shape = specs.get(init.name!);
        t.ok(shape, `${label} ${name}: ${init.name} is a dupn tensor`);
        if (!shape) continue;
        t.same(init.dims!.map(Number), shape, `${label} ${name}: ${init.name} shape`);
        t.ok(elementCount(shape) > 0, `${label} ${name}: ${init.name} not empty`);
        t.same(floatTensorData(init), tensors.get(init.name!), `${label} ${name}: ${init.name} values unchanged`);
      }
      const initNames = inits.map((i) => i.name!).sort();
      const inputs = m.graph!.input!.map((i) => i.name!);
      if (name === 'user') {
        const expected = [...specs.keys()].filter((n) => /^(emb|lstm|attn)\./.test(n) && !(d.dp === 0 && n.endsWith('.wp'))).filter((n) => n !== 'emb.query' || config.query);
        t.same(initNames, expected.sort(), `${label}: user initializers`);
        const want = [
          ...config.itemFields.filter((f) => f.dim > 0).map((f) => `behavior.${f.name}`),
          ...(config.properties.typeDim > 0 ? ['behavior.type'] : []),
          ...(config.properties.gapDim > 0 ? ['behavior.gap'] : []),
          ...(config.properties.sceneDim > 0 ? ['behavior.scene'] : []),
          'lengths',
          ...(config.query ? ['query.tokens', 'query.weights'] : []),
          ...config.profileFields.filter((f) => f.dim > 0).map((f) => `profile.${f.name}`),
        ];
        t.same(inputs.sort(), want.sort(), `${label}: user inputs`);
        t.same(m.graph!.output!.map((o) => o.name), ['user', 'attention']);
        t.same(JSON.parse(meta['dupn.heads']), Object.fromEntries(config.tasks.map((x) => [x.name, `stem.${x.name}.onnx`])), `${label}: dupn.heads`);
        t.equal(m.graph!.node!.filter((n) => n.opType === 'LSTM').length, 1, `${label}: one LSTM node`);
      } else {
        const task = config.tasks.find((x) => x.name === name)!;
        t.equal(meta['dupn.task'], name);
        const heads = [...specs.keys()].filter((n) => n.startsWith(`head.${name}.`));
        const embs = task.kind === 'multiclass' ? [] : task.target.filter((f) => config.itemFields.find((x) => x.name === f)!.dim > 0).map((f) => `emb.item.${f}`);
        t.same(initNames, [...heads, ...embs].sort(), `${label} ${name}: head initializers`);
        if (task.kind === 'multiclass') t.same(inputs, ['user']);
        else {
          const cands = task.target.filter((f) => config.itemFields.find((x) => x.name === f)!.dim > 0).map((f) => `candidate.${f}`);
          const dense = denseCount(task) > 0 ? ['dense'] : [];
          t.same(inputs, ['user', ...cands, ...dense], `${label} ${name}: head inputs in target order`);
        }
        t.same(m.graph!.output!.map((o) => o.name), [task.kind === 'multiclass' ? 'probabilities' : 'score']);
      }
    }
  }
});

// The child script: nothing but onnxruntime-node (and process stdin/stdout). Input: JSON
// { runs: [{ path, feeds: { name: { type, data: number[], dims } } }] }; output: JSON { path: { output: { dims, data } } }.
const CHILD = `'use strict';
const ort = require('onnxruntime-node');
let text = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (c) => (text += c));
process.stdin.on('end', async () => {
  try {
    const job = JSON.parse(text);
    const result = {};
    for (const run of job.runs) {
      const session = await ort.InferenceSession.create(run.path, { logSeverityLevel: 3 });
      const feeds = {};
      for (const [name, f] of Object.entries(run.feeds)) {
        const data = f.type === 'int64' ? BigInt64Array.from(f.data, BigInt) : f.type === 'int32' ? Int32Array.from(f.data) : Float32Array.from(f.data);
        feeds[name] = new ort.Tensor(f.type, data, f.dims);
      }
      const out = await session.run(feeds);
      result[run.path] = {};
      for (const [k, v] of Object.entries(out)) result[run.path][k] = { dims: v.dims, data: Array.from(v.data, Number) };
    }
    process.stdout.write(JSON.stringify(result));
  } catch (e) {
    process.stderr.write(String(e && e.stack || e));
    process.exit(1);
  }
});
`;

function jsonFeeds(feeds: Record<string, Feed>): Record<string, { type: string; data: number[]; dims: number[] }> {
  const out: Record<string, { type: string; data: number[]; dims: number[] }> = {};
  for (const [k, f] of Object.entries(feeds)) out[k] = { type: f.type, data: Array.from(f.data as ArrayLike<number | bigint>, Number), dims: f.dims };
  return out;
}

t.test('exported files run in a fresh process with nothing but onnxruntime-node', async (t) => {
  const dir = mkdtempSync(nodePath.join(tmpdir(), 'dupn-onnx-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = resolveConfig(oddConfig({ bidirectional: true, query: true, profile: true, scene: true, maxSeqLen: 17 }));
  const tensors = randomTensors(config, 4242);
  const d = deriveDims(config);

  const userPath = nodePath.join(dir, 'dupn-model.onnx');
  const written = await exportOnnx(config, tensors, userPath);
  t.same(written, [userPath, ...config.tasks.map((x) => nodePath.join(dir, `dupn-model.${x.name}.onnx`))], 'written paths');
  t.ok(written.every((p) => existsSync(p)), 'every file exists');
  const heads = JSON.parse(metadataOf(decodeModel(readFileSync(userPath)))['dupn.heads']) as Record<string, string>;
  t.ok(Object.values(heads).every((f) => existsSync(nodePath.join(dir, f))), 'dupn.heads names the files next to the user file');

  const lengths = [0, 1, 17, 5, 11];
  const cols = randomUserColumns(config, 9, lengths);
  const ref = referenceEncode(config, tensors, cols);
  const u0 = Float32Array.from(ref.user.subarray(d.userDim, 2 * d.userDim));
  const ctrCands = randomCandidateColumns(config, 'ctr', 10, 29);
  const l2rCands = randomCandidateColumns(config, 'l2r', 11, 31);
  const ctrPath = nodePath.join(dir, heads['ctr']);
  const l2rPath = nodePath.join(dir, heads['l2r']);
  const pppPath = nodePath.join(dir, heads['ppp']);
  const job = {
    runs: [
      { path: userPath, feeds: jsonFeeds(padUsers(config, cols)) },
      { path: ctrPath, feeds: jsonFeeds(candidateFeeds(config, 'ctr', u0, ctrCands)) },
      { path: l2rPath, feeds: jsonFeeds(candidateFeeds(config, 'l2r', u0, l2rCands)) },
      { path: pppPath, feeds: jsonFeeds(predictFeeds(config, Float32Array.from(ref.user))) },
    ],
  };
  const script = nodePath.join(dir, 'child.js');
  writeFileSync(script, CHILD);
  const stdout = execFileSync(process.execPath, [script], {
    input: JSON.stringify(job),
    // A bare environment: no tap loader, no TypeScript, no dupn; only where onnxruntime-node lives.
    env: { PATH: process.env.PATH ?? '', NODE_PATH: nodePath.join(__dirname, '..', 'node_modules') },
    maxBuffer: 64 << 20,
  });
  const res = JSON.parse(stdout.toString('utf8')) as Record<string, Record<string, { dims: number[]; data: number[] }>>;

  const user = res[userPath];
  t.same(user['user'].dims, [lengths.length, d.userDim]);
  t.ok(relError(user['user'].data, ref.user) <= TOL, `child U rel err ${relError(user['user'].data, ref.user).toExponential(2)}`);
  const T = user['attention'].dims[1];
  t.equal(T, 17);
  const att = raggedAttention(cols, user['attention'].data, T);
  t.ok(relError(att, ref.attention) <= TOL, `child attention rel err ${relError(att, ref.attention).toExponential(2)}`);
  t.ok(user['attention'].data.slice(0, T).every((x) => x === 0), 'child: L = 0 user has all-zero attention');
  const ctr = referenceScore(config, tensors, 'ctr', u0, ctrCands);
  t.ok(relError(res[ctrPath]['score'].data, ctr) <= TOL, `child ctr rel err ${relError(res[ctrPath]['score'].data, ctr).toExponential(2)}`);
  const l2r = referenceScore(config, tensors, 'l2r', u0, l2rCands);
  t.ok(relError(res[l2rPath]['score'].data, l2r) <= TOL, `child l2r rel err ${relError(res[l2rPath]['score'].data, l2r).toExponential(2)}`);
  const ppp = referencePredict(config, tensors, 'ppp', ref.user, lengths.length);
  t.ok(relError(res[pppPath]['probabilities'].data, ppp) <= TOL, `child ppp rel err ${relError(res[pppPath]['probabilities'].data, ppp).toExponential(2)}`);
});

t.test('padUsers / raggedAttention / candidateFeeds layout', async (t) => {
  const config = resolveConfig(oddConfig({ bidirectional: true, query: true, profile: true, scene: true, maxSeqLen: 4 }));
  const cols = randomUserColumns(config, 1, [2, 0, 3]);
  const f = padUsers(config, cols);
  t.same(f['behavior.item'].dims, [3, 3]);
  t.same(Array.from(f['behavior.item'].data as BigInt64Array, Number), [cols.items[0], cols.items[4], 0, 0, 0, 0, cols.items[8], cols.items[12], cols.items[16]]);
  t.same(Array.from(f['behavior.scene'].data as BigInt64Array, Number), [cols.properties[2], cols.properties[5], 0, 0, 0, 0, cols.properties[8], cols.properties[11], cols.properties[14]]);
  t.notOk('behavior.brand' in f, 'no input for a dim-0 item field');
  t.notOk('profile.gender' in f, 'no input for a dim-0 profile field');
  t.same(f['lengths'], { type: 'int32', data: Int32Array.of(2, 0, 3), dims: [3] });
  const Q = f['query.tokens'].dims[1];
  t.ok(Q >= 1);
  for (let b = 0; b < 3; b++) {
    const n = cols.queryOffsets[b + 1] - cols.queryOffsets[b];
    const w = Array.from((f['query.weights'].data as Float32Array).subarray(b * Q, (b + 1) * Q));
    t.same(w, [...Array(n).fill(Math.fround(1 / n)), ...Array(Q - n).fill(0)], `query weights of user ${b}`);
  }
  t.same(Array.from(f['profile.city'].data as BigInt64Array, Number), [cols.profile[2], cols.profile[5], cols.profile[8]]);
  t.same(raggedAttention(cols, [1, 2, 0, 0, 0, 0, 3, 4, 5], 3), Float32Array.of(1, 2, 3, 4, 5));
  const empty = padUsers(config, randomUserColumns(config, 1, [0, 0]));
  t.same(empty['behavior.item'].dims, [2, 1], 'T is at least 1');
  const cands = randomCandidateColumns(config, 'l2r', 2, 3);
  const cf = candidateFeeds(config, 'l2r', new Float32Array(deriveDims(config).userDim), cands);
  t.same(Object.keys(cf), ['user', 'candidate.item', 'candidate.shop', 'dense']);
  t.same(Array.from(cf['candidate.shop'].data as BigInt64Array, Number), [cands.items[2], cands.items[6], cands.items[10]]);
  t.same(cf['dense'].dims, [3, 3 + 9], 'its 3 dense numbers, then 9 history features');
});
