// The native backward pass against central finite differences of the float64 reference loss, for every
// tensor, on small models with odd sizes, lengths 0/1/max, every head kind (pairwise rank included), label
// masks and example weights — on every instruction-set path.
import t, { Test } from 'tap';
import { paramsOf, randomBatch, smallConfig } from './support/train-batch';
import { ResolvedConfig } from '../lib/network/config';
import { native } from '../lib/native/addon';
import { nativeSpec } from '../lib/native/spec';
import { mulberry32 } from '../lib/random';
import { tensorSpecs } from '../lib/network/tensors';
import { randomTensors, randomUserColumns } from '../lib/reference/random-model';
import { referenceLoss } from '../lib/reference/loss';
import { DropoutMask, dropoutScale } from '../lib/reference/dropout';

/** Indices to probe in a tensor: all of a small one, else a spread sample plus the largest gradients. */
function probes(size: number, grad: Float32Array, rand: () => number): number[] {
  if (size <= 40) return Array.from({ length: size }, (_, i) => i);
  const set = new Set<number>();
  const order = Array.from({ length: size }, (_, i) => i).sort((a, b) => Math.abs(grad[b]) - Math.abs(grad[a]));
  for (let i = 0; i < 16; i++) set.add(order[i]);
  while (set.size < 40) set.add(Math.floor(rand() * size));
  return [...set];
}

function check(tt: Test, config: ResolvedConfig, isa: string, seed: number, pairwise: boolean, dropout?: DropoutMask): void {
  const tensors = randomTensors(config, seed, 0.6);
  const batch = randomBatch(config, seed, 9, pairwise);
  const specs = tensorSpecs(config);
  const trainer = new (native().NativeTrainer)(nativeSpec(config, tensors, 0, false), isa, paramsOf(config, tensors));
  const grads = specs.map((s) => new Float32Array(tensors.get(s.name)!.length));
  const report = new Float64Array(2 + 2 * config.tasks.length);
  trainer.gradients(batch, grads, report, 2, dropout ? { dropout: dropout.rate, dropoutSeed: dropout.seed } : undefined);
  const ref = referenceLoss(config, tensors, batch, dropout);
  tt.ok(Math.abs(report[0] - ref.loss) <= 1e-5 * Math.max(1, Math.abs(ref.loss)), `loss ${report[0]} vs reference ${ref.loss}`);
  const rand = mulberry32(seed);
  specs.forEach((s, i) => {
    const data = tensors.get(s.name)!;
    if (data.length === 0) return;
    let diff2 = 0;
    let ref2 = 0;
    let worst = 0;
    let worstText = '';
    let kinks = 0;
    const fdAt = (j: number, eps: number): number => {
      const x = data[j];
      data[j] = x + eps;
      const up = data[j];
      const lp = referenceLoss(config, tensors, batch, dropout).loss;
      data[j] = x - eps;
      const down = data[j];
      const lm = referenceLoss(config, tensors, batch, dropout).loss;
      data[j] = x;
      return (lp - lm) / (up - down);
    };
    const points = probes(data.length, grads[i], rand);
    for (const j of points) {
      const eps = 1e-4 * Math.max(1, Math.abs(data[j]));
      const fd = fdAt(j, eps);
      // A ReLU kink inside ±eps makes the two step sizes disagree: such a point has no derivative to check.
      if (Math.abs(fd - fdAt(j, eps / 2)) > 1e-3 * (Math.abs(fd) + 1e-4)) {
        kinks++;
        continue;
      }
      const d = grads[i][j] - fd;
      diff2 += d * d;
      ref2 += fd * fd;
      if (Math.abs(d) > worst) {
        worst = Math.abs(d);
        worstText = `${worst.toExponential(2)} at [${j}] native ${grads[i][j]} fd ${fd}`;
      }
    }
    tt.ok(kinks <= points.length / 4, `${isa} ${s.name}: ${kinks} of ${points.length} probes at a ReLU kink`);
    const rel = Math.sqrt(diff2) / Math.max(Math.sqrt(ref2), 1e-4);
    tt.ok(rel < 2e-3, `${isa} ${s.name}: ‖native − fd‖/‖fd‖ = ${rel.toExponential(2)} (worst ${worstText})`);
  });
  trainer.release();
}

const isas = native().supportedIsas.split(',');

for (const isa of isas) {
  t.test(`gradients match finite differences (${isa})`, async (tt) => {
    check(tt, smallConfig(0), isa, 11, false);
    check(tt, smallConfig(1), isa, 12, false);
    check(tt, smallConfig(0), isa, 13, true);
    // The masked network of a training step with dropout: the reference applies the same hashed mask.
    check(tt, smallConfig(0), isa, 14, false, { rate: 0.3, seed: 987654321 });
    check(tt, smallConfig(1), isa, 15, false, { rate: 0.5, seed: 2 ** 40 + 7 });
  });
}

t.test('dropout: the mask keeps the rate, rate 0 is the plain network, and a new seed is a new mask', async (tt) => {
  const draws = 20000;
  for (const rate of [0.1, 0.5]) {
    let zeros = 0;
    for (let i = 0; i < draws; i++) if (dropoutScale({ rate, seed: 5 }, 1 + (i % 2), i >> 4, i % 16) === 0) zeros++;
    tt.ok(Math.abs(zeros / draws - rate) < 0.015, `rate ${rate}: ${zeros} of ${draws} zeroed`);
  }
  tt.equal(dropoutScale({ rate: 0.5, seed: 5 }, 1, 3, 4) === 0 ? 0 : 2, dropoutScale({ rate: 0.5, seed: 5 }, 1, 3, 4));
  let same = 0;
  for (let i = 0; i < 1000; i++) if (dropoutScale({ rate: 0.5, seed: 1 }, 1, i, 0) === dropoutScale({ rate: 0.5, seed: 2 }, 1, i, 0)) same++;
  tt.ok(same > 400 && same < 600, `two seeds agree on ${same} of 1000 draws (independent: about 500)`);

  const config = smallConfig(0);
  const tensors = randomTensors(config, 21, 0.6);
  const batch = randomBatch(config, 21, 7, false);
  const trainer = new (native().NativeTrainer)(nativeSpec(config, tensors, 0, false), '', paramsOf(config, tensors));
  const report = new Float64Array(2 + 2 * config.tasks.length);
  const grads = () => tensorSpecs(config).map((s) => new Float32Array(tensors.get(s.name)!.length));
  const plain = grads();
  trainer.gradients(batch, plain, report, 1);
  const plainLoss = report[0];
  const zero = grads();
  trainer.gradients(batch, zero, report, 1, { dropout: 0, dropoutSeed: 3 });
  tt.equal(report[0], plainLoss, 'rate 0: the same loss');
  tt.ok(zero.every((g, i) => g.every((x, j) => x === plain[i][j])), 'rate 0: the same gradient, bit for bit');
  trainer.gradients(batch, grads(), report, 1, { dropout: 0.5, dropoutSeed: 3 });
  tt.not(report[0], plainLoss, 'rate 0.5: another loss');
  const one = report[0];
  trainer.gradients(batch, grads(), report, 2, { dropout: 0.5, dropoutSeed: 3 });
  tt.ok(Math.abs(report[0] - one) <= 1e-6 * Math.abs(one), 'the mask does not depend on the thread count');
  for (const bad of [{ dropout: 1, dropoutSeed: 3 }, { dropout: -0.1, dropoutSeed: 3 }, { dropout: 0.5, dropoutSeed: -1 }, { dropout: 0.5, dropoutSeed: 1.5 }]) {
    tt.throws(() => trainer.gradients(batch, grads(), report, 1, bad), /E_INPUT|options\.dropout/, `refuses ${JSON.stringify(bad)}`);
  }
  trainer.release();
});

t.test('gradient of a batch whose users have no behaviours and no labels is zero, not NaN', async (tt) => {
  const config = smallConfig(0);
  const tensors = randomTensors(config, 5, 0.6);
  const batch = randomBatch(config, 5, 3, false);
  batch.users.lengths.fill(0);
  const users = randomUserColumns(config, 5, [0, 0, 0], { queryTokens: 0 });
  batch.users = users;
  for (const h of batch.heads) {
    if (h.classes) h.classes.fill(-1);
    else {
      h.items = new Int32Array(0);
      h.dense = new Float32Array(0);
      h.owner = new Int32Array(0);
      h.label = new Float32Array(0);
      h.weight = new Float32Array(0);
      if (h.offset) h.offset = new Float32Array(0);
    }
  }
  const trainer = new (native().NativeTrainer)(nativeSpec(config, tensors, 0, false), '', paramsOf(config, tensors));
  const grads = tensorSpecs(config).map((s) => new Float32Array(tensors.get(s.name)!.length));
  const report = new Float64Array(2 + 2 * config.tasks.length);
  trainer.gradients(batch, grads, report, 1);
  tt.equal(report[0], 0);
  tt.ok(grads.every((g) => g.every((x) => x === 0)), 'every gradient is 0');
});
