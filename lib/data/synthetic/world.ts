/**
 * The universe of the synthetic world: items with a category, shop, brand, price level and quality, and the
 * category popularity, topics and sellers behind them. Built once from the universe seed; users, sessions
 * and labels all draw from it.
 */
import { CandidateInput } from '../../model/features';
import { mulberry32, seedFor } from '../../random';
import { clamp, cumulative, normal, pick, Rand, sampleCum } from './random';

export interface UniverseSizes {
  items: number;
  categories: number;
  shops: number;
  brands: number;
  cities: number;
  priceLevels: number;
}

export class Universe {
  readonly sizes: UniverseSizes;
  readonly topics: number;
  readonly catPop: Float64Array;
  readonly catCum: Float64Array;
  readonly catTopic: Int32Array;
  readonly topicCats: Int32Array[];
  /** Interest prior by gender sign (−1, 0, +1 → index 0, 1, 2): popularity^0.7 × gender skew. */
  readonly interestPrior: Float64Array[];
  readonly interestCum: Float64Array[];
  readonly shopsOf: Int32Array[];
  readonly brandsOf: Int32Array[];
  readonly itemCat: Int32Array;
  readonly itemShop: Int32Array;
  readonly itemBrand: Int32Array;
  readonly itemPrice: Int32Array;
  readonly itemQuality: Float64Array;
  readonly itemsOf: Int32Array[];
  /** Position of each item in its category's `itemsOf` list. */
  readonly itemRank: Int32Array;
  /** Within-category popularity weight exp(0.8·quality) and its cumulative sums per category. */
  readonly popWeight: Float64Array;
  readonly popWithinCum: Float64Array[];
  /** Global click popularity of each item: catPop × within-category share. */
  readonly itemPop: Float64Array;
  readonly cityCum: Float64Array;
  private readonly entityIndexes = new Map<string, EntityIndex>();

  constructor(seed: number, sizes: UniverseSizes) {
    this.sizes = sizes;
    const rand = mulberry32(seedFor(seed, 'synthetic.universe'));
    const { items: N, categories: K, shops: S, brands: B, priceLevels: L } = sizes;

    // Categories: Zipf popularity over a random order, a typical price, a gender skew, a topic.
    const order = Array.from({ length: K }, (_, i) => i);
    for (let i = K - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    this.catPop = new Float64Array(K);
    order.forEach((c, rank) => (this.catPop[c] = (rank + 1) ** -0.8));
    const popSum = this.catPop.reduce((s, x) => s + x, 0);
    for (let c = 0; c < K; c++) this.catPop[c] /= popSum;
    this.catCum = cumulative(this.catPop);
    this.topics = Math.max(1, Math.round(K / 10));
    this.catTopic = Int32Array.from({ length: K }, (_, c) => c % this.topics);
    this.topicCats = Array.from({ length: this.topics }, (_, t) => Int32Array.from(order.filter((c) => c % this.topics === t)));
    const catBase = Float64Array.from({ length: K }, () => rand() * (L - 1));
    const catGender = Float64Array.from({ length: K }, () => 0.8 * normal(rand));
    this.interestPrior = [-1, 0, 1].map((g) => Float64Array.from({ length: K }, (_, c) => this.catPop[c] ** 0.7 * Math.exp(catGender[c] * g)));
    this.interestCum = this.interestPrior.map(cumulative);

    // Shops and brands sell in a primary category (more of them in popular ones) and sometimes a related one.
    const sellerCum = cumulative(Float64Array.from(this.catPop, (p) => p ** 0.7));
    const sellers = (count: number): { of: Int32Array[]; tier: Float64Array; size: Float64Array } => {
      const lists: number[][] = Array.from({ length: K }, () => []);
      const tier = new Float64Array(count);
      const size = new Float64Array(count);
      for (let s = 0; s < count; s++) {
        const c = sampleCum(rand, sellerCum);
        lists[c].push(s);
        if (rand() < 0.4) {
          const related = pick(rand, this.topicCats[this.catTopic[c]]);
          if (related !== c) lists[related].push(s);
        }
        tier[s] = 0.8 * normal(rand);
        size[s] = Math.exp(normal(rand));
      }
      // Every category needs a seller, or its items would have none.
      for (let c = 0; c < K; c++) if (lists[c].length === 0) lists[c].push(Math.floor(rand() * count));
      return { of: lists.map((l) => Int32Array.from(l)), tier, size };
    };
    const shops = sellers(S);
    const brands = sellers(B);
    this.shopsOf = shops.of;
    this.brandsOf = brands.of;
    const shopCum = this.shopsOf.map((l) => cumulative(Array.from(l, (s) => shops.size[s])));
    const brandCum = this.brandsOf.map((l) => cumulative(Array.from(l, (b) => brands.size[b])));

    // Items: popular categories hold more items (less than in proportion), each category at least one.
    const itemShareCum = cumulative(Float64Array.from(this.catPop, (p) => p ** 0.6));
    this.itemCat = new Int32Array(N);
    this.itemShop = new Int32Array(N);
    this.itemBrand = new Int32Array(N);
    this.itemPrice = new Int32Array(N);
    this.itemQuality = new Float64Array(N);
    const members: number[][] = Array.from({ length: K }, () => []);
    for (let i = 0; i < N; i++) {
      const c = i < K ? i : sampleCum(rand, itemShareCum);
      const s = this.shopsOf[c][sampleCum(rand, shopCum[c])];
      const b = this.brandsOf[c][sampleCum(rand, brandCum[c])];
      this.itemCat[i] = c;
      this.itemShop[i] = s;
      this.itemBrand[i] = b;
      this.itemPrice[i] = clamp(Math.round(catBase[c] + 0.9 * shops.tier[s] + 0.6 * brands.tier[b] + 0.5 * normal(rand)), 0, L - 1);
      this.itemQuality[i] = normal(rand);
      members[c].push(i);
    }
    this.itemsOf = members.map((m) => Int32Array.from(m));
    this.itemRank = new Int32Array(N);
    for (const list of this.itemsOf) list.forEach((i, k) => (this.itemRank[i] = k));
    this.popWeight = Float64Array.from(this.itemQuality, (q) => Math.exp(0.8 * q));
    this.popWithinCum = this.itemsOf.map((list) => cumulative(Array.from(list, (i) => this.popWeight[i])));
    this.itemPop = new Float64Array(N);
    for (let c = 0; c < K; c++) {
      const total = this.popWithinCum[c][this.popWithinCum[c].length - 1];
      for (const i of this.itemsOf[c]) this.itemPop[i] = (this.catPop[c] * this.popWeight[i]) / total;
    }
    this.cityCum = cumulative(Float64Array.from({ length: sizes.cities }, (_, k) => (k + 1) ** -1));
  }

  /** An item by global popularity: the distribution of noise clicks. */
  samplePopular(rand: Rand): number {
    return this.samplePopularIn(rand, sampleCum(rand, this.catCum));
  }

  /** Within-category popularity share of item i. */
  popWithin(i: number): number {
    const cum = this.popWithinCum[this.itemCat[i]];
    return this.popWeight[i] / cum[cum.length - 1];
  }

  /** Item i drawn from the popular items of category c. */
  samplePopularIn(rand: Rand, c: number): number {
    return this.itemsOf[c][sampleCum(rand, this.popWithinCum[c])];
  }

  /** The candidate of item i restricted to `fields` (all generated fields when omitted). */
  candidate(i: number, fields?: readonly string[]): CandidateInput {
    const all: CandidateInput = { item: i, category: this.itemCat[i], shop: this.itemShop[i], brand: this.itemBrand[i] };
    if (!fields) return all;
    const out: CandidateInput = {};
    for (const f of fields) out[f] = all[f];
    return out;
  }

  /**
   * Entities of a target field list (e.g. shops for `["shop"]`): a dense id per item, and per entity its
   * popularity mass and item count (the history-free parts of the negative sampler's mass). Built once.
   */
  entities(fields: readonly string[]): EntityIndex {
    const name = fields.join(',');
    let index = this.entityIndexes.get(name);
    if (!index) {
      const ids = new Int32Array(this.sizes.items);
      const byKey = new Map<string, number>();
      const pop: number[] = [];
      const count: number[] = [];
      for (let i = 0; i < this.sizes.items; i++) {
        let key = '';
        for (const f of fields) key += `${f === 'item' ? i : f === 'category' ? this.itemCat[i] : f === 'shop' ? this.itemShop[i] : this.itemBrand[i]}|`;
        let id = byKey.get(key);
        if (id === undefined) {
          byKey.set(key, (id = pop.length));
          pop.push(0);
          count.push(0);
        }
        ids[i] = id;
        pop[id] += this.itemPop[i];
        count[id]++;
      }
      // Items grouped by entity (CSR), so per-entity sums touch only that entity's items.
      const start = new Int32Array(count.length + 1);
      for (let e = 0; e < count.length; e++) start[e + 1] = start[e] + count[e];
      const members = new Int32Array(this.sizes.items);
      const fill = start.slice(0, count.length);
      for (let i = 0; i < this.sizes.items; i++) members[fill[ids[i]]++] = i;
      index = { ids, pop: Float64Array.from(pop), count: Int32Array.from(count), start, members };
      this.entityIndexes.set(name, index);
    }
    return index;
  }
}

/** See {@link Universe.entities}. */
export interface EntityIndex {
  ids: Int32Array;
  pop: Float64Array;
  count: Int32Array;
  /** The items of entity e are members[start[e] .. start[e + 1]). */
  start: Int32Array;
  members: Int32Array;
}
