/**
 * Synthetic behaviour data with planted structure and known ground truth (docs/model.md, Training data), for tests, the demo and
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
 *
 * This file is the public entry: the options, the records and the generators. The parts live in
 * lib/data/synthetic/: random (draws), planted (the planted parameters), world (the universe), users, tastes
 * and interests (who the users are and what they want when), behaviors (their histories), negatives,
 * requests and labels (what a cut labels, with its oracle), and options (defaults and validation).
 */
import { UserInput } from '../model/features';
import { mulberry32, seedFor } from '../random';
import { TrainingExample } from './training-example';
import { dayBehaviors, Recent } from './synthetic/behaviors';
import { InterestProcess } from './synthetic/interests';
import { cutRecord, Role, roles, SyntheticRecord } from './synthetic/labels';
import { Negatives } from './synthetic/negatives';
import { Resolved, resolveOptions, SyntheticOptions } from './synthetic/options';
import { CutContext } from './synthetic/requests';
import { userLatent } from './synthetic/users';
import { Universe } from './synthetic/world';

export { SYNTHETIC_DEFAULTS } from './synthetic/options';
export type { SyntheticOptions } from './synthetic/options';
export type { SyntheticRecord } from './synthetic/labels';

// ---------------------------------------------------------------------------------------------------
// The generators

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
