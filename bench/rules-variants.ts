/**
 * Variants of the sequential-rules heuristic on a sequence file (`user item item …` per line, oldest first; the
 * Amazon Beauty file of the sequential-recommendation papers, never committed), leave-one-out as `dupn train
 * --split leave-one-out` evaluates: each user's last item tests, the second-last is held out, the rules are
 * counted on the rest (every b within 10 steps after a adds 1/distance to a → b). A variant scores a candidate
 * by the rules of the user's last n items (the k-th back weighted 1/k), optionally adding each pair's reverse
 * ("b shortly before a") at a weight; ties by popularity. Prints full-catalogue HR@20 and HR@10 among the true
 * item and 100 uniformly drawn items the user never touched. It measures which item-to-item signals a feature
 * of the retrieval head could carry (docs/real-data.md, tenth session).
 *
 *   node dist/bench/rules-variants.js Beauty.txt
 */
import * as fs from 'node:fs';
import { EntityStats } from '../lib/eval/baselines';
import { SUCCESSOR_WINDOW } from '../lib/network/config';
import { mulberry32 } from '../lib/random';

type Rows = ReadonlyMap<string, ReadonlyMap<string, number>>;

/** b → (a → w) for every a → (b → w) of `rules`: what came shortly before each item. */
function reversed(rules: Rows): Rows {
  const out = new Map<string, Map<string, number>>();
  for (const [a, row] of rules) {
    for (const [b, w] of row) {
      let back = out.get(b);
      if (back === undefined) out.set(b, (back = new Map()));
      back.set(a, w);
    }
  }
  return out;
}

function main(): void {
  const file = process.argv[2];
  if (!file) throw new Error('usage: node dist/bench/rules-variants.js <sequences file>');
  const users = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => l.trim().split(/\s+/).slice(1));
  // The `rules` baseline's own counts (lib/eval/baselines.ts) over each user's training part.
  const stats = new EntityStats(['item'], ['item'], SUCCESSOR_WINDOW);
  for (const s of users) stats.add(s.slice(0, -2));
  const after = stats.rules;
  const before = reversed(after);
  const popularity = stats.count;
  const items = [...popularity.keys()];
  // Items above a score are the boosted ones that beat it plus the others whose popularity alone does: the
  // latter by a binary search over the counts, so a case costs its boosted items, not the catalogue.
  const counts = Float64Array.from(popularity.values()).sort().reverse();
  const popularAbove = (t: number): number => {
    let lo = 0;
    let hi = counts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (counts[mid] > t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const variants: [string, number, number][] = [
    ['followers of the last item', 1, 0],
    ['followers of the last 3 items', 3, 0],
    ['followers of the last 5 items', 5, 0],
    ['the last item, reverse at 0.5', 1, 0.5],
    ['the last 3 items, reverse at 0.5', 3, 0.5],
    ['the last 3 items, reverse at 1', 3, 1],
    ['the last 5 items, reverse at 0.5', 5, 0.5],
    ['the last 10 items, reverse at 0.5', 10, 0.5],
    ['the last 50 items, reverse at 0.5', 50, 0.5],
  ];
  const hits = variants.map(() => ({ hr20: 0, sampled: 0 }));
  const rand = mulberry32(7);
  let cases = 0;
  for (const s of users) {
    if (s.length < 3 || !popularity.has(s[s.length - 1])) continue;
    const target = s[s.length - 1];
    const history = s.slice(0, -1);
    const touched = new Set(history);
    const negatives: string[] = [];
    while (negatives.length < 100) {
      const c = items[Math.floor(rand() * items.length)];
      if (!touched.has(c) && c !== target) negatives.push(c);
    }
    cases++;
    variants.forEach(([, n, reverse], v) => {
      const boost = new Map<string, number>();
      history
        .slice(-n)
        .reverse()
        .forEach((a, k) => {
          for (const [b, w] of after.get(a) ?? []) boost.set(b, (boost.get(b) ?? 0) + w / (k + 1));
          if (reverse > 0) for (const [b, w] of before.get(a) ?? []) boost.set(b, (boost.get(b) ?? 0) + (reverse * w) / (k + 1));
        });
      const score = (c: string): number => (boost.get(c) ?? 0) * 1e6 + (popularity.get(c) ?? 0);
      const t = score(target);
      let above = popularAbove(t);
      for (const c of boost.keys()) {
        if ((popularity.get(c) ?? 0) > t) above--;
        if (c !== target && score(c) > t) above++;
      }
      let sampledAbove = 0;
      for (const c of negatives) if (score(c) > t) sampledAbove++;
      if (above < 20) hits[v].hr20++;
      if (sampledAbove < 10) hits[v].sampled++;
    });
  }
  console.log(`${file}: ${cases} warm test cases, ${items.length} items\n`);
  console.log('| variant | HR@20 | HR@10 of 101 |\n|---|---|---|');
  variants.forEach(([name], v) => console.log(`| ${name} | ${(hits[v].hr20 / cases).toFixed(4)} | ${(hits[v].sampled / cases).toFixed(4)} |`));
}

main();
