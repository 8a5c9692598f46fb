/**
 * bench/score-batch — scoring a batch's rank requests: n users × 500 catalogue candidates × (ctr, l2r).
 */
import { performance } from 'node:perf_hooks';
import { Model } from '../lib/model/model';
import { resolveConfig } from '../lib/network/config';
import { randomTensors } from '../lib/reference/random-model';
import { ItemCatalogue } from '../lib/serve/catalogue';
import { benchCandidates, benchUsers } from './users';
import { median } from './machine';

async function main(): Promise<void> {
  const config = resolveConfig({});
  const model = Model.fromTensors(config, randomTensors(config, 1, 0.2), { threads: 2 });
  const items = benchCandidates(100_000, 8).map((c, k) => ({ ...c, item: `i${k * 10}` }));
  const catalogue = ItemCatalogue.fromItems(items);
  catalogue.prepare(config);
  const n = 24;
  const users = benchUsers(n, 50, 7);
  const U = model.encode(users.slice(0, 1));
  const tasks = ['ctr', 'l2r'];
  const packs = users.map((u, i) => catalogue.packer(Array.from({ length: 500 }, (_, j) => items[(i * 7919 + j * 104_729) % items.length].item)).pack(model, tasks, u));
  const u = await U;
  const t1: number[] = [], tn: number[] = [], elu: number[] = [];
  for (let r = 0; r < 40; r++) {
    let t0 = performance.now();
    for (const p of packs) model.scoreAllSync(u, p, { tasks, threads: 1 });
    t1.push((performance.now() - t0) / n);
    const e0 = performance.eventLoopUtilization();
    t0 = performance.now();
    await Promise.all(packs.map((p) => model.scoreAll(u, p, { tasks, threads: 1 })));
    tn.push((performance.now() - t0) / n);
    const e = performance.eventLoopUtilization(e0);
    elu.push(e.active / n);
  }
  console.log(`sync one by one: ${(median(t1) * 1000).toFixed(1)} µs per request`);
  console.log(`${n} async in flight: ${(median(tn) * 1000).toFixed(1)} µs per request wall, event loop active ${(median(elu) * 1000).toFixed(1)} µs per request`);
  model.dispose();
}
void main();
