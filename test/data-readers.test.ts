// Training-data readers: Taobao CSV, column-mapped TSV, JSON Lines, timelines, example labels, time split.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { resolveConfig } from '../lib/network/config';
import {
  ExampleBuilder,
  LogRow,
  TrainingExample,
  dayToTime,
  defaultValidFrom,
  groupTimelines,
  readExamples,
  readJsonl,
  readLogBatches,
  readLogRows,
  splitByTime,
  timelineStats,
  writeJsonl,
} from '../lib/data';
import { LabelledCandidate } from '../lib/data/training-example';
import { MalformedLog } from '../lib/data/lines';
import { rejectsCode } from './support/errors';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dupn-data-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string): string => {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
};
async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const taobao = file(
  'taobao.csv',
  [
    '1,100,10,pv,1000',
    '1,101,10,pv,900', // earlier than the row above: the block must be sorted
    '1,102,11,cart,1000', // same time as line 1: stays after it
    '1,103,11,pv,abc', // 4: bad time
    '2,200,20,pv,1000',
    '2,201,20', // 6: missing columns
    '2,,20,pv,1200', // 7: empty item
    '2,202,21,buy,1300',
    '1,104,10,pv,1500', // user 1 again after user 2: a new block
    '1,105,10,pv,1400',
  ].join('\n') + '\n',
);

t.test('Taobao layout: rows, unsorted blocks, a reappearing user, malformed lines', async (t) => {
  const stats = { lines: 0, rows: 0, unknownTypes: 0 };
  const bad = new MalformedLog(taobao);
  const tl = timelineStats();
  const timelines = await collect(groupTimelines(readLogBatches(taobao, {}, stats, bad), tl));
  t.same(
    timelines.map((x) => [x.userId, x.rows.map((r) => r.line)]),
    [
      ['1', [2, 1, 3]],
      ['2', [5, 8]],
      ['1', [10, 9]],
    ],
    'grouped by consecutive user, sorted stably by time',
  );
  t.same(timelines[0].rows[0], { userId: '1', item: '101', category: '10', type: 'pv', time: 900, line: 2 });
  t.equal(stats.rows, 7);
  t.equal(stats.lines, 10);
  t.equal(tl.users, 3);
  t.equal(tl.reappeared, 1, 'user 1 reappearing is counted');
  t.equal(bad.count, 3);
  t.same(
    bad.first.map((m) => m.line),
    [4, 6, 7],
  );
  t.match(bad.first[0].problem, /column 5 \(time\).*"abc"/);
  t.match(bad.first[1].problem, /expected 5 columns, got 3/);
  t.match(bad.first[2].problem, /column 2 \(item\): empty item id/);

  const src = readExamples(taobao, { minHistory: 1 });
  await collect(src.examples);
  const r = src.report();
  // User 1 comes back after user 2: the file is not grouped by user, so its rows are grouped in memory.
  t.same([r.rows, r.users, r.malformed, r.reappearedUsers, r.grouping, r.complete], [7, 2, 3, 0, 'memory', true]);
  const streamed = readExamples(taobao, { minHistory: 1, grouping: 'stream' });
  await collect(streamed.examples);
  const s = streamed.report();
  t.same([s.users, s.reappearedUsers, s.grouping], [3, 1, 'stream'], 'grouping "stream" keeps consecutive blocks and counts the reappearance');
  t.same(
    r.firstMalformed.map((m) => m.line),
    [4, 6, 7],
  );
});

t.test('strict mode: the first malformed line is fatal and named', async (t) => {
  await rejectsCode(t, () => collect(readExamples(taobao, { strict: true }).examples), 'E_INPUT', `${taobao}:4: column 5 (time)`);
  const odd = file('types.csv', '1,1,1,pv,10\n1,2,1,click,20\n');
  const lenient = readExamples(odd);
  await collect(lenient.examples);
  t.equal(lenient.report().unknownTypes, 1, 'an unknown type is kept and counted');
  t.equal(lenient.report().malformed, 0);
  await rejectsCode(t, () => collect(readExamples(odd, { strict: true }).examples), 'E_INPUT', `${odd}:2: column 4 (type): unknown behaviour type "click"`);
  await rejectsCode(t, () => collect(readExamples(path.join(dir, 'missing.csv')).examples), 'E_IO', 'missing.csv');
});

const tsv = file(
  'tmall.tsv',
  [
    'user_id\titem_id\tcat_id\tmerchant_id\tbrand_id\ttime_stamp\taction_type\tprice',
    'u1\ti1\tc1\tm1\tb1\t1110\t0\t',
    'u1\ti2\tc1\tm1\t\t1111\t0\t',
    'u1\ti3\tc2\tm2\tb2\t1111\t2\t129.5',
    'u1\ti4\tc2\tm2\tb2\t1109\t3\t',
    'u1\ti5\tc3\tm3\tb3\t1112\t1\t',
    'u1\ti6\tc3\tm3\tb3\t1340\t0\t', // 7: month 13
    'u1\ti7\tc3\tm3\tb3\t1112\t0\t-4', // 8: negative price
  ].join('\n'),
);
const tmallOptions = {
  columns: 'user=user_id,item=item_id,category=cat_id,shop=merchant_id,brand=brand_id,type=action_type,day=time_stamp,price=price',
  types: { '0': 'pv', '1': 'cart', '2': 'buy', '3': 'fav' },
  minHistory: 1,
};
const noon = (m: number, d: number): number => Date.UTC(2015, m - 1, d, 12) / 1000;

t.test('TSV with a header, a column mapping, day-level dates, shop and brand', async (t) => {
  t.equal(dayToTime('1111'), noon(11, 11));
  t.equal(dayToTime('20171203'), Date.UTC(2017, 11, 3, 12) / 1000);
  t.equal(dayToTime('2017-02-29'), undefined, 'not a leap year');
  const bad = new MalformedLog(tsv);
  const rows: LogRow[] = await collect(readLogRows(tsv, tmallOptions, undefined, bad));
  t.equal(rows.length, 5);
  t.same(rows[0], { userId: 'u1', item: 'i1', category: 'c1', shop: 'm1', brand: 'b1', type: 'pv', time: noon(11, 10), line: 2, dayLevel: true });
  t.notOk('brand' in rows[1], 'an empty brand is missing');
  t.same([rows[2].type, rows[2].price, rows[3].type, rows[4].type], ['buy', 129.5, 'fav', 'cart']);
  t.same(
    bad.first.map((m) => [m.line, m.problem]),
    [
      [7, 'column 6 "time_stamp" (day): not a date (MMDD, YYYYMMDD or YYYY-MM-DD), got "1340"'],
      [8, 'column 8 "price" (price): price must be a number >= 0, got "-4"'],
    ],
  );

  const examples = await collect(readExamples(tsv, tmallOptions).examples);
  // Sorted: i4 (11-09), i1 (11-10), i2 + i3 (11-11, file order), i5 (11-12). A day-level log's rows of one day
  // are spread one second apart in file order, so i3 (same day as i2, after it) is a cut of its own.
  t.same(
    examples.map((e) => e.time),
    [noon(11, 10), noon(11, 11), noon(11, 11) + 1, noon(11, 12)],
  );
  t.same(examples[2].user.behaviors.map((b) => b.item), ['i4', 'i1', 'i2'], 'the cut within a day sees the earlier row of that day');
  const e = examples[1];
  t.same(
    e.user.behaviors.map((b) => b.item),
    ['i4', 'i1'],
    'history is strictly before the cut',
  );
  t.equal(e.user.now, noon(11, 11));
  const ctr = e.labels['ctr'] as LabelledCandidate[];
  t.same(ctr[0], { candidate: { item: 'i2', category: 'c1', shop: 'm1' }, label: 1 });
  t.equal(e.labels['ppp'], 3, 'price 129.5 reaches the levels 10, 31.6 and 100');
  const spp = e.labels['spp'] as LabelledCandidate[];
  t.same(spp[0], { candidate: { shop: 'm1' }, label: 1 });
  t.ok(spp.slice(1).every((c) => c.label === 0 && c.candidate['shop'] !== 'm1' && c.candidate['shop'] !== 'm2'), 'negative shops exclude the horizon');
  t.same(
    (e.labels['l2r'] as LabelledCandidate[]).filter((c) => c.label > 0),
    [
      { candidate: { item: 'i2', category: 'c1', shop: 'm1' }, label: 1 },
      { candidate: { item: 'i3', category: 'c2', shop: 'm2', brand: 'b2' }, label: 4 },
    ],
  );
  t.notOk('ppp' in examples[3].labels, 'no purchase in the horizon: no price label');

  await rejectsCode(
    t,
    () => collect(readExamples(tsv, { ...tmallOptions, columns: 'user=user_id,item=item_id,day=time_stamp,shop=seller_id' }).examples),
    'E_INPUT',
    'columns.shop names "seller_id"',
  );
});

t.test('labels on a hand-made timeline', async (t) => {
  const config = resolveConfig();
  const b = new ExampleBuilder(config, { minHistory: 2, maxExamplesPerUser: Infinity, horizonSeconds: 1000, negatives: 3, priceThresholds: [10, 100], seed: 7 });
  const row = (userId: string, item: string, type: string, time: number, shop: string, line: number, price?: number): LogRow => {
    const r: LogRow = { userId, item, category: `c${item}`, shop, type, time, line };
    if (price !== undefined) r.price = price;
    return r;
  };
  const popular = ['p1', 'p2', 'p3', 'p4', 'p5', 'p6'].map((it, k) => row('u0', it, 'pv', k, `s${it}`, k + 1));
  b.build({ userId: 'u0', rows: popular, firstLine: 1 });
  const rows = [
    row('u1', 'i1', 'pv', 100, 's1', 10),
    row('u1', 'i2', 'pv', 200, 's2', 11),
    row('u1', 'i3', 'pv', 300, 's3', 12),
    row('u1', 'i3', 'buy', 400, 's3', 13, 50),
    row('u1', 'i4', 'fav', 500, 's4', 14),
    row('u1', 'i5', 'pv', 5000, 's5', 15),
  ];
  const ex = b.build({ userId: 'u1', rows, firstLine: 10 });
  t.same(
    ex.map((e) => e.time),
    [300, 400, 500, 5000],
  );
  const first = ex[0];
  t.same(first.user, {
    behaviors: [
      { type: 'pv', time: 100, item: 'i1', category: 'ci1', shop: 's1' },
      { type: 'pv', time: 200, item: 'i2', category: 'ci2', shop: 's2' },
    ],
    now: 300,
  });
  const ctr = first.labels['ctr'] as LabelledCandidate[];
  t.same(ctr[0], { candidate: { item: 'i3', category: 'ci3', shop: 's3' }, label: 1 }, 'the next item is the positive');
  t.equal(ctr.length, 4);
  const negItems = ctr.slice(1).map((c) => c.candidate.item);
  t.ok(
    ctr.slice(1).every((c) => c.label === 0),
    'negatives are 0',
  );
  t.notOk(
    negItems.some((i) => i === 'i3' || i === 'i4'),
    'negatives exclude everything acted on in the horizon',
  );
  t.equal(new Set(negItems).size, 3, 'negatives are distinct');
  const l2r = first.labels['l2r'] as LabelledCandidate[];
  t.same(
    l2r.slice(0, 2).map((c) => [c.candidate.item, c.label]),
    [
      ['i3', 4],
      ['i4', 2],
    ],
    'graded by the best behaviour',
  );
  t.ok(l2r.slice(2).every((c) => c.label === 0 && c.candidate.item !== 'i3' && c.candidate.item !== 'i4'));
  t.equal(first.labels['ppp'], 1, 'price 50: level 1 of thresholds [10, 100]');
  t.same((first.labels['spp'] as LabelledCandidate[])[0], { candidate: { shop: 's3' }, label: 1 });
  t.same(
    (ex[3].labels['ctr'] as LabelledCandidate[])[0].candidate.item,
    'i5',
  );
  t.notOk('ppp' in ex[3].labels);

  // At most maxExamplesPerUser cuts, spread over the timeline, and the same ones for the same seed.
  const long = Array.from({ length: 100 }, (_, k) => row('u2', `x${k}`, 'pv', 1000 * k, 's', 100 + k));
  const cutsOf = (seed: number): number[] =>
    new ExampleBuilder(config, { seed, maxExamplesPerUser: 8 }).build({ userId: 'u2', rows: long, firstLine: 100 }).map((e) => e.time / 1000);
  const cuts = cutsOf(1);
  t.equal(cuts.length, 8);
  // minHistory 1 (the default): the eligible cuts are behaviours 1 … 99.
  t.ok(cuts.every((c, k) => c >= 1 + (99 * k) / 8 && c < 1 + (99 * (k + 1)) / 8), `one cut per stratum: ${cuts.join(',')}`);
  t.equal(new ExampleBuilder(config, { seed: 1 }).build({ userId: 'u2', rows: long, firstLine: 100 }).length, 64, 'at most 64 cuts by default');
  t.same(cutsOf(1), cuts, 'deterministic by seed');
});

function synthetic(users: number, perUser: number, seed = 1): string {
  let s = seed;
  const rnd = (): number => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const types = ['pv', 'pv', 'pv', 'pv', 'cart', 'fav', 'buy'];
  const day0 = Date.UTC(2017, 10, 25) / 1000;
  const parts: string[] = [];
  for (let u = 0; u < users; ++u) {
    for (let k = 0; k < perUser; ++k) {
      const item = Math.floor(rnd() * rnd() * 5000);
      parts.push(`${u + 1},${item},${item % 97},${types[Math.floor(rnd() * types.length)]},${day0 + Math.floor(rnd() * 4 * 86400)}\n`);
    }
  }
  return parts.join('');
}

t.test('JSON Lines: write, read back identical; malformed lines reported', async (t) => {
  const src = readExamples(file('rt.csv', synthetic(20, 40)));
  const original = await collect(src.examples);
  t.ok(original.length > 50);
  const out = path.join(dir, 'examples.jsonl');
  t.equal(await writeJsonl(out, src.examples), original.length);
  t.same(
    fs.readdirSync(dir).filter((f) => f.includes('.tmp-')),
    [],
    'no temporary file left',
  );
  const back = readExamples(out, { config: resolveConfig() });
  const readBack = await collect(back.examples);
  t.same(readBack[0], original[0]);
  t.equal(JSON.stringify(readBack), JSON.stringify(original), 'identical after the round trip');
  t.same([back.report().rows, back.report().malformed, back.report().users], [original.length, 0, 20]);

  const good = JSON.stringify(original[0]);
  const broken = file(
    'broken.jsonl',
    [good, '{"user": ', JSON.stringify({ ...original[0], time: 'x' }), '', '[]', JSON.stringify({ ...original[0], labels: { ctr: 3 } }), good].join('\n'),
  );
  const r = readExamples(broken, { config: resolveConfig() });
  t.equal((await collect(r.examples)).length, 2);
  const rep = r.report();
  t.same(
    rep.firstMalformed.map((m) => m.line),
    [2, 3, 5, 6],
  );
  t.match(rep.firstMalformed[0].problem, /invalid JSON/);
  t.match(rep.firstMalformed[1].problem, /^time: must be a finite number/);
  t.match(rep.firstMalformed[3].problem, /labels\.ctr: task "ctr" is binary/);
  await rejectsCode(t, () => collect(readJsonl(broken, { strict: true })), 'E_INPUT', `${broken}:2: invalid JSON`);
  // A failing source leaves no file behind.
  const failing = (async function* (): AsyncGenerator<TrainingExample> {
    yield original[0];
    throw new Error('source broke');
  })();
  await t.rejects(writeJsonl(path.join(dir, 'never.jsonl'), failing), /source broke/);
  t.notOk(fs.existsSync(path.join(dir, 'never.jsonl')));
  t.same(
    fs.readdirSync(dir).filter((f) => f.includes('.tmp-')),
    [],
  );
});

t.test('re-reading is deterministic; the split is by time', async (t) => {
  const p = file('det.csv', synthetic(30, 60, 3) + `999,1,1,pv,${Date.UTC(2017, 11, 20) / 1000}\n`);
  const src = readExamples(p, { seed: 5 });
  // Compared as JSON text: tap's deep comparison is slow on a few hundred examples.
  const text = async (it: AsyncIterable<TrainingExample>): Promise<string> => JSON.stringify(await collect(it));
  const a = await collect(src.examples);
  t.ok(a.length > 100);
  t.equal(await text(src.examples), JSON.stringify(a), 'the same iterable twice');
  t.equal(await text(readExamples(p, { seed: 5 }).examples), JSON.stringify(a), 'a new reader');
  t.not(await text(readExamples(p, { seed: 6 }).examples), JSON.stringify(a), 'another seed');

  const validFrom = await defaultValidFrom(p);
  t.equal(validFrom, Date.UTC(2017, 10, 28) / 1000, 'start of the last day, ignoring the stray row on 12-20');
  const { train, validation } = splitByTime(src.examples, validFrom);
  const tr = await collect(train);
  const va = await collect(validation);
  t.equal(tr.length + va.length, a.length);
  t.ok(tr.length > 0 && va.length > 0);
  t.ok(tr.every((e) => e.time < validFrom) && va.every((e) => e.time >= validFrom));
});

t.test('a large file streams with a small buffer', async (t) => {
  const p = file('big.csv', synthetic(2000, 100, 9));
  const src = readExamples(p, { maxExamplesPerUser: 4 });
  let n = 0;
  for await (const e of src.examples) if (e.user.behaviors.length >= 1) n++;
  const r = src.report();
  t.same([r.rows, r.users, r.malformed, r.examples, n], [200_000, 2000, 0, 8000, 8000]);
  t.ok(r.maxRowsHeld < 20_000, `at most ${r.maxRowsHeld} rows held at once`);
});
