// Native forward pass vs the float64 reference (lib/reference/forward.ts), on every instruction-set path,
// fresh random models and inputs, odd dims, lengths 0 / 1 / random / max, B = 1 and B ≥ 300.
import t, { Test } from 'tap';
import { resolveConfig } from '../lib/network/config';
import { Model } from '../lib/model/model';
import { referenceEncode, referencePredict, referenceScore } from '../lib/reference/forward';
import { randomCandidateColumns, randomTensors, randomUserColumns } from '../lib/reference/random-model';
import { native } from '../lib/native/addon';
import { allFinite, isas, relError } from './support/compare';
import { lengthsFor, oddConfig, oddVariants, paperDims } from './support/configs';

const TOL = 1e-5;

function checkModel(t: Test, model: Model, lengths: number[], seed: number, label: string): void {
  const c = model.config;
  const tensors = model.weights as Map<string, Float32Array>;
  const cols = randomUserColumns(c, seed, lengths);
  const steps = lengths.reduce((a, b) => a + b, 0);
  const attention = new Float32Array(steps);
  const users = model.encodeColumnsSync(cols, { attention });
  const ref = referenceEncode(c, tensors, cols);
  t.ok(relError(users, ref.user) <= TOL, `${label}: U rel err ${relError(users, ref.user).toExponential(2)}`);
  if (steps > 0) t.ok(relError(attention, ref.attention) <= TOL, `${label}: attention rel err ${relError(attention, ref.attention).toExponential(2)}`);
  t.ok(allFinite(users), `${label}: U finite`);
  // Ragged batches carry no padding: each user's weights cover exactly its own L steps and sum to 1,
  // so no weight can go to a step that does not exist; an L = 0 user has none and r = 0.
  let offset = 0;
  let worst = 0;
  lengths.forEach((L, b) => {
    if (L > 0) worst = Math.max(worst, Math.abs(attention.subarray(offset, offset + L).reduce((x, y) => x + y, 0) - 1));
    else if (!users.subarray(b * model.userDim, b * model.userDim + c.hidden * (c.bidirectional ? 2 : 1)).every((x) => x === 0)) worst = Infinity;
    offset += L;
  });
  t.ok(worst < 1e-5, `${label}: per-user attention sums to 1 (worst |Σa − 1| = ${worst.toExponential(1)}), r = 0 for L = 0`);

  // Heads: score a few users' candidates, predict every user.
  for (const task of c.tasks) {
    if (task.kind === 'multiclass') {
      const p = new Float32Array(lengths.length * task.classes);
      model.predictFromVectorsSync(task.name, users, { out: p });
      const rp = referencePredict(c, tensors, task.name, ref.user, lengths.length);
      t.ok(relError(p, rp) <= TOL, `${label}: ${task.name} rel err ${relError(p, rp).toExponential(2)}`);
      continue;
    }
    for (const b of [0, lengths.length - 1]) {
      const cands = randomCandidateColumns(c, task, seed + b, 257);
      const u = users.subarray(b * model.userDim, (b + 1) * model.userDim);
      const s = model.scoreSync(task.name, u, cands);
      const rs = referenceScore(c, tensors, task.name, ref.user.subarray(b * model.userDim, (b + 1) * model.userDim), cands);
      t.ok(relError(s, rs) <= TOL, `${label}: ${task.name} user ${b} rel err ${relError(s, rs).toExponential(2)}`);
      t.ok(allFinite(s), `${label}: ${task.name} finite`);
    }
  }
}

let seed = 1000;
for (const isa of isas()) {
  t.test(`isa ${isa}`, async (t) => {
    for (const { variant, tag } of oddVariants()) {
      const config = resolveConfig(oddConfig({ ...variant, maxSeqLen: 23 }));
      const model = Model.fromTensors(config, randomTensors(config, ++seed), { isa, threads: 2 });
      t.equal(model.isa, isa);
      for (const kind of ['zero', 'one', 'random', 'max']) {
        checkModel(t, model, lengthsFor(kind, 1, 23, seed), ++seed, `${tag} B=1 L=${kind}`);
      }
      checkModel(t, model, lengthsFor('random', 301, 23, seed), ++seed, `${tag} B=301 ragged`);
      model.dispose();
    }
  });
}

t.test('paper-size dims, L = 100 (every ISA)', async (t) => {
  const config = paperDims();
  const tensors = randomTensors(config, 77, 0.2);
  for (const isa of isas()) {
    const model = Model.fromTensors(config, tensors, { isa, threads: 2 });
    checkModel(t, model, [100, 0, 1, 57, 100], 99, `paper ${isa}`);
    // B = 1 takes the one-row paths (H = 128: whole 256-column groups of the fused step and the GEMM).
    checkModel(t, model, [100], 98, `paper ${isa} B=1`);
    checkModel(t, model, [13], 97, `paper ${isa} B=1 short`);
    model.dispose();
  }
});

t.test('one thread and several give the same bits (the latency mode splits directions and attention rows)', async (t) => {
  const config = paperDims();
  const tensors = randomTensors(config, 78, 0.2);
  // bf16 too where the CPU has it: its halves of the attention product each convert into their own scratch.
  const paths: { isa: string; precision: 'fp32' | 'bf16' }[] = isas().map((isa) => ({ isa, precision: 'fp32' as const }));
  if (native().kernels.hasBf16) paths.push({ isa: 'avx512', precision: 'bf16' });
  for (const { isa, precision } of paths) {
    const models = [1, 2, 3].map((threads) => Model.fromTensors(config, tensors, { isa, threads, precision }));
    for (const lengths of [[100], [1], [0], [2], [100, 0, 1, 57, 100], [37, 3]]) {
      const cols = randomUserColumns(config, lengths.length + 3, lengths);
      const [one, ...more] = models.map((m) => m.encodeColumnsSync(cols).slice());
      for (const [i, u] of more.entries()) {
        let diff = 0;
        for (let k = 0; k < u.length; k++) if (!Object.is(u[k], one[k])) diff++;
        t.equal(diff, 0, `${isa} ${precision} lengths [${lengths.join(',')}]: ${i + 2} threads bit-identical to 1`);
      }
    }
    for (const m of models) m.dispose();
  }
});
