// Issue 11, items 1 and 2: nothing a caller does to its own arrays during a call, and no worker torn down with
// calls in flight, may crash the process. A call reads what the arrays held when it was made (the addon copies
// them), so scribbling over them afterwards changes nothing; an output array detached, transferred or shrunk
// before the call settles gets an E_INPUT rejection instead of a write into freed memory.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { resolveConfig } from '../lib/network/config';
import { Model } from '../lib/model/model';
import { UserColumns } from '../lib/model/columns';
import { cloneUserColumns, randomCandidateColumns, randomTensors, randomUserColumns } from '../lib/reference/random-model';
import { ROOT, tsNodeRegister } from './support/child';
import { rejectsCode } from './support/errors';

const config = resolveConfig({
  maxSeqLen: 40,
  itemFields: [
    { name: 'item', buckets: 1001, dim: 12 },
    { name: 'category', buckets: 37, dim: 6 },
    { name: 'shop', buckets: 17, dim: 0 },
    { name: 'brand', buckets: 13, dim: 4 },
  ],
  query: { buckets: 97, dim: 5 },
  hidden: 13,
  attentionHidden: 7,
  tasks: [
    { name: 'ctr', kind: 'binary', target: ['item', 'category'], layers: [8] },
    { name: 'ppp', kind: 'multiclass', classes: 5, layers: [6] },
    { name: 'next', kind: 'retrieval', target: ['item', 'category', 'brand'], layers: [9] },
  ],
});

const lengths = [0, 1, 40, 17, 3, 40, 25, 9];

function scribble(...arrays: (Int32Array | Float32Array)[]): void {
  for (const a of arrays) a.fill(a instanceof Int32Array ? 0x7fffffff : Number.NaN);
}

t.test('async calls read the arrays as they were at the call: scribbling over them afterwards changes nothing', async (t) => {
  const model = Model.fromTensors(config, randomTensors(config, 3, 0.5), { threads: 2 });
  const cols = randomUserColumns(config, 11, lengths);
  const want = model.encodeColumnsSync(cloneUserColumns(cols));
  for (let round = 0; round < 20; round++) {
    const c = cloneUserColumns(cols);
    const p = model.encodeColumns(c);
    scribble(c.lengths, c.items, c.properties, c.queryOffsets, c.queryTokens);
    c.lengths.fill(1 << 30, 0, 1);
    t.same(Array.from(await p), Array.from(want), `encodeColumns round ${round}`);
  }
  const u = want.slice(2 * model.userDim, 3 * model.userDim);
  const cands = randomCandidateColumns(config, 'ctr', 5, 300);
  const scores = model.scoreSync('ctr', u, cands);
  const uc = u.slice();
  const cc = { items: cands.items.slice(), dense: cands.dense.slice() };
  const p = model.score('ctr', uc, cc);
  scribble(uc, cc.items, cc.dense);
  t.same(Array.from(await p), Array.from(scores), 'score: the user vector and the candidate columns');

  const probs = model.predictFromVectorsSync('ppp', want);
  const wc = want.slice();
  const pp = model.predictFromVectors('ppp', wc);
  scribble(wc);
  t.same(Array.from(await pp), Array.from(probs), 'predictFromVectors: the user vectors');

  const rc = randomCandidateColumns(config, 'next', 6, 200);
  const vectors = await model.itemVectors('next', rc);
  const rcc = { items: rc.items.slice(), dense: rc.dense.slice() };
  const pv = model.itemVectors('next', rcc);
  scribble(rcc.items);
  t.same(Array.from(await pv), Array.from(vectors), 'itemVectors: the candidate ids');
  model.dispose();
});

t.test('columns behind getters that return a fresh array on every read are read once', async (t) => {
  const model = Model.fromTensors(config, randomTensors(config, 4, 0.5), { threads: 2 });
  const cols = randomUserColumns(config, 12, lengths);
  const want = model.encodeColumnsSync(cloneUserColumns(cols));
  let reads = 0;
  const fresh = Object.fromEntries(
    (['lengths', 'items', 'properties', 'queryOffsets', 'queryTokens', 'profile'] as const).map((k) => [k, { get: () => (reads++, cols[k].slice()), enumerable: true }]),
  );
  const tricky = Object.defineProperties({}, fresh) as UserColumns;
  t.same(Array.from(await model.encodeColumns(tricky)), Array.from(want), 'the same vectors');
  t.ok(reads > 0);
  model.dispose();
});

t.test('an output array detached, transferred or shrunk during the call: E_INPUT naming it, nothing written', async (t) => {
  const model = Model.fromTensors(config, randomTensors(config, 5, 0.5), { threads: 2 });
  const cols = randomUserColumns(config, 13, lengths);
  const n = lengths.length * model.userDim;
  for (let round = 0; round < 10; round++) {
    const out = new Float32Array(n);
    const p = model.encodeColumns(cloneUserColumns(cols), { out });
    structuredClone(out.buffer, { transfer: [out.buffer] });
    await rejectsCode(t, () => p, 'E_INPUT', 'users output', `transferred (round ${round})`);

    const rab = new (ArrayBuffer as unknown as new (bytes: number, o: { maxByteLength: number }) => ArrayBuffer & { resize(bytes: number): void })(n * 4, { maxByteLength: n * 4 });
    const shrunk = new Float32Array(rab);
    const q = model.encodeColumns(cloneUserColumns(cols), { out: shrunk });
    rab.resize(8);
    await rejectsCode(t, () => q, 'E_INPUT', 'users output', `a resizable buffer shrunk (round ${round})`);
  }
  const cands = randomCandidateColumns(config, 'ctr', 7, 50);
  const scores = new Float32Array(50);
  const s = model.score('ctr', new Float32Array(model.userDim), cands, { out: scores });
  structuredClone(scores.buffer, { transfer: [scores.buffer] });
  await rejectsCode(t, () => s, 'E_INPUT', 'scores output');
  // Still serving afterwards.
  t.equal((await model.encodeColumns(cloneUserColumns(cols))).length, n);
  model.dispose();
});

t.test('an output that overlaps an input (sync and async) gets the answer of the input as it was', async (t) => {
  const model = Model.fromTensors(config, randomTensors(config, 6, 0.5), { threads: 2 });
  const u = new Float32Array(3 * model.userDim).map((_, i) => Math.sin(i));
  const want = model.predictFromVectorsSync('ppp', u.slice());
  // The first 3 × 5 floats of the users' own array take the probabilities.
  const sync = u.slice();
  model.predictFromVectorsSync('ppp', sync, { out: sync.subarray(0, 15) });
  t.same(Array.from(sync.subarray(0, 15)), Array.from(want), 'sync');
  const asyncIn = u.slice();
  await model.predictFromVectors('ppp', asyncIn, { out: asyncIn.subarray(0, 15) });
  t.same(Array.from(asyncIn.subarray(0, 15)), Array.from(want), 'async');
  model.dispose();
});

t.test('worker.terminate() with calls queued and running: the process survives', async (t) => {
  // Each worker owns a model and keeps 8–12 encodes of 64 users in flight; the parent terminates it at a random
  // moment. Before the fix this aborted the process ('terminate called after throwing Napi::Error') 5 of 5 times.
  const code = `
    const { Worker } = require('node:worker_threads');
    const src = ${JSON.stringify(`
      const { parentPort } = require('node:worker_threads');
      const { Model } = require(${JSON.stringify(path.join(ROOT, 'lib', 'index.ts'))});
      const m = Model.create({ itemFields: [{ name: 'item', buckets: 5000, dim: 16 }, { name: 'category', buckets: 50, dim: 8 }, { name: 'shop', buckets: 50, dim: 4 }, { name: 'brand', buckets: 50, dim: 4 }] }, { seed: 1, threads: 2 });
      const users = Array.from({ length: 64 }, (_, u) => ({ behaviors: Array.from({ length: 100 }, (_, k) => ({ item: 'i' + (u * 7 + k), category: 'c', type: 'pv', time: 1000 + k })), now: 5000 }));
      const cols = m.pack(users);
      for (let i = 0; i < 8; i++) m.encodeColumns(cols).catch(() => {});
      parentPort.postMessage('go');
      setInterval(() => { for (let i = 0; i < 4; i++) m.encodeColumns(cols).catch(() => {}); }, 1);
    `)};
    let left = 8;
    const one = () => {
      const w = new Worker(src, { eval: true });
      w.on('error', (e) => { console.log('worker error ' + e.message); process.exit(3); });
      w.on('message', () => setTimeout(() => w.terminate().then(() => (--left > 0 ? one() : console.log('survived'))), Math.random() * 30));
    };
    one();
  `;
  const r = spawnSync(process.execPath, ['-r', tsNodeRegister(), '-e', code], { encoding: 'utf8', timeout: 240_000, cwd: ROOT });
  t.equal(r.signal, null, `no signal (stderr: ${r.stderr.slice(-400)})`);
  t.equal(r.status, 0, r.stderr.slice(-400));
  t.match(r.stdout, /survived/, r.stdout.slice(-400));
});

t.test('the model owns its weights: the arrays given to fromTensors and those read from weights can be detached', async (t) => {
  const tensors = randomTensors(config, 8, 0.5);
  const model = Model.fromTensors(config, tensors, { threads: 2 });
  const cols = randomUserColumns(config, 14, lengths);
  const want = model.encodeColumnsSync(cloneUserColumns(cols));
  for (const a of tensors.values()) structuredClone(a.buffer, { transfer: [a.buffer] });
  const w = model.weights.get('emb.item.item')!;
  structuredClone(w.buffer, { transfer: [w.buffer] });
  t.equal(tensors.get('emb.item.item')!.length, 0, 'the caller’s array is detached');
  t.same(Array.from(await model.encodeColumns(cloneUserColumns(cols))), Array.from(want), 'the model still encodes as before');
  t.ok(model.weights.get('emb.item.item')!.length > 0, 'and its weights still read');
  model.dispose();
});

t.test('calls issued before dispose() finish, those of several native steps (predict, retrieve) included; later ones reject', async (t) => {
  const model = Model.fromTensors(config, randomTensors(config, 9, 0.5), { threads: 2 });
  const users = [{ behaviors: [{ type: 'pv', time: 10, item: 'i1', category: 'c1' }, { type: 'pv', time: 20, item: 'i2', category: 'c2' }], now: 30 }];
  const want = model.predictSync('ppp', users);
  const catalogue = Array.from({ length: 300 }, (_, i) => ({ item: `i${i}`, category: `c${i % 7}`, brand: `b${i % 3}` }));
  await model.setCatalogue('next', catalogue);
  const u = model.encodeSync(users);
  const top = await model.retrieve('next', u, 5, { user: users[0] });
  for (let round = 0; round < 5; round++) {
    const again = Model.fromTensors(config, randomTensors(config, 9, 0.5), { threads: 2 });
    await again.setCatalogue('next', catalogue);
    const p = again.predict('ppp', users);
    const r = again.retrieve('next', u, 5, { user: users[0] });
    const e = again.encode(users);
    again.dispose();
    t.same(Array.from(await p), Array.from(want), `predict in flight at dispose() resolves (round ${round})`);
    t.same(Array.from((await r).index), Array.from(top.index), 'so does retrieve');
    t.equal((await e).length, again.userDim, 'and encode');
    await rejectsCode(t, () => again.predict('ppp', users), 'E_DISPOSED', 'disposed', 'a call after dispose() rejects');
  }
  model.dispose();
});

t.test('columns on a SharedArrayBuffer that another thread keeps writing: every call resolves or rejects typed', async (t) => {
  const model = Model.fromTensors(config, randomTensors(config, 10, 0.5), { threads: 2 });
  const cols = randomUserColumns(config, 15, lengths);
  const shared = (a: Int32Array): Int32Array => {
    const s = new Int32Array(new SharedArrayBuffer(Math.max(4, a.byteLength)), 0, a.length);
    s.set(a);
    return s;
  };
  const sab: UserColumns = {
    lengths: shared(cols.lengths), items: shared(cols.items), properties: shared(cols.properties),
    queryOffsets: shared(cols.queryOffsets), queryTokens: shared(cols.queryTokens), profile: shared(cols.profile),
  };
  const { Worker } = await import('node:worker_threads');
  // The writer scribbles over ids and lengths without pause until told to stop.
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const writer = new Worker(
    `const { workerData: [stop, ...arrays] } = require('node:worker_threads');
     let x = 1;
     while (Atomics.load(stop, 0) === 0) for (const a of arrays) for (let i = 0; i < a.length; i += 7) a[i] = (x = (x * 1103515245 + 12345) | 0);`,
    { eval: true, workerData: [stop, sab.lengths, sab.items, sab.properties, sab.queryOffsets] },
  );
  const codes = new Map<string, number>();
  for (let i = 0; i < 300; i++) {
    try {
      await model.encodeColumns(sab);
      codes.set('ok', (codes.get('ok') ?? 0) + 1);
    } catch (e) {
      const code = (e as { code?: string }).code ?? String(e);
      codes.set(code, (codes.get(code) ?? 0) + 1);
    }
  }
  Atomics.store(stop, 0, 1);
  await writer.terminate();
  t.same([...codes.keys()].filter((k) => k !== 'ok' && k !== 'E_INPUT'), [], `results: ${JSON.stringify(Object.fromEntries(codes))}`);
  model.dispose();
});
