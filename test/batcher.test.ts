// The dynamic batcher: many concurrent callers get exactly the serial results; batches form; the queue
// bound, deadlines, cancellation, the delay, model swaps and close behave as documented; bad input and
// engine errors reach exactly the callers they concern; the user-vector cache hits, expires and stays bounded.
import t, { Test } from 'tap';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { Batcher, BatchInfo, BatchRequest, DropInfo, DupnError, Model, Scores, UserCache } from '../lib';
import { CandidateInput, UserInput } from '../lib/model/features';
import { mulberry32, randomCandidateColumns, randomTensors } from '../lib/reference/random-model';
import { resolveConfig } from '../lib/network/config';
import { UserColumns, gatherUserColumns } from '../lib/model/columns';
import { oddConfig } from './support/configs';
import { rejectsCode } from './support/errors';

v8.setFlagsFromString('--expose-gc'); // for the test of what the batcher keeps alive

const config = resolveConfig(oddConfig({ bidirectional: true, query: true, profile: true, scene: true, maxSeqLen: 20 }));

function randomUsers(n: number, seed: number): UserInput[] {
  const rand = mulberry32(seed);
  const types = ['pv', 'pv', 'fav', 'cart', 'buy', 'other'];
  return Array.from({ length: n }, (_, u) => {
    const len = u % 6 === 0 ? 0 : 1 + Math.floor(rand() * 30);
    let time = 1_700_000_000 + Math.floor(rand() * 1e5);
    const behaviors = Array.from({ length: len }, () => {
      time += Math.floor(rand() * 4000);
      return { item: `i${Math.floor(rand() * 60)}`, category: Math.floor(rand() * 20), shop: `s${Math.floor(rand() * 15)}`, brand: `b${Math.floor(rand() * 9)}`, type: types[Math.floor(rand() * types.length)], time, scene: rand() < 0.5 ? 'search' : 'ads' };
    });
    return { behaviors, query: u % 3 === 0 ? 'red shoes' : undefined, profile: { age: u % 9, city: `c${u % 13}` } };
  });
}

function randomCandidates(n: number, seed: number): CandidateInput[] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, () => ({
    item: `i${Math.floor(rand() * 60)}`, category: Math.floor(rand() * 20), shop: `s${Math.floor(rand() * 15)}`, brand: `b${Math.floor(rand() * 9)}`,
    dense: [rand() * 2 - 1, rand(), rand() - 0.5],
  }));
}

/** One turn of the event loop: a batch's onBatch report comes after its callers' results. */
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Entries that differ in bits (lengths differing count as a difference too). */
function diffs(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.max(a.length, b.length) || 1;
  let d = 0;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) d++;
  return d;
}

function scoreDiffs(a: Scores, b: Scores): number {
  const keys = Object.keys(b);
  if (Object.keys(a).join() !== keys.join()) return 1;
  return keys.reduce((s, k) => s + diffs(a[k], b[k]), 0);
}

/** The same request made directly on the model, one call after the other. */
async function serial(m: Model, r: BatchRequest): Promise<Float32Array | Scores> {
  if (r.kind === 'encode') return m.encode(r.users, { now: r.now });
  if (r.kind === 'predict') return m.predict(r.task, r.users, { now: r.now });
  const u = await m.encode([r.user], { now: r.now });
  const c = r.candidates;
  return m.scoreAll(u, typeof c === 'function' ? c(m, r.tasks, r.user) : c, { tasks: r.tasks, user: r.user });
}

/** Awaits every promise, then checks that each rejected with `code` naming `field`. */
async function allRejectWith(t: Test, promises: Promise<unknown>[], code: string, field: string, label: string): Promise<void> {
  const settled = await Promise.allSettled(promises);
  for (const [i, s] of settled.entries()) {
    await rejectsCode(t, () => (s.status === 'rejected' ? Promise.reject(s.reason) : Promise.resolve(s.value)), code, field, `${label} ${i}: ${code}`);
  }
}

function differs(got: Float32Array | Scores, want: Float32Array | Scores): number {
  if (want instanceof Float32Array) return got instanceof Float32Array ? diffs(got, want) : 1;
  return got instanceof Float32Array ? 1 : scoreDiffs(got, want);
}

const RANK_TASKS = [['ctr', 'l2r', 'spp'], ['ret', 'ctr'], ['ret1'], ['plain', 'l2r']];

/** A mix of encode, predict and rank requests of 1..3 users; rank's default tasks conflict, so it always names them. */
function mixedRequests(count: number, seed: number): BatchRequest[] {
  const users = randomUsers(count * 2, seed);
  const rand = mulberry32(seed + 1);
  return Array.from({ length: count }, (_, i): BatchRequest => {
    const size = 1 + (Math.floor(i / 3) % 3);
    const some = users.slice((i * 5) % (users.length - 3), ((i * 5) % (users.length - 3)) + size);
    const now = i % 4 === 0 ? 1_700_200_000 : undefined;
    switch (i % 3) {
      case 0:
        return { kind: 'encode', users: some, now };
      case 1:
        return { kind: 'predict', task: 'ppp', users: some, now };
      default: {
        const tasks = RANK_TASKS[i % 4];
        const cands = randomCandidates(1 + Math.floor(rand() * 40), seed + i);
        return { kind: 'rank', user: some[0], candidates: cands, tasks, now };
      }
    }
  });
}

t.test('hundreds of concurrent callers get exactly their serial results, in batches of more than one', async (t) => {
  const model = Model.create(config, { seed: 3, threads: 2 });
  t.teardown(() => model.dispose());
  const batches: BatchInfo[] = [];
  const batcher = new Batcher({ model, maxBatch: 24, onBatch: (b) => batches.push(b) });
  const requests = mixedRequests(360, 5);
  const served = await Promise.all(requests.map((r) => batcher.submit(r)));
  let bad = 0;
  for (let i = 0; i < requests.length; i++) {
    const d = differs(served[i].value, await serial(model, requests[i]));
    if (d > 0 && bad++ < 5) t.fail(`request ${i} (${requests[i].kind}) differs from the serial call in ${d} entries`);
  }
  t.equal(bad, 0, `all ${requests.length} results equal the serial calls bit for bit`);
  const users = requests.reduce((s, r) => s + (r.kind === 'rank' ? 1 : r.users.length), 0);
  t.equal(batches.reduce((s, b) => s + b.users, 0), users, 'every user was in exactly one batch');
  t.ok(batches.every((b) => b.users <= 24), 'no batch exceeds maxBatch');
  t.ok(batches.some((b) => b.users > 1), `batches formed (sizes ${batches.map((b) => b.users).join(' ')})`);
  t.ok(batches.length < requests.length / 4, `${requests.length} requests ran in ${batches.length} batches`);
  t.ok(batches.some((b) => b.kinds.encode > 0 && b.kinds.predict > 0 && b.kinds.rank > 0), 'kinds mix within a batch');
  t.ok(batches.every((b) => b.queueMs.length === b.requests && b.computeMs >= 0), 'queue and compute times per batch');
  t.ok(served.every((s) => s.model === model && s.batchUsers >= 1 && s.queueMs >= 0 && s.computeMs >= 0), 'each result says how it was served');
  t.same(batcher.stats.dropped, { E_OVERLOADED: 0, E_TIMEOUT: 0, E_ABORTED: 0, E_CLOSED: 0 });
  t.equal(batcher.stats.completed, requests.length);
  t.equal(batcher.stats.queued, 0);

  // A second wave, each caller in its own turn of the event loop (as HTTP requests arrive): still exact.
  const wave = mixedRequests(90, 17);
  const got = await Promise.all(wave.map((r, i) => new Promise((resolve) => setTimeout(resolve, i % 7)).then(() => batcher.submit(r))));
  let bad2 = 0;
  for (let i = 0; i < wave.length; i++) bad2 += differs(got[i].value, await serial(model, wave[i])) > 0 ? 1 : 0;
  t.equal(bad2, 0, 'staggered callers: all results exact');
});

t.test('native threads: a lone request gets all of the model\'s; a batch of several leaves one to a busy event loop', async (t) => {
  const model = Model.create(config, { seed: 3, threads: 3 });
  t.teardown(() => model.dispose());
  const seen: { call: string; threads: number | undefined }[] = [];
  const encodeColumns = model.encodeColumns.bind(model);
  const scoreAll = model.scoreAll.bind(model);
  // Each encode takes 20 ms more (a timer before the call), so the event loop's share of its window is set by the
  // test, not by how fast this small model runs beside the loop's own work for the batch.
  model.encodeColumns = (cols, options) => {
    seen.push({ call: 'encode', threads: options?.threads });
    return new Promise((resolve) => setTimeout(resolve, 20)).then(() => encodeColumns(cols, options));
  };
  model.scoreAll = (u, c, options) => (seen.push({ call: 'score', threads: options?.threads }), scoreAll(u, c, options));
  const batcher = new Batcher({ model, maxBatch: 64 });
  const user = randomUsers(1, 1)[0];
  const candidates = randomCandidates(20, 2);
  const tasks = ['ctr', 'l2r'];
  await batcher.rank(user, candidates, { tasks });
  t.same(seen, [{ call: 'encode', threads: 3 }, { call: 'score', threads: 3 }], 'a lone rank request: 3 threads');
  const wave = async (users: UserInput[]): Promise<Scores[]> => {
    seen.length = 0;
    return Promise.all(users.map((u) => batcher.rank(u, candidates, { tasks })));
  };
  const two = randomUsers(2, 3);
  await wave(two);
  t.same(seen, [{ call: 'encode', threads: 3 }, { call: 'score', threads: 1 }, { call: 'score', threads: 1 }],
    'two, the event loop idle while they compute: 3 threads to encode, shared out to score');
  // The event loop busy while batches compute (as a server's is with other requests): 1 ms turns back to back.
  let spinning = true;
  const spin = (): void => {
    const until = performance.now() + 1;
    while (performance.now() < until);
    if (spinning) setImmediate(spin);
  };
  setImmediate(spin);
  for (let i = 0; i < 3; i++) await wave(two);
  t.same(seen, [{ call: 'encode', threads: 2 }, { call: 'score', threads: 1 }, { call: 'score', threads: 1 }],
    'two, the event loop busy: 2 threads to encode, 1 to score each');
  const many = randomUsers(5, 4);
  const want = await Promise.all(many.map((u) => serial(model, { kind: 'rank', user: u, candidates, tasks }) as Promise<Scores>));
  const got = await wave(many);
  t.same(seen.map((s) => s.threads), [2, 1, 1, 1, 1, 1], 'five, the event loop busy');
  for (let i = 0; i < many.length; i++) for (const task of tasks) t.equal(diffs(got[i][task], want[i][task]), 0, `user ${i} ${task}: the serial scores`);
  spinning = false;
  // The average with the batch before: from a loop busy all the time, below half by the third idle batch.
  let waves = 0;
  do await wave(two);
  while (seen[0].threads !== 3 && ++waves < 5);
  t.same(seen.map((s) => s.threads), [3, 1, 1], `the event loop idle again: every thread (after ${waves + 1} batches)`);
  await batcher.close();
});

t.test('rank passes the user to retrieval heads: their history term is in the scores', async (t) => {
  // Random weights: a new model's history weights start at zero.
  const model = Model.fromTensors(config, randomTensors(config, 4, 0.5), { threads: 1 });
  t.teardown(() => model.dispose());
  const batcher = new Batcher({ model });
  const user = randomUsers(2, 9)[1];
  const cands = user.behaviors.map((b) => ({ item: b.item, shop: b.shop, brand: b.brand }));
  const got = await batcher.rank(user, cands, { tasks: ['ret'] });
  const u = await model.encode([user]);
  t.equal(diffs(got.ret, (await model.scoreAll(u, cands, { tasks: ['ret'], user })).ret), 0, 'equals scoreAll with the user');
  t.ok(diffs(got.ret, (await model.scoreAll(u, cands, { tasks: ['ret'] })).ret) > 0, 'and differs from scoreAll without it');
});

t.test('E_OVERLOADED when the queue is full; the queued requests still complete', async (t) => {
  const model = Model.create(config, { seed: 5, threads: 1 });
  t.teardown(() => model.dispose());
  const drops: DropInfo[] = [];
  const batcher = new Batcher({ model, maxBatch: 2, maxQueue: 4, onDrop: (d) => drops.push(d) });
  const users = randomUsers(8, 2);
  // Submitted in one turn: nothing leaves the queue before the first batch forms in the next.
  const calls = [batcher.encode(users.slice(0, 2)), batcher.encode(users.slice(2, 3)), batcher.encode(users.slice(3, 4))];
  const over = [batcher.encode(users.slice(4, 6)), batcher.rank(users[6], randomCandidates(3, 1), { tasks: ['ctr'] })];
  await allRejectWith(t, over, 'E_OVERLOADED', 'queue is full', 'request beyond maxQueue');
  const done = await Promise.all(calls);
  for (const [i, r] of [[0, 2], [2, 1], [3, 1]].entries()) t.equal(diffs(done[i], await model.encode(users.slice(r[0], r[0] + r[1]))), 0, `queued request ${i} exact`);
  t.same(drops.map((d) => [d.code, d.stage, d.users]), [['E_OVERLOADED', 'submit', 2], ['E_OVERLOADED', 'submit', 1]]);
  t.equal(batcher.stats.dropped.E_OVERLOADED, 2);
  await rejectsCode(t, () => batcher.encode(randomUsers(2, 1), { keys: ['a'] }), 'E_INPUT', 'options.keys');
  const big = new Batcher({ model, maxBatch: 2 });
  await rejectsCode(t, () => big.encode(randomUsers(3, 1)), 'E_INPUT', 'maxBatch');
});

t.test('a request whose deadline passes while queued is rejected with E_TIMEOUT and never computed', async (t) => {
  const model = Model.create(config, { seed: 6, threads: 1 });
  t.teardown(() => model.dispose());
  const batches: BatchInfo[] = [];
  const drops: DropInfo[] = [];
  // maxDelayMs holds the queue longer than the short deadline.
  const batcher = new Batcher({ model, maxDelayMs: 150, onBatch: (b) => batches.push(b), onDrop: (d) => drops.push(d) });
  const users = randomUsers(4, 3);
  const short = batcher.encode(users.slice(0, 3), { timeoutMs: 20 });
  const patient = batcher.encode(users.slice(3, 4));
  await rejectsCode(t, () => short, 'E_TIMEOUT', 'not computed');
  t.equal(batches.length + batcher.stats.running, 0, 'rejected at its deadline, before the batch ran');
  t.equal(diffs(await patient, await model.encode(users.slice(3, 4))), 0);
  t.same(batches.map((b) => [b.requests, b.users, b.encoded]), [[1, 1, 1]], 'the batch held only the patient request: the expired users were never encoded');
  t.same(drops.map((d) => [d.code, d.stage, d.users]), [['E_TIMEOUT', 'queued', 3]]);
  t.ok(drops[0].queueMs >= 15, `it waited its deadline (${drops[0].queueMs.toFixed(1)} ms)`);

  // The batcher's default deadline applies to requests without their own.
  const strict = new Batcher({ model, maxDelayMs: 150, timeoutMs: 10 });
  await rejectsCode(t, () => strict.predict('ppp', users.slice(0, 1)), 'E_TIMEOUT', 'deadline');
  t.equal(strict.stats.batches, 0, 'no batch ran');
  t.equal(strict.stats.dropped.E_TIMEOUT, 1);
  await rejectsCode(t, () => batcher.encode(users, { timeoutMs: 0 }), 'E_INPUT', 'options.timeoutMs');
});

t.test('AbortSignal: before queueing, while queued (never computed), while its batch runs', async (t) => {
  const model = Model.create(config, { seed: 7, threads: 1 });
  t.teardown(() => model.dispose());
  const batches: BatchInfo[] = [];
  const drops: DropInfo[] = [];
  const users = randomUsers(6, 4);
  const hooks = { onBatch: (b: BatchInfo) => batches.push(b), onDrop: (d: DropInfo) => drops.push(d) };

  const before = new Batcher({ model, ...hooks });
  const reason = new Error('caller gone');
  await rejectsCode(t, () => before.encode(users.slice(0, 1), { signal: AbortSignal.abort(reason) }), 'E_ABORTED', 'before it was queued');
  await before.encode(users.slice(0, 1), { signal: AbortSignal.abort(reason) }).catch((e: Error) => t.equal(e.cause, reason, "the error's cause is the signal's reason"));
  t.same(batches, [], 'nothing ran');

  const delayed = new Batcher({ model, maxDelayMs: 100, ...hooks });
  const ac = new AbortController();
  const gone = delayed.encode(users.slice(0, 2), { signal: ac.signal });
  const kept = delayed.encode(users.slice(2, 3));
  setTimeout(() => ac.abort(), 10);
  await rejectsCode(t, () => gone, 'E_ABORTED', 'while queued');
  t.equal(diffs(await kept, await model.encode(users.slice(2, 3))), 0);
  t.same(batches.map((b) => [b.requests, b.encoded]), [[1, 1]], 'the aborted users were never encoded');

  const running = new Batcher({ model, ...hooks });
  const ac2 = new AbortController();
  const mid = running.rank(users[4], randomCandidates(30, 2), { tasks: ['ctr'], signal: ac2.signal });
  const other = running.encode(users.slice(5, 6));
  // The batch starts in the next check phase; this callback runs right after it, while the encode computes.
  setImmediate(() => ac2.abort());
  await rejectsCode(t, () => mid, 'E_ABORTED', 'while its batch ran');
  t.equal(diffs(await other, await model.encode(users.slice(5, 6))), 0, 'the rest of the batch is unaffected');
  t.same(drops.map((d) => [d.code, d.stage]), [['E_ABORTED', 'submit'], ['E_ABORTED', 'submit'], ['E_ABORTED', 'queued'], ['E_ABORTED', 'running']]);
  await rejectsCode(t, () => running.encode(users, { signal: {} as AbortSignal }), 'E_INPUT', 'options.signal');
});

t.test('onCancel: the cancel function it is given drops a queued request, aborts a running one, and is inert once settled', async (t) => {
  const model = Model.create(config, { seed: 18, threads: 1 });
  t.teardown(() => model.dispose());
  const drops: DropInfo[] = [];
  const users = randomUsers(5, 12);
  const delayed = new Batcher({ model, maxDelayMs: 100, onDrop: (d) => drops.push(d) });
  let cancel: ((reason?: unknown) => void) | undefined;
  const reason = new Error('client gone');
  const gone = delayed.encode(users.slice(0, 2), { onCancel: (c) => (cancel = c) });
  t.type(cancel, 'function', 'given the cancel function when queued');
  const kept = delayed.encode(users.slice(2, 3));
  setTimeout(() => cancel!(reason), 10);
  await gone.then(
    () => t.fail('a cancelled request resolved'),
    (e: DupnError) => {
      t.equal(e.code, 'E_ABORTED');
      t.equal(e.cause, reason, "the error's cause is the cancel reason");
    },
  );
  t.equal(diffs(await kept, await model.encode(users.slice(2, 3))), 0, 'the other request is unaffected');

  let late: (() => void) | undefined;
  const done = await delayed.encode(users.slice(3, 4), { onCancel: (c) => (late = c) });
  late!(); // settled: nothing happens
  t.equal(diffs(done, await model.encode(users.slice(3, 4))), 0);
  t.same(drops.map((d) => [d.code, d.stage]), [['E_ABORTED', 'queued']], 'one drop, while queued; the late cancel dropped nothing');
  await rejectsCode(t, () => delayed.encode(users.slice(0, 1), { onCancel: 3 as unknown as () => void }), 'E_INPUT', 'options.onCancel');
  const hookError = new Error('hook failed');
  const thrown = delayed.encode(users.slice(0, 1), { onCancel: () => { throw hookError; } });
  await thrown.then(() => t.fail('resolved'), (e: DupnError) => t.same([e.code, e.cause], ['E_ABORTED', hookError], 'a throwing onCancel cancels its request'));
  t.equal(delayed.stats.queued, 0, 'and it left the queue');
  await delayed.close();
});

t.test('maxDelayMs waits for more requests (up to maxBatch); 0 never waits', async (t) => {
  const model = Model.create(config, { seed: 8, threads: 1 });
  t.teardown(() => model.dispose());
  const users = randomUsers(6, 5);
  const batches: BatchInfo[] = [];
  const waiting = new Batcher({ model, maxDelayMs: 60, onBatch: (b) => batches.push(b) });
  const first = waiting.submit({ kind: 'encode', users: users.slice(0, 1) });
  await new Promise((r) => setTimeout(r, 15));
  const second = waiting.submit({ kind: 'encode', users: users.slice(1, 2) });
  const [a, b] = await Promise.all([first, second]);
  t.same(batches.map((x) => x.requests), [2], 'both requests in one batch');
  t.ok(a.queueMs >= 55, `the first waited about maxDelayMs (${a.queueMs.toFixed(1)} ms)`);
  t.ok(b.queueMs < a.queueMs, 'the second less');

  // A full batch does not wait.
  const full = new Batcher({ model, maxBatch: 2, maxDelayMs: 10_000 });
  const t0 = performance.now();
  await Promise.all([full.encode(users.slice(0, 1)), full.encode(users.slice(1, 2))]);
  t.ok(performance.now() - t0 < 5000, 'a batch of maxBatch users runs at once');
  // close() cuts a wait short.
  const t1 = performance.now();
  const pending = full.encode(users.slice(2, 3));
  await full.close();
  t.ok(performance.now() - t1 < 5000, 'close() flushed the waiting request');
  t.equal(diffs(await pending, await model.encode(users.slice(2, 3))), 0);

  const eager = new Batcher({ model });
  const got = await eager.submit({ kind: 'encode', users: users.slice(0, 1) });
  t.ok(got.queueMs < 100, `maxDelayMs 0: no waiting (${got.queueMs.toFixed(2)} ms)`);
});

t.test('bad input rejects only its own request; the rest of the batch succeeds', async (t) => {
  const model = Model.create(config, { seed: 9, threads: 2 });
  t.teardown(() => model.dispose());
  const batches: BatchInfo[] = [];
  const batcher = new Batcher({ model, onBatch: (b) => batches.push(b) });
  const users = randomUsers(12, 6);
  const badUser = { behaviors: [{ type: 'pv', time: 'yesterday', item: 'i1' }] } as unknown as UserInput;
  const good: BatchRequest[] = [
    { kind: 'encode', users: users.slice(0, 3) },
    { kind: 'predict', task: 'ppp', users: users.slice(3, 5) },
    { kind: 'rank', user: users[5], candidates: randomCandidates(20, 3), tasks: ['ctr', 'l2r'] },
    { kind: 'rank', user: users[6], candidates: randomCandidateColumns(model.config, 'ctr', 4, 25), tasks: ['ctr'] },
    // Every head: the history heads (spp, ret) each with their own features, beside l2r's dense numbers.
    { kind: 'rank', user: users[9], candidates: randomCandidates(12, 5) },
  ];
  const badOnes: [BatchRequest, string, string][] = [
    [{ kind: 'encode', users: [users[7], badUser] }, 'E_INPUT', 'users[1].behaviors[0].time'],
    [{ kind: 'predict', task: 'ctr', users: users.slice(8, 9) }, 'E_TASK', 'ctr'],
    [{ kind: 'predict', task: 'nope', users: users.slice(8, 9) }, 'E_TASK', 'nope'],
    [{ kind: 'rank', user: users[9], candidates: [{ item: 'x', dense: [1] }], tasks: ['l2r'] }, 'E_INPUT', 'candidates[0].dense'],
    [{ kind: 'rank', user: users[9], candidates: randomCandidates(2, 1), tasks: ['ctr', 'ppp'] }, 'E_TASK', 'ppp'],
    [{ kind: 'rank', user: badUser, candidates: randomCandidates(2, 1), tasks: ['ctr'] }, 'E_INPUT', 'users[0].behaviors[0].time'],
    [{ kind: 'encode', users: users.slice(0, 1), now: Number.NaN }, 'E_INPUT', 'options.now'],
    // Caught by the engine inside the batch: an id outside its table in caller-packed candidate columns.
    [{ kind: 'rank', user: users[10], candidates: { items: new Int32Array(4).fill(1 << 30), dense: new Float32Array(0) }, tasks: ['ctr'] }, 'E_INPUT', 'candidates'],
  ];
  const goodCalls = good.map((r) => batcher.submit(r));
  const badCalls = badOnes.map(([r]) => batcher.submit(r));
  await Promise.allSettled(badCalls);
  const done = await Promise.all(goodCalls);
  for (let i = 0; i < good.length; i++) t.equal(differs(done[i].value, await serial(model, good[i])), 0, `good request ${i} succeeded, exact`);
  for (const [i, [, code, field]] of badOnes.entries()) await allRejectWith(t, [badCalls[i]], code, field, `bad request ${i}`);
  t.equal(batches.length, 1, 'one batch');
  t.equal(batches[0].failed, 1, 'in it, only the request the engine refused failed');
  t.equal(batches[0].requests, good.length + 1);
});

t.test('an engine error reaches every caller of that native call, with its code', async (t) => {
  const tensors = randomTensors(config, 1, 0.5);
  for (const a of tensors.values()) for (let i = 0; i < a.length; i++) a[i] = i % 2 ? -3e38 : 3e38;
  const broken = Model.fromTensors(config, tensors, { threads: 1 });
  t.teardown(() => broken.dispose());
  const batches: BatchInfo[] = [];
  const batcher = new Batcher({ model: broken, onBatch: (b) => batches.push(b) });
  const users = randomUsers(5, 7);
  const calls = [batcher.encode(users.slice(0, 2)), batcher.predict('ppp', users.slice(2, 3)), batcher.rank(users[3], randomCandidates(3, 1), { tasks: ['ctr'] })];
  await allRejectWith(t, calls, 'E_NUMERIC', 'encode', 'caller');
  await tick();
  t.same(batches.map((b) => [b.requests, b.failed]), [[3, 3]]);

  const model = Model.create(config, { seed: 10, threads: 1 });
  const b2 = new Batcher({ model });
  const more = [b2.encode(users.slice(0, 1)), b2.rank(users[1], randomCandidates(2, 2), { tasks: ['spp'] }), b2.predict('ppp', users.slice(2, 4))];
  model.dispose(); // before the batch forms
  await allRejectWith(t, more, 'E_DISPOSED', 'disposed', 'caller');
  t.equal(b2.stats.failed, 3);
});

t.test('the user-vector cache: a hit skips encoding; TTL and model swaps make misses', async (t) => {
  const model = Model.create(config, { seed: 11, threads: 1 });
  t.teardown(() => model.dispose());
  let clock = 0;
  const batches: BatchInfo[] = [];
  const batcher = new Batcher({ model, cache: { maxEntries: 100, ttlMs: 1000, clock: () => clock }, onBatch: (b) => batches.push(b) });
  const users = randomUsers(4, 8);
  const cands = randomCandidates(10, 4);
  const want = await serial(model, { kind: 'rank', user: users[1], candidates: cands, tasks: ['ctr', 'ret'] });
  const first = await batcher.submit({ kind: 'rank', user: users[1], candidates: cands, tasks: ['ctr', 'ret'], key: 'u1' });
  const again = await batcher.submit({ kind: 'rank', user: users[1], candidates: cands, tasks: ['ctr', 'ret'], key: 'u1' });
  t.equal(scoreDiffs(first.value, want as Scores) + scoreDiffs(again.value, want as Scores), 0, 'hit and miss both exact');
  t.same([first.cacheHits, again.cacheHits], [0, 1]);
  await tick();
  t.same(batches.map((b) => b.encoded), [1, 0], 'the hit encoded nobody');
  // Partial hits in one request: only the misses are encoded, rows land where they belong.
  const enc = await batcher.submit({ kind: 'encode', users: users.slice(0, 3), keys: ['u0', 'u1', undefined] });
  t.equal(diffs(enc.value, await model.encode(users.slice(0, 3))), 0, 'partial hits: exact, in order');
  await tick();
  t.equal(batches[2].encoded, 2);
  t.equal(enc.cacheHits, 1);
  const p = await batcher.predict('ppp', users.slice(0, 2), { keys: ['u0', 'u1'] });
  t.equal(diffs(p, await model.predict('ppp', users.slice(0, 2))), 0);
  await tick();
  t.equal(batches[3].encoded, 0, 'both users of the predict were cached');
  clock += 1000;
  await batcher.rank(users[1], cands, { tasks: ['ctr'], key: 'u1' });
  await tick();
  t.equal(batches[4].encoded, 1, 'after the TTL it is encoded again');
  t.equal(batcher.cache?.stats.expired, 1);
  const other = Model.create(config, { seed: 12, threads: 1 });
  t.teardown(() => other.dispose());
  await batcher.setModel(other);
  const swapped = await batcher.encode(users.slice(1, 2), { keys: ['u1'] });
  t.equal(diffs(swapped, await other.encode(users.slice(1, 2))), 0, "another model's vector is never served");
  await tick();
  t.equal(batches[5].encoded, 1);
});

t.test('UserCache: LRU order, bounded size, TTL, owners, copies', async (t) => {
  let now = 0;
  const cache = new UserCache({ maxEntries: 3, ttlMs: 100, clock: () => now });
  const v = (x: number) => Float32Array.of(x, x + 1);
  const owner = {};
  for (const k of ['a', 'b', 'c']) cache.set(k, v(k.charCodeAt(0)), owner);
  t.same(Array.from(cache.get('a', owner) ?? []), [97, 98], 'a hit');
  cache.set('d', v(100), owner); // evicts b, the least recently used (a was just read)
  t.equal(cache.size, 3, 'bounded');
  t.equal(cache.get('b', owner), undefined, 'b evicted');
  t.ok(cache.get('a', owner) && cache.get('c', owner) && cache.get('d', owner), 'the others kept');
  t.equal(cache.get('a', {}), undefined, 'another owner misses');
  t.equal(cache.get('a', owner), undefined, '…and the stale entry is gone');
  const src = v(5);
  cache.set('e', src);
  src[0] = -1;
  t.same(Array.from(cache.get('e') ?? []), [5, 6], 'stored as a copy');
  now = 99;
  t.ok(cache.get('e'), 'alive before the TTL');
  now = 100;
  t.equal(cache.get('e'), undefined, 'expired at the TTL');
  t.same(cache.stats, { size: 2, hits: 6, misses: 4, expired: 1, evicted: 1 });
  t.ok(cache.delete('c'));
  cache.clear();
  t.equal(cache.size, 0);
  t.throws(() => new UserCache({ maxEntries: 0 }), { code: 'E_INPUT' });
  t.throws(() => new UserCache({ ttlMs: -1 }), { code: 'E_INPUT' });
});

t.test('setModel: the batch in flight finishes on the old model, the queue moves to the new one', async (t) => {
  const a = Model.create(config, { seed: 13, threads: 1 });
  const b = Model.create(config, { seed: 14, threads: 1 });
  t.teardown(() => b.dispose());
  const batcher = new Batcher({ model: a });
  const users = randomUsers(6, 9);
  const onA = batcher.submit({ kind: 'predict', task: 'ppp', users: users.slice(0, 2) });
  // Packed for `a`, but its batch will start after the swap: it runs on `b`.
  await new Promise<void>((resolve) => setImmediate(resolve));
  const repacked = batcher.submit({ kind: 'rank', user: users[2], candidates: randomCandidates(5, 3), tasks: ['ctr'] });
  const swapped = batcher.setModel(b);
  t.equal(batcher.model, b);
  const onB = batcher.submit({ kind: 'encode', users: users.slice(3, 5) });
  await swapped;
  const done = await onA;
  t.equal(done.model, a, 'the batch in flight ran on the old model');
  t.equal(diffs(done.value, await a.predict('ppp', users.slice(0, 2))), 0);
  a.dispose(); // safe: setModel resolved, no batch runs on it
  const [r, e] = await Promise.all([repacked, onB]);
  t.equal(r.model, b);
  t.equal(scoreDiffs(r.value, (await serial(b, { kind: 'rank', user: users[2], candidates: randomCandidates(5, 3), tasks: ['ctr'] })) as Scores), 0, 'queued request re-packed and run on the new model');
  t.equal(diffs(e.value, await b.encode(users.slice(3, 5))), 0);

  // A getter is asked once per batch.
  let current = b;
  const viaGetter = new Batcher({ model: () => current });
  t.equal((await viaGetter.submit({ kind: 'encode', users: users.slice(0, 1) })).model, b);
  const c = Model.create(config, { seed: 15, threads: 1 });
  t.teardown(() => c.dispose());
  current = c;
  t.equal((await viaGetter.submit({ kind: 'encode', users: users.slice(0, 1) })).model, c);
});

t.test('close(): what is queued finishes, new requests get E_CLOSED; options are checked', async (t) => {
  const model = Model.create(config, { seed: 16, threads: 1 });
  t.teardown(() => model.dispose());
  const batcher = new Batcher({ model, maxBatch: 2 });
  const users = randomUsers(5, 10);
  const queued = users.map((u) => batcher.encode([u]));
  const closed = batcher.close();
  await rejectsCode(t, () => batcher.encode(users.slice(0, 1)), 'E_CLOSED', 'closed');
  await closed;
  t.equal(batcher.stats.completed, 5, 'every queued request completed before close() resolved');
  const got = await Promise.all(queued);
  for (let i = 0; i < users.length; i++) t.equal(diffs(got[i], await model.encode([users[i]])), 0);
  t.equal(batcher.stats.dropped.E_CLOSED, 1);
  t.equal(batcher.stats.batches, 3);
  await batcher.close();

  t.throws(() => new Batcher({ model, maxBatch: 0 }), { code: 'E_INPUT', message: /options.maxBatch/ });
  t.throws(() => new Batcher({ model, maxBatch: 8, maxQueue: 4 }), { code: 'E_INPUT', message: /options.maxQueue/ });
  t.throws(() => new Batcher({ model, maxDelayMs: -1 }), { code: 'E_INPUT', message: /options.maxDelayMs/ });
  t.throws(() => new Batcher({ model: {} as Model }), { code: 'E_INPUT', message: /options.model/ });
  t.throws(() => new Batcher({ model, maxbatch: 3 } as unknown as { model: Model }), { code: 'E_INPUT', message: /options.maxbatch/ });
  const empty = await new Batcher({ model }).predict('ppp', []);
  t.equal(empty.length, 0, 'no users: an empty result at once');
});

t.test('a settled request is let go at once: the batcher keeps none of its inputs alive', async (t) => {
  // Kept in the queue until it was compacted (every thousand requests), settled requests outlived two
  // scavenges, and V8 promoted about 1.5 MB per scavenge into the old generation (docs/serving.md).
  const gc = vm.runInNewContext('gc') as () => void;
  const model = Model.create(config, { seed: 17, threads: 1 });
  t.teardown(() => model.dispose());
  const batcher = new Batcher({ model, timeoutMs: 1000 });
  const refs: WeakRef<UserInput>[] = [];
  // In a function of its own, so that no frame of this test holds the last user.
  const submit = async (seed: number): Promise<void> => {
    const user = randomUsers(2, seed)[1];
    refs.push(new WeakRef(user));
    await batcher.encode([user]);
  };
  for (let i = 0; i < 20; i++) await submit(40 + i);
  await batcher.encode(randomUsers(2, 99).slice(1)); // the next request passes over the settled ones
  for (let i = 0; i < 3; i++) {
    await tick(); // a WeakRef's target is held until the end of the job that made it
    gc();
  }
  t.same(refs.map((r, i) => (r.deref() !== undefined ? i : -1)).filter((i) => i >= 0), [], 'no settled request\'s user is still reachable');
  await batcher.close();
});

t.test('gatherUserColumns: chosen rows of packed batches equal packing those users together', async (t) => {
  const model = Model.create(config, { seed: 17, threads: 1 });
  t.teardown(() => model.dispose());
  const a = randomUsers(5, 11);
  const b = randomUsers(3, 12);
  const got = gatherUserColumns(model.config, [{ cols: model.pack(a), rows: [4, 0] }, { cols: model.pack(b) }, { cols: model.pack(a), rows: [3] }]);
  const want = model.pack([a[4], a[0], ...b, a[3]]);
  for (const k of Object.keys(want) as (keyof UserColumns)[]) t.same(Array.from(got[k]), Array.from(want[k]), k);
  const whole = model.pack(b);
  t.equal(gatherUserColumns(model.config, [{ cols: whole, rows: [0, 1, 2] }]), whole, 'all rows in order: the same columns, no copy');
});
