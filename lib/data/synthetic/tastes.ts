/**
 * A user's tastes at one moment: what the user browses and what the user buys (category mixes over the
 * interest slots), the personal utility of each item, and the choice distributions that sessions, labels
 * and the oracle draw from.
 */
import { ASPIRATION } from './planted';
import { cumulative, Rand, sampleCum } from './random';
import { Slot, UserLatent } from './users';
import { Universe } from './world';

/** A personal choice among the items of one category: weights exp(utility), their running sums and total. */
interface Choice {
  weight: Float64Array;
  cum: Float64Array;
  total: number;
}

/** A distribution over a few categories. */
export class CategoryMix {
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
export class Tastes {
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
