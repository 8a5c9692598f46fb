// The rank route's top-k selection (lib/serve/server.ts topK) against a full sort, on random scores with many
// ties, every k from 0 past n, and sizes 0, 1 and large.
import t from 'tap';
import { topK } from '../lib/serve/server';

function reference(scores: Float32Array, k: number): number[] {
  return Array.from(scores.keys())
    .sort((a, b) => scores[b] - scores[a] || a - b)
    .slice(0, k);
}

let seed = 12345;
const rand = (): number => {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return seed / 2 ** 32;
};

t.test('topK equals a full sort (higher score first, then the earlier candidate)', async (t) => {
  let cases = 0;
  for (const n of [0, 1, 2, 3, 7, 50, 499, 500, 2000]) {
    for (const distinct of [2, 10, 1000]) {
      const scores = Float32Array.from({ length: n }, () => Math.floor(rand() * distinct) / distinct - 0.5);
      const ids = Array.from({ length: n }, (_, i) => (i % 3 === 0 ? undefined : `i${i}`));
      for (const k of [0, 1, 2, 5, 50, n - 1, n, n + 3]) {
        if (k < 0) continue;
        const got = topK(scores, k, ids);
        const want = reference(scores, k);
        if (got.map((g) => g.index).join() !== want.join()) t.fail(`n ${n} distinct ${distinct} k ${k}`);
        for (const g of got) {
          if (g.score !== scores[g.index] || g.item !== ids[g.index]) t.fail(`n ${n} k ${k}: entry ${g.index} carries the wrong score or id`);
        }
        cases++;
      }
    }
  }
  t.ok(cases > 100, `${cases} cases checked`);
});
