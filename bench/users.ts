/**
 * Synthetic paper-shaped users for the serving benchmarks, ids from large spaces: `length` behaviours each, or
 * user i gets `length[i % length.length]` (real lengths from bench/lengths.ts).
 */
import { CandidateInput, UserInput } from '../lib/model/features';
import { mulberry32 } from '../lib/reference/random-model';

const TYPES = ['pv', 'pv', 'pv', 'fav', 'cart', 'buy'];

export function benchUsers(n: number, length: number | number[], seed: number): UserInput[] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, (_, u) => {
    let time = 1_700_000_000;
    const behaviors = Array.from({ length: typeof length === 'number' ? length : length[u % length.length] }, () => {
      time += Math.floor(rand() * 3600);
      return { item: `i${Math.floor(rand() * 1e6)}`, category: Math.floor(rand() * 5000), shop: `s${Math.floor(rand() * 1e5)}`, brand: `b${Math.floor(rand() * 1e4)}`, type: TYPES[Math.floor(rand() * TYPES.length)], time, scene: rand() < 0.5 ? 'search' : 'recommend' };
    });
    return { behaviors, query: rand() < 0.3 ? 'red running shoes' : undefined };
  });
}

export function benchCandidates(n: number, seed: number): CandidateInput[] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, () => ({ item: `i${Math.floor(rand() * 1e6)}`, category: Math.floor(rand() * 5000), shop: `s${Math.floor(rand() * 1e5)}`, brand: `b${Math.floor(rand() * 1e4)}` }));
}
