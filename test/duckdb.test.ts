// DuckDB (lib/data/duckdb.ts): grouping an interleaved log on disk gives the same timelines, in the same order,
// as grouping in memory; `auto` picks it past `maxMemoryRows`; the examples are the same; the temporary folder
// goes away; a Parquet file reads as the CSV it was made from.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readExamples, readTimelines } from '../lib/data';
import { UserTimeline } from '../lib/data/timeline';
import { mulberry32 } from '../lib/random';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dupn-disk-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

// 70 users, 3,000 rows sorted by time (users interleave), day-level ties and a malformed line included.
const rand = mulberry32(3);
const types = ['pv', 'pv', 'pv', 'cart', 'fav', 'buy'];
const rows: string[] = [];
for (let i = 0; i < 3000; i++) {
  const user = Math.floor(rand() * 70);
  rows.push(`${user},${Math.floor(rand() * 400)},${Math.floor(rand() * 30)},${types[Math.floor(rand() * types.length)]},${1511500000 + Math.floor(i / 3) * 60}`);
}
rows.splice(1500, 0, 'not,a,row');
const log = path.join(dir, 'by-time.csv');
fs.writeFileSync(log, rows.join('\n') + '\n');

async function collect(grouping: 'memory' | 'disk', tempDir?: string): Promise<UserTimeline[]> {
  const out: UserTimeline[] = [];
  for await (const tl of readTimelines(log, { grouping, tempDir })) out.push(tl);
  return out;
}

t.test('disk grouping gives the timelines of memory grouping, in the same order', async (t) => {
  const temp = fs.mkdtempSync(path.join(dir, 'tmp-'));
  const memory = await collect('memory');
  const disk = await collect('disk', temp);
  t.equal(disk.length, memory.length, `${memory.length} timelines`);
  t.same(disk.map((x) => x.userId), memory.map((x) => x.userId), 'users in the order they first appear');
  t.same(disk, memory, 'every row of every timeline, sorted by time, file order at ties');
  t.same(fs.readdirSync(temp), [], 'the temporary folder is removed');
});

t.test('auto groups on disk past maxMemoryRows, and the examples are the same', async (t) => {
  const viaMemory = readExamples(log, { grouping: 'memory' });
  const viaAuto = readExamples(log, { maxMemoryRows: 500 });
  const a: unknown[] = [];
  const b: unknown[] = [];
  for await (const ex of viaMemory.examples) a.push(ex);
  for await (const ex of viaAuto.examples) b.push(ex);
  t.equal(viaAuto.report().grouping, 'disk', 'auto chose disk');
  t.equal(viaMemory.report().grouping, 'memory');
  t.ok(a.length > 0, `${a.length} examples`);
  t.same(b, a, 'the same examples in the same order');
  t.equal(viaAuto.report().malformed, 1, 'the malformed line is reported as before');
});

t.test('Parquet: read through DuckDB as text fields, the same examples as the CSV it was made from', async (t) => {
  const header = 'user_id,item_id,category_id,behavior_type,timestamp';
  const clean = path.join(dir, 'clean.csv');
  fs.writeFileSync(clean, [header, ...rows.filter((r) => r !== 'not,a,row')].join('\n') + '\n');
  const parquet = path.join(dir, 'log.parquet');
  const { DuckDBInstance } = require('@duckdb/node-api') as { DuckDBInstance: { create(p: string): Promise<{ connect(): Promise<{ run(sql: string): Promise<unknown> }> }> } };
  const db = await (await DuckDBInstance.create(':memory:')).connect();
  await db.run(`COPY (SELECT * FROM read_csv('${clean}', header = true)) TO '${parquet}' (FORMAT parquet)`);
  const columns = 'user=user_id,item=item_id,category=category_id,type=behavior_type,time=timestamp';
  const fromCsv = readExamples(clean, { columns });
  const fromParquet = readExamples(parquet, { columns });
  const a: unknown[] = [];
  const b: unknown[] = [];
  for await (const ex of fromCsv.examples) a.push(ex);
  for await (const ex of fromParquet.examples) b.push(ex);
  t.ok(a.length > 0, `${a.length} examples`);
  t.same(b, a, 'the same examples');
  t.equal(fromParquet.report().rows, 3000, 'every row');
  t.equal(fromParquet.report().grouping, 'memory', 'an interleaved Parquet file is grouped like a CSV one');
  const missing = readExamples(path.join(dir, 'nope.parquet'), { columns });
  await t.rejects(async () => {
    for await (const _ of missing.examples) void _;
  }, { code: 'E_IO' }, 'a file DuckDB cannot read: E_IO');
});
