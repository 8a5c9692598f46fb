// The item catalogue: CSV, TSV and JSON Lines with the log readers' column mapping; ids resolve to the same
// scores as the explicit candidates; unknown ids get the empty-attribute row and are counted; the projection
// cache sized for a catalogue leaves scores bit-identical; bad files are refused naming the line and field.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ItemCatalogue, Model, candidateCacheFor, catalogueDense } from '../lib';
import { randomTensors } from '../lib/reference/random-model';
import { resolveConfig } from '../lib/network/config';
import { oddConfig } from './support/configs';
import { rejectsCode, throwsCode } from './support/errors';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dupn-catalogue-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string): string => {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
};

const config = resolveConfig(oddConfig({ bidirectional: true, query: false, profile: false, scene: true, maxSeqLen: 10 }));

t.test('CSV with a header, TSV with a mapping, JSON Lines: the same items', async (t) => {
  const csv = await ItemCatalogue.load(file('items.csv', 'item,category,shop,brand,price\ni1,c1,s1,b1,12.50\ni2,c2,,b2,\n"i,3",7,s3,b3,0\n'));
  t.equal(csv.size, 3);
  t.same(csv.get('i1'), { item: 'i1', category: 'c1', shop: 's1', brand: 'b1', price: 12.5 });
  t.same(csv.get('i2'), { item: 'i2', category: 'c2', brand: 'b2' }, 'empty values are missing');
  t.same(csv.get('i,3'), { item: 'i,3', category: '7', shop: 's3', brand: 'b3', price: 0 });
  const tsv = await ItemCatalogue.load(file('items.tsv', 'x1\tc1\ts1\ti1\nx2\tc2\t\ti2\nx3\t7\ts3\ti,3\n'), { columns: 'item=3,category=1,shop=2', header: false });
  t.same(tsv.get('i1'), { item: 'i1', category: 'c1', shop: 's1' });
  t.same(tsv.get('i2'), { item: 'i2', category: 'c2' });
  const named = await ItemCatalogue.load(file('named.csv', 'id,cat,seller\ni1,c1,z\n'), { columns: 'item=id,category=cat,seller=seller' });
  t.same(named.get('i1'), { item: 'i1', category: 'c1', seller: 'z' }, 'an extra item field');
  const jsonl = await ItemCatalogue.load(file('items.jsonl', '{"item":"i1","category":"c1","shop":"s1","brand":"b1","price":12.5}\n\n{"item":5,"category":null}\n'));
  t.same(jsonl.get('i1'), csv.get('i1'));
  t.same(jsonl.get('5'), { item: '5' });
  const mapped = await ItemCatalogue.load(file('mapped.jsonl', '{"id":"i1","cat":"c1"}\n'), { columns: 'item=id,category=cat' });
  t.same(mapped.get('i1'), { item: 'i1', category: 'c1' });
  t.same(mapped.missingFields(config), ['shop', 'brand']);
});

t.test('ids resolve to the scores of the explicit candidates; unknown ids are counted', async (t) => {
  const items = Array.from({ length: 40 }, (_, i) => ({ item: `i${i}`, category: `c${i % 7}`, shop: `s${i % 5}`, brand: `b${i % 3}` }));
  const catalogue = ItemCatalogue.fromItems(items);
  const tensors = randomTensors(config, 5);
  const plain = Model.fromTensors(config, tensors, { threads: 1 });
  const cached = Model.fromTensors(config, tensors, { threads: 1, candidateCache: candidateCacheFor(catalogue.size) });
  const user = { behaviors: [{ item: 'i3', category: 'c3', shop: 's3', brand: 'b0', type: 'pv', time: 1000 }] };
  const U = await plain.encode([user]);
  const tasks = plain.config.tasks.filter((x) => x.kind === 'binary' || x.kind === 'rank').map((x) => x.name);
  const D = catalogueDense(plain.config, tasks);
  const ids = ['i1', 'nope', 'i7', 'i1', 'i39'];
  const r = catalogue.resolve(ids, D);
  t.equal(r.unknown, 1);
  t.same(r.ids, ids);
  t.same(catalogue.stats, { items: 40, found: 4, unknown: 1 });
  const explicit = ids.map((id) => ({ ...(items.find((x) => x.item === id) ?? { item: id }), dense: new Array<number>(D).fill(0) }));
  const want = await plain.scoreAll(U, explicit, { tasks, user });
  for (const round of [0, 1]) {
    const got = await cached.scoreAll(U, r.candidates, { tasks, user });
    for (const task of tasks) t.same(Array.from(got[task]), Array.from(want[task]), `${task}, round ${round}: bit-identical through the cache`);
  }
  const mixed = catalogue.resolve(['i2', { item: 'i2', category: 'other' }]);
  t.same(mixed.candidates[1], { item: 'i2', category: 'other' }, 'an object is used as given');
  throwsCode(t, () => catalogue.resolve(['i1', 3]), 'E_INPUT', 'candidates[1]');
  t.equal(candidateCacheFor(0), 0);
  t.equal(candidateCacheFor(3000), 4096);
  t.equal(candidateCacheFor(1e9), 1 << 20);
  plain.dispose();
  cached.dispose();
});

t.test('packer: catalogue rows hashed once per model score as the resolved candidates do, for every task set', async (t) => {
  const items = Array.from({ length: 60 }, (_, i) => ({ item: `i${i}`, category: `c${i % 7}`, shop: `s${i % 5}`, ...(i % 4 === 0 ? {} : { brand: `b${i % 3}` }) }));
  const catalogue = ItemCatalogue.fromItems(items);
  const model = Model.fromTensors(config, randomTensors(config, 9), { threads: 1 });
  const user = { behaviors: [{ item: 'i3', category: 'c3', shop: 's3', brand: 'b0', type: 'pv', time: 1000 }, { item: 'i8', type: 'buy', time: 2000 }], now: 3000 };
  const U = await model.encode([user]);
  const explicit = { item: 'x', category: 'c1', shop: 's2', brand: 'b0', dense: [0.5, -1, 2] };
  const request: unknown[] = ['i1', 'nope', explicit, 'i7', 'i1', 'i59', 'i3', 'also-unknown'];
  const before = catalogue.stats;
  const { pack, ids, unknown } = catalogue.packer(request);
  t.equal(unknown, 2);
  t.same(ids, ['i1', 'nope', 'x', 'i7', 'i1', 'i59', 'i3', 'also-unknown']);
  t.same(catalogue.stats, { items: 60, found: before.found + 6, unknown: before.unknown + 2 }, 'counted once, when the request comes');
  for (const tasks of [['ctr', 'l2r'], ['ctr', 'spp', 'plain'], ['l2r'], ['plain'], ['ret'], ['ret1', 'ctr']]) {
    const D = catalogueDense(config, tasks);
    const resolved = request.map((c) => (typeof c === 'string' ? ({ ...(items.find((x) => x.item === c) ?? { item: c }), ...(D > 0 ? { dense: new Array<number>(D).fill(0) } : {}) }) : c));
    const want = await model.scoreAll(U, resolved as never, { tasks, user });
    const got = await model.scoreAll(U, pack(model, tasks, user), { tasks, user });
    for (const task of tasks) t.same(Array.from(got[task]), Array.from(want[task]), `${tasks.join('+')}: ${task} bit-identical`);
  }
  t.equal(catalogue.prepare(model.config), catalogue.prepare(model.config), 'hashed once per config');
  // Errors name the candidate's own place in the request, as model.packCandidates would.
  const bad = catalogue.packer(['i1', 'nope', { item: 'y' }, 'i2']);
  throwsCode(t, () => bad.pack(model, ['l2r'], user), 'E_INPUT', 'candidates[2].dense');
  throwsCode(t, () => bad.pack(model, ['nosuch'], user), 'E_TASK', 'task');
  throwsCode(t, () => catalogue.packer(['i1', 4]), 'E_INPUT', 'candidates[1]');
  model.dispose();
});

t.test('bad files are refused naming the line and the field', async (t) => {
  await rejectsCode(t, () => ItemCatalogue.load(file('p.csv', 'item,price\ni1,3\ni2,abc\n')), 'E_INPUT', 'p.csv:3: column 2 "price" (price)');
  await rejectsCode(t, () => ItemCatalogue.load(file('neg.csv', 'item,price\ni1,-1\n')), 'E_INPUT', 'neg.csv:2');
  await rejectsCode(t, () => ItemCatalogue.load(file('dup.csv', 'item\ni1\ni2\ni1\n')), 'E_INPUT', 'dup.csv:4: item "i1" was already given on line 2');
  await rejectsCode(t, () => ItemCatalogue.load(file('empty.csv', 'item,category\n,c1\n')), 'E_INPUT', 'empty.csv:2: column 1 "item" (item)');
  await rejectsCode(t, () => ItemCatalogue.load(file('cols.csv', 'item,category\ni1\n')), 'E_INPUT', 'cols.csv:2: expected 2 columns');
  await rejectsCode(t, () => ItemCatalogue.load(file('quote.csv', 'item,category\n"i1,c1\n')), 'E_INPUT', 'quote.csv:2');
  await rejectsCode(t, () => ItemCatalogue.load(file('noitem.csv', 'id,category\ni1,c1\n')), 'E_INPUT', 'noitem.csv:1: header: columns.item');
  await rejectsCode(t, () => ItemCatalogue.load(file('user.csv', 'item,user\ni1,u\n')), 'E_INPUT', 'columns.user');
  await rejectsCode(t, () => ItemCatalogue.load(file('x.csv', 'i1,c1\n'), { columns: 'item=0,time=1' }), 'E_INPUT', 'columns.time');
  await rejectsCode(t, () => ItemCatalogue.load(file('h.csv', 'a,b\n'), { columns: 'item=id' }), 'E_INPUT', 'columns.item');
  await rejectsCode(t, () => ItemCatalogue.load(file('nh.csv', 'i1\n'), { header: false }), 'E_INPUT', 'columns');
  await rejectsCode(t, () => ItemCatalogue.load(file('j.jsonl', '{"item":"i1"}\n{"item":"i2",\n')), 'E_INPUT', 'j.jsonl:2: not valid JSON');
  await rejectsCode(t, () => ItemCatalogue.load(file('k.jsonl', '[1]\n')), 'E_INPUT', 'k.jsonl:1: must be a JSON object');
  await rejectsCode(t, () => ItemCatalogue.load(file('l.jsonl', '{"item":"i1","shop":{"a":1}}\n')), 'E_INPUT', 'l.jsonl:1: shop');
  await rejectsCode(t, () => ItemCatalogue.load(file('m.jsonl', '{"category":"c"}\n')), 'E_INPUT', 'm.jsonl:1: item');
  await rejectsCode(t, () => ItemCatalogue.load(file('n.jsonl', '{"item":"i1","price":"x"}\n')), 'E_INPUT', 'n.jsonl:1: price');
  await rejectsCode(t, () => ItemCatalogue.load(file('o.jsonl', '{"item":"i1"}\n'), { columns: 'item=0' }), 'E_INPUT', 'columns.item');
  await rejectsCode(t, () => ItemCatalogue.load(file('max.csv', 'item\na\nb\nc\n'), { maxItems: 2 }), 'E_INPUT', 'max.csv:4: more than maxItems');
  await rejectsCode(t, () => ItemCatalogue.load(path.join(dir, 'missing.csv')), 'E_IO', 'missing.csv');
  throwsCode(t, () => ItemCatalogue.fromItems([{ item: 'a' }, { item: 'a' }]), 'E_INPUT', 'items[1].item');
});
