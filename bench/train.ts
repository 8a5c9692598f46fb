/**
 * Training throughput at paper size: users/s and GFLOP/s of full steps (forward, backward, update) on
 * synthetic examples, against the machine's measured FMA peak, at each thread count asked for.
 *
 *   npm run bench:train -- [--batch 256] [--steps 12] [--threads 1,2] [--users 4096]
 *
 * FLOPs per example count the user part three times (forward, and the backward's two products per
 * forward product: data and weight gradients) plus the same for the heads over the example's candidates.
 */
import { ResolvedConfig, deriveDims, headInputDim, resolveConfig } from '../lib/network/config';
import { TrainingExample } from '../lib/data/training-example';
import { synthesize } from '../lib/data/synthetic';
import { Trainer } from '../lib/train/trainer';
import { fit } from '../lib/train/fit';
import { encodeFlops, mlpFlops } from './flops';
import { fmaPeak, machineLine, median } from './machine';
import { numberArg, stringArg } from './args';

/** Training FLOPs of one example: 3 × (its forward FLOPs), heads over its labelled candidates included. */
function exampleFlops(config: ResolvedConfig, ex: TrainingExample): number {
  const L = Math.min(config.maxSeqLen, ex.user.behaviors.length);
  let f = encodeFlops(config, L);
  for (const task of config.tasks) {
    const labels = ex.labels[task.name];
    if (labels === undefined) continue;
    const rows = Array.isArray(labels) ? labels.length : 1;
    f += mlpFlops([headInputDim(config, task), ...task.layers, task.kind === 'multiclass' ? task.classes : 1], rows);
  }
  return 3 * f;
}

async function main(): Promise<void> {
  const batch = numberArg('batch', 256);
  const steps = numberArg('steps', 12);
  const threadList = stringArg('threads', '1,2').split(',').map(Number);
  const users = numberArg('users', 4096);
  const config = resolveConfig({});
  const d = deriveDims(config);
  console.log(`# dupn training throughput · ${machineLine()}`);
  console.log(`# paper size: H ${d.hidden}×${d.directions}, Dx ${d.dx}, Dp ${d.dp}, A ${d.attentionHidden}, maxSeqLen ${config.maxSeqLen}; batch ${batch}`);
  const data = Array.from(synthesize({ seed: 1, users, config }));
  const meanLen = data.reduce((s, e) => s + Math.min(config.maxSeqLen, e.user.behaviors.length), 0) / data.length;
  console.log(`# ${data.length} synthetic examples, mean history ${meanLen.toFixed(1)} behaviours`);
  console.log('threads | users/s | ms/step | GFLOP/s | measured peak | share of peak | packing ms/step (JS thread) | users/s with fit (next batch packed during the step)');
  console.log('---|---|---|---|---|---|---|---');
  for (const threads of threadList) {
    const peak = fmaPeak(threads);
    const trainer = Trainer.create(config, { batchSize: batch, threads, seed: 1 });
    const times: number[] = [];
    const flops: number[] = [];
    for (let s = 0; s < steps + 2; s++) {
      const from = (s * batch) % Math.max(1, data.length - batch);
      const examples = data.slice(from, from + batch);
      const t0 = process.hrtime.bigint();
      await trainer.step(examples);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (s >= 2) {
        times.push(ms);
        flops.push(examples.reduce((a, e) => a + exampleFlops(config, e), 0));
      }
    }
    const ms = median(times);
    const gflops = median(flops) / (ms / 1000) / 1e9;
    // The JavaScript side of a step alone: packing the batch (hashing, labels, history features).
    const packs: number[] = [];
    for (let s = 0; s < steps; s++) {
      const from = (s * batch) % Math.max(1, data.length - batch);
      const t0 = process.hrtime.bigint();
      trainer.packBatch(data.slice(from, from + batch));
      packs.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    // fit over the same number of examples, in file order: reading and packing overlap the native step.
    const span = data.slice(0, Math.min(data.length, steps * batch));
    const t0 = process.hrtime.bigint();
    await fit(trainer, { data: () => span, epochs: 1, shuffle: 0 });
    const fitRate = span.length / (Number(process.hrtime.bigint() - t0) / 1e9);
    console.log(`${threads} | ${((batch * 1000) / ms).toFixed(0)} | ${ms.toFixed(1)} | ${gflops.toFixed(1)} | ${peak.toFixed(0)} | ${((100 * gflops) / peak).toFixed(0)}% | ${median(packs).toFixed(2)} | ${fitRate.toFixed(0)}`);
    trainer.dispose();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
