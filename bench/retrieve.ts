/**
 * bench/retrieve — exact top-k over a catalogue with a retrieval head: milliseconds per query for 10 k,
 * 100 k and 1 M item vectors (dim 64, k = 100), 1 and 2 threads, beside a plain TypeScript loop over the
 * same vectors, and the memory bandwidth it reaches (the search reads every vector once: it is bound by
 * memory, not by FMAs).
 *   npm run bench:retrieve [-- --reps 20]
 */
import { resolveConfig } from '../lib/network/config';
import { Model } from '../lib/model/model';
import { randomTensors } from '../lib/reference/random-model';
import { machineLine, median } from './machine';
import { numberArg } from './args';

async function main(): Promise<void> {
  const reps = numberArg('reps', 20);
  const dim = 64;
  const k = 100;
  const config = resolveConfig({
    itemFields: [{ name: 'item', buckets: 1 << 20, dim: 32 }, { name: 'category', buckets: 1 << 12, dim: 16 }],
    tasks: [{ name: 'next', kind: 'retrieval', layers: [dim], history: false }],
  });
  console.log(`bench/retrieve · ${machineLine()}`);
  console.log(`dim ${dim}, k = ${k}, exact search; TypeScript: a plain loop with a bounded sorted list\n`);
  console.log('   items | threads | native ms/query | GB/s | TypeScript ms/query | native/TypeScript speed');
  const tensors = randomTensors(config, 1, 0.2);
  for (const n of [10_000, 100_000, 1_000_000]) {
    const catalogue = Array.from({ length: n }, (_, i) => ({ item: `i${i}`, category: `c${i % 4000}` }));
    for (const threads of [1, 2]) {
      const model = Model.fromTensors(config, tensors, { threads });
      await model.setCatalogue('next', catalogue);
      const user = new Float32Array(model.userDim).map((_, j) => Math.sin(j));
      for (let i = 0; i < 3; i++) await model.retrieve('next', user, k);
      const times: number[] = [];
      for (let i = 0; i < reps; i++) {
        const t0 = process.hrtime.bigint();
        await model.retrieve('next', user, k);
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      const ms = median(times);
      let tsMs = NaN;
      if (threads === 1) {
        const all = await model.itemVectors('next', model.packCandidates(catalogue, { tasks: ['next'] }));
        const q = await model.queryVectors('next', user);
        const tsTimes: number[] = [];
        for (let r = 0; r < Math.min(reps, 5); r++) {
          const t0 = process.hrtime.bigint();
          const best: number[] = [];
          const score = new Float32Array(n);
          for (let i = 0; i < n; i++) {
            let s = 0;
            for (let j = 0; j < dim; j++) s += all[i * dim + j] * q[j];
            score[i] = s;
            if (best.length < k || s > score[best[best.length - 1]]) {
              let at = best.length;
              while (at > 0 && score[best[at - 1]] < s) at--;
              best.splice(at, 0, i);
              if (best.length > k) best.pop();
            }
          }
          tsTimes.push(Number(process.hrtime.bigint() - t0) / 1e6);
        }
        tsMs = median(tsTimes);
      }
      const gbs = (n * dim * 4) / (ms / 1000) / 1e9;
      console.log(`${String(n).padStart(8)} | ${String(threads).padStart(7)} | ${ms.toFixed(3).padStart(15)} | ${gbs.toFixed(1).padStart(4)} | ${Number.isNaN(tsMs) ? '—'.padStart(19) : tsMs.toFixed(2).padStart(19)} | ${Number.isNaN(tsMs) ? '—' : `${(tsMs / ms).toFixed(1)}×`}`);
      model.dispose();
    }
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
