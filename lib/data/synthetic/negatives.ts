/**
 * Sampled negatives at a cut: the sampler (popularity, uniform, the categories of the history) with the exact
 * probability of each draw, and the posterior that turns those probabilities into a binary task's oracle.
 */
import { BehaviorInput } from '../../model/features';
import { NEG_HISTORY, NEG_POPULAR, NEG_UNIFORM } from './planted';
import { clamp, Rand } from './random';
import { CategoryMix } from './tastes';
import { Slot } from './users';
import { EntityIndex, Universe } from './world';

/** P(a candidate showing an entity of probability p is the positive | 1 positive among n + 1 candidates). */
export function positivePosterior(probability: number, negativeMass: number, negatives: number): number {
  const p = clamp(probability, 0, 1); // sums of many shares may overshoot 1 by an ulp
  const neg = negatives * negativeMass * (1 - p);
  return p + neg === 0 ? 0 : clamp(p / (p + neg), 0, 1);
}

/**
 * The negative sampler of one cut: popularity, uniform, and the categories of this history. Draws are
 * independent (two negatives may coincide), never the positive itself.
 */
export class Negatives {
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
