// Decoupled weight decay in the native optimizer step: against the same step without it, every dense weight
// but the biases moves by exactly −lr · decay · w, every embedding row the batch touched by −embeddingLr ·
// decay · w, and untouched rows and biases not at all.
import t from 'tap';
import { native } from '../lib/native/addon';
import { nativeSpec } from '../lib/native/spec';
import { isEmbeddingTable, tensorSpecs } from '../lib/network/tensors';
import { randomTensors } from '../lib/reference/random-model';
import { paramsOf, randomBatch, smallConfig } from './support/train-batch';

for (const isa of native().supportedIsas.split(',')) {
  t.test(`weight decay moves weights by lr · decay · w and leaves biases and untouched rows (${isa})`, async (tt) => {
    const config = smallConfig(0);
    const batch = randomBatch(config, 31, 8, false);
    const specs = tensorSpecs(config);
    const run = (weightDecay: number) => {
      const tensors = randomTensors(config, 31, 0.6);
      const trainer = new (native().NativeTrainer)(nativeSpec(config, tensors, 0, false), isa, paramsOf(config, tensors));
      const options = { lr: 0.01, embeddingLr: 0.05, beta1: 0.9, beta2: 0.999, eps: 1e-8, clipNorm: 0, embeddingAdagrad: false, trainShared: true, step: 1, weightDecay };
      trainer.step(batch, options, new Float64Array(2 + 2 * config.tasks.length), 1, false);
      trainer.release();
      return tensors;
    };
    const before = randomTensors(config, 31, 0.6);
    const plain = run(0);
    const decayed = run(0.1);
    let checked = 0;
    for (const s of specs) {
      const w0 = before.get(s.name)!;
      const a = plain.get(s.name)!;
      const b = decayed.get(s.name)!;
      if (w0.length === 0) continue;
      const bias = /\.b$/.test(s.name);
      const table = isEmbeddingTable(s.name);
      const rate = bias ? 0 : (table ? 0.05 : 0.01) * 0.1;
      let worst = 0;
      for (let j = 0; j < w0.length; j++) {
        // A table value is decayed only when the step moved its row (the batch touched it).
        const moved = !table || a[j] !== w0[j];
        const expect = moved ? -rate * w0[j] : 0;
        worst = Math.max(worst, Math.abs(b[j] - a[j] - expect));
      }
      tt.ok(worst < 1e-6, `${s.name}${bias ? ' (bias)' : ''}: worst difference from −rate·w ${worst.toExponential(2)}`);
      checked++;
    }
    tt.ok(checked > 20, `${checked} tensors checked`);
  });
}
