// Request objects → columns: truncation, vocabularies, the gap bucket, query tokens, profile, `now`.
import t from 'tap';
import { resolveConfig } from '../lib/network/config';
import { gapBucket, packCandidates, packUsers, queryTokens } from '../lib/model/features';
import { bucket } from '../lib/model/hashing';
import { UserColumns } from '../lib/model/columns';
import { Model } from '../lib/model/model';
import { referenceEncode } from '../lib/reference/forward';
import { randomTensors } from '../lib/reference/random-model';
import { relError } from './support/compare';

const config = resolveConfig({
  maxSeqLen: 4,
  itemFields: [
    { name: 'item', buckets: 1000, dim: 4 },
    { name: 'shop', buckets: 50, dim: 2 },
  ],
  properties: { types: ['pv', 'buy'], gapBuckets: 6, scenes: ['search'] },
  query: { buckets: 77, dim: 3 },
  profileFields: [{ name: 'age', buckets: 9, dim: 2 }],
  hidden: 5,
  attentionHidden: 3,
  tasks: [
    { name: 'ctr', kind: 'binary', target: ['item', 'shop'], layers: [4] },
    { name: 'l2r', kind: 'rank', target: ['shop'], layers: [3], denseFeatures: 2 },
  ],
});

t.test('gap bucket follows docs/model.md (Inputs) exactly', async (t) => {
  t.equal(gapBucket(1000, 1000, 24), 0);
  t.equal(gapBucket(1000, 2000, 24), 0, 'future behaviours clamp to 0');
  t.equal(gapBucket(60, 0, 24), 1, 'log2(1 + 1) = 1');
  t.equal(gapBucket(59, 0, 24), 0);
  t.equal(gapBucket(180, 0, 24), 2, 'log2(1 + 3) = 2');
  t.equal(gapBucket(179, 0, 24), 1);
  t.equal(gapBucket(1e12, 0, 24), 23, 'clamped to G - 1');
  for (let s = 0; s < 1e6; s += 977) {
    t.equal(gapBucket(s, 0, 24), Math.min(23, Math.floor(Math.log2(1 + s / 60))));
  }
});

t.test('query tokens: NFKC, lower case, white space', async (t) => {
  t.same(queryTokens('  Red  DRESS\tｓｉｌｋ\n', 'q'), ['red', 'dress', 'silk']);
  t.same(queryTokens(['Red', 'x y'], 'q'), ['Red', 'x y'], 'arrays are tokens as they are');
  t.same(queryTokens('', 'q'), []);
  t.same(queryTokens(undefined, 'q'), []);
});

t.test('packing: truncation to the most recent maxSeqLen, vocabularies, now, profile', async (t) => {
  const behaviors = [
    { item: 'a', shop: 1, type: 'pv', time: 100 },
    { item: 'b', shop: 2, type: 'buy', time: 200, scene: 'search' },
    { item: 'c', type: 'cart', time: 300, scene: 'elsewhere' },
    { item: 4, shop: 'x', type: 'pv', time: 400 },
    { item: 'e', shop: 'y', type: 'buy', time: 4000 },
  ];
  const cols = packUsers(config, [{ behaviors, query: 'Red dress', profile: { age: 30 } }, { behaviors: [] }]);
  t.same(Array.from(cols.lengths), [4, 0], 'the oldest behaviour was dropped');
  t.same(Array.from(cols.items), [
    bucket('b', 1000), bucket(2, 50),
    bucket('c', 1000), bucket('', 50),
    bucket('4', 1000), bucket('x', 50),
    bucket('e', 1000), bucket('y', 50),
  ]);
  // now = latest behaviour time (4000): gaps of 3800, 3700, 3600, 0 seconds.
  const gaps = [3800, 3700, 3600, 0].map((g) => gapBucket(g, 0, 6));
  t.same(Array.from(cols.properties), [1, gaps[0], 0, 2, gaps[1], 1, 0, gaps[2], 1, 1, gaps[3], 1], 'type, gap, scene rows');
  t.same(Array.from(cols.queryOffsets), [0, 2, 2]);
  t.same(Array.from(cols.queryTokens), [bucket('red', 77), bucket('dress', 77)]);
  t.same(Array.from(cols.profile), [bucket(30, 9), bucket('', 9)]);

  const withNow = packUsers(config, [{ behaviors, now: 4000 + 60 * 1023 }], { now: 1 });
  t.equal(withNow.properties[10], gapBucket(60 * 1023, 0, 6), "the user's own now wins over the option");
  const optNow = packUsers(config, [{ behaviors }], { now: 4000 + 60 * 3 });
  t.equal(optNow.properties[10], 2, 'options.now applies to users without their own');
});

t.test('candidates: only target fields hashed, dense features carried', async (t) => {
  const c = packCandidates(config, config.tasks[1], [
    { shop: 's1', dense: [0.5, -1] },
    { shop: 7, item: 'ignored', dense: new Float32Array([2, 3]) },
  ]);
  t.same(Array.from(c.items), [0, bucket('s1', 50), 0, bucket(7, 50)]);
  t.same(Array.from(c.dense), [0.5, -1, 2, 3]);
});

t.test('encode(users) matches the float64 reference on columns built by hand, and a columnar caller gets the same U', async (t) => {
  const tensors = randomTensors(config, 5);
  const model = Model.fromTensors(config, tensors, { threads: 1 });
  const users = [
    {
      behaviors: [{ item: 'a', shop: 1, type: 'pv', time: 100 }, { item: 'b', type: 'buy', time: 160, scene: 'search' }],
      query: 'Hello  WORLD',
      profile: { age: 'x' },
    },
    { behaviors: [] },
    { behaviors: [{ item: 7, shop: 's', type: 'fav', time: 0, scene: 'elsewhere' }], query: ['q'], now: 60 * 3 },
  ];
  // The columns written out by hand from docs/model.md (Inputs, Columns), not by packUsers: items in config order (a
  // missing field hashes as ""); properties type, gap, scene with unknown → the vocabulary's length; `now` is
  // the latest behaviour time unless the user gives one; gap = min(G − 1, floor(log2(1 + Δt / 60))).
  const cols: UserColumns = {
    lengths: Int32Array.from([2, 0, 1]),
    items: Int32Array.from([bucket('a', 1000), bucket('1', 50), bucket('b', 1000), bucket('', 50), bucket('7', 1000), bucket('s', 50)]),
    properties: Int32Array.from([
      0, 1, 1, // pv, Δt 60 s → gap 1, no scene → 1
      1, 0, 0, // buy, Δt 0 → gap 0, search → 0
      2, 2, 1, // fav is no type → 2, Δt 180 s → gap 2, unknown scene → 1
    ]),
    queryOffsets: Int32Array.from([0, 2, 2, 3]),
    queryTokens: Int32Array.from([bucket('hello', 77), bucket('world', 77), bucket('q', 77)]),
    profile: Int32Array.from([bucket('x', 9), bucket('', 9), bucket('', 9)]),
  };
  const viaObjects = await model.encode(users);
  const ref = referenceEncode(config, tensors, cols);
  const err = relError(viaObjects, ref.user);
  t.ok(err <= 1e-5, `U rel err ${err.toExponential(2)} against the float64 reference`);
  const viaColumns = await model.encodeColumns(cols);
  t.same(Array.from(viaColumns), Array.from(viaObjects), 'the same columns through encodeColumns give the same U');
  model.dispose();
});
