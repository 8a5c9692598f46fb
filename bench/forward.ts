/**
 * bench/forward — encode latency (B = 1) and throughput (B = 64, 256) at L = 100, paper size: the native
 * forward pass vs the float64 TypeScript reference, with the ratio and the achieved GFLOP/s.
 *   npm run bench:forward [-- --threads 2 --reps 20]
 */
import { resolveConfig } from '../lib/network/config';
import { Model } from '../lib/model/model';
import { referenceEncode } from '../lib/reference/forward';
import { randomTensors, randomUserColumns } from '../lib/reference/random-model';
import { encodeFlops } from './flops';
import { fmaPeak, machineLine, median } from './machine';
import { numberArg } from './args';

async function main(): Promise<void> {
  const threads = numberArg('threads', 2);
  const reps = numberArg('reps', 20);
  const L = 100;
  const config = resolveConfig({});
  console.log(`bench/forward · ${machineLine()}`);
  console.log(`paper size, L = ${L}, native threads = ${threads}, reference = float64 TypeScript, 1 thread\n`);
  const tensors = randomTensors(config, 1, 0.2);
  const model = Model.fromTensors(config, tensors, { threads });
  const peak = fmaPeak(threads);
  console.log(`native ISA: ${model.isa}; measured fp32 FMA peak on ${threads} thread(s): ${peak.toFixed(0)} GFLOP/s`);
  console.log('   B | native median ms | users/s | GFLOP/s | % of peak | reference ms | native/reference speed');
  for (const B of [1, 64, 256]) {
    const cols = randomUserColumns(config, B, new Array<number>(B).fill(L));
    const out = new Float32Array(B * model.userDim);
    for (let i = 0; i < 3; i++) await model.encodeColumns(cols, { out });
    const times: number[] = [];
    for (let i = 0; i < reps; i++) {
      const t0 = process.hrtime.bigint();
      await model.encodeColumns(cols, { out });
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    const nat = median(times);
    const t0 = process.hrtime.bigint();
    referenceEncode(config, tensors, cols);
    const ref = Number(process.hrtime.bigint() - t0) / 1e6;
    const gflops = (encodeFlops(config, L) * B) / (nat / 1e3) / 1e9;
    console.log(`${String(B).padStart(4)} | ${nat.toFixed(3).padStart(16)} | ${((B / nat) * 1e3).toFixed(0).padStart(7)} | ` +
      `${gflops.toFixed(1).padStart(7)} | ${((100 * gflops) / peak).toFixed(1).padStart(8)}% | ${ref.toFixed(1).padStart(12)} | ${(ref / nat).toFixed(1).padStart(6)}×`);
  }
  model.dispose();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
