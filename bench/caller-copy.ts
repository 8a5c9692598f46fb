/**
 * bench/caller-copy — what copying a call's inputs costs (issue 11: the addon copies what it reads from the
 * caller's arrays, so no change to them during a call can crash it). Paper size, L = 100: for B = 1 and 64,
 * the median time of an async encode and of copying the same six id columns (the addon's copy is one
 * allocation and one memcpy per column, as `slice()` is), and the share of the call that the copy is.
 *   node dist/bench/caller-copy.js [--threads 2 --reps 200]
 */
import { resolveConfig } from '../lib/network/config';
import { Model } from '../lib/model/model';
import { UserColumns } from '../lib/model/columns';
import { randomTensors, randomUserColumns } from '../lib/reference/random-model';
import { machineLine, median } from './machine';
import { numberArg } from './args';

function copyAll(c: UserColumns): number {
  return c.lengths.slice().length + c.items.slice().length + c.properties.slice().length + c.queryOffsets.slice().length + c.queryTokens.slice().length + c.profile.slice().length;
}

async function main(): Promise<void> {
  const threads = numberArg('threads', 2);
  const reps = numberArg('reps', 200);
  const config = resolveConfig({});
  console.log(`bench/caller-copy · ${machineLine()}`);
  const model = Model.fromTensors(config, randomTensors(config, 1, 0.2), { threads });
  console.log(`paper size, L = 100, threads = ${threads}, ${reps} reps, isa ${model.isa}`);
  console.log('  B | id bytes | encode median µs | copy median µs | copy share');
  for (const B of [1, 64]) {
    const cols = randomUserColumns(config, 7, new Array<number>(B).fill(100));
    const bytes = [cols.lengths, cols.items, cols.properties, cols.queryOffsets, cols.queryTokens, cols.profile].reduce((s, a) => s + a.byteLength, 0);
    for (let i = 0; i < 10; i++) await model.encodeColumns(cols);
    const call: number[] = [];
    const copy: number[] = [];
    let sink = 0;
    for (let r = 0; r < reps; r++) {
      let t0 = process.hrtime.bigint();
      await model.encodeColumns(cols);
      call.push(Number(process.hrtime.bigint() - t0) / 1e3);
      t0 = process.hrtime.bigint();
      sink += copyAll(cols);
      copy.push(Number(process.hrtime.bigint() - t0) / 1e3);
    }
    const c = median(call);
    const k = median(copy);
    console.log(`${String(B).padStart(3)} | ${String(bytes).padStart(8)} | ${c.toFixed(1).padStart(16)} | ${k.toFixed(2).padStart(14)} | ${((100 * k) / c).toFixed(2)}%${sink < 0 ? '' : ''}`);
  }
  model.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
