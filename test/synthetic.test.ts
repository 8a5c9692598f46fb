// The synthetic generator: deterministic by seed, the sizes asked for, every task labelled with valid labels
// and oracles, inputs the model accepts, the planted structure measurable, and day 2 in the same universe.
import t from 'tap';
import { resolveConfig, ResolvedConfig } from '../lib/network/config';
import { SyntheticOptions, SyntheticRecord, synthesize, synthesizeWithOracle } from '../lib/data/synthetic';
import { GRADES, LabelledCandidate, TrainingExample } from '../lib/data/training-example';
import { evaluate, oracleScorer, popularityScorer } from '../lib/eval/evaluate';
import { packCandidates, packUsers } from '../lib/model/features';
import { throwsCode } from './support/errors';

const config = resolveConfig({});

function records(options: Partial<SyntheticOptions> & { seed: number; users: number }): SyntheticRecord[] {
  return [...synthesizeWithOracle({ config, ...options })];
}

function candidates(ex: TrainingExample, task: string): LabelledCandidate[] {
  const l = ex.labels[task];
  if (!Array.isArray(l)) throw new Error(`${task} is not a candidate list`);
  return l;
}

// Records as plain JSON (oracles as arrays), for whole-output comparisons.
function plain(rs: SyntheticRecord[]): string {
  return JSON.stringify(rs.map((r) => ({ ...r, oracle: Object.fromEntries(Object.entries(r.oracle).map(([k, v]) => [k, Array.from(v)])) })));
}

t.test('deterministic by seed; another seed gives other data', async (t) => {
  const a = records({ seed: 5, users: 40, examplesPerUser: 2 });
  const b = records({ seed: 5, users: 40, examplesPerUser: 2 });
  t.equal(plain(a), plain(b), 'two runs are identical');
  const c = records({ seed: 6, users: 40, examplesPerUser: 2 });
  t.not(plain(a), plain(c), 'another seed differs');
  const examples = [...synthesize({ seed: 5, users: 40, examplesPerUser: 2, config })];
  t.equal(JSON.stringify(examples), JSON.stringify(a.map((r) => r.example)), 'synthesize = synthesizeWithOracle without the oracle');
  // A user's examples depend on that user alone, not on who was generated before.
  const shard = records({ seed: 5, users: 10, firstUser: 30, examplesPerUser: 2 });
  t.equal(plain(shard), plain(a.slice(60)), 'users 30..39 generated alone are the same');
});

t.test('sizes, ids, histories and times', async (t) => {
  const rs = records({ seed: 1, users: 50, examplesPerUser: 3, firstUser: 100 });
  t.equal(rs.length, 150, 'users × examplesPerUser');
  t.same([...new Set(rs.map((r) => r.example.userId))], Array.from({ length: 50 }, (_, i) => `u${100 + i}`), 'user ids in order');
  t.equal(new Set(rs.map((r) => `${r.example.userId}@${r.example.time}`)).size, 150, '(user, time) is unique');
  const start = 1_699_920_000;
  let bad = 0;
  let empty = 0;
  for (const { example: ex } of rs) {
    const bs = ex.user.behaviors;
    if (ex.user.now !== ex.time) bad++;
    if (ex.time < start + 14 * 86_400 || ex.time >= start + 15 * 86_400) bad++;
    if (bs.length > config.maxSeqLen) bad++;
    if (bs.length === 0) empty++;
    for (let i = 0; i < bs.length; i++) {
      if (bs[i].time >= ex.time || (i > 0 && bs[i].time < bs[i - 1].time)) bad++;
      if (!['pv', 'fav', 'cart', 'buy'].includes(bs[i].type) || !['search', 'recommend', 'ads'].includes(bs[i].scene ?? '')) bad++;
    }
  }
  t.equal(bad, 0, 'now = cut time on the example day; histories ≤ maxSeqLen, time-ordered, before the cut, valid types and scenes');
  t.ok(empty < 10, `few empty histories (${empty})`);
  const mean = rs.reduce((s, r) => s + r.example.user.behaviors.length, 0) / rs.length;
  t.ok(mean > 20 && mean <= config.maxSeqLen, `histories have substance (mean length ${mean.toFixed(1)})`);
  // A user's later cut sees everything the earlier one saw.
  const [first, second] = [rs[0].example, rs[1].example];
  const seen = new Set(second.user.behaviors.map((b) => `${b.time}/${b.item}/${b.type}`));
  t.ok(first.user.behaviors.slice(-10).every((b) => seen.has(`${b.time}/${b.item}/${b.type}`)), 'later cut extends the earlier history');

  const short = resolveConfig({ maxSeqLen: 12 });
  t.ok([...synthesize({ seed: 1, users: 20, config: short })].every((e) => e.user.behaviors.length <= 12), 'maxSeqLen respected');
  t.equal([...synthesize({ seed: 1, users: 0, config })].length, 0, 'zero users');
  t.equal([...synthesize({ seed: 1, users: 5, examplesPerUser: 0, config })].length, 0, 'zero examples per user');
});

t.test('every task labelled, labels and oracles valid, inputs accepted by the model', async (t) => {
  const rs = records({ seed: 2, users: 60, examplesPerUser: 2 });
  const problems: string[] = [];
  let queries = 0;
  for (const { example: ex, oracle } of rs) {
    if (Object.keys(ex.labels).sort().join() !== 'ctr,l2r,ppp,spp') problems.push('tasks');
    for (const task of ['ctr', 'spp']) {
      const list = candidates(ex, task);
      if (list.length !== 5 || list.filter((c) => c.label === 1).length !== 1 || list.some((c) => c.label !== 0 && c.label !== 1)) problems.push(`${task} labels`);
      if (oracle[task].length !== list.length || oracle[task].some((p) => !(p >= 0 && p <= 1))) problems.push(`${task} oracle`);
    }
    for (const c of candidates(ex, 'ctr')) if (Object.keys(c.candidate).sort().join() !== 'brand,category,item,shop') problems.push('ctr candidate fields');
    for (const c of candidates(ex, 'spp')) if (Object.keys(c.candidate).join() !== 'shop') problems.push('spp candidate fields');
    const positiveShop = candidates(ex, 'spp').find((c) => c.label === 1)?.candidate.shop;
    if (candidates(ex, 'spp').some((c) => c.label === 0 && c.candidate.shop === positiveShop)) problems.push('spp negatives are other shops');
    const list = candidates(ex, 'l2r');
    if (list.length !== 10 || list.some((c) => !Number.isInteger(c.label) || c.label < GRADES.none || c.label > GRADES.buy)) problems.push('l2r grades');
    if (oracle.l2r.length !== 10 || oracle.l2r.some((x) => !Number.isFinite(x))) problems.push('l2r oracle');
    const ppp = ex.labels.ppp;
    if (typeof ppp !== 'number' || !Number.isInteger(ppp) || ppp < 0 || ppp >= 7) problems.push('ppp class');
    const sum = oracle.ppp.reduce((s, p) => s + p, 0);
    if (oracle.ppp.length !== 7 || Math.abs(sum - 1) > 1e-9) problems.push('ppp oracle');
    if (Object.keys(ex.user.profile ?? {}).join() !== 'age,gender,power,city') problems.push('profile');
    if (ex.user.query !== undefined) queries++;
  }
  t.same(problems, [], 'every task labelled; no invalid label, oracle or profile');
  t.ok(queries > 0.2 * rs.length && queries < 0.6 * rs.length, `search requests carry a query (${queries}/${rs.length})`);

  // The model's input layer takes them as they are.
  const users = packUsers(config, rs.map((r) => r.example.user));
  t.equal(users.lengths.length, rs.length);
  const ctr = config.tasks.find((x) => x.name === 'ctr')!;
  const spp = config.tasks.find((x) => x.name === 'spp')!;
  t.equal(packCandidates(config, ctr, candidates(rs[0].example, 'ctr').map((c) => c.candidate)).items.length, 5 * 4);
  t.equal(packCandidates(config, spp, candidates(rs[0].example, 'spp').map((c) => c.candidate)).items.length, 5 * 4);
});

t.test('configs: other task sets, classes, dense features, no query, universe sizes', async (t) => {
  const custom: ResolvedConfig = resolveConfig({
    maxSeqLen: 30,
    query: null,
    profileFields: [{ name: 'gender', buckets: 8, dim: 4 }],
    tasks: [
      { name: 'click', kind: 'binary', target: ['item', 'category'] },
      { name: 'rank', kind: 'rank', target: ['item'], denseFeatures: 4 },
      { name: 'price', kind: 'multiclass', classes: 3 },
      { name: 'cat', kind: 'binary', target: ['category'] },
    ],
  });
  const rs = [...synthesizeWithOracle({ seed: 3, users: 30, config: custom, negatives: 2, listSize: 6, items: 3000, categories: 60, shops: 200, brands: 100 })];
  const problems: string[] = [];
  for (const { example: ex, oracle } of rs) {
    if (ex.user.query !== undefined) problems.push('query without a query input');
    if (Object.keys(ex.user.profile ?? {}).join() !== 'gender') problems.push('profile fields follow the config');
    if (candidates(ex, 'click').length !== 3) problems.push('negatives option');
    const rank = candidates(ex, 'rank');
    if (rank.length !== 6 || rank.some((c) => (c.candidate.dense as number[] | undefined)?.length !== 4)) problems.push('dense features');
    if (typeof ex.labels.price !== 'number' || ex.labels.price > 2 || oracle.price.length !== 3) problems.push('3 classes');
    const cat = candidates(ex, 'cat');
    const positiveCat = cat.find((c) => c.label === 1)?.candidate.category;
    if (cat.some((c) => Object.keys(c.candidate).join() !== 'category' || (c.label === 0 && c.candidate.category === positiveCat))) problems.push('category targets');
    for (const c of candidates(ex, 'click')) if ((c.candidate.item as number) >= 3000 || (c.candidate.category as number) >= 60) problems.push('universe sizes');
  }
  t.same(problems, [], 'custom config honoured');
  t.equal(rs.length, 30);
});

t.test('bad options are refused', async (t) => {
  throwsCode(t, () => synthesize({ seed: 1.5, users: 1, config }), 'E_INPUT', 'options.seed');
  throwsCode(t, () => synthesize({ seed: 1, users: -1, config }), 'E_INPUT', 'options.users');
  throwsCode(t, () => synthesize({ seed: 1, users: 1, config, items: 10, categories: 20 }), 'E_INPUT', 'options.items');
  throwsCode(t, () => synthesize({ seed: 1, users: 1, config, drift: -1 }), 'E_INPUT', 'options.drift');
  throwsCode(t, () => synthesize({ seed: 1, users: 1, config: {} as ResolvedConfig }), 'E_INPUT', 'options.config');
  throwsCode(t, () => [...synthesize({ seed: 1, users: 1, config, items: 5, categories: 1, shops: 1 })], 'E_INPUT', 'spp', 'one shop: no negative shop to draw');
  const odd = resolveConfig({
    itemFields: [
      { name: 'item', buckets: 100, dim: 4 },
      { name: 'icon', buckets: 100, dim: 4 },
    ],
    tasks: [{ name: 'fifp', kind: 'binary', target: ['icon'] }],
  });
  throwsCode(t, () => synthesize({ seed: 1, users: 1, config: odd }), 'E_CONFIG', 'tasks[0].target');
});

t.test('planted structure: the oracle beats popularity; types, scenes, recency, profile and query carry signal', async (t) => {
  const train = records({ seed: 9, users: 500, examplesPerUser: 2 });
  const test = records({ seed: 9, users: 500, firstUser: 500, examplesPerUser: 2 });
  const examples = test.map((r) => r.example);
  const oracle = await evaluate(oracleScorer(test), examples, config);
  const pop = await evaluate(popularityScorer(train.map((r) => r.example), { config }), examples, config);
  for (const task of ['ctr', 'spp', 'l2r']) {
    t.ok(oracle.tasks[task].auc > 0.8, `${task}: oracle AUC ${oracle.tasks[task].auc.toFixed(3)} > 0.8`);
    t.ok(oracle.tasks[task].auc > pop.tasks[task].auc + 0.15, `${task}: oracle AUC well above popularity ${pop.tasks[task].auc.toFixed(3)}`);
    t.ok(oracle.tasks[task].gauc! > pop.tasks[task].gauc! + 0.15, `${task}: oracle GAUC ${oracle.tasks[task].gauc!.toFixed(3)} vs ${pop.tasks[task].gauc!.toFixed(3)}`);
    t.ok(oracle.tasks[task].logloss < pop.tasks[task].logloss, `${task}: oracle log-loss lower`);
  }
  t.ok(oracle.tasks.l2r.ndcg10! > pop.tasks.l2r.ndcg10! + 0.15, `l2r: NDCG@10 ${oracle.tasks.l2r.ndcg10!.toFixed(3)} vs ${pop.tasks.l2r.ndcg10!.toFixed(3)}`);
  t.ok(oracle.tasks.ppp.accuracy! > pop.tasks.ppp.accuracy! + 0.2, `ppp: accuracy ${oracle.tasks.ppp.accuracy!.toFixed(3)} vs prior ${pop.tasks.ppp.accuracy!.toFixed(3)}`);
  t.ok(oracle.tasks.ppp.logloss < pop.tasks.ppp.logloss - 0.3, 'ppp: oracle log-loss well below the prior');

  // Per behaviour, how often it points at what comes next: by type (next purchase's shop), by scene and
  // by recency (next click's category). This is what property-gated attention can learn to weigh.
  const rate = (hit: (ex: TrainingExample, b: TrainingExample['user']['behaviors'][number], i: number) => boolean, keep: (b: TrainingExample['user']['behaviors'][number], i: number, n: number) => boolean): number => {
    let hits = 0;
    let n = 0;
    for (const ex of examples) {
      ex.user.behaviors.forEach((b, i, all) => {
        if (!keep(b, i, all.length)) return;
        n++;
        if (hit(ex, b, i)) hits++;
      });
    }
    return hits / n;
  };
  const nextShop = (ex: TrainingExample) => candidates(ex, 'spp').find((c) => c.label === 1)!.candidate.shop;
  const nextCat = (ex: TrainingExample) => candidates(ex, 'ctr').find((c) => c.label === 1)!.candidate.category;
  const shopHit = (ex: TrainingExample, b: { shop?: unknown }) => b.shop === nextShop(ex);
  const catHit = (ex: TrainingExample, b: { category?: unknown }) => b.category === nextCat(ex);
  const bought = rate(shopHit, (b) => b.type === 'buy' || b.type === 'cart');
  const viewed = rate(shopHit, (b) => b.type === 'pv');
  t.ok(bought > 2 * viewed, `buys/carts name the next purchase's shop more often than page views (${bought.toFixed(3)} vs ${viewed.toFixed(3)})`);
  const search = rate(catHit, (b) => b.scene === 'search');
  const ads = rate(catHit, (b) => b.scene === 'ads');
  t.ok(search > 2 * ads, `search behaviours predict the next click's category better than ads (${search.toFixed(3)} vs ${ads.toFixed(3)})`);
  const recent = rate(catHit, (_b, i, n) => i >= (3 * n) / 4);
  const old = rate(catHit, (_b, i, n) => i < n / 4);
  t.ok(recent > 1.2 * old, `recent behaviours predict better than old ones (${recent.toFixed(3)} vs ${old.toFixed(3)})`);

  // Purchase power (profile) goes with the price level of the next purchase.
  const meanLevel = (power: number): number => {
    const xs = examples.filter((e) => e.user.profile?.power === power).map((e) => e.labels.ppp as number);
    return xs.reduce((s, x) => s + x, 0) / xs.length;
  };
  t.ok(meanLevel(4) > meanLevel(0) + 1, `price level rises with purchase power (${meanLevel(0).toFixed(2)} → ${meanLevel(4).toFixed(2)})`);

  // A query that names a category names the next click's category.
  const named = examples.filter((e) => typeof e.user.query === 'string' && /\bc\d+\b/.test(e.user.query));
  t.ok(named.length > 50, `${named.length} queries name a category`);
  t.ok(
    named.every((e) => (e.user.query as string).split(' ').includes(`c${nextCat(e)}`)),
    'the named category is the clicked one',
  );
});

t.test('day 2: same universe and users, history continues, tastes drift', async (t) => {
  const long = resolveConfig({ maxSeqLen: 1000 });
  const day0 = [...synthesize({ seed: 4, users: 40, config: long })];
  const day1 = [...synthesize({ seed: 4, users: 40, config: long, day: 1 })];
  const start = 1_699_920_000;
  t.ok(day1.every((e, i) => e.time >= start + 15 * 86_400 && e.time < start + 16 * 86_400 && e.userId === day0[i].userId), 'day 1 cuts fall on the next day, same users');
  t.ok(day1.every((e, i) => JSON.stringify(e.user.profile) === JSON.stringify(day0[i].user.profile)), 'same profiles');
  // Calendar days 1..13 are history of both: the very same behaviours.
  const window = (e: TrainingExample) =>
    JSON.stringify(e.user.behaviors.filter((b) => b.time >= start + 86_400 && b.time < start + 14 * 86_400));
  t.ok(day0.every((e, i) => window(e) === window(day1[i])), 'overlapping history is identical');
  const continued = day1.filter((e) => e.user.behaviors.some((b) => b.time >= start + 14 * 86_400 && b.time < start + 15 * 86_400)).length;
  t.ok(continued > day1.length / 3, `day 1 histories include day 0's own behaviours (${continued}/${day1.length})`);

  // One universe: an item has the same category, shop and brand everywhere, also under another seed.
  const other = [...synthesize({ seed: 77, universeSeed: 4, users: 40, config: long, day: 1 })];
  const attrs = new Map<unknown, string>();
  let conflicts = 0;
  for (const e of [...day0, ...day1, ...other]) {
    const all = [...e.user.behaviors, ...candidates(e, 'ctr').map((c) => c.candidate), ...candidates(e, 'l2r').map((c) => c.candidate)];
    for (const b of all) {
      const a = `${b.category}/${b.shop}/${b.brand}`;
      if (attrs.has(b.item) && attrs.get(b.item) !== a) conflicts++;
      attrs.set(b.item, a);
    }
  }
  t.equal(conflicts, 0, 'item attributes agree across days and seeds');
  t.not(JSON.stringify(other), JSON.stringify(day1), 'another seed: other behaviours');
  t.ok(other.every((e, i) => JSON.stringify(e.user.profile) === JSON.stringify(day1[i].user.profile)), 'universeSeed keeps the users');

  // Tastes drift: far-apart days have less in common than near days (categories of interest sessions).
  const cats = (day: number) =>
    [...synthesize({ seed: 4, users: 60, config: resolveConfig({ maxSeqLen: 40 }), day, drift: 0.1 })].map(
      (e) => new Set(e.user.behaviors.filter((b) => b.type !== 'pv').map((b) => b.category)),
    );
  const overlap = (a: Set<unknown>[], b: Set<unknown>[]): number => {
    let inter = 0;
    let union = 0;
    a.forEach((s, i) => {
      const u = new Set([...s, ...b[i]]);
      union += u.size;
      inter += [...s].filter((x) => b[i].has(x)).length;
    });
    return inter / union;
  };
  const d0 = cats(0);
  const near = overlap(d0, cats(1));
  const far = overlap(d0, cats(40));
  t.ok(far < near, `interests drift (Jaccard of acted-on categories: next day ${near.toFixed(2)}, 40 days on ${far.toFixed(2)})`);
});

t.test('price oracle: a class holding all the mass stays a probability (the demo world where it summed to 1 + 2 ulp)', async (t) => {
  const over: number[] = [];
  for (const r of synthesizeWithOracle({ config, seed: 2, universeSeed: 1, users: 2000, firstUser: 3000 })) for (const p of r.oracle.ppp) if (!(p >= 0 && p <= 1)) over.push(p);
  t.same(over, [], 'every ppp oracle probability in [0, 1]');
});
