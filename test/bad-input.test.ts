// Bad input never crashes and never passes a NaN along: each case is a DupnError with a code that names
// the field. Async methods reject; sync twins throw.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserColumns } from '../lib/model/columns';
import { Model } from '../lib/model/model';
import { native } from '../lib/native/addon';
import { cloneUserColumns, randomUserColumns } from '../lib/reference/random-model';
import { rejectsCode, throwsCode } from './support/errors';

const config = {
  maxSeqLen: 10,
  itemFields: [
    { name: 'item', buckets: 100, dim: 4 },
    { name: 'shop', buckets: 10, dim: 2 },
  ],
  query: { buckets: 20, dim: 3 },
  profileFields: [{ name: 'age', buckets: 5, dim: 2 }],
  hidden: 6,
  attentionHidden: 4,
  tasks: [
    { name: 'ctr', kind: 'binary' as const, target: ['item'], layers: [4] },
    { name: 'l2r', kind: 'rank' as const, target: ['item', 'shop'], layers: [3], denseFeatures: 2 },
    { name: 'ppp', kind: 'multiclass' as const, classes: 3, layers: [] },
  ],
};
const model = Model.create(config, { seed: 1 });
const ok = { item: 'a', type: 'pv', time: 1000 };
const U = new Float32Array(model.userDim);

const userCases: [unknown, string][] = [
  ['not an array', 'users'],
  [[null], 'users[0]'],
  [[{ behaviors: 'x' }], 'users[0].behaviors'],
  [[{}], 'users[0].behaviors'],
  [[{ behaviors: [ok, 5] }], 'users[0].behaviors[1]'],
  [[{ behaviors: [{ ...ok, time: NaN }] }], 'users[0].behaviors[0].time'],
  [[{ behaviors: [ok] }, { behaviors: [{ ...ok, time: Infinity }] }], 'users[1].behaviors[0].time'],
  [[{ behaviors: [{ ...ok, time: -Infinity }] }], 'users[0].behaviors[0].time'],
  [[{ behaviors: [{ ...ok, time: '1000' }] }], 'users[0].behaviors[0].time'],
  [[{ behaviors: [{ item: 'a', time: 1 }] }], 'users[0].behaviors[0].type'],
  [[{ behaviors: [{ ...ok, type: 3 }] }], 'users[0].behaviors[0].type'],
  [[{ behaviors: [{ ...ok, scene: 1 }] }], 'users[0].behaviors[0].scene'],
  [[{ behaviors: [{ ...ok, item: { id: 1 } }] }], 'users[0].behaviors[0].item'],
  [[{ behaviors: [{ ...ok, shop: NaN }] }], 'users[0].behaviors[0].shop'],
  [[{ behaviors: [ok], profile: 'old' }], 'users[0].profile'],
  [[{ behaviors: [ok], profile: { agee: 3 } }], 'users[0].profile.agee'],
  [[{ behaviors: [ok], profile: { age: [] } }], 'users[0].profile.age'],
  [[{ behaviors: [ok], query: 5 }], 'users[0].query'],
  [[{ behaviors: [ok], query: ['a', 2] }], 'users[0].query[1]'],
  [[{ behaviors: [ok], now: NaN }], 'users[0].now'],
];

t.test('bad users', async (t) => {
  for (const [users, field] of userCases) {
    await rejectsCode(t, () => model.encode(users as never), 'E_INPUT', field, `encode: ${field}`);
    throwsCode(t, () => model.encodeSync(users as never), 'E_INPUT', field, `encodeSync: ${field}`);
    await rejectsCode(t, () => model.predict('ppp', users as never), 'E_INPUT', field, `predict: ${field}`);
  }
  await rejectsCode(t, () => model.encode([{ behaviors: [ok] }], { now: Infinity }), 'E_INPUT', 'options.now');
  await rejectsCode(t, () => model.explain({ behaviors: [{ ...ok, time: NaN }] }), 'E_INPUT', 'users[0].behaviors[0].time');
});

t.test('bad scoring calls', async (t) => {
  await rejectsCode(t, () => model.score('cvr', U, []), 'E_TASK', 'cvr');
  await rejectsCode(t, () => model.score('ppp', U, []), 'E_TASK', 'ppp');
  await rejectsCode(t, () => model.predict('ctr', []), 'E_TASK', 'ctr');
  await rejectsCode(t, () => model.predict('nope', []), 'E_TASK', 'nope');
  await rejectsCode(t, () => model.score('ctr', new Float32Array(3), []), 'E_INPUT', 'userVector');
  await rejectsCode(t, () => model.score('ctr', Array.from(U) as never, []), 'E_INPUT', 'userVector');
  const nan = U.slice();
  nan[2] = NaN;
  await rejectsCode(t, () => model.score('ctr', nan, [{ item: 'a' }]), 'E_INPUT', 'userVector[2]');
  await rejectsCode(t, () => model.score('ctr', U, 'abc' as never), 'E_INPUT', 'candidates');
  await rejectsCode(t, () => model.score('ctr', U, [{ item: 'a' }, 7 as never]), 'E_INPUT', 'candidates[1]');
  await rejectsCode(t, () => model.score('l2r', U, [{ item: 'a' }]), 'E_INPUT', 'candidates[0].dense');
  await rejectsCode(t, () => model.score('l2r', U, [{ item: 'a', dense: [1] }]), 'E_INPUT', 'candidates[0].dense');
  await rejectsCode(t, () => model.score('l2r', U, [{ item: 'a', dense: [1, NaN] }]), 'E_INPUT', 'candidates[0].dense[1]');
  await rejectsCode(t, () => model.score('ctr', U, [{ item: 'a' }], { out: new Float32Array(5) }), 'E_INPUT', 'options.out');
  throwsCode(t, () => model.scoreSync('ctr', U, [{ item: Symbol('x') as never }]), 'E_INPUT', 'candidates[0].item');
  await rejectsCode(t, () => model.predictFromVectors('ppp', new Float32Array(model.userDim + 1)), 'E_INPUT', 'userVectors');
  const badU = new Float32Array(model.userDim).fill(Infinity);
  await rejectsCode(t, () => model.predictFromVectors('ppp', badU), 'E_INPUT', 'userVectors[0]');
});

t.test('bad columns are range-checked natively, never read out of bounds', async (t) => {
  const good = randomUserColumns(model.config, 3, [3, 0, 10]);
  const tweak = (f: (c: UserColumns) => void): UserColumns => {
    const c = cloneUserColumns(good);
    f(c);
    return c;
  };
  const cases: [UserColumns, string][] = [
    [tweak((c) => (c.lengths[0] = -1)), 'lengths[0]'],
    [tweak((c) => (c.lengths[2] = 11)), 'lengths[2]'],
    [tweak((c) => (c.lengths[1] = 1)), 'items'],
    [tweak((c) => (c.items[3] = 100)), 'items[3]'],
    [tweak((c) => (c.items[0] = -5)), 'items[0]'],
    [tweak((c) => (c.properties[0] = 99)), 'properties[0]'],
    [tweak((c) => (c.properties[4] = 24)), 'properties[4]'],
    [tweak((c) => (c.queryOffsets[1] = -1)), 'queryOffsets'],
    [tweak((c) => (c.queryOffsets[3] = 10 ** 6)), 'queryOffsets'],
    [tweak((c) => (c.profile[1] = 5)), 'profile[1]'],
    [tweak((c) => (c.profile = new Int32Array(1))), 'profile'],
    [tweak((c) => (c.items = new Float32Array(c.items.length) as never)), 'items'],
    [tweak((c) => (c.queryOffsets = new Int32Array(2))), 'queryOffsets'],
  ];
  for (const [cols, field] of cases) {
    await rejectsCode(t, () => model.encodeColumns(cols), 'E_INPUT', field, `columns: ${field}`);
  }
  await rejectsCode(t, () => model.encodeColumns(good, { attention: new Float32Array(2) }), 'E_INPUT', 'attention');
  await rejectsCode(t, () => model.encodeColumns(good, { out: new Float32Array(2) }), 'E_INPUT', 'options.out');
  await rejectsCode(t, () => model.encodeColumns({} as never), 'E_INPUT', 'columns.lengths');
  await rejectsCode(t, () => model.score('ctr', U, { items: Int32Array.of(0, 0, 100, 0), dense: new Float32Array(0) }), 'E_INPUT', 'items[2]');
  await rejectsCode(t, () => model.score('ctr', U, { items: Int32Array.of(0, 0, 1), dense: new Float32Array(0) }), 'E_INPUT', 'items');
});

t.test('bad options and files', async (t) => {
  throwsCode(t, () => Model.create(config, { threads: 0 }), 'E_INPUT', 'options.threads');
  throwsCode(t, () => Model.create(config, { isa: 'sse9' }), 'E_INPUT', 'sse9');
  throwsCode(t, () => Model.create(config, { seed: 0.5 }), 'E_INPUT', 'options.seed');
  throwsCode(t, () => Model.create(config, { backend: 'gpu' as never }), 'E_INPUT', 'options.backend');
  // The options are checked as strictly as a config: unknown keys refused, each value's type checked.
  throwsCode(t, () => Model.create(config, null as never), 'E_INPUT', 'options');
  throwsCode(t, () => Model.create(config, { thread: 2 } as never), 'E_INPUT', 'options.thread');
  throwsCode(t, () => Model.fromTensors(config, new Map(model.weights), { seed: 1 } as never), 'E_INPUT', 'options.seed', 'seed is an option of create only');
  await rejectsCode(t, () => Model.load('/nonexistent/dir/m.safetensors', { checksum: false } as never), 'E_INPUT', 'options.checksum', 'checked before the file is read');
  await rejectsCode(t, () => Model.fromOnnx('/nonexistent/dir/m.onnx', { threads: 1, extra: 1 } as never), 'E_INPUT', 'options.extra');
  await rejectsCode(t, () => Model.load('/nonexistent/dir/m.safetensors', { verifyChecksum: 'no' as never }), 'E_INPUT', 'options.verifyChecksum');
  throwsCode(t, () => Model.create(config, { isa: 5 as never }), 'E_INPUT', 'options.isa');
  throwsCode(t, () => Model.create(config, { backend: 'onnxruntime', isa: ['avx2'] as never }), 'E_INPUT', 'options.isa', 'isa type-checked on onnxruntime too');
  throwsCode(t, () => Model.create(config, { isa: 'sse9' }), 'E_INPUT', 'options.isa');
  throwsCode(t, () => Model.create(config, { isa: 'AVX2' }), 'E_INPUT', 'options.isa');
  for (const [isa, runs] of [['', native().supportedIsas.split(',').at(-1)], ['baseline', 'baseline']]) {
    const m = Model.create(config, { isa });
    t.equal(m.isa, runs, `isa ${JSON.stringify(isa)} runs ${runs}`);
    m.dispose();
  }
  throwsCode(t, () => Model.create({ ...config, hidden: 0 }), 'E_CONFIG', 'hidden');
  throwsCode(t, () => Model.fromTensors(config, new Map()), 'E_MODEL_FILE', 'emb.item.item');
  await rejectsCode(t, () => Model.load('/nonexistent/dir/m.safetensors'), 'E_IO', '/nonexistent/dir/m.safetensors');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dupn-bad-'));
  const junk = path.join(dir, 'junk.safetensors');
  fs.writeFileSync(junk, 'this is not a model');
  await rejectsCode(t, () => Model.load(junk), 'E_MODEL_FILE', 'junk.safetensors');
  fs.rmSync(dir, { recursive: true });
});

t.test('the model still works after all that', async (t) => {
  const u = await model.encode([{ behaviors: [ok] }]);
  t.equal(u.length, model.userDim);
  model.dispose();
});
