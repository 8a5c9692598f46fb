/**
 * The main job (`npm start`), end to end on built-in synthetic data:
 *   1. generate behaviour histories with planted structure (and the generator's ground truth),
 *   2. train a multi-task DUPN (ctr, l2r, ppp, spp) with a progress bar,
 *   3. print the validation table beside the popularity baseline and the generator's oracle,
 *   4. save the model and load it back as a serving model,
 *   5. score 1,000 candidates on every head for a few users, and show which past behaviours the
 *      attention picked,
 *   6. serve: the model behind `dupn serve`'s HTTP server with the candidates as its item catalogue, concurrent
 *      POST /v1/rank requests over loopback, with throughput, latency and the batcher's mean batch size.
 * Sizes: DUPN_DEMO_USERS (training users, default 60,000), DUPN_DEMO_EPOCHS (default 1).
 * One pass over many users rather than several over few: id embeddings over-fit within a few epochs
 * (docs/training.md).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ItemCatalogue, Model, createServer, deriveDims, resolveConfig } from '../lib';
import { progressSink } from '../lib/cli/progress';
import { synthesize, synthesizeWithOracle } from '../lib/data/synthetic';
import { evaluate, formatReport, modelScorer, oracleScorer, popularityScorer } from '../lib/eval/evaluate';
import { fit } from '../lib/train/fit';
import { Trainer } from '../lib/train/trainer';

const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}

async function main(): Promise<void> {
  const users = Number(process.env.DUPN_DEMO_USERS ?? 60000);
  const epochs = Number(process.env.DUPN_DEMO_EPOCHS ?? 1);
  // Paper-size network; tables sized for the synthetic universe (20k items) rather than Taobao's millions.
  const config = resolveConfig({
    itemFields: [
      { name: 'item', buckets: 1 << 16, dim: 32 },
      { name: 'category', buckets: 4096, dim: 16 },
      { name: 'shop', buckets: 4096, dim: 8 },
      { name: 'brand', buckets: 4096, dim: 8 },
    ],
  });
  const d = deriveDims(config);
  console.log(`1. data: ${users} synthetic training users and 2,000 new validation users of the same world`);
  let t0 = process.hrtime.bigint();
  const train = Array.from(synthesize({ seed: 1, users, config }));
  const validRecords = Array.from(synthesizeWithOracle({ seed: 2, universeSeed: 1, users: 2000, firstUser: users, config }));
  const valid = validRecords.map((r) => r.example);
  console.log(`   ${train.length} + ${valid.length} examples in ${(ms(t0) / 1000).toFixed(1)} s (labels for ${config.tasks.map((t) => t.name).join(', ')})`);

  console.log(`2. training: H ${d.hidden} × ${d.directions} directions, Dx ${d.dx}, Dp ${d.dp}, U ${d.userDim}; ${epochs} epoch${epochs === 1 ? '' : 's'}, batch 64`);
  const trainer = Trainer.create(config, { batchSize: 64, learningRate: 5e-3, seed: 7 });
  const progress = progressSink();
  t0 = process.hrtime.bigint();
  await fit(trainer, {
    data: () => train,
    epochs,
    onStep: (p) => progress.update(p),
    onEpoch: (r) => {
      progress.pause();
      console.log(`   epoch ${r.epoch + 1}: ${r.steps} steps in ${r.seconds.toFixed(1)} s, train loss ${r.trainLoss.toFixed(4)}`);
    },
  });
  progress.stop();
  console.log(`   trained in ${(ms(t0) / 1000).toFixed(1)} s (${trainer.steps} steps)`);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dupn-demo-'));
  const file = path.join(dir, 'model.safetensors');
  await trainer.save(file);
  trainer.dispose();
  const model = await Model.load(file);
  console.log(`3. validation (new users; the oracle is the generator's own probabilities, the ceiling):`);
  const report = await evaluate(modelScorer(model), valid, config);
  const popularity = await evaluate(popularityScorer(train), valid, config);
  const oracle = await evaluate(oracleScorer(validRecords), valid, config);
  console.log(formatReport(report, { popularity, oracle }).replace(/^/gm, '   '));
  console.log(`4. saved ${file} (${(fs.statSync(file).size / 2 ** 20).toFixed(1)} MiB) and loaded it back (isa ${model.isa}, ${model.threads} threads)`);

  // Candidates are hashed once and reused for every user; all binary/rank heads score them in one call.
  const pool = train.slice(0, 1000).map((e) => {
    const b = e.user.behaviors[e.user.behaviors.length - 1] ?? { item: '0', category: '0', shop: '0', brand: '0' };
    return { item: b.item, category: b.category, shop: b.shop, brand: b.brand };
  });
  const candidates = model.packCandidates(pool);
  const shown = valid.filter((e) => e.user.behaviors.length >= 8).slice(0, 3);
  console.log('5. three validation users: top candidates of 1,000 per head, and the behaviours attention picked');
  for (const ex of shown) {
    const U = await model.encode([ex.user]);
    const scores = await model.scoreAll(U, candidates);
    const ppp = await model.predictFromVectors('ppp', U);
    const tops = Object.entries(scores).map(([task, s]) => {
      const best = s.reduce((bi, v, i) => (v > s[bi] ? i : bi), 0);
      const c = pool[best];
      return `${task} → item ${c.item} (cat ${c.category}, shop ${c.shop}) ${s[best].toFixed(3)}`;
    });
    const level = ppp.reduce((bi, v, i) => (v > ppp[bi] ? i : bi), 0);
    console.log(`   user ${ex.userId} (${ex.user.behaviors.length} behaviours): ${tops.join('; ')}; ppp → level ${level} (${ppp[level].toFixed(2)})`);
    const { attention, firstKept } = await model.explain(ex.user);
    const now = ex.user.now ?? 0;
    const top = Array.from(attention).map((a, i) => ({ a, i })).sort((x, y) => y.a - x.a).slice(0, 3);
    for (const { a, i } of top) {
      const b = ex.user.behaviors[firstKept + i];
      console.log(`     ${(100 * a).toFixed(1)}% ${b.type.padEnd(4)} item ${b.item} cat ${b.category} shop ${b.shop} ${b.scene ?? ''} ${((now - b.time) / 3600).toFixed(1)} h before`);
    }
  }

  // The same model behind `dupn serve`'s HTTP server (createServer), with the pool as its item catalogue so a
  // request names candidates by id; 8 clients keep requests in flight and the batcher groups them.
  const catalogue = ItemCatalogue.fromItems(new Map(pool.map((c) => [String(c.item), { ...c, item: String(c.item) }])).values());
  const ids = [...new Set(pool.map((c) => String(c.item)))];
  const server = await createServer({ model: file, catalogue, watch: false });
  const base = await server.listen(0);
  const requests = 400;
  const clients = 8;
  console.log(`6. serving over HTTP (${base}, model ${server.host.version}): ${clients} concurrent clients, ${requests} POST /v1/rank, each one user + ${ids.length} catalogue ids on every head`);
  const lat: number[] = [];
  let next = 0;
  t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < requests) {
        const ex = valid[next++ % valid.length];
        const r0 = process.hrtime.bigint();
        const r = await fetch(`${base}/v1/rank`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: ex.user, candidates: ids, k: 5 }) });
        if (r.status !== 200) throw new Error(`POST /v1/rank: ${r.status} ${await r.text()}`);
        await r.json();
        lat.push(ms(r0));
      }
    }),
  );
  const total = ms(t0);
  const metrics = await (await fetch(`${base}/metrics`)).text();
  const metric = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1] ?? NaN);
  console.log(`   ${((requests / total) * 1000).toFixed(0)} requests/s; latency p50 ${percentile(lat, 0.5).toFixed(2)} ms, p99 ${percentile(lat, 0.99).toFixed(2)} ms; ${(metric('dupn_batch_users_sum') / metric('dupn_batch_users_count')).toFixed(1)} users per batch on average (GET /metrics)`);
  await server.close();
  model.dispose();
  fs.rmSync(dir, { recursive: true });
  console.log('done');
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
