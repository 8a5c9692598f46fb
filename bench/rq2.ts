/**
 * bench/rq2 — the paper's RQ2 (does the attention net help?) in a world built so that the query decides
 * which past behaviours matter. Each user shops in two categories and prefers a different shop in each; the
 * history mixes both. A search names one of the two categories and is answered by an item of that category
 * from the user's shop *for that category*. The negatives are an item of the same category from the user's
 * other shop (a confuser that the history supports too) and one from a shop the user never visited. A
 * query-blind pooling of the history sees both shops; attention conditioned on the query can look at the
 * searched category's behaviours. Control: the same world without the query in the request.
 * Attention against mean pooling (attn.v held at 0), ctr AUC on 2,000 fresh users, over seeds.
 *   node dist/bench/rq2.js [--users 8000] [--epochs 8] [--seeds 3]
 */
import { ResolvedConfig, resolveConfig } from '../lib/network/config';
import { TrainingExample } from '../lib/data/training-example';
import { evaluate, modelScorer } from '../lib/eval/evaluate';
import { BehaviorInput } from '../lib/model/features';
import { initTensors } from '../lib/network/init';
import { Model } from '../lib/model/model';
import { mulberry32 } from '../lib/random';
import { fit } from '../lib/train/fit';
import { Trainer } from '../lib/train/trainer';
import { machineLine } from './machine';
import { numberArg } from './args';

const INTERESTS = 2;
const CATEGORIES = 10;
const SHOPS = 12;
const ITEMS = 1000;
const HISTORY = 20;

const config: ResolvedConfig = resolveConfig({
  maxSeqLen: 40,
  itemFields: [
    { name: 'item', buckets: 16_384, dim: 16 },
    { name: 'category', buckets: 256, dim: 8 },
    { name: 'shop', buckets: 256, dim: 8 },
  ],
  query: { buckets: 1024, dim: 8 },
  hidden: 32,
  attentionHidden: 16,
  tasks: [{ name: 'ctr', kind: 'binary', target: ['item', 'category', 'shop'], layers: [32] }],
});

/** Users of the world; item ids are drawn independently of the shop, so only the shop field tells it. */
function world(seed: number, users: number, withQuery: boolean): TrainingExample[] {
  const rand = mulberry32(seed);
  const pick = (n: number): number => Math.floor(rand() * n);
  const distinct = (n: number, of: number): number[] => {
    const out: number[] = [];
    while (out.length < n) {
      const v = pick(of);
      if (!out.includes(v)) out.push(v);
    }
    return out;
  };
  const cand = (c: number, s: number) => ({ item: `i${pick(ITEMS)}`, category: `c${c}`, shop: `s${s}` });
  const out: TrainingExample[] = [];
  for (let u = 0; u < users; u++) {
    const cats = distinct(INTERESTS, CATEGORIES);
    const shops = distinct(INTERESTS, SHOPS);
    const behaviors = Array.from({ length: HISTORY }, (_, k) => {
      const j = pick(INTERESTS);
      return { type: 'pv', time: 1000 + k, ...cand(cats[j], shops[j]) } as BehaviorInput;
    });
    const j = pick(INTERESTS);
    let other = pick(SHOPS);
    while (shops.includes(other)) other = pick(SHOPS);
    const labels = [
      { candidate: cand(cats[j], shops[j]), label: 1 },
      { candidate: cand(cats[j], shops[1 - j]), label: 0 },
      { candidate: cand(cats[j], other), label: 0 },
    ];
    const user = { behaviors, now: 5000, ...(withQuery ? { query: `c${cats[j]}` } : {}) };
    out.push({ user, userId: `u${seed}.${u}`, time: 5000, labels: { ctr: labels } });
  }
  return out;
}

async function arm(meanPooling: boolean, train: TrainingExample[], valid: TrainingExample[], epochs: number, seed: number): Promise<number> {
  let trainer: Trainer;
  if (meanPooling) {
    const tensors = initTensors(config, seed);
    tensors.set('attn.v', new Float32Array(tensors.get('attn.v')!.length));
    const zeroed = Model.fromTensors(config, tensors);
    trainer = Trainer.fromModel(zeroed, { batchSize: 64, seed, freezeTensors: ['attn.v'] });
    zeroed.dispose();
  } else {
    trainer = Trainer.create(config, { batchSize: 64, seed });
  }
  await fit(trainer, { data: () => train, epochs, shuffle: 4096 });
  const model = trainer.toModel();
  const auc = (await evaluate(modelScorer(model), valid, config)).tasks['ctr'].auc;
  model.dispose();
  trainer.dispose();
  return auc;
}

async function main(): Promise<void> {
  const users = numberArg('users', 8000);
  const epochs = numberArg('epochs', 8);
  const seeds = numberArg('seeds', 3);
  console.log(`bench/rq2 · ${machineLine()}`);
  console.log(`${users} training users, 2,000 validation users, ${epochs} epochs, ${seeds} seeds; per request 1 positive, 1 confuser (the user's other shop), 1 unvisited shop\n`);
  const rows = new Map<string, number[]>();
  for (let s = 1; s <= seeds; s++) {
    for (const withQuery of [true, false]) {
      const train = world(10 * s + (withQuery ? 1 : 2), users, withQuery);
      const valid = world(10 * s + (withQuery ? 5 : 6), 2000, withQuery);
      for (const mean of [false, true]) {
        const key = `| ${withQuery ? 'with the query' : 'without'} | ${mean ? 'mean pooling' : 'attention'} |`;
        const auc = await arm(mean, train, valid, epochs, s);
        console.log(`seed ${s} ${key} ${auc.toFixed(4)}`);
        rows.set(key, [...(rows.get(key) ?? []), auc]);
      }
    }
  }
  console.log('\n| request | pooling | ctr AUC (mean ± sd over seeds) |\n|---|---|---|');
  for (const [key, xs] of rows) {
    const m = xs.reduce((a, b) => a + b, 0) / xs.length;
    const sd = Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, xs.length - 1));
    console.log(`${key} ${m.toFixed(4)} ± ${sd.toFixed(4)} |`);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
