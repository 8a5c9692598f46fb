/**
 * Synthetic behaviour data with planted structure and known ground truth (SPEC §5), for tests, the demo and
 * benchmarks. Deterministic by seed, any size, lazy (one user's history in memory at a time).
 *
 * The world, in short:
 * - A universe of items, each with a category, shop, brand, price level and quality. Categories have a
 *   popularity (Zipf), a typical price and a gender skew, and fall into topics of about ten; shops and
 *   brands sell in one or two related categories and have a price tier that moves their items' prices.
 * - Users with a profile (age band, gender, purchase power, city) and latent tastes: a price preference that
 *   follows purchase power (itself from age and city tier), and 2–6 interest slots, each a category with a
 *   weight, a favourite shop and brand, and either purchase intent or mere window shopping (browsed at
 *   higher prices, liked, never bought). Interests drift: slots are replaced at random times, often by a
 *   related category (a Poisson process with its own random stream, so a user's tastes at a given moment
 *   are the same whichever day is generated).
 * - Sessions drawn from the tastes of their moment. An interest session is short: a few page views by a
 *   personal utility (quality, price match, favourite shop and brand) and, with purchase intent, often a
 *   cart and a buy. A noise session is a long scroll through popular items of a popular category. Ads
 *   sessions are mostly noise, search sessions rarely. So a buy or cart is strong evidence of what the user
 *   will buy and at what price, a page view weak, recent behaviour beats old, and the scene matters — the
 *   distinctions property-gated attention can learn.
 * - At each cut (a request), labels are drawn from the tastes at that moment: the next clicked item with
 *   sampled negatives (binary tasks targeting `item`), a shown list with graded reactions pv < fav < cart
 *   < buy (rank tasks), the price level of the next purchase (multiclass tasks), and the shop — or whatever
 *   the target fields name — of the next purchase with sampled negatives (other binary tasks). Negatives and
 *   shown lists come partly from the categories of the user's own history, so telling them from the
 *   positive takes more than "seen before". Search requests carry a query naming the topic and often the
 *   category of the click.
 *
 * The oracle of each example is the generator's own probability for every labelled candidate, given the
 * tastes and what the request shows (its query), and the true class distribution for multiclass tasks. It
 * is calibrated, and a ceiling for models: it knows the tastes a model has to infer from the history.
 */
import { ResolvedConfig, TaskConfig } from '../config';
import { DupnError, describe } from '../errors';
import { BehaviorInput, CandidateInput, UserInput } from '../features';
import { mulberry32, seedFor } from '../random';
import { GRADES, LabelledCandidate, TrainingExample } from './example';

/** Universe sizes used when {@link SyntheticOptions} does not give them. */
export const SYNTHETIC_DEFAULTS = {
  items: 20_000,
  categories: 200,
  shops: 1000,
  brands: 500,
  cities: 300,
  /** Price levels when the config has no multiclass task. */
  priceLevels: 7,
  days: 14,
  /** 2023-11-14 00:00 UTC. */
  startTime: 1_699_920_000,
  examplesPerUser: 1,
  negatives: 4,
  listSize: 10,
  /** Interest-slot replacements per slot per day. */
  drift: 0.05,
} as const;

/** What {@link synthesize} generates. */
export interface SyntheticOptions {
  /** Seed of the behaviour streams, cuts and labels; also of the universe unless `universeSeed` is given. */
  seed: number;
  /** Number of users (user ids `u<firstUser>` … `u<firstUser + users − 1>`). */
  users: number;
  /** The model config: task names and kinds get labels, `maxSeqLen` bounds each history. */
  config: ResolvedConfig;
  /** Cuts (examples) per user on the example day (default 1). */
  examplesPerUser?: number;
  /** Index of the first user (default 0): disjoint user ranges give disjoint users of one universe. */
  firstUser?: number;
  /** Seed of the universe (items, shops, brands, users' profiles and tastes); default `seed`. */
  universeSeed?: number;
  /**
   * Which day to generate (default 0). Day d cuts fall on calendar day `days + d` after `startTime`, with
   * the `days` days before as history: day 1 is "tomorrow" for the same users, whose tastes have drifted.
   */
  day?: number;
  /** Days of history before the example day (default 14). */
  days?: number;
  /** Unix seconds of calendar day 0 (default 2023-11-14 00:00 UTC). */
  startTime?: number;
  /** Sampled negatives per positive for binary tasks (default 4). */
  negatives?: number;
  /** Shown items per rank request (default 10). */
  listSize?: number;
  /** Interest-slot replacements per slot per day (default 0.05). */
  drift?: number;
  /** Give search requests a query (default true; never when the config has no query input). */
  queries?: boolean;
  /** Items in the universe (default 20,000). */
  items?: number;
  /** Categories (default 200). */
  categories?: number;
  /** Shops (default 1,000). */
  shops?: number;
  /** Brands (default 500). */
  brands?: number;
  /** Price levels (default: the first multiclass task's classes, else 7). */
  priceLevels?: number;
}

/** One example with its ground truth. */
export interface SyntheticRecord {
  example: TrainingExample;
  /**
   * The generator's truth for every labelled task, laid out as lib/evaluate.ts's `Scorer` returns scores
   * for one example: binary tasks the probability that each candidate (in label order) is the positive;
   * rank tasks the logit of each shown item's true click probability (a monotone function of its expected
   * gain, so it also ranks optimally for NDCG); multiclass tasks the class distribution (`classes` entries).
   */
  oracle: Record<string, Float64Array>;
}

// ---------------------------------------------------------------------------------------------------
// Randomness helpers

type Rand = () => number;

function normal(rand: Rand): number {
  const u = 1 - rand(); // (0, 1]: log(0) is impossible
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

function exponential(rand: Rand): number {
  return -Math.log(1 - rand());
}

// Knuth's method: the means used here are small (≤ a few), where it is exact and fast.
function poisson(rand: Rand, mean: number): number {
  const limit = Math.exp(-mean);
  let k = 0;
  let p = rand();
  while (p > limit) {
    k++;
    p *= rand();
  }
  return k;
}

function cumulative(weights: ArrayLike<number>): Float64Array {
  const out = new Float64Array(weights.length);
  let s = 0;
  for (let i = 0; i < weights.length; i++) out[i] = s += weights[i];
  return out;
}

/** Index drawn in proportion to the increments of `cum`. */
function sampleCum(rand: Rand, cum: Float64Array): number {
  const x = rand() * cum[cum.length - 1];
  let lo = 0;
  let hi = cum.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cum[mid] > x) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

function pick<T>(rand: Rand, list: ArrayLike<T>): T {
  return list[Math.floor(rand() * list.length)];
}

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

function clamp(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}

// ---------------------------------------------------------------------------------------------------
// The planted parameters (one place, so the docs and the oracle agree with the sampler)

const SCENES = ['search', 'recommend', 'ads'] as const;
type Scene = (typeof SCENES)[number];
const SCENE_SHARE: Record<Scene, number> = { search: 0.4, recommend: 0.4, ads: 0.2 };
/** Share of noise (popularity-driven) sessions per scene: ads are mostly noise, search rarely. */
const NOISE: Record<Scene, number> = { search: 0.1, recommend: 0.35, ads: 0.75 };
/** A search query names the category (else only its topic) with this probability. */
const QUERY_NAMES_CATEGORY = 0.7;
const FILLER_TOKENS = ['new', 'sale', 'best', 'cheap', 'gift', 'official'];
/**
 * Negatives (and shown lists) mix three sources, as impressions do: global popularity, uniform over items,
 * and the categories of the user's own history (a history-based recommender). The last makes negatives
 * hard: they sit in categories the user touched, and only recency, behaviour type and scene tell whether
 * that category is still, or ever was, something the user would click or buy.
 */
const NEG_POPULAR = 0.4;
const NEG_UNIFORM = 0.2;
const NEG_HISTORY = 0.4;
const AGE_BANDS = ['<18', '18-24', '25-29', '30-34', '35-39', '40-49', '50+'];
const AGE_SHARE = [0.05, 0.2, 0.22, 0.2, 0.14, 0.12, 0.07];
/** Rank-list reactions: P(grade ≥ g | grade ≥ g−1) = σ(relevance − threshold[g−1]). */
const GRADE_THRESHOLDS = [2.0, 3.0, 2.5, 3.5];
/** Share of interest slots that are window shopping (browsed, never bought). */
const WINDOW_SHOPPING = 0.35;
/** How many price levels above the purchase preference window shopping browses. */
const ASPIRATION = 1.5;
/** Shares of a rank list drawn from the user's true interests and from the history's categories (rest: popular). */
const LIST_PERSONAL = 0.3;
const LIST_HISTORY = 0.4;

// ---------------------------------------------------------------------------------------------------
// The universe

interface UniverseSizes {
  items: number;
  categories: number;
  shops: number;
  brands: number;
  cities: number;
  priceLevels: number;
}

class Universe {
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
interface EntityIndex {
  ids: Int32Array;
  pop: Float64Array;
  count: Int32Array;
  /** The items of entity e are members[start[e] .. start[e + 1]). */
  start: Int32Array;
  members: Int32Array;
}

// ---------------------------------------------------------------------------------------------------
// Users: profile, price taste, drifting interests

interface Slot {
  cat: number;
  weight: number;
  /** Purchase intent; without it the slot is window shopping: browsed (pricier), never bought. */
  intent: boolean;
  shop: number;
  brand: number;
}

interface UserLatent {
  profile: Record<string, string | number>;
  genderIndex: number;
  /** Preferred price level (continuous) and tolerance. */
  mu: number;
  sigma: number;
  /** Sessions per day. */
  activity: number;
  slots: Slot[];
}

function newSlot(world: Universe, rand: Rand, genderIndex: number, near?: number): Slot {
  let cat: number;
  if (near !== undefined && rand() < 0.5) {
    // Interests move to related categories half of the time (same topic, by the user's prior).
    const cats = world.topicCats[world.catTopic[near]];
    cat = cats[sampleCum(rand, cumulative(Array.from(cats, (c) => world.interestPrior[genderIndex][c])))];
  } else {
    cat = sampleCum(rand, world.interestCum[genderIndex]);
  }
  return {
    cat,
    weight: 0.2 + exponential(rand),
    intent: rand() >= WINDOW_SHOPPING,
    shop: pick(rand, world.shopsOf[cat]),
    brand: pick(rand, world.brandsOf[cat]),
  };
}

function userLatent(world: Universe, seed: number, u: number): UserLatent {
  const rand = mulberry32(seedFor(seed, `synthetic.user.${u}`));
  const g = rand();
  const gender = g < 0.52 ? 'f' : g < 0.96 ? 'm' : 'u';
  const genderIndex = gender === 'f' ? 2 : gender === 'm' ? 0 : 1;
  const age = sampleCum(rand, cumulative(AGE_SHARE));
  const city = sampleCum(rand, world.cityCum);
  // Purchase power grows with age and city tier; the price preference follows it, with personal noise.
  const z = 0.35 * (age - 3) + (city < 10 ? 0.6 : city < 50 ? 0.25 : 0) + normal(rand);
  const power = z < -1 ? 0 : z < -0.3 ? 1 : z < 0.3 ? 2 : z < 1 ? 3 : 4;
  const L = world.sizes.priceLevels;
  const mu = (L - 1) * sigmoid(0.9 * z + 0.6 * normal(rand));
  const sigma = 0.5 + 0.6 * rand();
  const activity = clamp(Math.exp(0.6 * normal(rand)), 0.3, 4);
  const count = 2 + Math.floor(rand() * 5);
  const slots = Array.from({ length: count }, () => newSlot(world, rand, genderIndex));
  slots[0].intent = true; // everyone buys something
  return { profile: { age: AGE_BANDS[age], gender, power, city: `city${city}` }, genderIndex, mu, sigma, activity, slots };
}

/** A personal choice among the items of one category: weights exp(utility), their running sums and total. */
interface Choice {
  weight: Float64Array;
  cum: Float64Array;
  total: number;
}

/** A distribution over a few categories. */
class CategoryMix {
  readonly share = new Map<number, number>();
  readonly cats: Int32Array;
  private readonly cum: Float64Array;

  constructor(slots: Slot[]) {
    let total = 0;
    for (const s of slots) total += s.weight;
    for (const s of slots) this.share.set(s.cat, (this.share.get(s.cat) ?? 0) + s.weight / total);
    this.cats = Int32Array.from(this.share.keys());
    this.cum = cumulative(Array.from(this.cats, (c) => this.share.get(c)!));
  }

  of(c: number): number {
    return this.share.get(c) ?? 0;
  }

  sample(rand: Rand): number {
    return this.cats[sampleCum(rand, this.cum)];
  }
}

/** The user's tastes at one moment, with per-category choice distributions cached. */
class Tastes {
  /** What the user browses: every slot. */
  readonly browse: CategoryMix;
  /** What the user buys: the slots with purchase intent (window shopping is browsed, never bought). */
  readonly buy: CategoryMix;
  readonly shops: Set<number>;
  readonly brands: Set<number>;
  /** Price level the user browses at in each browsed category (higher where it is window shopping). */
  private readonly browsePrice = new Map<number, number>();
  private readonly choices = new Map<number, Choice>();

  constructor(
    readonly world: Universe,
    readonly user: UserLatent,
    slots: Slot[],
  ) {
    this.browse = new CategoryMix(slots);
    this.buy = new CategoryMix(slots.filter((s) => s.intent));
    // Favourite shops are where the user buys; a window-shopping slot's shop is only looked at.
    this.shops = new Set(slots.filter((s) => s.intent).map((s) => s.shop));
    this.brands = new Set(slots.map((s) => s.brand));
    const top = world.sizes.priceLevels - 1;
    for (const c of this.browse.cats) {
      let all = 0;
      let bought = 0;
      for (const s of slots) {
        if (s.cat !== c) continue;
        all += s.weight;
        if (s.intent) bought += s.weight;
      }
      this.browsePrice.set(c, Math.min(top, user.mu + ASPIRATION * (1 - bought / all)));
    }
  }

  /**
   * Personal utility of item i: quality, price match (sharper for purchases; browsing aims higher in
   * window-shopping categories), favourite shop and brand.
   */
  utility(i: number, buy: boolean): number {
    const w = this.world;
    const tol = buy ? this.user.sigma : this.user.sigma + 0.7;
    const d = w.itemPrice[i] - (buy ? this.user.mu : (this.browsePrice.get(w.itemCat[i]) ?? this.user.mu));
    return (
      0.8 * w.itemQuality[i] -
      (buy ? 2 : 1) * ((d * d) / (2 * tol * tol)) +
      (this.shops.has(w.itemShop[i]) ? (buy ? 1.5 : 1.2) : 0) +
      (this.brands.has(w.itemBrand[i]) ? (buy ? 1.0 : 0.8) : 0)
    );
  }

  private choice(c: number, buy: boolean): Choice {
    const key = buy ? -1 - c : c;
    let ch = this.choices.get(key);
    if (!ch) {
      const items = this.world.itemsOf[c];
      const weight = new Float64Array(items.length);
      const cum = new Float64Array(items.length);
      let s = 0;
      for (let k = 0; k < items.length; k++) cum[k] = s += weight[k] = Math.exp(this.utility(items[k], buy));
      ch = { weight, cum, total: s };
      this.choices.set(key, ch);
    }
    return ch;
  }

  /** An item of category c by personal utility. */
  sampleItem(rand: Rand, c: number, buy: boolean): number {
    return this.world.itemsOf[c][sampleCum(rand, this.choice(c, buy).cum)];
  }

  /** P(item i | an interest-driven choice in its category). */
  itemShare(i: number, buy: boolean): number {
    const ch = this.choice(this.world.itemCat[i], buy);
    return ch.weight[this.world.itemRank[i]] / ch.total;
  }

  /** Relevance of a shown item: browse and purchase interest in its category, quality, price match, favourites. */
  relevance(i: number): number {
    const w = this.world;
    const c = w.itemCat[i];
    const d = w.itemPrice[i] - this.user.mu;
    return (
      2 * Math.sqrt(this.browse.of(c)) +
      2 * Math.sqrt(this.buy.of(c)) +
      0.5 * w.itemQuality[i] -
      Math.min(3, (0.5 * d * d) / (this.user.sigma * this.user.sigma)) +
      (this.shops.has(w.itemShop[i]) ? 0.8 : 0) +
      (this.brands.has(w.itemBrand[i]) ? 0.5 : 0)
    );
  }

  /** Next-purchase distribution: items of the purchase categories by purchase utility. */
  purchaseItems(): { items: Int32Array; p: Float64Array } {
    let n = 0;
    for (const c of this.buy.cats) n += this.world.itemsOf[c].length;
    const items = new Int32Array(n);
    const p = new Float64Array(n);
    let k = 0;
    for (const c of this.buy.cats) {
      const scale = this.buy.of(c) / this.choice(c, true).total;
      const weight = this.choice(c, true).weight;
      const members = this.world.itemsOf[c];
      for (let j = 0; j < members.length; j++) {
        items[k] = members[j];
        p[k++] = scale * weight[j];
      }
    }
    return { items, p };
  }
}

/**
 * Interest drift as a Poisson process of slot replacements with its own random stream, so a user's tastes
 * at time t do not depend on which days were generated or how many behaviours were drawn before.
 */
class InterestProcess {
  private readonly events: { time: number; slot: number; value: Slot }[] = [];
  private readonly rand: Rand;
  private horizon: number;
  /** The slots after every event generated so far. */
  private readonly latest: Slot[];
  private cached: { applied: number; tastes: Tastes } | null = null;

  constructor(
    private readonly world: Universe,
    private readonly user: UserLatent,
    seed: number,
    u: number,
    origin: number,
    private readonly ratePerDay: number,
  ) {
    this.rand = mulberry32(seedFor(seed, `synthetic.drift.${u}`));
    this.horizon = origin;
    this.latest = user.slots.slice();
  }

  private extendTo(t: number): void {
    const rate = this.ratePerDay * this.latest.length;
    if (rate <= 0) return;
    while (this.horizon <= t) {
      this.horizon += (exponential(this.rand) / rate) * 86_400;
      const slot = Math.floor(this.rand() * this.latest.length);
      const value = newSlot(this.world, this.rand, this.user.genderIndex, this.latest[slot].cat);
      // The last purchase interest is only ever replaced by another, so there is always something to buy.
      if (!this.latest.some((s, k) => k !== slot && s.intent)) value.intent = true;
      this.latest[slot] = value;
      this.events.push({ time: this.horizon, slot, value });
    }
  }

  /** The tastes in force at time t. */
  at(t: number): Tastes {
    this.extendTo(t);
    let applied = 0;
    while (applied < this.events.length && this.events[applied].time <= t) applied++;
    if (this.cached && this.cached.applied === applied) return this.cached.tastes;
    const slots = this.user.slots.slice();
    for (let e = 0; e < applied; e++) slots[this.events[e].slot] = this.events[e].value;
    const tastes = new Tastes(this.world, this.user, slots);
    this.cached = { applied, tastes };
    return tastes;
  }
}

// ---------------------------------------------------------------------------------------------------
// Behaviour history

function sampleScene(rand: Rand): Scene {
  const x = rand();
  return x < SCENE_SHARE.search ? 'search' : x < SCENE_SHARE.search + SCENE_SHARE.recommend ? 'recommend' : 'ads';
}

/** The behaviours of one calendar day, from a stream seeded by (seed, user, day) alone. */
function dayBehaviors(world: Universe, interests: InterestProcess, activity: number, seed: number, u: number, day: number, dayStart: number): BehaviorInput[] {
  const rand = mulberry32(seedFor(seed, `synthetic.day.${day}.${u}`));
  const count = poisson(rand, activity);
  // Sessions start before 21:00 and are kept apart; a session lasts at most 14 × 610 s, so the day's
  // behaviours stay time-ordered and inside the day.
  const starts = Array.from({ length: count }, () => dayStart + Math.floor(rand() * 75_600)).sort((a, b) => a - b);
  const out: BehaviorInput[] = [];
  let last = dayStart;
  for (const start of starts) {
    let time = Math.max(start, last + 60);
    if (time >= dayStart + 75_600) break;
    const tastes = interests.at(time);
    const scene = sampleScene(rand);
    const noise = rand() < NOISE[scene];
    const c = noise ? sampleCum(rand, world.catCum) : tastes.browse.sample(rand);
    const push = (item: number, type: string): void => {
      out.push({ item, category: world.itemCat[item], shop: world.itemShop[item], brand: world.itemBrand[item], type, time, scene });
      time += 10 + Math.min(600, Math.floor(90 * exponential(rand)));
    };
    // Noise sessions are long scrolls; interest sessions are short and end in action.
    const views = 1 + Math.min(9, poisson(rand, noise ? 2.5 : 1.2));
    const viewed: number[] = [];
    for (let k = 0; k < views; k++) {
      const item = noise ? world.samplePopularIn(rand, c) : tastes.sampleItem(rand, c, false);
      viewed.push(item);
      push(item, 'pv');
    }
    if (noise) {
      if (rand() < 0.03) push(pick(rand, viewed), 'cart');
    } else if (tastes.buy.of(c) === 0) {
      if (rand() < 0.25) push(pick(rand, viewed), 'fav'); // window shopping: liked, not bought
    } else {
      if (rand() < 0.1) push(pick(rand, viewed), 'fav');
      if (rand() < 0.3) {
        const item = tastes.sampleItem(rand, c, true);
        push(item, 'pv');
        push(item, 'cart');
        if (rand() < 0.55) push(item, 'buy');
      } else if (rand() < 0.1) {
        const item = tastes.sampleItem(rand, c, true);
        push(item, 'pv');
        push(item, 'buy');
      }
    }
    last = time;
  }
  return out;
}

/** The most recent `capacity` behaviours, oldest first. */
class Recent {
  private readonly buf: BehaviorInput[] = [];
  constructor(private readonly capacity: number) {}
  push(b: BehaviorInput): void {
    this.buf.push(b);
    // Trimming in chunks keeps push O(1) amortised.
    if (this.buf.length >= 2 * this.capacity) this.buf.splice(0, this.buf.length - this.capacity);
  }
  snapshot(): BehaviorInput[] {
    return this.buf.slice(Math.max(0, this.buf.length - this.capacity));
  }
}

// ---------------------------------------------------------------------------------------------------
// Labels and oracle at a cut

const GENERATED_FIELDS = ['item', 'category', 'shop', 'brand'];

type Role =
  | { task: TaskConfig; role: 'click' }
  | { task: TaskConfig; role: 'list'; dense: number }
  | { task: TaskConfig; role: 'price'; classes: number }
  | { task: TaskConfig; role: 'purchase'; fields: string[] };

function roles(config: ResolvedConfig): Role[] {
  return config.tasks.map((task, i): Role => {
    if (task.kind === 'multiclass') return { task, role: 'price', classes: task.classes };
    if (task.kind === 'rank') return { task, role: 'list', dense: task.denseFeatures };
    if (task.target.includes('item')) return { task, role: 'click' };
    const fields = task.target.filter((f) => GENERATED_FIELDS.includes(f));
    if (fields.length === 0) {
      throw new DupnError('E_CONFIG', `tasks[${i}].target: the synthetic generator produces only ${GENERATED_FIELDS.join(', ')}; task "${task.name}" targets ${task.target.join(', ')}`, {
        path: `tasks[${i}].target`,
      });
    }
    return { task, role: 'purchase', fields };
  });
}

function shuffle<T>(rand: Rand, list: T[]): T[] {
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [list[i], list[j]] = [list[j], list[i]];
  }
  return list;
}

/** P(a candidate showing an entity of probability p is the positive | 1 positive among n + 1 candidates). */
function positivePosterior(probability: number, negativeMass: number, negatives: number): number {
  const p = clamp(probability, 0, 1); // sums of many shares may overshoot 1 by an ulp
  const neg = negatives * negativeMass * (1 - p);
  return p + neg === 0 ? 0 : clamp(p / (p + neg), 0, 1);
}

/**
 * The negative sampler of one cut: popularity, uniform, and the categories of this history. Draws are
 * independent (two negatives may coincide), never the positive itself.
 */
class Negatives {
  private readonly history: CategoryMix | null;
  private readonly popular: number;
  private readonly historical: number;

  constructor(
    private readonly world: Universe,
    behaviors: BehaviorInput[],
  ) {
    const slots: Slot[] = behaviors.map((b) => ({ cat: b.category as number, weight: 1, intent: false, shop: 0, brand: 0 }));
    this.history = slots.length > 0 ? new CategoryMix(slots) : null;
    // Without a history its share goes to popularity.
    this.historical = this.history ? NEG_HISTORY : 0;
    this.popular = NEG_POPULAR + NEG_HISTORY - this.historical;
  }

  /** Probability of drawing item i. */
  mass(i: number): number {
    const w = this.world;
    const h = this.history ? this.historical * this.history.of(w.itemCat[i]) * w.popWithin(i) : 0;
    return this.popular * w.itemPop[i] + NEG_UNIFORM / w.sizes.items + h;
  }

  sample(rand: Rand): number {
    const x = rand();
    if (x < NEG_UNIFORM) return Math.floor(rand() * this.world.sizes.items);
    if (this.history && x < NEG_UNIFORM + this.historical) return this.world.samplePopularIn(rand, this.history.sample(rand));
    return this.world.samplePopular(rand);
  }

  /** A draw from the history's categories if there is a history, else by popularity (for shown lists). */
  sampleHistorical(rand: Rand): number {
    return this.history ? this.world.samplePopularIn(rand, this.history.sample(rand)) : this.world.samplePopular(rand);
  }

  /** Probability that a drawn item belongs to each entity of `wanted` (ids of `index`). */
  entityMass(index: EntityIndex, wanted: readonly number[]): Map<number, number> {
    const w = this.world;
    const out = new Map<number, number>();
    for (const e of wanted) {
      let m = this.popular * index.pop[e] + (NEG_UNIFORM * index.count[e]) / w.sizes.items;
      if (this.history) {
        for (let k = index.start[e]; k < index.start[e + 1]; k++) {
          const i = index.members[k];
          m += this.historical * this.history.of(w.itemCat[i]) * w.popWithin(i);
        }
      }
      out.set(e, m);
    }
    return out;
  }
}

interface CutContext {
  world: Universe;
  tastes: Tastes;
  negativeSampler: Negatives;
  rand: Rand;
  negatives: number;
  listSize: number;
  priceLevels: number;
  queries: boolean;
}

/** The next request: its scene, the category and item of its first click, and the query it shows. */
interface Request {
  click: number;
  query?: string;
  /** Expected noise share given what the request shows (the query, or its absence). */
  noise: number;
  /** Query likelihood of each category (1 for all when the request has no query). */
  likelihood: (c: number) => number;
}

function drawRequest(ctx: CutContext): Request {
  const { world, tastes, rand } = ctx;
  const scene = sampleScene(rand);
  const noisy = rand() < NOISE[scene];
  const c = noisy ? sampleCum(rand, world.catCum) : tastes.browse.sample(rand);
  const click = noisy ? world.samplePopularIn(rand, c) : tastes.sampleItem(rand, c, false);
  if (scene === 'search' && ctx.queries) {
    const topic = world.catTopic[c];
    const named = rand() < QUERY_NAMES_CATEGORY;
    const tokens = [`t${topic}`];
    if (named) tokens.push(`c${c}`);
    if (rand() < 0.3) tokens.push(pick(rand, FILLER_TOKENS));
    const likelihood = named ? (x: number) => (x === c ? QUERY_NAMES_CATEGORY : 0) : (x: number) => (world.catTopic[x] === topic ? 1 - QUERY_NAMES_CATEGORY : 0);
    return { click, query: shuffle(rand, tokens).join(' '), noise: NOISE.search, likelihood };
  }
  // Without a query the scene is hidden: mix over the scenes that show none.
  const hidden: Scene[] = ctx.queries ? ['recommend', 'ads'] : [...SCENES];
  const share = hidden.reduce((s, x) => s + SCENE_SHARE[x], 0);
  const noise = hidden.reduce((s, x) => s + SCENE_SHARE[x] * NOISE[x], 0) / share;
  return { click, noise, likelihood: () => 1 };
}

/** P(first click = item i | tastes, request). */
function clickProbability(ctx: CutContext, req: Request, i: number, normaliser: number): number {
  const { world, tastes } = ctx;
  const c = world.itemCat[i];
  const lik = req.likelihood(c);
  if (lik === 0) return 0;
  const interest = tastes.browse.of(c);
  const p = req.noise * world.catPop[c] * world.popWithin(i) + (interest > 0 ? (1 - req.noise) * interest * tastes.itemShare(i, false) : 0);
  return (lik * p) / normaliser;
}

function clickNormaliser(ctx: CutContext, req: Request): number {
  const { world, tastes } = ctx;
  if (!req.query) return 1;
  let z = 0;
  for (let c = 0; c < world.sizes.categories; c++) {
    const lik = req.likelihood(c);
    if (lik > 0) z += lik * (req.noise * world.catPop[c] + (1 - req.noise) * tastes.browse.of(c));
  }
  return z;
}

/** Draws negatives until one differs from the positive (by `differs`); refuses a universe with no other. */
function drawNegative(ctx: CutContext, task: string, differs: (i: number) => boolean): number {
  for (let attempt = 0; attempt < 10_000; attempt++) {
    const i = ctx.negativeSampler.sample(ctx.rand);
    if (differs(i)) return i;
  }
  throw new DupnError('E_INPUT', `options: the universe is too small to draw negatives for task "${task}" (raise items, categories, shops or brands)`, { path: 'options' });
}

function clickLabels(ctx: CutContext, task: string, req: Request, normaliser: number): { labels: LabelledCandidate[]; oracle: Float64Array } {
  const { world, rand, negatives } = ctx;
  const items = [req.click];
  while (items.length < negatives + 1) items.push(drawNegative(ctx, task, (i) => i !== req.click));
  const order = shuffle(rand, items.map((item, k) => ({ item, label: k === 0 ? 1 : 0 })));
  return {
    labels: order.map((x) => ({ candidate: world.candidate(x.item), label: x.label })),
    oracle: Float64Array.from(order, (x) => positivePosterior(clickProbability(ctx, req, x.item, normaliser), ctx.negativeSampler.mass(x.item), negatives)),
  };
}

function listLabels(ctx: CutContext, dense: number): { labels: LabelledCandidate[]; oracle: Float64Array } {
  const { world, tastes, rand, listSize } = ctx;
  const personal = Math.round(LIST_PERSONAL * listSize);
  const historical = personal + Math.round(LIST_HISTORY * listSize);
  const items: number[] = [];
  for (let k = 0; k < listSize; k++) {
    if (k < personal) items.push(tastes.sampleItem(rand, tastes.browse.sample(rand), false));
    else if (k < historical) items.push(ctx.negativeSampler.sampleHistorical(rand));
    else items.push(world.samplePopular(rand));
  }
  shuffle(rand, items);
  const labels: LabelledCandidate[] = [];
  const oracle = new Float64Array(listSize);
  items.forEach((i, k) => {
    const r = tastes.relevance(i);
    let grade = 0;
    while (grade < GRADES.buy && rand() < sigmoid(r - GRADE_THRESHOLDS[grade])) grade++;
    const candidate = world.candidate(i);
    if (dense > 0) {
      // The first dense features carry item facts a ranker may use; the rest are noise.
      const facts = [world.itemQuality[i], world.itemPrice[i] / Math.max(1, ctx.priceLevels - 1), Math.log(world.itemPop[i] * world.sizes.items)];
      candidate.dense = Array.from({ length: dense }, (_, d) => (d < facts.length ? facts[d] : normal(rand)));
    }
    labels.push({ candidate, label: grade });
    oracle[k] = r - GRADE_THRESHOLDS[0];
  });
  return { labels, oracle };
}

/** The next purchase and its distribution (drawn once per cut, shared by price and purchase-entity tasks). */
class NextPurchase {
  readonly item: number;
  private readonly dist: { items: Int32Array; p: Float64Array };

  constructor(private readonly ctx: CutContext) {
    this.dist = ctx.tastes.purchaseItems();
    const c = ctx.tastes.buy.sample(ctx.rand);
    this.item = ctx.tastes.sampleItem(ctx.rand, c, true);
  }

  priceClass(classes: number): number {
    return Math.floor((this.ctx.world.itemPrice[this.item] * classes) / this.ctx.priceLevels);
  }

  priceOracle(classes: number): Float64Array {
    const { items, p } = this.dist;
    const out = new Float64Array(classes);
    for (let k = 0; k < items.length; k++) out[Math.floor((this.ctx.world.itemPrice[items[k]] * classes) / this.ctx.priceLevels)] += p[k];
    return out;
  }

  entityLabels(task: string, fields: string[]): { labels: LabelledCandidate[]; oracle: Float64Array } {
    const { world, rand, negatives } = this.ctx;
    const index = world.entities(fields);
    const positive = index.ids[this.item];
    const picked = [{ item: this.item, entity: positive, label: 1 }];
    while (picked.length < negatives + 1) {
      const i = drawNegative(this.ctx, task, (x) => index.ids[x] !== positive);
      picked.push({ item: i, entity: index.ids[i], label: 0 });
    }
    const wanted = picked.map((x) => x.entity);
    const p = new Map<number, number>(wanted.map((e) => [e, 0]));
    const { items, p: share } = this.dist;
    for (let k = 0; k < items.length; k++) {
      const e = index.ids[items[k]];
      const q = p.get(e);
      if (q !== undefined) p.set(e, q + share[k]);
    }
    const mass = this.ctx.negativeSampler.entityMass(index, wanted);
    shuffle(rand, picked);
    return {
      labels: picked.map((x) => ({ candidate: world.candidate(x.item, fields), label: x.label })),
      oracle: Float64Array.from(picked, (x) => positivePosterior(p.get(x.entity)!, mass.get(x.entity)!, negatives)),
    };
  }
}

function cutRecord(ctx: CutContext, taskRoles: Role[], user: UserInput, userId: string, time: number): SyntheticRecord {
  const req = drawRequest(ctx);
  if (req.query !== undefined) user.query = req.query;
  let normaliser = -1;
  let purchase: NextPurchase | null = null;
  const labels: TrainingExample['labels'] = {};
  const oracle: Record<string, Float64Array> = {};
  for (const r of taskRoles) {
    const name = r.task.name;
    if (r.role === 'click') {
      if (normaliser < 0) normaliser = clickNormaliser(ctx, req);
      const out = clickLabels(ctx, name, req, normaliser);
      labels[name] = out.labels;
      oracle[name] = out.oracle;
    } else if (r.role === 'list') {
      const out = listLabels(ctx, r.dense);
      labels[name] = out.labels;
      oracle[name] = out.oracle;
    } else {
      purchase ??= new NextPurchase(ctx);
      if (r.role === 'price') {
        labels[name] = purchase.priceClass(r.classes);
        oracle[name] = purchase.priceOracle(r.classes);
      } else {
        const out = purchase.entityLabels(name, r.fields);
        labels[name] = out.labels;
        oracle[name] = out.oracle;
      }
    }
  }
  return { example: { user, userId, time, labels }, oracle };
}

// ---------------------------------------------------------------------------------------------------
// Options and the generators

interface Resolved {
  seed: number;
  universeSeed: number;
  users: number;
  firstUser: number;
  examplesPerUser: number;
  day: number;
  days: number;
  startTime: number;
  negatives: number;
  listSize: number;
  drift: number;
  queries: boolean;
  sizes: UniverseSizes;
  config: ResolvedConfig;
}

function integerOption(v: unknown, name: string, min: number, fallback?: number): number {
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > Number.MAX_SAFE_INTEGER) {
    throw new DupnError('E_INPUT', `options.${name}: must be an integer ≥ ${min}, got ${describe(v)}`, { path: `options.${name}` });
  }
  return v;
}

function resolveOptions(options: SyntheticOptions): Resolved {
  if (typeof options !== 'object' || options === null) throw new DupnError('E_INPUT', `options: must be an object, got ${describe(options)}`, { path: 'options' });
  const config = options.config;
  if (typeof config !== 'object' || config === null || !Array.isArray(config.tasks)) {
    throw new DupnError('E_INPUT', 'options.config: must be a resolved config (resolveConfig(...))', { path: 'options.config' });
  }
  const d = SYNTHETIC_DEFAULTS;
  const seed = integerOption(options.seed, 'seed', -0x80000000);
  const firstMulticlass = config.tasks.find((t) => t.kind === 'multiclass');
  const sizes: UniverseSizes = {
    items: integerOption(options.items, 'items', 1, d.items),
    categories: integerOption(options.categories, 'categories', 1, d.categories),
    shops: integerOption(options.shops, 'shops', 1, d.shops),
    brands: integerOption(options.brands, 'brands', 1, d.brands),
    cities: d.cities,
    priceLevels: integerOption(options.priceLevels, 'priceLevels', 1, firstMulticlass?.kind === 'multiclass' ? firstMulticlass.classes : d.priceLevels),
  };
  if (sizes.items < Math.max(2, sizes.categories)) {
    throw new DupnError('E_INPUT', `options.items: must be at least 2 and at least options.categories (${sizes.categories}), got ${sizes.items}`, { path: 'options.items' });
  }
  const drift = options.drift ?? d.drift;
  if (typeof drift !== 'number' || !Number.isFinite(drift) || drift < 0) {
    throw new DupnError('E_INPUT', `options.drift: must be a finite number ≥ 0, got ${describe(drift)}`, { path: 'options.drift' });
  }
  if (options.queries !== undefined && typeof options.queries !== 'boolean') {
    throw new DupnError('E_INPUT', `options.queries: must be a boolean, got ${describe(options.queries)}`, { path: 'options.queries' });
  }
  return {
    seed,
    universeSeed: options.universeSeed === undefined ? seed : integerOption(options.universeSeed, 'universeSeed', -0x80000000),
    users: integerOption(options.users, 'users', 0),
    firstUser: integerOption(options.firstUser, 'firstUser', 0, 0),
    examplesPerUser: integerOption(options.examplesPerUser, 'examplesPerUser', 0, d.examplesPerUser),
    day: integerOption(options.day, 'day', 0, 0),
    days: integerOption(options.days, 'days', 0, d.days),
    startTime: integerOption(options.startTime, 'startTime', 0, d.startTime),
    negatives: integerOption(options.negatives, 'negatives', 1, d.negatives),
    listSize: integerOption(options.listSize, 'listSize', 1, d.listSize),
    drift,
    queries: (options.queries ?? true) && config.query !== null,
    sizes,
    config,
  };
}

function* userRecords(world: Universe, o: Resolved, taskRoles: Role[], u: number): Generator<SyntheticRecord> {
  const user = userLatent(world, o.universeSeed, u);
  const interests = new InterestProcess(world, user, o.universeSeed, u, o.startTime, o.drift);
  const recent = new Recent(o.config.maxSeqLen);
  const exampleDay = o.days + o.day;
  for (let day = o.day; day < exampleDay; day++) {
    for (const b of dayBehaviors(world, interests, user.activity, o.seed, u, day, o.startTime + day * 86_400)) recent.push(b);
  }
  const dayStart = o.startTime + exampleDay * 86_400;
  const today = dayBehaviors(world, interests, user.activity, o.seed, u, exampleDay, dayStart);
  const rand = mulberry32(seedFor(o.seed, `synthetic.cuts.${exampleDay}.${u}`));
  const cuts = Array.from({ length: o.examplesPerUser }, () => dayStart + Math.floor(rand() * 86_400)).sort((a, b) => a - b);
  // Distinct cut times keep (userId, time) a unique key of an example.
  for (let k = 1; k < cuts.length; k++) if (cuts[k] <= cuts[k - 1]) cuts[k] = cuts[k - 1] + 1;
  const profile: Record<string, string | number> = {};
  for (const f of o.config.profileFields) if (user.profile[f.name] !== undefined) profile[f.name] = user.profile[f.name];
  let next = 0;
  for (const cut of cuts) {
    while (next < today.length && today[next].time < cut) recent.push(today[next++]);
    const input: UserInput = { behaviors: recent.snapshot(), profile: { ...profile }, now: cut };
    const ctx: CutContext = {
      world,
      tastes: interests.at(cut),
      negativeSampler: new Negatives(world, input.behaviors),
      rand,
      negatives: o.negatives,
      listSize: o.listSize,
      priceLevels: o.sizes.priceLevels,
      queries: o.queries,
    };
    yield cutRecord(ctx, taskRoles, input, `u${u}`, cut);
  }
}

/**
 * Synthetic examples with their ground truth, lazily: users in order, each user's examples in time order.
 * Every task of `options.config` is labelled on every example. Throws `DupnError('E_INPUT')` for bad
 * options and `E_CONFIG` for a binary task whose target the generator does not produce.
 */
export function synthesizeWithOracle(options: SyntheticOptions): IterableIterator<SyntheticRecord> {
  // Validated here, not on the first next(): a bad option fails at the call that passed it.
  const o = resolveOptions(options);
  const taskRoles = roles(o.config);
  return (function* (): Generator<SyntheticRecord> {
    if (o.users === 0 || o.examplesPerUser === 0) return;
    const world = new Universe(o.universeSeed, o.sizes);
    for (let u = o.firstUser; u < o.firstUser + o.users; u++) yield* userRecords(world, o, taskRoles, u);
  })();
}

/** Synthetic training examples (see {@link synthesizeWithOracle}; the same examples without the oracle). */
export function synthesize(options: SyntheticOptions): IterableIterator<TrainingExample> {
  const records = synthesizeWithOracle(options);
  return (function* (): Generator<TrainingExample> {
    for (const r of records) yield r.example;
  })();
}

/** The key that identifies an example of one user at one time (unique within a synthetic day). */
export function exampleKey(example: Pick<TrainingExample, 'userId' | 'time'>): string {
  return `${example.userId}@${example.time}`;
}
