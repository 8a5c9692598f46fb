// The onnxruntime backend behind the same Model API: parity with the native backend on U, attention and
// every head; the same validation; exportOnnx / load with backend 'onnxruntime'.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DupnConfig, resolveConfig } from '../lib/network/config';
import { Model } from '../lib/model/model';
import { mulberry32, randomCandidateColumns, randomTensors, randomUserColumns } from '../lib/reference/random-model';
import { relError } from './support/compare';
import { rejectsCode, throwsCode } from './support/errors';

const TOL = 1e-5;

function configFor(bidirectional: boolean): DupnConfig {
  return {
    maxSeqLen: 40,
    itemFields: [
      { name: 'item', buckets: 2003, dim: 13 },
      { name: 'category', buckets: 101, dim: 6 },
      { name: 'shop', buckets: 71, dim: 5 },
      { name: 'brand', buckets: 37, dim: 3 },
    ],
    properties: { typeDim: 3, gapDim: 2, sceneDim: 3 },
    query: { buckets: 97, dim: 7 },
    profileFields: [{ name: 'age', buckets: 9, dim: 3 }],
    hidden: 29,
    bidirectional,
    attentionHidden: 17,
    tasks: [
      { name: 'ctr', kind: 'binary', target: ['item', 'category', 'shop', 'brand'], layers: [19, 7] },
      { name: 'l2r', kind: 'rank', target: ['item', 'shop'], layers: [11], denseFeatures: 2 },
      { name: 'ppp', kind: 'multiclass', classes: 7, layers: [9] },
      { name: 'spp', kind: 'binary', target: ['shop'], layers: [] },
    ],
  };
}

for (const bidirectional of [false, true]) {
  t.test(`native and onnxruntime agree (bidirectional ${bidirectional})`, async (t) => {
    const config = resolveConfig(configFor(bidirectional));
    const tensors = randomTensors(config, bidirectional ? 7 : 8, 0.4);
    const nat = Model.fromTensors(config, tensors, { threads: 2 });
    const ort = Model.fromTensors(config, tensors, { threads: 2, backend: 'onnxruntime' });
    t.equal(ort.isa, 'onnxruntime');
    t.equal(ort.backend, 'onnxruntime');
    const rand = mulberry32(3);
    const batches: number[][] = [[0], [1], [config.maxSeqLen], [17], Array.from({ length: 150 }, (_, i) => (i % 9 === 0 ? 0 : i % 9 === 1 ? config.maxSeqLen : Math.floor(rand() * 41)))];
    for (const [k, lengths] of batches.entries()) {
      const cols = randomUserColumns(config, 100 + k, lengths);
      const steps = lengths.reduce((a, b) => a + b, 0);
      const an = new Float32Array(steps);
      const ao = new Float32Array(steps);
      const un = await nat.encodeColumns(cols, { attention: an });
      const uo = await ort.encodeColumns(cols, { attention: ao });
      const label = `B=${lengths.length} lengths ${lengths.length === 1 ? lengths[0] : 'mixed'}`;
      t.ok(relError(uo, un) <= TOL, `${label}: U ${relError(uo, un).toExponential(2)}`);
      if (steps > 0) t.ok(relError(ao, an) <= TOL, `${label}: attention ${relError(ao, an).toExponential(2)}`);
      const pn = await nat.predictFromVectors('ppp', un);
      const po = await ort.predictFromVectors('ppp', un);
      t.ok(relError(po, pn) <= TOL, `${label}: ppp ${relError(po, pn).toExponential(2)}`);
      for (const task of ['ctr', 'l2r', 'spp']) {
        const cands = randomCandidateColumns(config, task, k, 300);
        const u = un.subarray(0, nat.userDim);
        const sn = await nat.score(task, u, cands);
        const so = await ort.score(task, u, cands);
        t.ok(relError(so, sn) <= TOL, `${label}: ${task} ${relError(so, sn).toExponential(2)}`);
      }
    }
    nat.dispose();
    ort.dispose();
  });
}

t.test('the same request objects, the same validation, sync twins refused', async (t) => {
  const m = Model.create(configFor(true), { seed: 3, backend: 'onnxruntime', threads: 1 });
  const n = Model.fromTensors(m.config, m.weights as Map<string, Float32Array>, { threads: 1 });
  const users = [{ behaviors: [{ item: 'a', type: 'pv', time: 10 }, { item: 'b', type: 'buy', time: 99, scene: 'ads' }], query: 'red shoes', profile: { age: 3 } }, { behaviors: [] }];
  t.ok(relError(await m.encode(users), await n.encode(users)) <= TOL, 'encode(users)');
  const ex = await m.explain(users[0]);
  const exn = await n.explain(users[0]);
  t.ok(relError(ex.attention, exn.attention) <= TOL, 'explain');
  t.ok(relError(await m.predict('ppp', users), await n.predict('ppp', users)) <= TOL, 'predict');
  await rejectsCode(t, () => m.encode([{ behaviors: [{ item: 'a', type: 'pv', time: NaN }] }]), 'E_INPUT', 'users[0].behaviors[0].time');
  const bad = randomUserColumns(m.config, 1, [3]);
  bad.items[2] = 10 ** 6;
  await rejectsCode(t, () => m.encodeColumns(bad), 'E_INPUT', 'columns.items[2]');
  await rejectsCode(t, () => m.score('ctr', new Float32Array(m.userDim), { items: Int32Array.of(0, 0, 0, 99), dense: new Float32Array(0) }), 'E_INPUT', 'items[3]');
  await rejectsCode(t, () => m.score('nope', new Float32Array(m.userDim), []), 'E_TASK', 'nope');
  throwsCode(t, () => m.encodeSync(users), 'E_UNSUPPORTED', 'native backend');
  throwsCode(t, () => m.scoreSync('ctr', new Float32Array(m.userDim), []), 'E_UNSUPPORTED', 'native backend');
  throwsCode(t, () => Model.create({}, { backend: 'tensorflow' as never }), 'E_INPUT', 'options.backend');
  m.dispose();
  n.dispose();
  await rejectsCode(t, () => m.encode(users), 'E_DISPOSED', 'disposed');
});

t.test('exportOnnx, then load the model file with backend onnxruntime', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dupn-onnx-'));
  const m = Model.create(configFor(true), { seed: 9, threads: 1 });
  const written = await m.exportOnnx(path.join(dir, 'm.onnx'));
  t.same(written.map((p) => path.basename(p)).sort(), ['m.ctr.onnx', 'm.l2r.onnx', 'm.onnx', 'm.ppp.onnx', 'm.spp.onnx']);
  await m.save(path.join(dir, 'm.safetensors'));
  const o = await Model.load(path.join(dir, 'm.safetensors'), { backend: 'onnxruntime', threads: 1 });
  const cols = randomUserColumns(m.config, 4, [5, 0, 40]);
  t.ok(relError(await o.encodeColumns(cols), await m.encodeColumns(cols)) <= TOL);
  // Round trip through ONNX: the imported model is the same model, bit for bit.
  const back = await Model.fromOnnx(path.join(dir, 'm.onnx'), { threads: 1 });
  t.same(back.config, m.config);
  t.same(Array.from(await back.encodeColumns(cols)), Array.from(await m.encodeColumns(cols)), 'encode bit-identical after export → import');
  const cands = randomCandidateColumns(m.config, 'l2r', 1, 50);
  const u = (await m.encodeColumns(cols)).subarray(0, m.userDim);
  t.same(Array.from(await back.score('l2r', u, cands)), Array.from(await m.score('l2r', u, cands)));
  m.dispose();
  o.dispose();
  back.dispose();
  fs.rmSync(dir, { recursive: true });
});
