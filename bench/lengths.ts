/**
 * Behaviour-sequence lengths as real users have them: read from Taobao UserBehavior CSV files
 * (user_id,item_id,category_id,behavior_type,timestamp; a path argument, never committed), or a built-in
 * distribution measured on the 157 users of the shared research extract when no path is given.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mulberry32 } from '../lib/random';

// Vigintiles (0%, 5%, …, 100%) of min(100, rows per user) over the shared extract's 157 users.
const BUILT_IN = [4, 11, 19, 21, 28, 36, 43, 50, 54, 61, 67, 74, 86, 97, 100, 100, 100, 100, 100, 100, 100];

export interface LengthSource {
  describe: string;
  /** Sorted per-user lengths (capped at maxSeqLen) or the built-in vigintiles. */
  sample(count: number, seed: number, maxSeqLen: number): number[];
}

function fromFiles(files: string[]): LengthSource {
  const counts = new Map<string, number>();
  for (const f of files) {
    for (const line of fs.readFileSync(f, 'utf8').split('\n')) {
      const comma = line.indexOf(',');
      if (comma > 0) counts.set(line.slice(0, comma), (counts.get(line.slice(0, comma)) ?? 0) + 1);
    }
  }
  const lengths = [...counts.values()];
  if (lengths.length === 0) throw new Error(`no rows in ${files.join(', ')}`);
  return {
    describe: `${lengths.length} real users from ${files.map((f) => path.basename(f)).join(', ')}`,
    sample(count, seed, maxSeqLen) {
      const rand = mulberry32(seed);
      return Array.from({ length: count }, () => Math.min(maxSeqLen, lengths[Math.floor(rand() * lengths.length)]));
    },
  };
}

const builtIn: LengthSource = {
  describe: 'built-in distribution of the shared Taobao extract (157 users, vigintiles)',
  sample(count, seed, maxSeqLen) {
    const rand = mulberry32(seed);
    return Array.from({ length: count }, () => {
      const x = rand() * (BUILT_IN.length - 1);
      const i = Math.floor(x);
      const v = BUILT_IN[i] + (BUILT_IN[Math.min(i + 1, BUILT_IN.length - 1)] - BUILT_IN[i]) * (x - i);
      return Math.max(1, Math.min(maxSeqLen, Math.round(v)));
    });
  },
};

/** Lengths from a CSV file or a folder of them; the built-in distribution when `where` is undefined. */
export function lengthSource(where: string | undefined): LengthSource {
  if (!where) return builtIn;
  const files = fs.statSync(where).isDirectory()
    ? fs.readdirSync(where).filter((f) => f.endsWith('.csv')).map((f) => path.join(where, f))
    : [where];
  return fromFiles(files);
}
