// Weight averaging (TrainOptions.averageDecay): what a trainer serves is the exponential moving average of its
// weights over the steps — checked against a plain per-step average of every value computed from an
// unaveraged twin run (the averages are lazy per table row in the trainer, eager here) — it survives a
// checkpoint and resume bit for bit, leaves the rows no step used at zero, and is off by default.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { resolveConfig } from '../lib/network/config';
import { TrainingExample } from '../lib/data/training-example';
import { synthesize } from '../lib/data/synthetic';
import { Model } from '../lib/model/model';
import { Trainer } from '../lib/train/trainer';
import { isHashedTable, isStatistic, tensorSpecs } from '../lib/network/tensors';
import { rejectsCode } from './support/errors';
import { encodeSafetensors, parseSafetensors } from '../lib/io/safetensors';
import { CHECKSUM_KEY, tensorsDigest } from '../lib/io/model-file';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dupn-average-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

const cfg = resolveConfig({
  maxSeqLen: 20,
  itemFields: [
    { name: 'item', buckets: 2048, dim: 6 },
    { name: 'category', buckets: 128, dim: 5 },
  ],
  profileFields: [{ name: 'age', buckets: 16, dim: 3 }],
  hidden: 10,
  attentionHidden: 7,
  tasks: [
    { name: 'ctr', kind: 'binary', target: ['item', 'category'], layers: [9] },
    { name: 'next', kind: 'retrieval', target: ['item', 'category'], layers: [5] },
  ],
});
const data: TrainingExample[] = Array.from(synthesize({ seed: 3, users: 120, config: cfg, items: 700, categories: 30, shops: 20, brands: 20 }));
const batches = Array.from({ length: 12 }, (_, i) => data.slice(i * 9, i * 9 + 9));

function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

function copy(m: ReadonlyMap<string, Float32Array>): Map<string, Float32Array> {
  return new Map([...m].map(([k, v]) => [k, v.slice()]));
}

// D = 0.55: steps 0–9 decay by the warm-up (1 + n)/(10 + n), steps 10 and 11 by D; D = 0.3: from step 3 on.
for (const D of [0.55, 0.3]) t.test(`the served weights are the per-step exponential moving average of the trained ones (d = ${D})`, async (t) => {
  // Every table row random (a model's tables are full), so the eager average of every value from step 0 is
  // exactly what the lazy per-row one must give.
  const start = Model.create(cfg, { seed: 5 });
  const plain = Trainer.fromModel(start, { deterministic: true, seed: 5 });
  const averaged = Trainer.fromModel(start, { deterministic: true, seed: 5, averageDecay: D });
  start.dispose();
  const raw0 = plain.toModel();
  const ref = copy(raw0.weights);
  raw0.dispose();
  for (let n = 0; n < batches.length; n++) {
    await plain.step(batches[n]);
    await averaged.step(batches[n]);
    const raw = plain.toModel();
    const weights = raw.weights; // a copy per call
    for (const s of tensorSpecs(cfg)) {
      if (isStatistic(s.name)) {
        ref.set(s.name, weights.get(s.name)!.slice());
        continue;
      }
      // TensorFlow's warm-up decay, for the dense weights and the table rows alike.
      const a = 1 - Math.min(D, (1 + n) / (10 + n));
      const w = weights.get(s.name)!;
      const avg = ref.get(s.name)!;
      for (let i = 0; i < w.length; i++) avg[i] += a * (w[i] - avg[i]);
    }
    raw.dispose();
  }
  const got = averaged.toModel();
  const last = plain.toModel();
  const [gotWeights, lastWeights] = [got.weights, last.weights];
  let worst = 0;
  let moved = 0;
  for (const [name, want] of ref) {
    const x = gotWeights.get(name)!;
    const w = lastWeights.get(name)!;
    for (let i = 0; i < want.length; i++) {
      worst = Math.max(worst, Math.abs(x[i] - want[i]) / (1e-3 + Math.abs(want[i])));
      if (Math.abs(x[i] - w[i]) > 1e-6) moved++;
    }
  }
  t.ok(worst < 1e-4, `largest relative difference from the eager average ${worst.toExponential(2)}`);
  // The dense tensors' average is computed where the step runs (native, in double) by the same formula as
  // the eager one here, so it must be the same to the bit; only the tables' lazy catch-up rounds differently.
  const dense = tensorSpecs(cfg).filter((s) => !isStatistic(s.name) && !isHashedTable(s.name));
  t.ok(dense.length > 10, `${dense.length} dense tensors`);
  for (const s of dense) if (!sameBits(gotWeights.get(s.name)!, ref.get(s.name)!)) t.fail(`${s.name}: the dense average differs from the eager formula's bits`);
  t.ok(moved > 1000, `${moved} values differ from the last step's weights (the average is not the weights)`);
  // (Buffer.compare: tap's deep comparison of long typed arrays takes seconds.)
  for (const s of tensorSpecs(cfg).filter((x) => isStatistic(x.name))) t.ok(sameBits(gotWeights.get(s.name)!, lastWeights.get(s.name)!), `${s.name}: a statistic is served as it is`);
  // A later snapshot, with no step in between, serves the same average.
  const again = averaged.toModel();
  const againWeights = again.weights;
  t.ok([...gotWeights].every(([name, x]) => sameBits(x, againWeights.get(name)!)), 'a second snapshot at the same step is the same');
  for (const m of [got, last, again]) m.dispose();
  plain.dispose();
  averaged.dispose();
});

t.test('a checkpoint keeps the average: a resumed run serves what an uninterrupted one does, bit for bit', async (t) => {
  // `every`: write a checkpoint (and take a snapshot) after every step, which must change nothing;
  // `resumeAt`: stop after that step and continue from the checkpoint in a new trainer.
  const run = async (every: boolean, resumeAt?: number): Promise<Model> => {
    let trainer = Trainer.create(cfg, { deterministic: true, seed: 9, averageDecay: 0.9 });
    const ckpt = path.join(dir, `resume-${every}-${resumeAt ?? 'none'}.ckpt`);
    for (let n = 0; n < batches.length; n++) {
      await trainer.step(batches[n]);
      if (every) {
        await trainer.saveCheckpoint(ckpt);
        trainer.toModel().dispose();
      }
      if (n === resumeAt) {
        await trainer.saveCheckpoint(ckpt);
        trainer.dispose();
        trainer = (await Trainer.resume(ckpt)).trainer;
      }
    }
    const m = trainer.toModel();
    trainer.dispose();
    return m;
  };
  const bits = (a: Model, b: Model): boolean => ((bw) => [...a.weights].every(([name, x]) => sameBits(x, bw.get(name)!)))(b.weights);
  const whole = await run(false);
  const snapshots = await run(true);
  const resumed = await run(false, 4);
  const resumedTwice = await run(true, 8);
  t.ok(bits(whole, snapshots), 'snapshots and checkpoints after every step change nothing');
  t.ok(bits(whole, resumed), 'the run resumed after step 5 serves a bit-identical average');
  t.ok(bits(whole, resumedTwice), 'and so does one resumed after step 9 that also checkpointed every step');
  for (const m of [whole, snapshots, resumed, resumedTwice]) m.dispose();
});

t.test('a checkpoint whose average steps are missing or out of range is refused, naming the tensor', async (t) => {
  const trainer = Trainer.create(cfg, { deterministic: true, seed: 9, averageDecay: 0.9 });
  for (const b of batches.slice(0, 3)) await trainer.step(b);
  const ckpt = path.join(dir, 'bad-average.ckpt');
  await trainer.saveCheckpoint(ckpt);
  trainer.dispose();
  const parsed = parseSafetensors(fs.readFileSync(ckpt), ckpt);
  const rewrite = (drop: string, change?: (a: Int32Array) => void): string => {
    const bytes = fs.readFileSync(ckpt);
    const out: { name: string; data: Float32Array | Int32Array; shape: number[] }[] = [];
    for (const [name, e] of parsed.tensors) {
      if (name === drop && change === undefined) continue;
      const at = parsed.dataStart + e.begin;
      const copy = bytes.buffer.slice(bytes.byteOffset + at, bytes.byteOffset + at + (e.end - e.begin));
      const data = e.dtype === 'I32' ? new Int32Array(copy) : new Float32Array(copy);
      if (name === drop && change !== undefined) change(data as Int32Array);
      out.push({ name, data, shape: e.shape });
    }
    const meta = { ...parsed.metadata };
    delete meta[CHECKSUM_KEY];
    meta[CHECKSUM_KEY] = tensorsDigest(out.map((x) => x.data));
    const p = path.join(dir, `bad-${drop}-${change ? 'changed' : 'dropped'}.ckpt`);
    fs.writeFileSync(p, Buffer.concat(encodeSafetensors(meta, out)));
    return p;
  };
  const at = 'avg.at.emb.item.item';
  t.ok(parsed.tensors.has(at) && parsed.tensors.has('avg.emb.item.item') && parsed.tensors.has('avg.lstm.fw.wx'), 'the checkpoint holds the averages and the item rows\' steps');
  await rejectsCode(t, () => Trainer.resume(rewrite(at)), 'E_MODEL_FILE', `"${at}" is missing`);
  await rejectsCode(t, () => Trainer.resume(rewrite(at, (a) => (a[0] = 99))), 'E_MODEL_FILE', `"${at}" holds 99`);
  const { trainer: ok } = await Trainer.resume(rewrite(at, () => undefined));
  t.equal(ok.steps, 3, 'the untouched rewrite resumes');
  ok.dispose();
});

t.test('rows no step used stay zero, so the saved file holds only the used rows', async (t) => {
  const plain = Trainer.create(cfg, { deterministic: true, seed: 4 });
  const averaged = Trainer.create(cfg, { deterministic: true, seed: 4, averageDecay: 0.99 });
  for (const b of batches.slice(0, 6)) {
    await plain.step(b);
    await averaged.step(b);
  }
  const a = plain.toModel().weights.get('emb.item.item')!;
  const b = averaged.toModel().weights.get('emb.item.item')!;
  const dim = 6;
  let usedA = 0;
  let usedB = 0;
  let mismatched = 0;
  for (let r = 0; r < a.length / dim; r++) {
    const za = a.subarray(r * dim, (r + 1) * dim).every((x) => x === 0);
    const zb = b.subarray(r * dim, (r + 1) * dim).every((x) => x === 0);
    usedA += za ? 0 : 1;
    usedB += zb ? 0 : 1;
    if (za !== zb) mismatched++;
  }
  t.ok(usedA > 50 && usedA < a.length / dim / 2, `${usedA} of ${a.length / dim} item rows used`);
  t.equal(mismatched, 0, 'the averaged table is nonzero exactly where the trained one is');
  t.equal(usedB, usedA);
  const pa = path.join(dir, 'plain.safetensors');
  const pb = path.join(dir, 'averaged.safetensors');
  await plain.save(pa);
  await averaged.save(pb);
  t.equal(fs.statSync(pb).size, fs.statSync(pa).size, 'the averaged model file is the size of the plain one');
  const loaded = await Model.load(pb);
  t.ok(sameBits(loaded.weights.get('emb.item.item')!, b), 'save writes the average');
  loaded.dispose();
  plain.dispose();
  averaged.dispose();
});

t.test('off by default; a bad decay is refused with its option named', async (t) => {
  const a = Trainer.create(cfg, { deterministic: true, seed: 2 });
  t.equal(a.options.averageDecay, 0);
  a.dispose();
  await rejectsCode(t, async () => Trainer.create(cfg, { averageDecay: 1 }), 'E_INPUT', 'options.averageDecay');
  await rejectsCode(t, async () => Trainer.create(cfg, { averageDecay: -0.5 }), 'E_INPUT', 'options.averageDecay');
  await rejectsCode(t, async () => Trainer.create(cfg, { averageDecay: Number.NaN }), 'E_INPUT', 'options.averageDecay');
});
