/**
 * bench/hot-paths — the JavaScript-thread steps on a request's critical path, as Benchmark.js suites (ops/s with
 * the relative margin of error at 95%): hashing per value (the native batch hash over a request's strings),
 * packing per user (`model.pack`, real-length and L = 100 histories), candidate packing (500 candidate objects,
 * and 500 catalogue ids through `ItemCatalogue.packer`), and the batcher's overhead per request (a model small
 * enough that its compute is a few microseconds, so what is left is queueing, packing and settling). Paper-size
 * config unless said; every suite's input is built before it runs.
 *   npm run bench:hot-paths [-- --data ../shared/data/taobao-userbehavior]
 */
import Benchmark from 'benchmark';
import { bucketMany } from '../lib/model/hashing';
import { Model } from '../lib/model/model';
import { resolveConfig } from '../lib/network/config';
import { randomTensors } from '../lib/reference/random-model';
import { Batcher } from '../lib/serve/batcher';
import { ItemCatalogue } from '../lib/serve/catalogue';
import { lengthSource } from './lengths';
import { machineLine } from './machine';
import { benchCandidates, benchUsers } from './users';
import { stringArg } from './args';

/** One case's result line: ops/s ± RME, and the time per unit of work (`per` units per op). */
function line(b: Benchmark, per: number, unit: string): string {
  const hz = b.hz;
  const each = 1e9 / (hz * per);
  const time = each >= 1000 ? `${(each / 1000).toFixed(2)} µs` : `${each.toFixed(1)} ns`;
  return `| ${b.name} | ${hz.toFixed(0)} | ±${b.stats.rme.toFixed(2)}% | ${time} per ${unit} | ${b.stats.sample.length} |`;
}

/** One measured case: `per` units of work (`unit`) per call; `defer` cases call `done` when finished. */
interface Case {
  name: string;
  per: number;
  unit: string;
  fn?: () => unknown;
  defer?: () => Promise<unknown>;
}

/** Runs the cases one after the other as one suite, printing a line each; resolves to their results. */
function run(cases: Case[]): Promise<Benchmark[]> {
  const suite = new Benchmark.Suite();
  for (const c of cases) {
    const { defer } = c;
    if (defer !== undefined) suite.add(c.name, { defer: true, fn: (d: Benchmark.Deferred) => void defer().then(() => d.resolve()) });
    else suite.add(c.name, c.fn!);
  }
  const done: Benchmark[] = [];
  return new Promise((resolve, reject) => {
    suite
      .on('cycle', (e: { target: Benchmark }) => {
        const c = cases[done.length];
        done.push(e.target);
        console.log(line(e.target, c.per, c.unit));
      })
      .on('complete', () => resolve(done))
      .on('error', (e: { target: { error?: unknown } }) => reject(e.target.error));
    suite.run({ async: true });
  });
}

async function main(): Promise<void> {
  const config = resolveConfig({});
  const model = Model.fromTensors(config, randomTensors(config, 1, 0.2), { threads: 1 });
  const source = lengthSource(stringArg('data', '') || undefined);
  const real = benchUsers(256, source.sample(256, 3, config.maxSeqLen), 7);
  const full = benchUsers(64, 100, 8);
  const strings = benchUsers(1, 1000, 9)[0].behaviors.map((b) => String(b.item));
  const candidates = benchCandidates(500, 10);
  const catalogue = ItemCatalogue.fromItems(benchCandidates(100_000, 11).map((c, k) => ({ ...c, item: `i${k}` })));
  catalogue.prepare(config);
  const ids = Array.from({ length: 500 }, (_, j) => `i${(j * 104_729) % 100_000}`);
  const out = new Int32Array(strings.length);
  let u = 0;

  console.log(`bench/hot-paths · ${machineLine()}`);
  console.log(`Benchmark.js; paper-size config; real lengths: ${source.describe}\n`);
  console.log('| case | ops/s | ± (95%) | time | samples |');
  console.log('|---|---:|---:|---:|---:|');
  await run([
    { name: 'hash 1,000 strings (one native call)', per: 1000, unit: 'value', fn: () => bucketMany(strings, 1 << 20, out) },
    { name: 'pack one user, real length (model.pack)', per: 1, unit: 'user', fn: () => model.pack([real[u++ & 255]]) },
    { name: 'pack one user, L = 100 (model.pack)', per: 1, unit: 'user', fn: () => model.pack([full[u++ & 63]]) },
    { name: 'pack 64 users, L = 100 (model.pack)', per: 64, unit: 'user', fn: () => model.pack(full) },
    { name: 'pack 500 candidate objects (model.packCandidates, ctr + l2r)', per: 500, unit: 'candidate', fn: () => model.packCandidates(candidates, { tasks: ['ctr', 'l2r'] }) },
    { name: 'pack 500 catalogue ids (ItemCatalogue.packer, ctr + l2r)', per: 500, unit: 'candidate', fn: () => catalogue.packer(ids).pack(model, ['ctr', 'l2r'], real[0]) },
  ]);

  // The batcher's own cost: a model whose compute is a few µs, one request at a time (no batching to win).
  const small = resolveConfig({ maxSeqLen: 8, itemFields: [{ name: 'item', buckets: 64, dim: 4 }], query: null, profileFields: [], hidden: 4, attentionHidden: 4, tasks: [{ name: 'ctr', kind: 'binary', layers: [4] }] });
  const tiny = Model.fromTensors(small, randomTensors(small, 2, 0.2), { threads: 1 });
  const batcher = new Batcher({ model: tiny, maxBatch: 64 });
  const user = { behaviors: [{ item: 'i1', type: 'pv', time: 1_700_000_000 }] };
  const cols = tiny.pack([user]);
  const [direct, batched] = (
    await run([
      { name: 'direct: tiny model.encodeColumns (1 user)', per: 1, unit: 'request', defer: () => tiny.encodeColumns(cols) },
      { name: 'batcher: batcher.encode([user]) on the tiny model', per: 1, unit: 'request', defer: () => batcher.encode([user]) },
    ])
  ).map((b) => 1e6 / b.hz);
  console.log(`\nbatcher overhead per request (batcher − direct, packing included): ${(batched - direct).toFixed(1)} µs`);
  await batcher.close();
  tiny.dispose();
  model.dispose();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
