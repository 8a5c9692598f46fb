// Config validation: defaults are the paper size; every mistake names its path.
import t from 'tap';
import { deriveDims, resolveConfig } from '../lib/network/config';
import { throwsCode } from './support/errors';
import { tensorSpecs } from '../lib/network/tensors';

t.test('defaults are the paper size', async (t) => {
  const c = resolveConfig();
  const d = deriveDims(c);
  t.equal(c.maxSeqLen, 100);
  t.equal(d.dx, 64);
  t.equal(d.dp, 16);
  t.equal(d.dq, 32);
  t.equal(d.du, 32);
  t.equal(d.dh, 256);
  t.equal(d.userDim, 256 + 32 + 32);
  t.same(c.tasks.map((x) => x.name), ['ctr', 'l2r', 'ppp', 'spp']);
  const names = tensorSpecs(c).map((s) => s.name);
  t.ok(names.includes('lstm.bw.wp') && names.includes('head.ppp.1.w') && names.includes('emb.profile.city'));
  t.same(tensorSpecs(c).find((s) => s.name === 'lstm.fw.wp')!.shape, [384, 16]);
  t.same(tensorSpecs(c).find((s) => s.name === 'attn.w')!.shape, [64, 256 + 32 + 32 + 16]);
  t.same(tensorSpecs(c).find((s) => s.name === 'head.ctr.0.w')!.shape, [128, 320 + 64]);
});

t.test('partial properties merge with the defaults; dim 0 switches a part off', async (t) => {
  const c = resolveConfig({ properties: { sceneDim: 0 }, query: null, profileFields: [] });
  t.equal(c.properties.typeDim, 8);
  t.equal(deriveDims(c).dp, 12);
  t.equal(deriveDims(c).userDim, 256);
  const names = tensorSpecs(c).map((s) => s.name);
  t.notOk(names.includes('emb.prop.scene'));
  t.notOk(names.includes('emb.query'));
  t.equal(resolveConfig({ query: { buckets: 10, dim: 0 } }).query, null);
});

const cases: [unknown, string][] = [
  [{ hiden: 3 }, 'hiden'],
  [{ maxSeqLen: 0 }, 'maxSeqLen'],
  [{ maxSeqLen: 2.5 }, 'maxSeqLen'],
  [{ hidden: -1 }, 'hidden'],
  [{ hidden: '128' }, 'hidden'],
  [{ bidirectional: 'yes' }, 'bidirectional'],
  [{ itemFields: [{ name: 'item', buckets: 0, dim: 4 }] }, 'itemFields[0].buckets'],
  [{ itemFields: [{ name: 'item', buckets: 2 ** 31, dim: 4 }] }, 'itemFields[0].buckets'],
  [{ itemFields: [{ name: 'item', buckets: 10, dim: 4, extra: 1 }] }, 'itemFields[0].extra'],
  [{ itemFields: [{ name: 'item', buckets: 10, dim: 4 }, { name: 'item', buckets: 10, dim: 4 }] }, 'itemFields[1].name'],
  [{ itemFields: [{ name: 'a.b', buckets: 10, dim: 4 }] }, 'itemFields[0].name'],
  [{ itemFields: [{ name: 'item', buckets: 10, dim: 0 }] }, 'itemFields'],
  [{ properties: { types: ['pv', 'pv'] } }, 'properties.types[1]'],
  [{ properties: { gapBuckets: 0 } }, 'properties.gapBuckets'],
  [{ properties: { colour: 1 } }, 'properties.colour'],
  [{ query: { buckets: 10 } }, 'query.dim'],
  [{ query: 5 }, 'query'],
  [{ profileFields: [{ name: 'age', buckets: 10, dim: 4 }, { name: 'age', buckets: 3, dim: 2 }] }, 'profileFields[1].name'],
  [{ tasks: [{ name: 'a', kind: 'binary' }, { name: 'b', kind: 'binary' }, { name: 'c', kind: 'rank', target: ['item', 'colour'] }] }, 'tasks[2].target[1]'],
  [{ tasks: [{ name: 'a', kind: 'binary', target: [] }] }, 'tasks[0].target'],
  [{ tasks: [{ name: 'a', kind: 'binary', target: ['item', 'item'] }] }, 'tasks[0].target[1]'],
  [{ tasks: [{ name: 'a', kind: 'binary' }, { name: 'a', kind: 'multiclass' }] }, 'tasks[1].name'],
  [{ tasks: [{ name: 'a', kind: 'regression' }] }, 'tasks[0].kind'],
  [{ tasks: [{ name: 'a', kind: 'multiclass', classes: 1 }] }, 'tasks[0].classes'],
  [{ tasks: [{ name: 'a', kind: 'multiclass', target: ['item'] }] }, 'tasks[0].target'],
  [{ tasks: [{ name: 'a', kind: 'binary', denseFeatures: 2 }] }, 'tasks[0].denseFeatures'],
  [{ tasks: [{ name: 'a', kind: 'binary', layers: [0] }] }, 'tasks[0].layers[0]'],
  [{ tasks: {} }, 'tasks'],
  [[], 'config'],
  [null, 'config'],
];

t.test('every mistake is E_CONFIG naming its path', async (t) => {
  for (const [input, path] of cases) {
    throwsCode(t, () => resolveConfig(input), 'E_CONFIG', path, `${JSON.stringify(input)} → ${path}`);
  }
});

t.test('default tasks are checked against custom item fields', async (t) => {
  throwsCode(t, () => resolveConfig({ itemFields: [{ name: 'item', buckets: 10, dim: 4 }] }), 'E_CONFIG', 'tasks[0].target[1]');
  throwsCode(t, () => resolveConfig({ itemFields: [{ name: 'item', buckets: 10, dim: 4 }] }), 'E_CONFIG', 'give `tasks` explicitly');
});
