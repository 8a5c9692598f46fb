// Logs as they come (issue 10, reading): users interleaved by time, the time forms logs have, sessions
// without users, numeric behaviour codes, and splits that leak nothing of the validation period into training.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ExampleBuilder, isHeldOutUser, isoToTime, readExamples, readLogRows, splitByUser } from '../lib/data';
import { LabelledCandidate, TrainingExample } from '../lib/data/training-example';
import { LogRow } from '../lib/data/csv-log';
import { resolveConfig } from '../lib/network/config';
import { mulberry32 } from '../lib/random';
import { bucket } from '../lib/model/hashing';
import { Model } from '../lib/model/model';
import { EntityStats } from '../lib/eval/baselines';
import { SUCCESSOR_WINDOW } from '../lib/model/successors';
import { SUCCESSORS_UNUSED, successorNames } from '../lib/network/tensors';
import { ROOT } from './support/child';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dupn-logs-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const file = (name: string, lines: string[]): string => {
  const p = path.join(dir, name);
  fs.writeFileSync(p, lines.join('\n') + '\n');
  return p;
};
async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}
const key = (e: TrainingExample): string => `${e.userId}@${e.time}:${e.user.behaviors.map((b) => b.item).join(',')}`;

// 30 users × 20 behaviours, in Taobao's layout; rows grouped by user, and the same rows sorted by time.
const rand = mulberry32(5);
const rows: [string, string, string, string, number][] = [];
for (let u = 0; u < 30; u++) {
  let time = 1_511_000_000 + Math.floor(rand() * 5000);
  for (let k = 0; k < 20; k++) {
    time += 1 + Math.floor(rand() * 4000);
    rows.push([`u${u}`, `i${Math.floor(rand() * 60)}`, `c${Math.floor(rand() * 7)}`, rand() < 0.8 ? 'pv' : 'buy', time]);
  }
}
const byUser = file('by-user.csv', rows.map((r) => r.join(',')));
const byTime = file('by-time.csv', [...rows].sort((a, b) => a[4] - b[4]).map((r) => r.join(',')));

t.test('a log sorted by time (users interleaved) gives the same examples as the same log grouped by user', async (t) => {
  const grouped = readExamples(byUser, { seed: 3 });
  const interleaved = readExamples(byTime, { seed: 3 });
  const a = (await collect(grouped.examples)).map(key).sort();
  const b = (await collect(interleaved.examples)).map(key).sort();
  t.ok(a.length > 0);
  t.same(b, a, `${b.length} examples, the same cuts and histories`);
  t.equal(grouped.report().grouping, 'stream');
  t.equal(interleaved.report().grouping, 'memory');
  t.equal(interleaved.report().users, 30);
  const streamed = readExamples(byTime, { grouping: 'stream' });
  await collect(streamed.examples);
  t.ok(streamed.report().reappearedUsers > 0, 'forcing "stream" on it shows the reappearances instead');
});

t.test('time forms: ISO date-times, milliseconds, month + day, a date plus an offset, none (file order)', async (t) => {
  t.equal(isoToTime('2017-11-25'), Date.UTC(2017, 10, 25) / 1000);
  t.equal(isoToTime('2017-11-25T08:30:00Z'), Date.UTC(2017, 10, 25, 8, 30) / 1000);
  t.equal(isoToTime('2017-11-25 08:30:00.5'), Date.UTC(2017, 10, 25, 8, 30) / 1000 + 0.5);
  t.equal(isoToTime('2017-11-25T08:30:00+08:00'), Date.UTC(2017, 10, 25, 0, 30) / 1000);
  t.equal(isoToTime('2017-02-30'), undefined);
  t.equal(isoToTime('25/11/2017'), undefined);

  const iso = file('iso.csv', ['user,item,when', 'a,x,2017-11-25T08:30:00Z', 'a,y,2017-11-25 09:00:00', 'a,z,soon']);
  const got: LogRow[] = [];
  const bad: string[] = [];
  const m = { add: (_line: number, problem: string) => bad.push(problem), count: 0, first: [], strict: false };
  for await (const r of readLogRows(iso, { columns: 'user=user,item=item,time=when' }, undefined, m as never)) got.push(r);
  t.same(got.map((r) => r.time), [Date.UTC(2017, 10, 25, 8, 30) / 1000, Date.UTC(2017, 10, 25, 9) / 1000]);
  t.match(bad[0], /time must be a number .* or an ISO date-time, got "soon"/);

  const ms = file('ms.csv', ['1,x,1511544070500', '1,y,1511544071250.5']);
  t.same((await collect(readLogRows(ms, { columns: 'user=0,item=1,time=2', timeUnit: 'ms' }))).map((r) => r.time), [1511544070.5, 1511544071.2505]);

  // Tmall: separate month and day columns, numeric action codes, a header.
  const tmall = file('tmall.csv', ['user_id,item_id,month,day,action', 'u,i1,11,09,0', 'u,i2,11,11,2', 'u,i3,02,30,0']);
  const tm = await collect(readLogRows(tmall, { columns: 'user=user_id,item=item_id,month=month,day=day,type=action', types: { '0': 'pv', '2': 'buy' }, year: 2014 }));
  t.same(tm.map((r) => [r.time, r.type, r.dayLevel]), [[Date.UTC(2014, 10, 9, 12) / 1000, 'pv', true], [Date.UTC(2014, 10, 11, 12) / 1000, 'buy', true]], 'Feb 30 is malformed');

  // Diginetica: a session's date plus the milliseconds since it began; the session is the user.
  const dg = file('dg.csv', ['session_id;user_id;item_id;timeframe;eventdate', '1;NA;81766;526309;2016-05-09', '1;NA;31331;1031018;2016-05-09']);
  const d = await collect(readLogRows(dg, { columns: 'user=session_id,item=item_id,day=eventdate,offset=timeframe', delimiter: ';' }));
  t.same(d.map((r) => [r.userId, r.time, r.dayLevel]), [['1', Date.UTC(2016, 4, 9) / 1000 + 526.309, undefined], ['1', Date.UTC(2016, 4, 9) / 1000 + 1031.018, undefined]]);

  // No time column: the file order, a minute a row (so the time-gap buckets count steps back).
  const order = file('order.csv', ['s1,a', 's1,b', 's2,c']);
  t.same((await collect(readLogRows(order, { columns: 'user=0,item=1' }))).map((r) => r.time), [60, 120, 180]);
});

t.test('the sequences layout of the sequential-recommendation benchmarks: a user id and its items per line', async (t) => {
  const seq = file('seq.txt', ['1 10 11 12', '', '2\t11  13', '3', '4 10 10 14 15']);
  const bad: string[] = [];
  const m = { add: (line: number, problem: string) => bad.push(`${line}: ${problem}`), count: 0, first: [], strict: false };
  const got = await collect(readLogRows(seq, { format: 'sequences' }, undefined, m as never));
  t.same(got.map((r) => [r.userId, r.item, r.time / 60, r.line, r.type]), [
    ['1', '10', 1, 1, 'pv'], ['1', '11', 2, 1, 'pv'], ['1', '12', 3, 1, 'pv'],
    ['2', '11', 4, 3, 'pv'], ['2', '13', 5, 3, 'pv'],
    ['4', '10', 6, 5, 'pv'], ['4', '10', 7, 5, 'pv'], ['4', '14', 8, 5, 'pv'], ['4', '15', 9, 5, 'pv'],
  ], 'white space splits, the file order is the time (a minute an item), a blank line is skipped');
  t.same(bad, ['4: no items after the user id']);
  const csv = file('seq.csv', ['u1,a,b', 'u2,,c']);
  const bad2: string[] = [];
  const m2 = { add: (line: number, problem: string) => bad2.push(`${line}: ${problem}`), count: 0, first: [], strict: false };
  t.same((await collect(readLogRows(csv, { format: 'sequences', delimiter: ',' }, undefined, m2 as never))).map((r) => r.item), ['a', 'b']);
  t.same(bad2, ['2: field 2 (item): empty item id']);
  t.throws(() => readExamples(seq, { format: 'sequences', columns: 'user=0,item=1' }), { code: 'E_INPUT' });
  const loo = await collect(readExamples(seq, { format: 'sequences', leaveOneOut: 'test' }).examples);
  t.same(loo.map((e) => [e.userId, e.user.behaviors.map((b) => b.item).join(' ')]), [['1', '10 11'], ['2', ''], ['4', '10 10 14']].filter(([u]) => u !== '2'),
    'leave-one-out: the last item of each user with 3 or more tests');
});

t.test('day-level rows of one user and day are spread in file order, so a day-level log has cuts within a day', async (t) => {
  const day = file('days.csv', ['u,a,1111', 'u,b,1111', 'u,c,1111', 'u,d,1112']);
  const ex = await collect(readExamples(day, { columns: 'user=0,item=1,day=2' }).examples);
  const noon = Date.UTC(2015, 10, 11, 12) / 1000;
  t.same(ex.map((e) => e.time), [noon + 1, noon + 2, noon + 86_400]);
  t.same(ex.map((e) => e.user.behaviors.map((b) => b.item).join('')), ['a', 'ab', 'abc']);
});

t.test('trainBefore: training cuts draw negatives from before the split only, and their horizon ends there', async (t) => {
  const config = resolveConfig({});
  const split = 10_000;
  const row = (user: string, item: string, time: number, line: number): LogRow => ({ userId: user, item, type: 'pv', time, line });
  const builder = new ExampleBuilder(config, { trainBefore: split, negatives: 6, seed: 2 });
  // Items n… appear only after the split; before it the catalogue is o0 … o9.
  const timelines = [
    { userId: 'v', rows: [...Array.from({ length: 10 }, (_, k) => row('v', `o${k}`, 100 + k, k + 1)), ...Array.from({ length: 30 }, (_, k) => row('v', `n${k}`, split + k, k + 11))], firstLine: 1 },
    { userId: 'w', rows: Array.from({ length: 12 }, (_, k) => row('w', `o${k % 10}`, split - 20 + 2 * k, k + 41)), firstLine: 41 },
  ];
  const examples = timelines.flatMap((tl) => builder.build(tl));
  const training = examples.filter((e) => e.time < split);
  t.ok(training.length > 0 && examples.some((e) => e.time >= split));
  const leaked = training.flatMap((e) => (e.labels['ctr'] as LabelledCandidate[]).map((c) => String(c.candidate['item']))).filter((i) => i.startsWith('n'));
  t.same(leaked, [], 'no item of the validation period is a training negative or label');
  const l2rLate = training.flatMap((e) => (e.labels['l2r'] as LabelledCandidate[]).filter((c) => c.label > 0).map((c) => String(c.candidate['item']))).filter((i) => i.startsWith('n'));
  t.same(l2rLate, [], 'a training horizon stops at the split');
});

t.test('leave-one-out: the last behaviour tests, the second-last validates, training sees neither', async (t) => {
  const byUserRows = new Map<string, typeof rows>();
  for (const r of rows) byUserRows.set(r[0], [...(byUserRows.get(r[0]) ?? []), r]);
  const train = await collect(readExamples(byUser, { leaveOneOut: 'train' }).examples);
  const valid = await collect(readExamples(byUser, { leaveOneOut: 'valid' }).examples);
  const test = await collect(readExamples(byUser, { leaveOneOut: 'test' }).examples);
  t.equal(valid.length, 30);
  t.equal(test.length, 30);
  let leaks = 0;
  for (const e of valid) {
    const mine = byUserRows.get(String(e.userId))!;
    t.equal((e.labels['ctr'] as LabelledCandidate[])[0].candidate['item'], mine[18][1], `${e.userId}: valid target is the second-last item`);
    t.equal(e.user.behaviors.length, 18);
  }
  for (const e of test) {
    const mine = byUserRows.get(String(e.userId))!;
    t.equal((e.labels['ctr'] as LabelledCandidate[])[0].candidate['item'], mine[19][1]);
    t.equal(e.user.behaviors.length, 19, 'the test history includes the validation behaviour');
  }
  for (const e of train) {
    const mine = byUserRows.get(String(e.userId))!;
    if (e.time >= mine[18][4]) leaks++;
    const horizonTimes = (e.labels['l2r'] as LabelledCandidate[]).filter((c) => c.label > 0).map((c) => String(c.candidate['item']));
    // An item acted on in the held-out rows may appear earlier too; its time decides.
    for (const item of horizonTimes) if (!mine.slice(0, 18).some((r) => r[1] === item)) leaks++;
  }
  t.equal(leaks, 0, `${train.length} training examples, none cut at or labelled from the held-out behaviours`);
});

t.test('split by user: a hash of the id decides, and held-out users feed no training negative', async (t) => {
  const config = resolveConfig({});
  const ids = Array.from({ length: 40 }, (_, u) => `user${u}`);
  const held = ids.filter((id) => isHeldOutUser(id, 0.5));
  t.ok(held.length > 5 && held.length < 35, `${held.length} of 40 held out at share 0.5`);
  t.same(ids.filter((id) => isHeldOutUser(id, 0.5)), held, 'the same users every time');
  const builder = new ExampleBuilder(config, { validUsers: 0.5, negatives: 5, seed: 1 });
  const examples = ids.flatMap((id, u) =>
    builder.build({ userId: id, rows: Array.from({ length: 12 }, (_, k) => ({ userId: id, item: `${held.includes(id) ? 'h' : 'o'}${(u + k) % 30}`, type: 'pv', time: 100 + k, line: u * 12 + k + 1 })), firstLine: u * 12 + 1 }),
  );
  const { train, validation } = splitByUser(
    { async *[Symbol.asyncIterator]() { yield* examples; } },
    0.5,
  );
  const tr = await collect(train);
  const va = await collect(validation);
  t.ok(tr.length > 0 && va.length > 0);
  t.ok(va.every((e) => held.includes(String(e.userId))) && tr.every((e) => !held.includes(String(e.userId))));
  const fromHeld = tr.flatMap((e) => (e.labels['ctr'] as LabelledCandidate[]).map((c) => String(c.candidate['item']))).filter((i) => i.startsWith('h'));
  t.same(fromHeld, [], 'no training label or negative comes from a held-out user');
});

const CLI = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');
const cli = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 300_000 });

t.test('dupn train reads a Tmall-like and a session log with flags only, and reports what it read', { skip: !fs.existsSync(CLI) && 'dist/ is not built (npm run compile)' }, async (t) => {
  const tmallRows = ['user_id,item_id,cat_id,merchant_id,brand_id,month,day,action,age_range,gender,province'];
  for (let u = 0; u < 25; u++) for (let k = 0; k < 12; k++) tmallRows.push(`${u},${(u * 3 + k) % 40},${k % 6},${k % 9},${k % 5},11,${String(1 + (k >> 1)).padStart(2, '0')},${k % 5 === 4 ? 2 : k % 7 === 3 ? 3 : 0},1,0,x`);
  const tmall = file('tmall-like.csv', tmallRows);
  const out = path.join(dir, 'm.safetensors');
  const small = path.join(dir, 'small.json');
  fs.writeFileSync(small, JSON.stringify({ model: { itemFields: [{ name: 'item', buckets: 101, dim: 8 }, { name: 'category', buckets: 11, dim: 4 }, { name: 'shop', buckets: 13, dim: 4 }, { name: 'brand', buckets: 7, dim: 4 }], hidden: 16, attentionHidden: 8 } }));
  const r = cli(['train', '--data', tmall, '--config', small, '--out', out, '--no-progress', '--columns', 'user=user_id,item=item_id,category=cat_id,shop=merchant_id,brand=brand_id,month=month,day=day,type=action', '--types', '0=pv,1=cart,2=buy,3=fav', '--year', '2014']);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stderr, /tmall-like\.csv: 300 rows, 25 users, \d+ examples/);
  t.match(r.stdout, /^score [\d.]+ \(best so far: model saved\)$/m, 'a log trains with early stopping by default');
  t.match(r.stdout, /^saved .*; the model of epoch \d+, the best on validation\)$/m, 'and keeps the best epoch');
  t.match(r.stdout, /^test \(the validation period, less the users the epoch was chosen on\):$/m);
  // Resumed after it stopped early: nothing left to train, and the best (calibrated) model file is kept as it is.
  const before = fs.readFileSync(out);
  const again = cli(['train', '--data', tmall, '--config', small, '--out', out, '--no-progress', '--resume', '--columns', 'user=user_id,item=item_id,category=cat_id,shop=merchant_id,brand=brand_id,month=month,day=day,type=action', '--types', '0=pv,1=cart,2=buy,3=fav', '--year', '2014']);
  t.equal(again.status, 0, again.stderr);
  t.match(again.stdout, /^kept .*m\.safetensors \(the run had stopped early at the best epoch \d+; nothing left to train\)$/m);
  t.ok(fs.readFileSync(out).equals(before), 'the model file is unchanged');
  for (const b of ['popularity', 'recent', 'successors', 'rules']) t.match(r.stdout, new RegExp(`^\\s+${b}\\s+\\d+`, 'm'), `the validation table has the ${b} baseline`);
  t.match(r.stdout, /next item \(task ctr\): \d+ cases over a catalogue of \d+/, 'and the next-item table');
  t.match(r.stdout, /^model:next\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+$/m, 'the retrieval head a log model gets is in the next-item table');
  t.match(r.stdout, /^model:next − recent \(paired, ± one standard error\): HR@20 [+−][\d.]+ ± [\d.]+, MRR@20 /m, 'beside its paired difference from "recently seen"');
  // The saved prior is the training period's popularity (days 1-5; day 6 validates): log(count / 250) per bucket.
  const counts = new Map<number, number>();
  for (let u = 0; u < 25; u++) for (let k = 0; k < 10; k++) {
    const b = bucket(String((u * 3 + k) % 40), 101);
    counts.set(b, (counts.get(b) ?? 0) + 1);
  }
  const saved = await Model.load(out);
  const prior = saved.weights.get('head.next.prior')!;
  // The successor table holds the training period's sequential-rules weights (days 1-5), by bucket.
  const next = saved.config.tasks.find((x) => x.name === 'next');
  t.same(next?.kind === 'retrieval' && next.successors, { items: 40, perItem: 32 }, 'the default retrieval head gets a successor table with a row per item');
  const rules = new EntityStats(['item'], ['item'], SUCCESSOR_WINDOW);
  for (let u = 0; u < 25; u++) rules.add(Array.from({ length: 10 }, (_, k) => String((u * 3 + k) % 40)));
  const want = new Map<string, number>();
  for (const [a, row] of rules.rules) for (const [c, w] of row) want.set(`${bucket(a, 101)} ${bucket(c, 101)}`, (want.get(`${bucket(a, 101)} ${bucket(c, 101)}`) ?? 0) + w);
  const names = successorNames('next');
  const [from, to, weight] = [saved.weights.get(names.from)!, saved.weights.get(names.to)!, saved.weights.get(names.weight)!];
  let slots = 0;
  const off: string[] = [];
  for (let r = 0; r < from.length && from[r] !== SUCCESSORS_UNUSED; r++) {
    for (let j = r * 32; j < (r + 1) * 32; j++) {
      if (weight[j] === 0) continue;
      slots++;
      if (Math.abs(weight[j] - (want.get(`${from[r]} ${to[j]}`) ?? -1)) > 1e-4) off.push(`${from[r]} → ${to[j]}: ${weight[j]}`);
    }
  }
  t.same(off, [], 'every stored successor weighs what the training period gave it');
  t.equal(slots, Math.min(want.size, 40 * 32), 'and every transition of the training period is stored');
  saved.dispose();
  const wrong = [...counts].filter(([b, n]) => Math.abs(prior[b] - Math.log(n / 250)) > 1e-6);
  t.same(wrong, [], 'head.next.prior holds log(count / total) of the training period');
  t.ok([...prior].every((v, b) => counts.has(b) || v < Math.log(1 / 250)), 'buckets no training item hashes to are below every counted share');
  const validFrom = String(Date.UTC(2014, 10, 5) / 1000);
  const ev = cli(['eval', '--model', out, '--data', tmall, '--json', '--valid-from', validFrom, '--columns', 'user=user_id,item=item_id,category=cat_id,shop=merchant_id,brand=brand_id,month=month,day=day,type=action', '--types', '0=pv,1=cart,2=buy,3=fav', '--year', '2014']);
  t.equal(ev.status, 0, ev.stderr);
  const j = JSON.parse(ev.stdout) as Record<string, { tasks?: Record<string, { auc: number }>; scorers?: Record<string, { hr: number }> }>;
  t.ok(j['recent']?.tasks?.['ctr'] && j['nextItem']?.scorers?.['model:next'], 'eval --valid-from: the baselines and the next-item report');

  const sessions = ['session_id;user_id;item_id;timeframe;eventdate'];
  for (let s = 0; s < 40; s++) for (let k = 0; k < 4; k++) sessions.push(`${s};NA;${(s * 5 + k * 3) % 30};${k * 40_000 + (s % 3)};2016-05-${String(1 + (s % 9)).padStart(2, '0')}`);
  // Interleave the sessions as an event log would.
  const shuffled = [sessions[0], ...sessions.slice(1).sort((a, b) => Number(a.split(';')[3]) - Number(b.split(';')[3]))];
  const dg = file('sessions.csv', shuffled);
  const d = cli(['train', '--data', dg, '--config', small, '--out', out, '--no-progress', '--delimiter', ';', '--columns', 'user=session_id,item=item_id,day=eventdate,offset=timeframe']);
  t.equal(d.status, 0, d.stderr);
  t.match(d.stderr, /sessions\.csv: 160 rows, 40 users \(not grouped by user: grouped in memory\), \d+ examples/);

  // A new model on a log without a settings file: tables sized from the distinct ids, not the paper's 170 MiB.
  const sizedOut = path.join(dir, 'sized.safetensors');
  const sized = cli(['train', '--data', byUser, '--out', sizedOut, '--no-progress', '--no-next-item', '--max-steps', '2']);
  t.equal(sized.status, 0, sized.stderr);
  t.match(sized.stderr, /tables sized from the data .*item: 60 ids → 4096 buckets × 16 \(\d+\.\d rows per id, under 64\); category: 7 ids → 512 buckets/);
  const bytes = fs.statSync(sizedOut).size;
  t.ok(bytes < 16 * 2 ** 20, `the model file is ${(bytes / 2 ** 20).toFixed(1)} MiB`);
  const sizedModel = await Model.load(sizedOut);
  t.same(sizedModel.config.itemFields.map((f) => f.dim), [16, 16, 8, 8], 'a sparse log: the item table 16 wide, the others as the paper');
  sizedModel.dispose();
  // A dense log (every item in 70 rows) keeps the paper's 32.
  const dense: string[] = [];
  for (let r = 0; r < 140; r++) dense.push(`u${r % 20},it${r % 2},c${r % 2},pv,${1_700_000_000 + r * 60}`);
  const denseOut = path.join(dir, 'dense.safetensors');
  const wide = cli(['train', '--data', file('dense.csv', dense), '--out', denseOut, '--no-progress', '--no-next-item', '--max-steps', '1']);
  t.equal(wide.status, 0, wide.stderr);
  t.match(wide.stderr, /item: 2 ids → 128 buckets; /);
  const wideModel = await Model.load(denseOut);
  t.equal(wideModel.config.itemFields[0].dim, 32, 'a dense log: the item table keeps 32');
  wideModel.dispose();

  const loo = cli(['train', '--data', byUser, '--out', sizedOut, '--no-progress', '--split', 'leave-one-out', '--max-steps', '2']);
  t.equal(loo.status, 0, loo.stderr);
  t.match(loo.stdout, /test \(the last behaviour of each user\):\nnext item \(task ctr\): \d+ cases/);

  const byUserSplit = cli(['train', '--data', byUser, '--out', sizedOut, '--no-progress', '--split', 'user', '--max-steps', '2']);
  t.equal(byUserSplit.status, 0, byUserSplit.stderr);
  t.match(byUserSplit.stderr, /validation: the users whose id hashes into the held-out 10%/);

  const none = file('garbage.csv', ['a;b;c', 'd;e;f']);
  const g = cli(['train', '--data', none, '--config', small, '--out', out, '--no-progress']);
  t.equal(g.status, 1);
  t.match(g.stderr, /^dupn: E_INPUT: .*garbage\.csv: all 2 data lines are malformed .*line 1: expected 5 columns/m, 'all rows malformed is said as such, with the first lines');
  const empty = file('empty.csv', []);
  const e = cli(['train', '--data', empty, '--config', small, '--out', out, '--no-progress']);
  t.equal(e.status, 1, 'an empty file is refused');
  t.match(e.stderr, /^dupn: E_INPUT: .*empty\.csv: no data rows \(the file is empty, or holds a header only\)/m);
});
