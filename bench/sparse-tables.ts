/**
 * bench/sparse-tables — what a hashed table kept by its used rows (docs/format.md, Sparse tables) costs and
 * saves when serving: the same weights as loaded from a sparse file (rows found by binary search over the keys)
 * and expanded to every row (`Model.fromTensors`, a direct index), timed in alternating rounds in one process:
 * encode of 1 and 64 users with real histories, one user's 500 candidates scored, and the load of the file.
 *   node dist/bench/sparse-tables.js --model beauty.safetensors --data Beauty.txt [--rounds 15] [--threads 1]
 * --data is a sequences file (`user item item …` per line, as the model was trained on).
 */
import * as fs from 'node:fs';
import { Model } from '../lib/model/model';
import { UserInput } from '../lib/model/features';
import { machineLine, median } from './machine';
import { numberArg, option } from './args';

async function timeMs(reps: number, f: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < reps; r++) await f();
  return Number(process.hrtime.bigint() - t0) / 1e6 / reps;
}

async function main(): Promise<void> {
  const modelPath = option('model');
  const dataPath = option('data');
  if (!modelPath || !dataPath) throw new Error('usage: sparse-tables --model m.safetensors --data sequences.txt [--rounds 15] [--threads 1]');
  const rounds = numberArg('rounds', 15);
  const threads = numberArg('threads', 1);
  console.log(machineLine());

  const t0 = process.hrtime.bigint();
  const sparse = await Model.load(modelPath, { threads });
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const dense = Model.fromTensors(sparse.config, new Map(sparse.weights), { threads });
  const maxLen = sparse.config.maxSeqLen;
  const users: UserInput[] = fs
    .readFileSync(dataPath, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .slice(0, 4096)
    .map((l) => ({ behaviors: l.split(' ').slice(1).slice(-maxLen).map((item, i) => ({ item, type: 'pv', time: 1000 + i })), now: 100_000 }));
  const candidates = Array.from({ length: 500 }, (_, i) => ({ item: users[(i * 7) % users.length].behaviors[0].item as string }));
  const task = sparse.config.tasks.find((t) => t.kind === 'binary' || t.kind === 'rank')!.name;
  const u1 = await sparse.encode(users.slice(0, 1));
  const eq = Buffer.compare(Buffer.from((await dense.encode(users.slice(0, 64))).buffer), Buffer.from((await sparse.encode(users.slice(0, 64))).buffer)) === 0;

  const cases: [string, (m: Model, r: number) => Promise<number>][] = [
    ['encode, B = 1', (m, r) => timeMs(200, () => m.encode(users.slice((r * 7) % 4000, (r * 7) % 4000 + 1)))],
    ['encode, B = 64', (m, r) => timeMs(10, () => m.encode(users.slice((r * 64) % 4000, (r * 64) % 4000 + 64)))],
    [`score 500 candidates (${task})`, (m) => timeMs(100, () => m.score(task, u1, candidates))],
  ];
  console.log(`model ${modelPath}: ${(fs.statSync(modelPath).size / 2 ** 20).toFixed(1)} MiB on disk, loaded in ${loadMs.toFixed(0)} ms; ${threads} thread(s); outputs bit-identical: ${eq}`);
  console.log('case                              sparse (ms)  dense (ms)  sparse / dense');
  for (const [name, run] of cases) {
    const s: number[] = [];
    const d: number[] = [];
    for (let r = 0; r < rounds; r++) {
      // Alternate which goes first, so drift in the machine falls on both.
      if (r % 2 === 0) {
        s.push(await run(sparse, r));
        d.push(await run(dense, r));
      } else {
        d.push(await run(dense, r));
        s.push(await run(sparse, r));
      }
    }
    const [ms, md] = [median(s), median(d)];
    console.log(`${name.padEnd(34)}${ms.toFixed(3).padStart(11)}${md.toFixed(3).padStart(12)}${(ms / md).toFixed(2).padStart(16)}`);
  }
  sparse.dispose();
  dense.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
