/**
 * Behaviour history: the sessions of one calendar day, drawn from the tastes of their moment (short interest
 * sessions, long noise scrolls), and the window of most recent behaviours a history is cut from.
 */
import { BehaviorInput } from '../../model/features';
import { mulberry32, seedFor } from '../../random';
import { InterestProcess } from './interests';
import { NOISE, Scene, SCENE_SHARE } from './planted';
import { exponential, pick, poisson, Rand, sampleCum } from './random';
import { Universe } from './world';

export function sampleScene(rand: Rand): Scene {
  const x = rand();
  return x < SCENE_SHARE.search ? 'search' : x < SCENE_SHARE.search + SCENE_SHARE.recommend ? 'recommend' : 'ads';
}

/** The behaviours of one calendar day, from a stream seeded by (seed, user, day) alone. */
export function dayBehaviors(world: Universe, interests: InterestProcess, activity: number, seed: number, u: number, day: number, dayStart: number): BehaviorInput[] {
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
export class Recent {
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
