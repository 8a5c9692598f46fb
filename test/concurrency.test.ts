// Many concurrent calls on shared models must give exactly the serial results: the thread pool, the
// per-thread scratch and the latency/throughput modes may not leak state between calls.
import t from 'tap';
import { resolveConfig } from '../lib/network/config';
import { Model } from '../lib/model/model';
import { mulberry32, randomCandidateColumns, randomTensors, randomUserColumns } from '../lib/reference/random-model';

const config = resolveConfig({
  maxSeqLen: 60,
  itemFields: [
    { name: 'item', buckets: 3001, dim: 16 },
    { name: 'category', buckets: 200, dim: 8 },
    { name: 'shop', buckets: 100, dim: 4 },
    { name: 'brand', buckets: 50, dim: 4 },
  ],
  query: { buckets: 300, dim: 8 },
  hidden: 40,
  attentionHidden: 20,
});

t.test('concurrent encode/score/predict on two models equal serial results bit for bit', async (t) => {
  const a = Model.fromTensors(config, randomTensors(config, 1, 0.3), { threads: 2 });
  const b = Model.fromTensors(config, randomTensors(config, 2, 0.3), { threads: 1 });
  const rand = mulberry32(77);
  const jobs = Array.from({ length: 60 }, (_, i) => {
    const B = [1, 1, 2, 3, 8, 33, 64][i % 7];
    const lengths = Array.from({ length: B }, () => Math.floor(rand() * 61));
    return { model: i % 3 === 0 ? b : a, cols: randomUserColumns(config, 1000 + i, lengths), cands: randomCandidateColumns(config, 'ctr', i, 1 + (i % 5) * 150) };
  });
  const serial = jobs.map((j) => {
    const u = j.model.encodeColumnsSync(j.cols);
    return { u, s: j.model.scoreSync('ctr', u.subarray(0, j.model.userDim), j.cands), p: j.model.predictFromVectorsSync('ppp', u) };
  });
  for (let round = 0; round < 3; round++) {
    const concurrent = await Promise.all(
      jobs.map(async (j) => {
        const u = await j.model.encodeColumns(j.cols);
        const [s, p] = await Promise.all([j.model.score('ctr', u.subarray(0, j.model.userDim), j.cands), j.model.predictFromVectors('ppp', u)]);
        return { u, s, p };
      }),
    );
    let diffs = 0;
    concurrent.forEach((c, i) => {
      const r = serial[i];
      for (const [x, y] of [[c.u, r.u], [c.s, r.s], [c.p, r.p]] as const) {
        for (let k = 0; k < x.length; k++) if (!Object.is(x[k], y[k])) diffs++;
      }
    });
    t.equal(diffs, 0, `round ${round}: 60 concurrent jobs match the serial results exactly`);
  }
  a.dispose();
  b.dispose();
});

t.test("async calls never occupy libuv's thread pool (file I/O stays responsive under load)", async (t) => {
  const m = Model.fromTensors(config, randomTensors(config, 3, 0.3), { threads: 1 });
  const cols = randomUserColumns(config, 5, new Array<number>(2048).fill(60));
  const fs = await import('node:fs/promises');
  // 8 long calls > libuv's 4 threads. Were they run there, every step of a file read (open, stat, read,
  // close) would queue behind them, and the read could not finish before at least 4 of them had (each step
  // waits for a free thread). The assertion is about order, not milliseconds; it allows a few calls to win
  // the race on a busy machine, where the event loop itself may be late to see the read.
  const settled: string[] = [];
  const load = Array.from({ length: 8 }, (_, i) => m.encodeColumns(cols).then(() => settled.push(`call ${i}`)));
  await fs.readFile(__filename);
  settled.push('readFile');
  await Promise.all(load);
  const at = settled.indexOf('readFile');
  t.ok(at < 4, `the file read finished before 4 of the 8 queued calls had (order: ${settled.slice(0, at + 1).join(', ')}, …)`);
  m.dispose();
});
