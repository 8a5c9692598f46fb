// The public Model API: save/load round trip, async = sync, caller buffers, batch and thread
// invariance, L = 0, explain, dispose, and the JavaScript thread staying free during compute.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { resolveConfig } from '../lib/network/config';
import { Model } from '../lib/model/model';
import { UserInput } from '../lib/model/features';
import { mulberry32, randomUserColumns } from '../lib/reference/random-model';
import { allFinite } from './support/compare';
import { rejectsCode, throwsCode } from './support/errors';

const small = {
  maxSeqLen: 30,
  itemFields: [
    { name: 'item', buckets: 5000, dim: 12 },
    { name: 'category', buckets: 300, dim: 6 },
    { name: 'shop', buckets: 200, dim: 5 },
    { name: 'brand', buckets: 100, dim: 3 },
  ],
  query: { buckets: 500, dim: 7 },
  hidden: 21,
  attentionHidden: 11,
};

function syntheticUsers(n: number, seed: number, maxLen = 40): UserInput[] {
  const rand = mulberry32(seed);
  const types = ['pv', 'pv', 'pv', 'fav', 'cart', 'buy', 'other'];
  return Array.from({ length: n }, (_, u) => {
    const len = u % 5 === 0 ? 0 : Math.floor(rand() * maxLen);
    let time = 1_511_000_000 + Math.floor(rand() * 1e5);
    const behaviors = Array.from({ length: len }, () => {
      time += Math.floor(rand() * 5000);
      return {
        item: `i${Math.floor(rand() * 10000)}`,
        category: Math.floor(rand() * 50),
        shop: `s${Math.floor(rand() * 80)}`,
        brand: rand() < 0.2 ? undefined : `b${Math.floor(rand() * 30)}`,
        type: types[Math.floor(rand() * types.length)],
        time,
        scene: rand() < 0.5 ? 'search' : 'recommend',
      };
    });
    return { behaviors, query: u % 3 === 0 ? 'red Dress' : undefined, profile: { age: u % 7, gender: u % 2 ? 'f' : 'm' } };
  });
}

t.test('save → load round trip gives identical outputs; the file is written atomically', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dupn-model-'));
  const file = path.join(dir, 'm.safetensors');
  const a = Model.create(small, { seed: 11, threads: 1 });
  await a.save(file);
  const b = await Model.load(file, { threads: 1 });
  t.same(b.config, a.config);
  const users = syntheticUsers(20, 3);
  t.same(Array.from(await b.encode(users)), Array.from(await a.encode(users)));
  const u = (await a.encode(users.slice(1, 2))).slice();
  const cands = [{ item: 'i1', category: 3, shop: 's2', brand: 'b1' }, { item: 'i2' }];
  for (const task of ['ctr', 'l2r', 'spp']) t.same(Array.from(await b.score(task, u, cands)), Array.from(await a.score(task, u, cands)), task);
  t.same(Array.from(await b.predict('ppp', users)), Array.from(await a.predict('ppp', users)));
  t.same(fs.readdirSync(dir), ['m.safetensors'], 'no temporary file left');
  a.dispose();
  b.dispose();
  fs.rmSync(dir, { recursive: true });
});

t.test('async equals sync; outputs land in caller buffers', async (t) => {
  const m = Model.create(small, { seed: 2 });
  const users = syntheticUsers(33, 9);
  const out = new Float32Array(33 * m.userDim);
  const r = await m.encode(users, { out });
  t.equal(r, out, 'returns the caller buffer');
  t.same(Array.from(m.encodeSync(users)), Array.from(out));
  const scores = new Float32Array(2);
  const s = await m.score('ctr', out.subarray(0, m.userDim), [{ item: 'x' }, { item: 'y' }], { out: scores });
  t.equal(s, scores);
  t.same(Array.from(m.scoreSync('ctr', out.subarray(0, m.userDim), [{ item: 'x' }, { item: 'y' }])), Array.from(scores));
  const p = await m.predict('ppp', users);
  t.equal(p.length, 33 * 7);
  for (let b = 0; b < 33; b++) {
    const sum = p.subarray(b * 7, b * 7 + 7).reduce((x, y) => x + y, 0);
    t.ok(Math.abs(sum - 1) < 1e-5, `probabilities of user ${b} sum to 1`);
  }
  t.same(Array.from(m.predictSync('ppp', users)), Array.from(p));
  m.dispose();
});

t.test('a user alone equals the same user in a batch of 300 (bit for bit, one thread); threads agree', async (t) => {
  const one = Model.create(small, { seed: 4, threads: 1 });
  const two = Model.fromTensors(small, one.weights as Map<string, Float32Array>, { threads: 2 });
  const config = one.config;
  const lengths = Array.from({ length: 300 }, (_, i) => (i * 37) % (config.maxSeqLen + 1));
  const cols = randomUserColumns(config, 17, lengths);
  const batch = one.encodeColumnsSync(cols);
  t.same(Array.from(two.encodeColumnsSync(cols)), Array.from(batch), 'two threads give the same bits');
  let offset = 0;
  let mismatches = 0;
  for (let b = 0; b < 300; b++) {
    const L = lengths[b];
    const F = config.itemFields.length;
    const P = config.profileFields.length;
    const q0 = cols.queryOffsets[b];
    const q1 = cols.queryOffsets[b + 1];
    const alone = one.encodeColumnsSync({
      lengths: Int32Array.of(L),
      items: cols.items.slice(offset * F, (offset + L) * F),
      properties: cols.properties.slice(offset * 3, (offset + L) * 3),
      queryOffsets: Int32Array.of(0, q1 - q0),
      queryTokens: cols.queryTokens.slice(q0, q1),
      profile: cols.profile.slice(b * P, (b + 1) * P),
    });
    const inBatch = batch.subarray(b * one.userDim, (b + 1) * one.userDim);
    for (let i = 0; i < one.userDim; i++) if (!Object.is(alone[i], inBatch[i])) mismatches++;
    offset += L;
  }
  t.equal(mismatches, 0, 'no differing bit');
  one.dispose();
  two.dispose();
});

t.test('L = 0: r = 0, u and q kept, heads finite; attention sums to 1 over kept steps only', async (t) => {
  const m = Model.create(small, { seed: 8 });
  const d = m.config;
  const users: UserInput[] = [{ behaviors: [], query: 'shoes', profile: { age: 3 } }, syntheticUsers(2, 1)[1]];
  const u = await m.encode(users);
  const dh = d.hidden * 2;
  t.ok(u.subarray(0, dh).every((x) => x === 0), 'r = 0');
  t.ok(u.subarray(dh, m.userDim).some((x) => x !== 0), 'u and q still present');
  t.ok(allFinite(u));
  for (const task of ['ctr', 'l2r', 'spp']) t.ok(allFinite(await m.score(task, u.subarray(0, m.userDim), [{ item: 'a' }])), task);
  t.ok(allFinite(await m.predict('ppp', users)));
  const ex = await m.explain(users[0]);
  t.equal(ex.attention.length, 0);
  const long = syntheticUsers(5, 5, 200).find((x) => x.behaviors.length > 0)!;
  long.behaviors = [...long.behaviors, ...long.behaviors, ...long.behaviors];
  const ex2 = await m.explain(long);
  t.equal(ex2.attention.length, Math.min(d.maxSeqLen, long.behaviors.length), 'one weight per kept behaviour');
  t.equal(ex2.firstKept, long.behaviors.length - ex2.attention.length);
  t.ok(Math.abs(ex2.attention.reduce((a, b) => a + b, 0) - 1) < 1e-5, 'weights sum to 1');
  t.ok(ex2.attention.every((a) => a > 0));
  t.same(Array.from(m.explainSync(long).attention), Array.from(ex2.attention));
  m.dispose();
});

t.test('over-long histories are truncated to the most recent maxSeqLen, not refused', async (t) => {
  const m = Model.create(small, { seed: 8, threads: 1 });
  const user = syntheticUsers(1, 77, 10)[0];
  const base = Array.from({ length: 500 }, (_, i) => ({ item: `x${i}`, type: 'pv', time: 1000 + i }));
  const full = await m.encode([{ ...user, behaviors: base }]);
  const tail = await m.encode([{ ...user, behaviors: base.slice(-m.config.maxSeqLen) }]);
  t.same(Array.from(full), Array.from(tail));
  m.dispose();
});

t.test('async compute leaves the event loop free', async (t) => {
  const m = Model.create(resolveConfig({ itemFields: small.itemFields, query: small.query }), { seed: 1, threads: 1 });
  const users = syntheticUsers(1024, 12, 100).map((u) => ({ ...u, behaviors: u.behaviors.length ? u.behaviors : syntheticUsers(1, 3, 100)[0].behaviors }));
  const cols = m.pack(users);
  // The mechanism, not a duration: the call returns at once, and the JavaScript thread then runs turns of
  // its event loop (a timer among them) while the native threads compute. A call that computed on this
  // thread would have settled before the first turn.
  let settled = false;
  const call = m.encodeColumns(cols).then((u) => {
    settled = true;
    return u;
  });
  const turns: boolean[] = [];
  for (let i = 0; i < 3; i++) {
    await new Promise<void>((r) => setImmediate(r));
    turns.push(settled);
  }
  await new Promise<void>((r) => setTimeout(r, 0));
  const pendingAfterTimer = !settled;
  t.same(turns, [false, false, false], 'three event-loop turns ran while the call was still computing');
  t.ok(pendingAfterTimer, 'a timer fired between the start and the end of the call');
  t.equal((await call).length, 1024 * m.userDim, 'and the call then completed');
  m.dispose();
});

t.test('dispose: later calls are E_DISPOSED; calls in flight finish', async (t) => {
  const m = Model.create(small, { seed: 1 });
  const users = syntheticUsers(64, 2);
  const inFlight = m.encode(users);
  m.dispose();
  t.equal((await inFlight).length, 64 * m.userDim, 'the call in flight completed');
  await rejectsCode(t, () => m.encode(users), 'E_DISPOSED', 'disposed');
  throwsCode(t, () => m.encodeSync(users), 'E_DISPOSED', 'disposed');
  await rejectsCode(t, () => m.score('ctr', new Float32Array(m.userDim), []), 'E_DISPOSED', 'disposed');
  await rejectsCode(t, () => m.predict('ppp', users), 'E_DISPOSED', 'disposed');
  await rejectsCode(t, () => m.save('/tmp/never.safetensors'), 'E_DISPOSED', 'disposed');
  m.dispose();
});

t.test('load maps the model file (shared pages) and survives the file being replaced', { skip: process.platform !== 'linux' && '/proc/self/maps is Linux-only' }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dupn-map-'));
  const file = path.join(dir, 'm.safetensors');
  const a = Model.create(small, { seed: 31, threads: 1 });
  await a.save(file);
  const loaded = await Model.load(file, { threads: 1 });
  t.ok(fs.readFileSync('/proc/self/maps', 'utf8').includes(file), 'the file is memory-mapped');
  const users = syntheticUsers(10, 4);
  const before = await loaded.encode(users);
  // A new model saved over the same path (write + rename) must not change the loaded one.
  const other = Model.create(small, { seed: 32, threads: 1 });
  await other.save(file);
  other.dispose();
  t.same(Array.from(await loaded.encode(users)), Array.from(before), 'the loaded model still reads its own weights');
  t.same(Array.from(before), Array.from(await a.encode(users)));
  a.dispose();
  loaded.dispose();
  fs.rmSync(dir, { recursive: true });
});
