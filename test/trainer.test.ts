// The Trainer on synthetic examples: it learns, is bit-reproducible in deterministic mode, resumes from a
// checkpoint to the same weights, freezes what it is told to, rejects bad examples with a path, and hands
// out models that serve through the ordinary API.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ResolvedConfig, resolveConfig } from '../lib/network/config';
import { TrainingExample } from '../lib/data/training-example';
import { synthesize } from '../lib/data/synthetic';
import { Model } from '../lib/model/model';
import { fit } from '../lib/train/fit';
import { learningRateAt, resolveTrainOptions } from '../lib/train/options';
import { Trainer } from '../lib/train/trainer';
import { tensorSpecs } from '../lib/network/tensors';
import { encodeSafetensors, parseSafetensors } from '../lib/io/safetensors';
import { float32At } from '../lib/io/model-file';
import { rejectsCode } from './support/errors';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dupn-trainer-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

function config(): ResolvedConfig {
  return resolveConfig({
    maxSeqLen: 30,
    itemFields: [
      { name: 'item', buckets: 4096, dim: 12 },
      { name: 'category', buckets: 512, dim: 6 },
      { name: 'shop', buckets: 512, dim: 4 },
      { name: 'brand', buckets: 512, dim: 4 },
    ],
    query: { buckets: 1024, dim: 8 },
    profileFields: [{ name: 'age', buckets: 16, dim: 4 }, { name: 'power', buckets: 8, dim: 4 }],
    hidden: 24,
    attentionHidden: 12,
    tasks: [
      { name: 'ctr', kind: 'binary', target: ['item', 'category', 'shop', 'brand'], layers: [24, 12] },
      { name: 'l2r', kind: 'rank', target: ['item', 'category', 'shop', 'brand'], layers: [16] },
      { name: 'ppp', kind: 'multiclass', classes: 7, layers: [16] },
      { name: 'spp', kind: 'binary', target: ['shop'], layers: [12] },
    ],
  });
}

const cfg = config();
const small = { items: 2000, categories: 40, shops: 200, brands: 100 };
const data: TrainingExample[] = Array.from(synthesize({ seed: 1, users: 600, config: cfg, ...small }));

function tensorsEqual(a: Model, b: Model): boolean {
  const ta = a.weights;
  const tb = b.weights;
  for (const [name, x] of ta) {
    const y = tb.get(name)!;
    if (Buffer.compare(Buffer.from(x.buffer, x.byteOffset, x.byteLength), Buffer.from(y.buffer, y.byteOffset, y.byteLength)) !== 0) return false;
  }
  return true;
}

t.test('the loss falls on synthetic data, for every head', async (t) => {
  const trainer = Trainer.create(cfg, { batchSize: 64, learningRate: 3e-3, seed: 2 });
  const first = await trainer.step(data.slice(0, 64));
  for (const name of ['ctr', 'l2r', 'ppp', 'spp']) t.ok(first.tasks[name].weight > 0, `${name} has labels`);
  const reports = await fit(trainer, { data: () => data, epochs: 4 });
  const last = reports[reports.length - 1];
  t.ok(last.trainLoss < 0.93 * reports[0].trainLoss, `epoch loss ${reports[0].trainLoss.toFixed(4)} → ${last.trainLoss.toFixed(4)}`);
  t.ok(Number.isFinite(last.trainLoss));
  trainer.dispose();
});

t.test('deterministic mode: two runs give bit-identical models', async (t) => {
  const run = async (): Promise<Model> => {
    const trainer = Trainer.create(cfg, { batchSize: 50, deterministic: true, seed: 5, warmupSteps: 3, decay: 'cosine', totalSteps: 20 });
    await fit(trainer, { data: () => data.slice(0, 300), epochs: 2 });
    const m = trainer.toModel();
    trainer.dispose();
    return m;
  };
  const a = await run();
  const b = await run();
  t.ok(tensorsEqual(a, b), 'every tensor is bit-identical');
  const fresh = Trainer.create(cfg, { seed: 5 }).toModel();
  t.notOk(tensorsEqual(a, fresh), 'and training changed them');
});

t.test('dropout and weight decay: the loss still falls, a seed gives the same model, and they change it', async (t) => {
  const run = async (o: { dropout?: number; weightDecay?: number; seed?: number }) => {
    const trainer = Trainer.create(cfg, { batchSize: 50, deterministic: true, seed: 5, learningRate: 3e-3, ...o });
    const reports = await fit(trainer, { data: () => data.slice(0, 400), epochs: 3 });
    const m = trainer.toModel();
    trainer.dispose();
    return { m, reports };
  };
  const plain = await run({});
  const reg = await run({ dropout: 0.3, weightDecay: 0.05 });
  const again = await run({ dropout: 0.3, weightDecay: 0.05 });
  const first = reg.reports[0].trainLoss;
  const last = reg.reports[reg.reports.length - 1].trainLoss;
  t.ok(Number.isFinite(last) && last < first, `with dropout 0.3 and weight decay 0.05 the epoch loss falls: ${first.toFixed(4)} → ${last.toFixed(4)}`);
  t.ok(tensorsEqual(reg.m, again.m), 'the same seed: a bit-identical model (the mask is drawn from the seed and step)');
  t.notOk(tensorsEqual(reg.m, plain.m), 'regularised training differs from plain training');
  t.throws(() => Trainer.create(cfg, { dropout: 0.96 }), /options\.dropout/);
  t.throws(() => Trainer.create(cfg, { weightDecay: -1 }), /options\.weightDecay/);
});

t.test('a step split over 1, 2 or 3 threads covers every example: the same loss, task losses and gradient norm', async (t) => {
  // Users go to threads by their work (steps and candidates), not their count: ragged lengths and candidate
  // lists make the split fall away from the middle, and every user must still be counted exactly once.
  const batch = data.slice(0, 96).map((ex, i) => (i % 5 === 0 ? { ...ex, user: { ...ex.user, behaviors: ex.user.behaviors.slice(0, 1) } } : ex));
  const reports = [];
  for (const threads of [1, 2, 3]) {
    const trainer = Trainer.create(cfg, { batchSize: 96, seed: 4, threads });
    reports.push(await trainer.step(batch));
    trainer.dispose();
  }
  const close = (a: number, b: number): boolean => Math.abs(a - b) <= 1e-5 * Math.max(1, Math.abs(a));
  for (const r of reports.slice(1)) {
    t.ok(close(r.loss, reports[0].loss), `loss ${r.loss} = ${reports[0].loss}`);
    t.ok(close(r.gradNorm, reports[0].gradNorm), `gradient norm ${r.gradNorm} = ${reports[0].gradNorm}`);
    for (const name of ['ctr', 'l2r', 'ppp', 'spp']) t.ok(close(r.tasks[name].loss, reports[0].tasks[name].loss), `${name} loss`);
  }
});

t.test('checkpoint and resume continue to the same weights as an uninterrupted run', async (t) => {
  const opts = { batchSize: 40, deterministic: true, seed: 7, learningRate: 2e-3 };
  const whole = Trainer.create(cfg, opts);
  await fit(whole, { data: () => data.slice(0, 240), epochs: 2 });

  const ckpt = path.join(dir, 'run.ckpt');
  const part = Trainer.create(cfg, opts);
  await fit(part, { data: () => data.slice(0, 240), epochs: 2, checkpoint: ckpt, checkpointEvery: 1, maxSteps: 8 });
  t.equal(part.steps, 8);
  part.dispose();
  const { trainer, position } = await Trainer.resume(ckpt);
  t.same(position, { epoch: 1, examples: 80 }, 'the position is 2 steps into epoch 2 (6 steps per epoch)');
  t.equal(trainer.steps, 8);
  await fit(trainer, { data: () => data.slice(0, 240), epochs: 2, start: position as { epoch: number; examples: number } });
  t.equal(trainer.steps, whole.steps);
  t.ok(tensorsEqual(trainer.toModel(), whole.toModel()), 'resumed weights are bit-identical');
  trainer.dispose();
  whole.dispose();
});

t.test('early stopping: stops after `patience` epochs without a better score, and a resumed run stops where it would have', async (t) => {
  const scores = [0.1, 0.3, 0.2, 0.25, 0.5, 0.6];
  const opts = { batchSize: 40, deterministic: true, seed: 3 };
  const trainer = Trainer.create(cfg, opts);
  const ckpt = path.join(dir, 'early.ckpt');
  const reports = await fit(trainer, {
    data: () => data.slice(0, 80),
    epochs: 6,
    checkpoint: ckpt,
    validate: async (_model, epoch) => scores[epoch],
    earlyStopping: { patience: 2, score: (v) => v },
  });
  t.same(reports.map((r) => [r.score, r.improved, r.stopping]), [[0.1, true, false], [0.3, true, false], [0.2, false, false], [0.25, false, true]],
    'epoch 2 was best; epochs 3 and 4 were not better: stop after 4 of 6');
  t.same(reports.at(-1)!.best, { epoch: 1, score: 0.3 });
  t.equal(trainer.steps, 8);
  trainer.dispose();
  const { trainer: resumed, position } = await Trainer.resume(ckpt);
  t.same(position, { epoch: 4, examples: 0, best: { epoch: 1, score: 0.3 } }, 'the checkpoint carries the best epoch');
  const again = await fit(resumed, { data: () => data.slice(0, 80), epochs: 6, start: position as { epoch: number; examples: number }, validate: async (_m, e) => scores[e], earlyStopping: { patience: 2, score: (v) => v } });
  t.same(again, [], 'a resumed run that had stopped trains nothing more');
  t.equal(resumed.steps, 8);
  resumed.dispose();
  // A mid-epoch checkpoint (here: --max-steps inside epoch 4) carries the best epoch as well.
  const mid = Trainer.create(cfg, opts);
  await fit(mid, { data: () => data.slice(0, 80), epochs: 6, checkpoint: ckpt, maxSteps: 7, validate: async (_m, e) => scores[e], earlyStopping: { patience: 2, score: (v) => v } });
  mid.dispose();
  const midResumed = await Trainer.resume(ckpt);
  t.same(midResumed.position, { epoch: 3, examples: 40, best: { epoch: 1, score: 0.3 } });
  midResumed.trainer.dispose();
  const noValidate = Trainer.create(cfg, opts);
  await rejectsCode(t, () => fit(noValidate, { data: () => data.slice(0, 80), earlyStopping: { patience: 2, score: () => 0 } }), 'E_INPUT', 'options.earlyStopping');
  noValidate.dispose();
});

t.test('freeze shared trains heads only; tasks trains only the listed heads', async (t) => {
  // From a model with its rows in place (a new trainer's tables get rows started at first use, frozen or not).
  const pre = Trainer.create(cfg, { seed: 9, batchSize: 64 });
  await fit(pre, { data: () => data.slice(0, 192), epochs: 1 });
  const model = pre.toModel();
  pre.dispose();
  const base = model.weights;
  const frozen = Trainer.fromModel(model, { seed: 9, freeze: 'shared', tasks: ['spp'], batchSize: 64 });
  await fit(frozen, { data: () => data.slice(0, 192), epochs: 1 });
  const after = frozen.toModel().weights;
  for (const [name, before] of base) {
    const changed = !before.every((v, i) => v === after.get(name)![i]);
    t.equal(changed, name.startsWith('head.spp.'), `${name} ${changed ? 'changed' : 'unchanged'}`);
  }
  frozen.dispose();
});

t.test('freezeTensors: attn.v held at zero makes the attention a plain mean (the pooling ablation)', async (t) => {
  const tensors = new Map([...Trainer.create(cfg, { seed: 8 }).toModel().weights].map(([k, v]) => [k, Float32Array.from(v)]));
  tensors.get('attn.v')!.fill(0);
  const trainer = Trainer.fromModel(Model.fromTensors(cfg, tensors), { freezeTensors: ['attn.v', 'lstm.bw.'], batchSize: 64 });
  await fit(trainer, { data: () => data.slice(0, 192), epochs: 1 });
  const after = trainer.toModel();
  const out = after.weights;
  t.ok(out.get('attn.v')!.every((v) => v === 0), 'attn.v stayed 0');
  t.same(Array.from(out.get('lstm.bw.wh')!), Array.from(tensors.get('lstm.bw.wh')!), 'a prefix freezes every tensor under it');
  t.notSame(Array.from(out.get('lstm.fw.wh')!), Array.from(tensors.get('lstm.fw.wh')!), 'others train');
  const user = data.find((e) => e.user.behaviors.length >= 5)!.user;
  const { attention } = await after.explain(user);
  const n = Math.min(user.behaviors.length, cfg.maxSeqLen);
  t.ok(attention.every((a) => Math.abs(a - 1 / n) < 1e-6), 'uniform attention');
  t.throws(() => Trainer.create(cfg, { freezeTensors: ['attn.q'] }), /freezeTensors\[0\]/);
  trainer.dispose();
});

t.test('bad examples are refused with a path, and the trainer keeps working', async (t) => {
  const trainer = Trainer.create(cfg, { seed: 3, batchSize: 8 });
  const bad = structuredClone(data.slice(0, 4)) as TrainingExample[];
  (bad[2].labels['ctr'] as { label: number }[])[1].label = 7;
  await rejectsCode(t, () => trainer.step(bad), 'E_INPUT', 'examples[2].labels.ctr[1].label');
  const bad2 = structuredClone(data.slice(0, 4)) as TrainingExample[];
  bad2[1].labels['ppp'] = 9;
  await rejectsCode(t, () => trainer.step(bad2), 'E_INPUT', 'examples[1].labels.ppp');
  const bad3 = structuredClone(data.slice(0, 4)) as TrainingExample[];
  (bad3[3].user.behaviors[0] as { time: unknown }).time = 'yesterday';
  await rejectsCode(t, () => trainer.step(bad3), 'E_INPUT', 'examples[3].user.behaviors[0].time');
  await rejectsCode(t, () => trainer.step([]), 'E_INPUT', 'examples');
  const ok = await trainer.step(data.slice(0, 8));
  t.ok(Number.isFinite(ok.loss));
  const p1 = trainer.step(data.slice(0, 8));
  await rejectsCode(t, () => trainer.step(data.slice(0, 8)), 'E_BUSY', 'previous step');
  t.throws(() => trainer.toModel(), /toModel: a step is running/);
  await rejectsCode(t, () => trainer.save(path.join(dir, 'torn.safetensors')), 'E_BUSY', 'save: a step is running');
  await p1;
  trainer.dispose();
  await rejectsCode(t, () => trainer.step(data.slice(0, 8)), 'E_DISPOSED', 'disposed');
});

t.test('a step whose loss overflows reports E_DIVERGED and leaves the weights as they were', async (t) => {
  // Finite but huge dense ranking features overflow float32 inside the head: the loss is not finite.
  const withDense = resolveConfig({ ...cfg, tasks: [{ name: 'l2r', kind: 'rank', target: ['item'], layers: [8], denseFeatures: 8 }] });
  const examples = data.slice(0, 16).map((e) => ({
    ...e,
    labels: { l2r: (e.labels['l2r'] as { candidate: object; label: number }[]).map((c) => ({ ...c, candidate: { ...c.candidate, dense: [0.5, -0.25, 0, 1, 0.1, 0.2, 0.3, -1] } })) },
  }));
  // A first step at a reckless learning rate makes the head weights large (Adam moves each by about lr).
  const trainer = Trainer.create(withDense, { seed: 3, batchSize: 16, learningRate: 10 });
  await trainer.step(examples);
  const before = trainer.toModel().weights;
  const huge = examples.map((e) => ({
    ...e,
    labels: { l2r: (e.labels.l2r as { candidate: object; label: number }[]).map((c) => ({ ...c, candidate: { ...c.candidate, dense: new Array(8).fill(1e38) } })) },
  }));
  await rejectsCode(t, () => trainer.step(huge), 'E_DIVERGED', 'not finite');
  t.equal(trainer.steps, 1, 'the step was not counted');
  const after = trainer.toModel().weights;
  t.ok([...before].every(([name, v]) => v.every((x, i) => Object.is(x, after.get(name)![i]))), 'weights unchanged');
  t.ok(Number.isFinite((await trainer.step(examples)).loss), 'training goes on');
  trainer.dispose();
});

t.test('trained models serve, save and load; a new head starts fresh from a saved model', async (t) => {
  const trainer = Trainer.create(cfg, { seed: 4, batchSize: 64 });
  await fit(trainer, { data: () => data.slice(0, 128), epochs: 1 });
  const file = path.join(dir, 'm.safetensors');
  await trainer.save(file);
  const loaded = await Model.load(file);
  const served = trainer.toModel();
  const users = data.slice(0, 5).map((e) => e.user);
  t.same(Array.from(await loaded.encode(users)), Array.from(await served.encode(users)), 'saved = in-memory');
  const probs = await served.score('ctr', (await served.encode([users[0]])), [{ item: 'i1', category: 'c1', shop: 's1', brand: 'b1' }]);
  t.ok(probs[0] > 0 && probs[0] < 1);

  const bigger = { ...cfg, tasks: [...cfg.tasks, { name: 'fifp', kind: 'binary' as const, target: ['brand'], layers: [8] }] };
  const { trainer: transfer, fresh } = await Trainer.fromModelFile(file, { freeze: 'shared', tasks: ['fifp'], seed: 11 }, bigger);
  t.same(fresh, ['head.fifp.0.w', 'head.fifp.0.b', 'head.fifp.1.w', 'head.fifp.1.b']);
  t.ok(tensorsEqual(Model.fromTensors(cfg, (() => {
    const m = new Map(transfer.toModel().weights);
    for (const n of fresh) m.delete(n);
    return m;
  })()), loaded), 'the shared weights are the saved ones');
  transfer.dispose();
  trainer.dispose();
});

t.test('Adagrad embeddings and the learning-rate schedule', async (t) => {
  const trainer = Trainer.create(cfg, { seed: 6, batchSize: 64, embeddingOptimizer: 'adagrad' });
  const reports = await fit(trainer, { data: () => data, epochs: 3 });
  t.ok(reports[2].trainLoss < reports[0].trainLoss, `adagrad loss ${reports[0].trainLoss.toFixed(4)} → ${reports[2].trainLoss.toFixed(4)}`);
  const o = resolveTrainOptions(cfg, { warmupSteps: 10, decay: 'linear', totalSteps: 110 });
  t.equal(learningRateAt(1, o, 5), 0.5);
  t.equal(learningRateAt(1, o, 10), 1);
  t.ok(Math.abs(learningRateAt(1, o, 60) - 0.55) < 1e-12);
  t.ok(Math.abs(learningRateAt(1, o, 500) - 0.1) < 1e-12);
  t.throws(() => resolveTrainOptions(cfg, { decay: 'cosine' }), /totalSteps/);
  t.throws(() => resolveTrainOptions(cfg, { tasks: ['nope'] }), /unknown task/);
  t.throws(() => resolveTrainOptions(cfg, { learningRate: -1 } as never), /learningRate/);
  t.throws(() => resolveTrainOptions(cfg, { lr: 1 } as never), /not a trainer option/);
  const defaults = resolveTrainOptions(cfg, {});
  t.same([defaults.embeddingOptimizer, defaults.embeddingLearningRate], ['rowwise-adagrad', 0.2], 'embedding rows: row-wise Adagrad at 0.2 by default');
  const adam = resolveTrainOptions(cfg, { embeddingOptimizer: 'adam' });
  t.equal(adam.embeddingLearningRate, 0.05, 'lazy Adam keeps its own default step');
  t.equal(resolveTrainOptions(cfg, { embeddingOptimizer: 'adam', embeddingLearningRate: 0.3 }).embeddingLearningRate, 0.3);
  t.throws(() => resolveTrainOptions(cfg, { embeddingOptimizer: 'sgd' } as never), /options\.embeddingOptimizer: must be "adam", "adagrad", "rowwise-adagrad", got "sgd"/);
  trainer.dispose();
});

t.test('row-wise Adagrad embeddings (the default): one accumulator per row, a checkpoint about the size of the model, exact resume', async (t) => {
  const opts = { batchSize: 40, deterministic: true, seed: 7 };
  const whole = Trainer.create(cfg, opts);
  t.equal(whole.options.embeddingOptimizer, 'rowwise-adagrad');
  const reports = await fit(whole, { data: () => data.slice(0, 400), epochs: 3 });
  t.ok(reports[2].trainLoss < reports[0].trainLoss, `it learns: epoch loss ${reports[0].trainLoss.toFixed(4)} → ${reports[2].trainLoss.toFixed(4)}`);

  const ckpt = path.join(dir, 'rowwise.ckpt');
  const adamCkpt = path.join(dir, 'adam.ckpt');
  const part = Trainer.create(cfg, opts);
  await fit(part, { data: () => data.slice(0, 400), epochs: 3, checkpoint: ckpt, checkpointEvery: 1, maxSteps: 13 });
  part.dispose();
  const adam = Trainer.create(cfg, { ...opts, embeddingOptimizer: 'adam' });
  await fit(adam, { data: () => data.slice(0, 400), epochs: 3, maxSteps: 13 });
  await adam.saveCheckpoint(adamCkpt, null);
  adam.dispose();
  const model = path.join(dir, 'rowwise.safetensors');
  await whole.save(model);
  const [c, a, m] = [ckpt, adamCkpt, model].map((p) => fs.statSync(p).size);
  // Tables: the rows in use (all of a small table; the used ones, with their I32 ids, of a sparse one), once,
  // plus one float per row; every other tensor keeps Adam's m and v (three times).
  const stored = parseSafetensors(fs.readFileSync(ckpt)).tensors;
  let floats = 0;
  for (const s of tensorSpecs(cfg)) {
    const n = s.shape.reduce((x, y) => x * y, 1);
    const keys = stored.get(`${s.name}#rows`);
    const rows = keys ? keys.shape[0] : s.shape[0];
    floats += s.name.startsWith('emb.') && s.shape[1] > 1 ? rows * s.shape[1] + rows + (keys ? rows : 0) : 3 * n;
  }
  t.ok(stored.has('emb.item.item#rows'), 'the item table is stored by its used rows');
  t.ok(c >= 4 * floats && c < 4 * floats + 65_536, `row-wise checkpoint ${(c / 2 ** 20).toFixed(2)} MiB: the used rows once plus a float per row, the rest three times (${(4 * floats / 2 ** 20).toFixed(2)} MiB of tensors)`);
  const adamStored = parseSafetensors(fs.readFileSync(adamCkpt)).tensors;
  t.notOk(stored.has('opt.m.emb.item.item'), 'row-wise: no first moments for a table');
  t.same(adamStored.get('opt.m.emb.item.item')?.shape, adamStored.get('emb.item.item')?.shape, 'lazy Adam: m and v beside every used row');
  t.ok(a > 2.5 * m && c < 0.75 * a, `lazy Adam's checkpoint: ${(a / 2 ** 20).toFixed(2)} MiB (the model: ${(m / 2 ** 20).toFixed(2)} MiB; row-wise: ${(c / 2 ** 20).toFixed(2)} MiB)`);

  const { trainer, position } = await Trainer.resume(ckpt);
  t.equal(trainer.options.embeddingOptimizer, 'rowwise-adagrad', 'the optimizer comes back with the checkpoint');
  const older = await Trainer.resume(adamCkpt);
  t.same([older.trainer.options.embeddingOptimizer, older.trainer.options.embeddingLearningRate], ['adam', 0.05], 'a lazy-Adam checkpoint resumes with lazy Adam whatever the default');
  older.trainer.dispose();
  await fit(trainer, { data: () => data.slice(0, 400), epochs: 3, start: position as { epoch: number; examples: number } });
  t.ok(tensorsEqual(trainer.toModel(), whole.toModel()), 'resumed weights are bit-identical to an uninterrupted run');
  trainer.dispose();
  whole.dispose();
});

t.test('Trainer.resume validates a checkpoint like a model file: NaN/Inf weights or optimizer state, negative second moments, wrong shapes', async (t) => {
  const ckpt = path.join(dir, 'check.ckpt');
  const trainer = Trainer.create(cfg, { batchSize: 40, seed: 3 });
  await fit(trainer, { data: () => data.slice(0, 80), epochs: 1 });
  await trainer.saveCheckpoint(ckpt, { epoch: 0, examples: 80 });
  trainer.dispose();
  const bytes = fs.readFileSync(ckpt);
  const parsed = parseSafetensors(bytes);
  // Rewrites one tensor of the checkpoint (optionally under another shape), by default without the checksum so
  // that the checks behind it are what is tested.
  const rewrite = (name: string, edit: (a: Float32Array) => void, shape?: number[], keepChecksum = false): string => {
    const tensors = [...parsed.tensors].map(([n, e]) => {
      const a = Float32Array.from(float32At(bytes, parsed.dataStart + e.begin, (e.end - e.begin) / 4));
      if (n === name) edit(a);
      // Row keys (I32) ride along unchanged.
      return { name: n, data: e.dtype === 'I32' ? new Int32Array(a.buffer) : a, shape: n === name && shape ? shape : e.shape };
    });
    const out = path.join(dir, `bad-${name}.ckpt`);
    const { tensors_sha256: _sum, ...meta } = parsed.metadata;
    fs.writeFileSync(out, Buffer.concat(encodeSafetensors(keepChecksum ? parsed.metadata : meta, tensors)));
    return out;
  };
  const w = 'head.ctr.0.w';
  await rejectsCode(t, () => Trainer.resume(rewrite(w, (a) => (a[3] = NaN))), 'E_MODEL_FILE', `"${w}" holds a non-finite value at 3`);
  await rejectsCode(t, () => Trainer.resume(rewrite(`opt.m.${w}`, (a) => (a[0] = Infinity))), 'E_MODEL_FILE', `"opt.m.${w}" holds a non-finite value at 0`);
  await rejectsCode(t, () => Trainer.resume(rewrite(`opt.v.${w}`, (a) => (a[5] = -1))), 'E_MODEL_FILE', `"opt.v.${w}" holds a negative value at 5`);
  const shape = parsed.tensors.get(w)!.shape;
  await rejectsCode(t, () => Trainer.resume(rewrite(w, () => undefined, [shape[1], shape[0]])), 'E_MODEL_FILE', 'does not match the config');
  const { trainer: ok } = await Trainer.resume(rewrite(w, () => undefined));
  t.equal(ok.steps, 2, 'the untouched rewrite resumes');
  ok.dispose();
  const flipped = rewrite(w, (a) => (a[0] = a[0] + 1), undefined, true);
  await rejectsCode(t, () => Trainer.resume(flipped), 'E_MODEL_FILE', 'do not match the file\'s checksum');
});

t.test('fit packs the next batch while a step runs: the weights of stepping batch by batch, and an exact resume from checkpoints between', async (t) => {
  const opts = { batchSize: 32, deterministic: true, seed: 11 };
  const examples = data.slice(0, 300);
  // By hand: one batch at a time, each packed and trained before the next is read.
  const byHand = Trainer.create(cfg, opts);
  for (let i = 0; i < examples.length; i += 32) await byHand.step(examples.slice(i, i + 32));
  const piped = Trainer.create(cfg, opts);
  const reports = await fit(piped, { data: () => examples, epochs: 1, shuffle: 0 });
  t.equal(piped.steps, Math.ceil(examples.length / 32), 'one step per batch, the short last one included');
  t.equal(reports[0].examples, examples.length);
  t.ok(tensorsEqual(piped.toModel(), byHand.toModel()), 'fit (pipelined) = step by step, bit for bit');

  // Checkpoints every 4 steps, stopped at 7 (both settle the running step before the next batch is packed).
  const ckpt = path.join(dir, 'piped.ckpt');
  const part = Trainer.create(cfg, opts);
  await fit(part, { data: () => examples, epochs: 2, shuffle: 0, checkpoint: ckpt, checkpointEvery: 4, maxSteps: 7 });
  t.equal(part.steps, 7, 'maxSteps stops after the running step, the packed batch unused');
  part.dispose();
  const whole = Trainer.create(cfg, opts);
  await fit(whole, { data: () => examples, epochs: 2, shuffle: 0 });
  const { trainer, position } = await Trainer.resume(ckpt);
  await fit(trainer, { data: () => examples, epochs: 2, shuffle: 0, start: position as { epoch: number; examples: number } });
  t.ok(tensorsEqual(trainer.toModel(), whole.toModel()), 'resumed at step 7 of 20: bit-identical to the uninterrupted run');
  for (const x of [byHand, piped, whole, trainer]) x.dispose();
});
