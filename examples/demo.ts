/**
 * The main job until training exists (`npm start`): build a paper-size DUPN model, encode synthetic
 * users, score 1,000 candidates per user on every head, and print what it did and how long it took.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Model, deriveDims } from '../lib';
import { mulberry32 } from '../lib/random';
import { syntheticUsers } from './synthetic-users';

const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;

async function main(): Promise<void> {
  const users = Number(process.env.DUPN_DEMO_USERS ?? 256);
  let t0 = process.hrtime.bigint();
  const model = Model.create({}, { seed: 42 });
  const d = deriveDims(model.config);
  console.log(`model: paper size (H ${d.hidden} × ${d.directions} directions, Dx ${d.dx}, Dp ${d.dp}, Dq ${d.dq}, Du ${d.du}, U ${d.userDim}); ` +
    `${model.config.tasks.map((t) => `${t.name}:${t.kind}`).join(', ')}; isa ${model.isa}, ${model.threads} threads; created in ${ms(t0).toFixed(0)} ms`);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dupn-demo-'));
  const file = path.join(dir, 'model.safetensors');
  t0 = process.hrtime.bigint();
  await model.save(file);
  const size = fs.statSync(file).size;
  const loaded = await Model.load(file);
  console.log(`saved and reloaded ${file} (${(size / 2 ** 20).toFixed(1)} MiB) in ${ms(t0).toFixed(0)} ms`);

  const rand = mulberry32(7);
  const batch = syntheticUsers(users, 1, () => Math.floor(rand() * 101));
  t0 = process.hrtime.bigint();
  const cols = loaded.pack(batch);
  const packMs = ms(t0);
  t0 = process.hrtime.bigint();
  const U = await loaded.encodeColumns(cols);
  const encMs = ms(t0);
  const steps = cols.lengths.reduce((a, b) => a + b, 0);
  console.log(`encoded ${users} users (${steps} behaviours, lengths 0–100): pack ${packMs.toFixed(1)} ms, encode ${encMs.toFixed(1)} ms ` +
    `(${((users / encMs) * 1000).toFixed(0)} users/s)`);

  // Candidates are hashed once and reused for every user; all binary/rank heads score them in one call.
  const candidates = loaded.packCandidates(
    syntheticUsers(1, 99, 1000)[0].behaviors.map((b) => ({ item: b.item, category: b.category, shop: b.shop, brand: b.brand })),
  );
  const scored = Math.min(users, 16);
  t0 = process.hrtime.bigint();
  let first: Record<string, Float32Array> = {};
  for (let b = 0; b < scored; b++) {
    const s = await loaded.scoreAll(U.subarray(b * loaded.userDim, (b + 1) * loaded.userDim), candidates);
    if (b === 0) first = s;
  }
  const per = ms(t0) / scored;
  const heads = Object.keys(first);
  console.log(`scored 1,000 candidates on ${heads.length} heads (${heads.join(', ')}) for ${scored} users: ${per.toFixed(3)} ms per user`);
  for (const [task, s] of Object.entries(first)) {
    const best = s.reduce((bi, v, i) => (v > s[bi] ? i : bi), 0);
    console.log(`  ${task}: user 0's top candidate #${best} (${s[best].toFixed(4)})`);
  }
  for (const task of loaded.config.tasks.filter((t) => t.kind === 'multiclass')) {
    t0 = process.hrtime.bigint();
    const p = await loaded.predictFromVectors(task.name, U);
    const top = Array.from(p.subarray(0, task.classes)).map((x) => x.toFixed(3)).join(' ');
    console.log(`${task.name} (multiclass, ${task.classes} classes): ${users} users in ${ms(t0).toFixed(2)} ms; user 0 → [${top}]`);
  }

  const withHistory = batch.find((u) => u.behaviors.length >= 10) ?? batch[0];
  const ex = await loaded.explain(withHistory);
  const top = Array.from(ex.attention).map((a, i) => ({ a, i })).sort((x, y) => y.a - x.a).slice(0, 3);
  console.log(`explain: of ${ex.attention.length} behaviours the attention weighs most ` +
    top.map(({ a, i }) => `#${ex.firstKept + i} ${withHistory.behaviors[ex.firstKept + i].type} ${withHistory.behaviors[ex.firstKept + i].item} (${a.toFixed(3)})`).join(', '));
  model.dispose();
  loaded.dispose();
  fs.rmSync(dir, { recursive: true });
  console.log('done');
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
