// scoreAll: several heads on the same candidates in one call give exactly the per-head scores.
import t from 'tap';
import { Model } from '../lib/model/model';
import { randomTensors, randomUserColumns } from '../lib/reference/random-model';
import { relError } from './support/compare';
import { smallTables } from './support/configs';
import { rejectsCode, throwsCode } from './support/errors';

const config = smallTables([
  { name: 'ctr', kind: 'binary', target: ['item', 'category'], layers: [17, 5] },
  { name: 'l2r', kind: 'rank', target: ['item', 'shop'], layers: [9], denseFeatures: 3 },
  { name: 'ppp', kind: 'multiclass', classes: 4, layers: [] },
  { name: 'spp', kind: 'binary', target: ['shop'], layers: [] },
  { name: 'l2r2', kind: 'rank', target: ['brand'], layers: [], denseFeatures: 2 },
]);
const tensors = randomTensors(config, 4, 0.4);
const candidates = Array.from({ length: 300 }, (_, i) => ({
  item: `i${i % 97}`,
  category: i % 13,
  shop: `s${i % 7}`,
  brand: i % 3 ? `b${i % 5}` : undefined,
  dense: [i / 300, (i % 11) / 11, -1],
}));

t.test('native: scoreAll equals score per head, bit for bit', async (t) => {
  const m = Model.fromTensors(config, tensors, { threads: 2 });
  const u = m.encodeColumnsSync(randomUserColumns(config, 2, [20])).slice();
  const all = await m.scoreAll(u, candidates, { tasks: ['ctr', 'l2r', 'spp'] });
  t.same(Object.keys(all), ['ctr', 'l2r', 'spp']);
  for (const task of ['ctr', 'l2r', 'spp']) {
    const one = candidates.map((c) => (task === 'l2r' ? c : { ...c, dense: undefined }));
    t.same(Array.from(all[task]), Array.from(await m.score(task, u, one)), task);
  }
  const packed = m.packCandidates(candidates, { tasks: ['ctr', 'l2r', 'spp'] });
  const again = await m.scoreAll(u, packed, { tasks: ['ctr', 'l2r', 'spp'] });
  for (const task of ['ctr', 'l2r', 'spp']) t.same(Array.from(again[task]), Array.from(all[task]), `${task} from packed candidates`);
  const sync = m.scoreAllSync(u, candidates, { tasks: ['spp', 'ctr'] });
  t.same(Array.from(sync.spp), Array.from(all.spp));
  throwsCode(t, () => m.scoreAllSync(u, candidates), 'E_TASK', 'denseFeatures');
  throwsCode(t, () => m.scoreAllSync(u, candidates, { tasks: ['ctr', 'ppp'] }), 'E_TASK', 'ppp');
  throwsCode(t, () => m.scoreAllSync(u, candidates, { tasks: 'ctr' as never }), 'E_INPUT', 'options.tasks');
  throwsCode(t, () => m.scoreAllSync(u, candidates, { tasks: ['nope'] }), 'E_TASK', 'nope');
  m.dispose();
});

t.test('threads per call: any count gives the same bits; out of [1, model threads] is E_INPUT', async (t) => {
  const m = Model.fromTensors(config, tensors, { threads: 3 });
  const cols = randomUserColumns(config, 5, [1, 20, 0, 7, config.maxSeqLen]);
  const u = await m.encodeColumns(cols);
  const tasks = ['ctr', 'l2r', 'spp'];
  const all = await m.scoreAll(u.subarray(0, m.userDim), candidates, { tasks });
  for (const threads of [1, 2, 3]) {
    t.same(Array.from(await m.encodeColumns(cols, { threads })), Array.from(u), `encodeColumns, ${threads} thread(s)`);
    // Several calls in flight at once, as the batcher issues a batch's rank requests.
    const many = await Promise.all([0, 1, 2, 3].map((i) => m.scoreAll(u.subarray(i * m.userDim, (i + 1) * m.userDim), candidates, { tasks, threads })));
    for (const task of tasks) t.same(Array.from(many[0][task]), Array.from(all[task]), `scoreAll ${task}, ${threads} thread(s)`);
    for (let i = 1; i < 4; i++) t.same(Array.from(many[i].ctr), Array.from((await m.scoreAll(u.subarray(i * m.userDim, (i + 1) * m.userDim), candidates, { tasks })).ctr), `user ${i}`);
  }
  for (const bad of [0, 4, 1.5, '2', NaN]) {
    await rejectsCode(t, () => m.scoreAll(u.subarray(0, m.userDim), candidates, { tasks, threads: bad as number }), 'E_INPUT', 'options.threads');
    await rejectsCode(t, () => m.encodeColumns(cols, { threads: bad as number }), 'E_INPUT', 'options.threads');
  }
  m.dispose();
});

t.test('onnxruntime: scoreAll agrees with native', async (t) => {
  const n = Model.fromTensors(config, tensors, { threads: 1 });
  const o = Model.fromTensors(config, tensors, { threads: 1, backend: 'onnxruntime' });
  const u = n.encodeColumnsSync(randomUserColumns(config, 3, [7])).slice();
  const a = await n.scoreAll(u, candidates, { tasks: ['ctr', 'l2r', 'spp'] });
  const b = await o.scoreAll(u, candidates, { tasks: ['ctr', 'l2r', 'spp'] });
  for (const task of ['ctr', 'l2r', 'spp']) t.ok(relError(b[task], a[task]) <= 1e-5, `${task} ${relError(b[task], a[task]).toExponential(2)}`);
  await rejectsCode(t, () => o.scoreAll(u, candidates, { tasks: ['ctr', 'ppp'] }), 'E_TASK', 'ppp');
  n.dispose();
  o.dispose();
});
