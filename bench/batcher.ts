/**
 * bench/batcher — 512 concurrent callers, each encoding one user (L = 50, paper size, packing included):
 * through the dynamic batcher (maxBatch 64) against each calling `model.encode([user])` directly, and,
 * for reference, 8 direct calls of 64 users. Users/s is the median over the rounds.
 *   npm run bench:batcher [-- --threads 2 --rounds 7 --callers 512 --max-batch 64]
 */
import { Batcher, BatchInfo } from '../lib/serve/batcher';
import { Model } from '../lib/model/model';
import { resolveConfig } from '../lib/network/config';
import { randomTensors } from '../lib/reference/random-model';
import { machineLine, median } from './machine';
import { benchUsers } from './users';
import { numberArg } from './args';

/** Users/s of one round of `run`, which encodes `count` users. */
async function rate(count: number, run: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await run();
  return count / (Number(process.hrtime.bigint() - t0) / 1e9);
}

async function main(): Promise<void> {
  const threads = numberArg('threads', 2);
  const rounds = numberArg('rounds', 7);
  const callers = numberArg('callers', 512);
  const maxBatch = numberArg('max-batch', 64);
  const config = resolveConfig({});
  const model = Model.fromTensors(config, randomTensors(config, 1, 0.2), { threads });
  const list = benchUsers(callers, 50, 7);
  const sizes: number[] = [];
  const batcher = new Batcher({ model, maxBatch, maxQueue: Math.max(4096, callers), onBatch: (b: BatchInfo) => sizes.push(b.users) });
  console.log(`bench/batcher · ${machineLine()}`);
  console.log(`paper size, L = 50, ${callers} concurrent callers of one user each, native threads = ${threads}, ISA ${model.isa}, ${rounds} rounds (median)\n`);
  const ways: [string, () => Promise<unknown>][] = [
    ['direct: model.encode([user]) per caller', () => Promise.all(list.map((u) => model.encode([u])))],
    [`batcher: batcher.encode([user]) per caller (maxBatch ${maxBatch})`, () => Promise.all(list.map((u) => batcher.encode([u])))],
    [`reference: ${Math.ceil(callers / maxBatch)} direct calls of ${maxBatch} users`, () => Promise.all(Array.from({ length: Math.ceil(callers / maxBatch) }, (_, i) => model.encode(list.slice(i * maxBatch, (i + 1) * maxBatch))))],
  ];
  for (const [, run] of ways) await run(); // warm-up
  const results = ways.map(() => [] as number[]);
  // Interleaved rounds, so a change in the machine's load touches every way alike.
  for (let r = 0; r < rounds; r++) {
    for (const [i, [, run]] of ways.entries()) results[i].push(await rate(callers, run));
  }
  const direct = median(results[0]);
  console.log('way | users/s (median) | min–max | vs direct');
  for (const [i, [name]] of ways.entries()) {
    const m = median(results[i]);
    console.log(`${name} | ${m.toFixed(0)} | ${Math.min(...results[i]).toFixed(0)}–${Math.max(...results[i]).toFixed(0)} | ${(m / direct).toFixed(2)}×`);
  }
  const perRound = sizes.length / (rounds + 1);
  console.log(`\nbatcher: ${perRound.toFixed(1)} batches per round, mean batch ${(sizes.reduce((s, x) => s + x, 0) / sizes.length).toFixed(1)} users`);
  await batcher.close();
  model.dispose();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
