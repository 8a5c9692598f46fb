/**
 * Small synthetic behaviour histories for the demo and benchmarks (not the planted-structure training
 * generator): realistic shapes — item/category/shop/brand ids with skew, mostly page views, a few
 * purchases, times increasing, optional query and profile.
 */
import { UserInput } from '../lib/features';
import { mulberry32 } from '../lib/random';

export function syntheticUsers(count: number, seed: number, length: number | (() => number) = 100): UserInput[] {
  const rand = mulberry32(seed);
  const types = ['pv', 'pv', 'pv', 'pv', 'pv', 'pv', 'fav', 'cart', 'buy'];
  const scenes = ['search', 'recommend', 'ads'];
  const skewed = (n: number): number => Math.floor(n * rand() ** 3);
  return Array.from({ length: count }, (_, u) => {
    const L = typeof length === 'number' ? length : length();
    let time = 1_511_500_000 + Math.floor(rand() * 86_400);
    const behaviors = Array.from({ length: L }, () => {
      time += Math.floor(rand() * 3_600);
      const category = skewed(5_000);
      return {
        item: `item${skewed(4_000_000)}`,
        category,
        shop: `shop${(category * 31 + skewed(300)) % 200_000}`,
        brand: `brand${(category * 17 + skewed(50)) % 50_000}`,
        type: types[Math.floor(rand() * types.length)],
        time,
        scene: scenes[Math.floor(rand() * scenes.length)],
      };
    });
    return {
      behaviors,
      query: u % 2 === 0 ? 'red silk dress' : undefined,
      profile: { age: 18 + (u % 50), gender: u % 2 ? 'f' : 'm', power: u % 7, city: `city${u % 300}` },
      now: time + 60,
    };
  });
}
