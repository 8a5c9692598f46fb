// Scale-out through the PyTorch twin (docs/scale-out.md): `dupn shards` packs the batches dupn's own trainer
// would take; torch computes the same loss on them; a 2-rank DistributedDataParallel job (torchrun, gloo,
// loopback) trains a model that dupn loads and serves, with validation metrics level with a dupn-native run at
// the same budget. Skipped with the reason where no Python has torch (.ci/run installs it: there it fails).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { readExamples } from '../lib/data';
import { TrainingExample } from '../lib/data/training-example';
import { Model } from '../lib/model/model';
import { Trainer } from '../lib/train/trainer';
import { ShardsIndex, readShardBatches } from '../lib/io/shards';
import { referenceLoss } from '../lib/reference/loss';
import { PYTHON_PATH, runPython, torchForTest } from './support/python';

const ROOT = path.resolve(__dirname, '..');
const CLI = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');
const found = torchForTest(t);

function dupn(args: string[]): string {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) throw new Error(`dupn ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

interface EvalJson {
  model: { tasks: Record<string, { auc?: number; accuracy?: number }> };
}

if (found !== null) {
  const python = found.python;
  const dir = mkdtempSync(path.join(tmpdir(), 'dupn-scale-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = path.join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({
    model: {
      maxSeqLen: 30,
      itemFields: [{ name: 'item', buckets: 5000, dim: 12 }, { name: 'category', buckets: 300, dim: 6 }, { name: 'shop', buckets: 1000, dim: 6 }, { name: 'brand', buckets: 1000, dim: 4 }],
      query: { buckets: 1024, dim: 6 },
      profileFields: [{ name: 'age', buckets: 64, dim: 4 }, { name: 'gender', buckets: 8, dim: 2 }],
      hidden: 24,
      attentionHidden: 12,
    },
  }));
  const data = path.join(dir, 'data');
  dupn(['synth', '--out', data, '--users', '2000', '--valid-users', '1000', '--examples-per-user', '3', '--config', config, '--seed', '5']);
  const train = path.join(data, 'train.jsonl');
  const valid = path.join(data, 'valid.jsonl');

  t.test('dupn shards: the batches dupn train takes, and torch computes the same loss on them', async (tt) => {
    const shards = path.join(dir, 'shards-loss');
    // File order (no shuffle), so batch 0 of shard 0 is the file's first 32 examples.
    const out = dupn(['shards', '--data', train, '--config', config, '--out', shards, '--shards', '3', '--batch-size', '32', '--shuffle', '0']);
    tt.match(out, /wrote 3 shards of 6000 examples in 188 batches of up to 32/);
    const index = JSON.parse(readFileSync(path.join(shards, 'index.json'), 'utf8')) as ShardsIndex;
    tt.equal(index.format, 'dupn-shards');
    tt.same(index.shards.map((s) => s.batches), [63, 63, 62], 'batches dealt round-robin');
    tt.equal(index.examples, 6000);

    for (const [flag, value, message] of [['--shards', '0', /E_INPUT: --shards: must be an integer in \[1, 100000\], got 0/], ['--batch-size', '0', /E_INPUT: .*batchSize/]] as const) {
      const bad = spawnSync(process.execPath, [CLI, 'shards', '--data', train, '--config', config, '--out', path.join(dir, 'bad'), flag, ...(value ? [value] : [])], { encoding: 'utf8' });
      tt.equal(bad.status, 1, `${flag} ${value}: exit 1`);
      tt.match(bad.stderr, message);
    }
    const first: TrainingExample[] = [];
    for await (const ex of readExamples(train).examples) if (first.push(ex) === 32) break;
    const { trainer } = await Trainer.fromModelFile(path.join(shards, index.init), { batchSize: 32, threads: 1 });
    const native = await trainer.step(first);
    trainer.dispose();
    const jobs = path.join(dir, 'loss-jobs.json');
    const results = path.join(dir, 'loss-results.json');
    writeFileSync(jobs, JSON.stringify([{ shards, shard: 0, model: path.join(shards, index.init) }]));
    runPython(python, [path.join(__dirname, 'python', 'twin_jobs.py'), jobs, results]);
    const [torchLoss] = JSON.parse(readFileSync(results, 'utf8')) as { loss: number; heads: Record<string, number>; examples: number }[];
    tt.equal(torchLoss.examples, 32);
    const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(1e-12, Math.abs(b));
    tt.ok(rel(torchLoss.loss, native.loss) < 1e-4, `total loss: torch ${torchLoss.loss.toFixed(6)}, dupn ${native.loss.toFixed(6)}`);
    for (const [name, h] of Object.entries(native.tasks)) {
      tt.ok(rel(torchLoss.heads[name], h.loss) < 1e-4, `${name}: torch ${torchLoss.heads[name]?.toFixed(6)}, dupn ${h.loss.toFixed(6)}`);
    }
  });

  t.test('a log\'s shards (retrieval head with history, successor and log-Q features) give torch the float64 reference loss', async (tt) => {
    // A sequence log with structure (each user walks a ring of items with jumps), so the retrieval head gets
    // successors, repeats and popularity; dupn train on a log adds the `next` retrieval head to the paper's four.
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const lines: string[] = [];
    for (let u = 0; u < 400; u++) {
      let item = Math.floor(rand() * 150);
      const items: number[] = [];
      const n = 4 + Math.floor(rand() * 16);
      for (let k = 0; k < n; k++) {
        items.push(item);
        item = rand() < 0.7 ? (item + 1) % 150 : rand() < 0.5 ? items[Math.floor(rand() * items.length)] : Math.floor(rand() * 150);
      }
      lines.push(`u${u} ${items.map((i) => `i${i}`).join(' ')}`);
    }
    const log = path.join(dir, 'walks.txt');
    writeFileSync(log, `${lines.join('\n')}\n`);
    const shards = path.join(dir, 'shards-log');
    dupn(['shards', '--data', log, '--format', 'sequences', '--split', 'leave-one-out', '--out', shards, '--shards', '2', '--batch-size', '48']);
    const index = JSON.parse(readFileSync(path.join(shards, 'index.json'), 'utf8')) as ShardsIndex;
    const next = index.config.tasks.find((x) => x.name === 'next');
    tt.ok(next?.kind === 'retrieval' && next.successors !== undefined, 'the retrieval head with successor features');
    const model = await Model.load(path.join(shards, index.init));
    const tensors = model.weights as Map<string, Float32Array>;
    model.dispose();
    const jobs = path.join(dir, 'log-jobs.json');
    const results = path.join(dir, 'log-results.json');
    writeFileSync(jobs, JSON.stringify([0, 1].map((shard) => ({ shards, shard, model: path.join(shards, index.init) }))));
    runPython(python, [path.join(__dirname, 'python', 'twin_jobs.py'), jobs, results]);
    const torchLosses = JSON.parse(readFileSync(results, 'utf8')) as { loss: number; heads: Record<string, number> }[];
    for (const shard of [0, 1]) {
      const batch = readShardBatches(shards, shard)[0];
      const ref = referenceLoss(index.config, tensors, batch);
      const got = torchLosses[shard];
      tt.ok(Math.abs(got.loss - ref.loss) <= 1e-5 * Math.abs(ref.loss), `shard ${shard} batch 0: torch ${got.loss.toFixed(6)}, float64 reference ${ref.loss.toFixed(6)}`);
      const i = index.config.tasks.findIndex((x) => x.name === 'next');
      tt.ok(Math.abs(got.heads.next - ref.heads[i]) <= 1e-5 * Math.abs(ref.heads[i]), `shard ${shard}: retrieval loss torch ${got.heads.next?.toFixed(6)}, reference ${ref.heads[i].toFixed(6)}`);
      tt.ok(batch.heads[i].offset !== undefined && batch.heads[i].dense!.some((v) => v !== 0), 'log-Q offsets and history features are in the shard');
    }
    // And torch trains on them (a log has no queries: the query table's gradient must still suit SparseAdam).
    const trained = path.join(dir, 'log-trained.safetensors');
    runPython(python, ['-m', 'dupn_torch', 'train', '--shards', shards, '--out', trained, '--max-steps', '4', '--threads', '1']);
    const m = await Model.load(trained);
    const moved = [...m.weights].filter(([name, x]) => x.some((v, j) => v !== tensors.get(name)![j])).map(([name]) => name);
    tt.ok(moved.includes('emb.item.item') && moved.includes('head.next.user.0.w'), `4 torch steps moved ${moved.length} tensors, the item table and the retrieval head among them`);
    m.dispose();
  });

  t.test('python3 -m dupn_torch train: a run stopped midway (--max-steps) and resumed ends bit-identical to one that was not', async (tt) => {
    const shards = path.join(dir, 'shards-loss');
    const train = (out: string, extra: string[]) =>
      runPython(python, ['-m', 'dupn_torch', 'train', '--shards', shards, '--out', out, '--epochs', '1', '--threads', '1', ...extra]);
    const whole = path.join(dir, 'whole.safetensors');
    const parts = path.join(dir, 'parts.safetensors');
    train(whole, []);
    tt.match(train(parts, ['--max-steps', '70']).stdout, /saved .* \(70 steps\)/);
    tt.match(train(parts, ['--resume']).stdout, /resumed from .*: step 70, epoch 1, 70 batches done in it/);
    tt.ok(readFileSync(whole).equals(readFileSync(parts)), 'the same file, byte for byte');
  });

  t.test('a 2-rank DDP job (torchrun, gloo) trains a model dupn serves, level with dupn-native training', async (tt) => {
    const shards = path.join(dir, 'shards');
    // Two ranks of 32 make the global batch of 64 that the native run takes: the same steps over the same examples.
    dupn(['shards', '--data', train, '--config', config, '--out', shards, '--shards', '2', '--batch-size', '32']);
    const init = path.join(shards, 'init.safetensors');
    const torchModel = path.join(dir, 'torch.safetensors');
    // --redirects 1 --tee 1: Debian's torchrun 1.13 cannot parse its default (0) under Python 3.11.
    const r = spawnSync('torchrun', ['--nproc_per_node', '2', '--redirects', '1', '--tee', '1', '--master_port', String(29500 + (process.pid % 1000)),
      '-m', 'dupn_torch', 'train', '--shards', shards, '--out', torchModel, '--epochs', '2', '--threads', '1', '--report', path.join(dir, 'ddp.json')], {
      encoding: 'utf8', env: { ...process.env, PYTHONPATH: PYTHON_PATH }, timeout: 900_000,
    });
    tt.equal(r.status, 0, `torchrun exit ${r.status}: ${(r.stderr ?? '').split('\n').filter((l) => /Error|error:/.test(l)).slice(0, 3).join(' | ')}`);
    tt.match(r.stdout, /epoch 2\/2: 6000 examples on 2 ranks/);
    const nativeModel = path.join(dir, 'native.safetensors');
    dupn(['train', '--data', train, '--init', init, '--out', nativeModel, '--epochs', '2', '--batch-size', '64', '--threads', '1', '--no-progress']);

    const m = await Model.load(torchModel);
    tt.equal(m.config.hidden, 24, 'dupn loads the torch-trained file');
    m.dispose();
    const evals: Record<string, EvalJson> = {};
    for (const [name, file] of [['init', init], ['torch', torchModel], ['native', nativeModel]]) {
      evals[name] = JSON.parse(dupn(['eval', '--model', file, '--data', valid, '--json', '--threads', '1'])) as EvalJson;
    }
    for (const task of ['ctr', 'l2r', 'spp']) {
      const [a0, at, an] = ['init', 'torch', 'native'].map((k) => evals[k].model.tasks[task].auc!);
      tt.ok(at > a0 + 0.04, `${task}: DDP-trained AUC ${at.toFixed(4)} learned (init ${a0.toFixed(4)})`);
      tt.ok(Math.abs(at - an) < 0.03, `${task}: DDP ${at.toFixed(4)} vs dupn-native ${an.toFixed(4)} (|Δ| < 0.03, the noise of 1,000 validation users)`);
    }
    const [pt, pn] = ['torch', 'native'].map((k) => evals[k].model.tasks.ppp.accuracy!);
    tt.ok(Math.abs(pt - pn) < 0.05, `ppp accuracy: DDP ${pt.toFixed(4)} vs dupn-native ${pn.toFixed(4)}`);
  });
}
