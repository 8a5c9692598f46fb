/**
 * Users of the synthetic world: a profile (age band, gender, purchase power, city), a price taste and the
 * interest slots they start with, drawn from a stream of the universe seed and the user alone. New slots
 * (also those that replace a slot as interests drift) come from here too.
 */
import { mulberry32, seedFor } from '../../random';
import { AGE_BANDS, AGE_SHARE, WINDOW_SHOPPING } from './planted';
import { clamp, cumulative, exponential, normal, pick, Rand, sampleCum, sigmoid } from './random';
import { Universe } from './world';

export interface Slot {
  cat: number;
  weight: number;
  /** Purchase intent; without it the slot is window shopping: browsed (pricier), never bought. */
  intent: boolean;
  shop: number;
  brand: number;
}

export interface UserLatent {
  profile: Record<string, string | number>;
  genderIndex: number;
  /** Preferred price level (continuous) and tolerance. */
  mu: number;
  sigma: number;
  /** Sessions per day. */
  activity: number;
  slots: Slot[];
}

export function newSlot(world: Universe, rand: Rand, genderIndex: number, near?: number): Slot {
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

export function userLatent(world: Universe, seed: number, u: number): UserLatent {
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
