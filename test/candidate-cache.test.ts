// The per-head cache of first-layer candidate projections: scores are bit-identical with and without
// it — on a cold cache, on hits, under collisions in a tiny cache, and under concurrent calls.
import t from 'tap';
import { Model } from '../lib/model/model';
import { randomCandidateColumns, randomTensors, randomUserColumns } from '../lib/reference/random-model';
import { smallTables } from './support/configs';
import { throwsCode } from './support/errors';

const config = smallTables([
  { name: 'ctr', kind: 'binary', target: ['item', 'category', 'shop', 'brand'], layers: [17, 5] },
  { name: 'l2r', kind: 'rank', target: ['item', 'shop'], layers: [9], denseFeatures: 3 },
  { name: 'ppp', kind: 'multiclass', classes: 4, layers: [] },
  { name: 'spp', kind: 'binary', target: ['shop'], layers: [] },
]);
const tensors = randomTensors(config, 21, 0.4);

t.test('cached scores equal uncached scores bit for bit', async (t) => {
  const plain = Model.fromTensors(config, tensors, { threads: 2 });
  const users = plain.encodeColumnsSync(randomUserColumns(config, 3, [5, 20, 0, 11]));
  for (const capacity of [7, 1000]) {
    const cached = Model.fromTensors(config, tensors, { threads: 2, candidateCache: capacity });
    for (const task of ['ctr', 'l2r', 'spp']) {
      // The same 300 candidates three times (cold, then hits or collisions) for several users.
      const cands = randomCandidateColumns(config, task, 5, 300);
      let diffs = 0;
      for (let round = 0; round < 3; round++) {
        for (let b = 0; b < 4; b++) {
          const u = users.subarray(b * plain.userDim, (b + 1) * plain.userDim);
          const want = plain.scoreSync(task, u, cands);
          const got = round === 1 ? await cached.score(task, u, cands) : cached.scoreSync(task, u, cands);
          for (let i = 0; i < want.length; i++) if (!Object.is(want[i], got[i])) diffs++;
        }
      }
      t.equal(diffs, 0, `${task}, capacity ${capacity}: identical over 3 rounds × 4 users`);
    }
    const u0 = users.subarray(0, plain.userDim);
    const c = randomCandidateColumns(config, 'ctr', 8, 500);
    const [a, b] = await Promise.all([cached.score('ctr', u0, c), cached.score('ctr', u0, c)]);
    t.same(Array.from(a), Array.from(plain.scoreSync('ctr', u0, c)), 'concurrent calls on one cache');
    t.same(Array.from(b), Array.from(a));
    cached.dispose();
  }
  plain.dispose();
});

t.test('bad cache sizes are refused', async (t) => {
  throwsCode(t, () => Model.fromTensors(config, tensors, { candidateCache: -1 }), 'E_INPUT', 'options.candidateCache');
  throwsCode(t, () => Model.fromTensors(config, tensors, { candidateCache: 1.5 }), 'E_INPUT', 'options.candidateCache');
});
