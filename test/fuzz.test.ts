// Issue 11's fuzz campaign, kept in the suite: mutated model files and column buffers (changed during calls,
// too). The process must survive, and every failure must be a DupnError. Each part runs a fixed number of
// cases, then more while its time lasts: DUPN_FUZZ_SECONDS (default 8; CI runs with the default, about 25 s in
// all). The fixed part makes the check the same on a slow machine; the time only adds cases.
import t, { Test } from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { resolveConfig } from '../lib/network/config';
import { DupnError } from '../lib/errors';
import { Model } from '../lib/model/model';
import { UserColumns } from '../lib/model/columns';
import { mulberry32 } from '../lib/random';
import { randomCandidateColumns, randomTensors, randomUserColumns } from '../lib/reference/random-model';

const SECONDS = Number(process.env.DUPN_FUZZ_SECONDS ?? 8);
/** Cases each part runs whatever the time: mutated files, and column calls. */
const MIN_FILES = 24;
const MIN_CALLS = 60;
// A fresh seed per run (printed: DUPN_FUZZ_SEED=<n> repeats a run's mutations).
const SEED = Number(process.env.DUPN_FUZZ_SEED ?? Date.now() % 1_000_000);
const config = resolveConfig({
  maxSeqLen: 12,
  itemFields: [
    { name: 'item', buckets: 211, dim: 6 },
    { name: 'category', buckets: 17, dim: 3 },
    { name: 'shop', buckets: 7, dim: 2 },
    { name: 'brand', buckets: 5, dim: 2 },
  ],
  query: { buckets: 31, dim: 3 },
  hidden: 7,
  attentionHidden: 5,
});
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dupn-fuzz-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Runs `call`; a failure must be a DupnError (counted by code), anything else fails the test. */
async function survive(t: Test, label: string, call: () => Promise<unknown>, codes: Map<string, number>): Promise<unknown> {
  try {
    return await call();
  } catch (e) {
    if (!(e instanceof DupnError)) {
      t.fail(`seed ${SEED}, ${label}: not a DupnError: ${String(e)}`);
      return undefined;
    }
    codes.set(e.code, (codes.get(e.code) ?? 0) + 1);
    return undefined;
  }
}

function mutate(bytes: Buffer, rand: () => number): Buffer {
  const b = Buffer.from(bytes);
  const headerEnd = 8 + Number(b.readBigUInt64LE(0));
  switch (Math.floor(rand() * 6)) {
    case 0: // flip bits anywhere
      for (let k = 1 + Math.floor(rand() * 8); k > 0; k--) b[Math.floor(rand() * b.length)] ^= 1 << Math.floor(rand() * 8);
      return b;
    case 1: // a byte of the header JSON: digits, quotes and brackets are what matter
      for (let k = 1 + Math.floor(rand() * 3); k > 0; k--) b[8 + Math.floor(rand() * (headerEnd - 8))] = '0123456789[]{}",:-e.'.charCodeAt(Math.floor(rand() * 20));
      return b;
    case 2: // truncated
      return b.subarray(0, Math.floor(rand() * b.length));
    case 3: // the header length
      b.writeBigUInt64LE(BigInt(Math.floor(rand() * 2 ** 40)), 0);
      return b;
    case 4: // extreme floats in the data
      for (let k = 1 + Math.floor(rand() * 16); k > 0; k--) {
        const at = headerEnd + 4 * Math.floor(rand() * ((b.length - headerEnd) / 4));
        if (at + 4 <= b.length) b.writeFloatLE([3e38, -3e38, 1e-40, NaN, Infinity, 1e20][Math.floor(rand() * 6)], at);
      }
      return b;
    default: // garbage appended
      return Buffer.concat([b, Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 64) }, () => Math.floor(rand() * 256)))]);
  }
}

function garbleColumns(c: UserColumns, rand: () => number): void {
  const arrays = [c.lengths, c.items, c.properties, c.queryOffsets, c.queryTokens, c.profile];
  for (let k = 1 + Math.floor(rand() * 4); k > 0; k--) {
    const a = arrays[Math.floor(rand() * arrays.length)];
    if (a.length === 0) continue;
    a[Math.floor(rand() * a.length)] = [-1, 0, 1, 2 ** 31 - 1, -(2 ** 31), 5000, Math.floor(rand() * 300)][Math.floor(rand() * 7)];
  }
}

t.test(`mutated model files (${SECONDS} s): loaded or refused with a DupnError, and a loaded one serves or fails typed`, async (t) => {
  const model = Model.fromTensors(config, randomTensors(config, 1, 0.5), { threads: 1 });
  const file = path.join(dir, 'ok.safetensors');
  await model.save(file);
  model.dispose();
  const bytes = fs.readFileSync(file);
  const rand = mulberry32(SEED);
  const codes = new Map<string, number>();
  const users = [{ behaviors: [{ type: 'pv', time: 1, item: 'a', category: 'c', query: 'x y' }, { type: 'buy', time: 2, item: 'b' }], now: 9 }];
  let tries = 0;
  let loaded = 0;
  const until = Date.now() + SECONDS * 1000;
  while (tries < MIN_FILES || Date.now() < until) {
    tries++;
    const p = path.join(dir, `m${tries % 4}.safetensors`);
    fs.writeFileSync(p, mutate(bytes, rand));
    const m = (await survive(t, `load #${tries}`, () => Model.load(p, { verifyChecksum: rand() < 0.3, threads: 1 }), codes)) as Model | undefined;
    if (!m) continue;
    loaded++;
    const u = (await survive(t, `encode #${tries}`, () => m.encode(users), codes)) as Float32Array | undefined;
    await survive(t, `score #${tries}`, () => m.score('ctr', u ?? new Float32Array(m.userDim), [{ item: 'a', category: 'c' }]), codes);
    await survive(t, `predict #${tries}`, () => m.predict('ppp', users), codes);
    m.dispose();
  }
  t.pass(`seed ${SEED}: ${tries} mutated files, ${loaded} loaded; failures by code: ${JSON.stringify(Object.fromEntries(codes))}`);
});

t.test(`garbled and concurrently changed column buffers (${SECONDS} s): a result or a DupnError, never a crash`, async (t) => {
  const model = Model.fromTensors(config, randomTensors(config, 2, 0.5), { threads: 2 });
  const rand = mulberry32(SEED + 1);
  const codes = new Map<string, number>();
  let calls = 0;
  const until = Date.now() + SECONDS * 1000;
  while (calls < MIN_CALLS || Date.now() < until) {
    const B = 1 + Math.floor(rand() * 5);
    const cols = randomUserColumns(config, calls, Array.from({ length: B }, () => Math.floor(rand() * 13)));
    if (rand() < 0.5) garbleColumns(cols, rand);
    const pending = survive(t, `encodeColumns #${calls}`, () => model.encodeColumns(cols), codes);
    garbleColumns(cols, rand); // while the call is in flight
    const cands = randomCandidateColumns(config, 'ctr', calls, 1 + Math.floor(rand() * 40));
    if (rand() < 0.5) cands.items[Math.floor(rand() * cands.items.length)] = [-7, 2 ** 31 - 1, 999][Math.floor(rand() * 3)];
    const u = new Float32Array(model.userDim).map(() => rand() - 0.5);
    const scoring = survive(t, `score #${calls}`, () => model.score('ctr', u, cands), codes);
    cands.items.fill(-1); // while the call is in flight
    u.fill(NaN);
    await Promise.all([pending, scoring]);
    calls += 2;
  }
  t.pass(`seed ${SEED}: ${calls} calls; failures by code: ${JSON.stringify(Object.fromEntries(codes))}`);
  model.dispose();
});
