/**
 * Options of the synthetic generator: the defaults, what a caller may pass, and their validation into the
 * resolved form the generators work from. Bad options throw `DupnError('E_INPUT')` at the call that passed them.
 */
import { ResolvedConfig } from '../../network/config';
import { DupnError, describe } from '../../errors';
import { UniverseSizes } from './world';

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

export interface Resolved {
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

export function resolveOptions(options: SyntheticOptions): Resolved {
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
