/**
 * bench/pack — the JavaScript-thread cost of turning request objects into columns (`model.pack`, the step
 * before every encode at serving time): microseconds per user and per behaviour, paper size, L = 100, with
 * string ids and with numeric ids (logs often carry numbers), and with a profile.
 *   node dist/bench/pack.js [--reps 200] [--batch 64]
 */
import { resolveConfig } from '../lib/network/config';
import { Model } from '../lib/model/model';
import { UserInput } from '../lib/model/features';
import { machineLine, median } from './machine';
import { numberArg } from './args';

function users(B: number, L: number, numeric: boolean): UserInput[] {
  const types = ['pv', 'cart', 'fav', 'buy'];
  return Array.from({ length: B }, (_, b) => ({
    behaviors: Array.from({ length: L }, (_, i) => {
      const id = (b * 7919 + i * 104729) % 1_000_003;
      return {
        item: numeric ? id : `i${id}`,
        category: numeric ? id % 997 : `c${id % 997}`,
        shop: numeric ? id % 5003 : `s${id % 5003}`,
        brand: numeric ? id % 2003 : `b${id % 2003}`,
        type: types[i % 4],
        time: 1_700_000_000 + i * 60,
      };
    }),
    profile: { gender: b % 2 ? 'f' : 'm', age: 20 + (b % 40), power: String(b % 8), city: `city${b % 300}` },
    query: 'red running shoes',
  }));
}

function main(): void {
  const reps = numberArg('reps', 200);
  const B = numberArg('batch', 64);
  const L = 100;
  const model = Model.create(resolveConfig({}), { seed: 1 });
  console.log(`bench/pack · ${machineLine()}`);
  console.log(`paper size, B = ${B}, L = ${L}, ${reps} repetitions, median\n`);
  console.log('ids     | ms per batch | µs per user | ns per behaviour');
  for (const numeric of [false, true]) {
    const batch = users(B, L, numeric);
    for (let i = 0; i < 20; i++) model.pack(batch);
    const times: number[] = [];
    for (let i = 0; i < reps; i++) {
      const t0 = process.hrtime.bigint();
      model.pack(batch);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    const ms = median(times);
    console.log(`${(numeric ? 'numeric' : 'string').padEnd(7)} | ${ms.toFixed(3).padStart(12)} | ${((ms * 1000) / B).toFixed(1).padStart(11)} | ${((ms * 1e6) / (B * L)).toFixed(0).padStart(16)}`);
  }
  model.dispose();
}

main();
