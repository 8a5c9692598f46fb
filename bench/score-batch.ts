/**
 * bench/score-batch — the native cost of a batch's rank requests, as `dupn serve` runs them (issue 13): each
 * request scores 500 ids of a 100,000-item catalogue on ctr and l2r (paper size). Reports one request scored
 * alone on one thread (µs, GFLOP/s and share of the measured one-core FMA peak), the same with every candidate
 * one of 8 items (the embedding gather warm: what the gather from a large table costs), and `--users` requests
 * in flight at once with 1 thread each (wall and event-loop time per request), as the batcher issues them.
 *   npm run bench:score-batch [-- --users 24 --rounds 40]
 */
import { performance } from 'node:perf_hooks';
import { Model } from '../lib/model/model';
import { resolveConfig, targetDim } from '../lib/network/config';
import { randomTensors } from '../lib/reference/random-model';
import { ItemCatalogue } from '../lib/serve/catalogue';
import { CandidateColumns } from '../lib/model/columns';
import { benchCandidates, benchUsers } from './users';
import { mlpFlops } from './flops';
import { fmaPeak, machineLine, median } from './machine';
import { numberArg } from './args';

async function main(): Promise<void> {
  const n = numberArg('users', 24);
  const rounds = numberArg('rounds', 40);
  const config = resolveConfig({});
  const model = Model.fromTensors(config, randomTensors(config, 1, 0.2), { threads: 2 });
  const items = benchCandidates(100_000, 8).map((c, k) => ({ ...c, item: `i${k * 10}` }));
  const catalogue = ItemCatalogue.fromItems(items);
  catalogue.prepare(config);
  const tasks = ['ctr', 'l2r'];
  const users = benchUsers(n, 50, 7);
  const pack = (ids: string[], u: number): CandidateColumns => catalogue.packer(ids).pack(model, tasks, users[u]);
  const random = users.map((_, u) => pack(Array.from({ length: 500 }, (_, j) => items[(u * 7919 + j * 104_729) % items.length].item), u));
  const few = pack(Array.from({ length: 500 }, (_, j) => items[j % 8].item), 0);
  const U = await model.encode(users.slice(0, 1));
  // Useful FLOPs of one request: per candidate and head, the MLP over the target embeddings (W_U·U once per user).
  const flops = config.tasks.filter((t) => tasks.includes(t.name)).reduce((s, t) => s + mlpFlops([targetDim(config, t), ...t.layers, 1], 500), 0);
  const peak = fmaPeak(1);
  const alone = (cols: CandidateColumns[]): number => {
    const t0 = performance.now();
    for (const c of cols) model.scoreAllSync(U, c, { tasks, threads: 1 });
    return (performance.now() - t0) / cols.length;
  };
  const sync: number[] = [], warm: number[] = [], wall: number[] = [], loop: number[] = [];
  for (let r = 0; r < rounds; r++) {
    sync.push(alone(random));
    warm.push(alone(Array.from({ length: n }, () => few)));
    const e0 = performance.eventLoopUtilization();
    const t0 = performance.now();
    await Promise.all(random.map((c) => model.scoreAll(U, c, { tasks, threads: 1 })));
    wall.push((performance.now() - t0) / n);
    loop.push(performance.eventLoopUtilization(e0).active / n);
  }
  const gflops = (ms: number): string => `${(flops / ms / 1e6).toFixed(1)} GFLOP/s, ${((flops / ms / 1e6 / peak) * 100).toFixed(0)}% of peak`;
  console.log(`bench/score-batch · ${machineLine()}`);
  console.log(`paper size, ISA ${model.isa}; one request: 500 catalogue ids × (${tasks.join(', ')}), ${(flops / 1e6).toFixed(1)} MFLOP; one-core FMA peak ${peak.toFixed(0)} GFLOP/s; medians of ${rounds} rounds\n`);
  console.log(`one request alone, 1 thread, random catalogue ids: ${(median(sync) * 1000).toFixed(0)} µs (${gflops(median(sync))})`);
  console.log(`one request alone, 1 thread, 8 distinct items (gather warm): ${(median(warm) * 1000).toFixed(0)} µs (${gflops(median(warm))})`);
  console.log(`${n} requests in flight, 1 thread each: ${(median(wall) * 1000).toFixed(0)} µs of wall time and ${(median(loop) * 1000).toFixed(1)} µs of event loop per request`);
  model.dispose();
}

void main();
