/**
 * What a cut works with, and its next request: the scene, the first click, the query a search shows, and the
 * true probability of that click on any item given the tastes and what the request shows.
 */
import { sampleScene } from './behaviors';
import { Negatives } from './negatives';
import { FILLER_TOKENS, NOISE, QUERY_NAMES_CATEGORY, Scene, SCENE_SHARE, SCENES } from './planted';
import { pick, Rand, sampleCum, shuffle } from './random';
import { Tastes } from './tastes';
import { Universe } from './world';

export interface CutContext {
  world: Universe;
  tastes: Tastes;
  negativeSampler: Negatives;
  rand: Rand;
  negatives: number;
  listSize: number;
  priceLevels: number;
  queries: boolean;
}

/** The next request: its scene, the category and item of its first click, and the query it shows. */
export interface Request {
  click: number;
  query?: string;
  /** Expected noise share given what the request shows (the query, or its absence). */
  noise: number;
  /** Query likelihood of each category (1 for all when the request has no query). */
  likelihood: (c: number) => number;
}

export function drawRequest(ctx: CutContext): Request {
  const { world, tastes, rand } = ctx;
  const scene = sampleScene(rand);
  const noisy = rand() < NOISE[scene];
  const c = noisy ? sampleCum(rand, world.catCum) : tastes.browse.sample(rand);
  const click = noisy ? world.samplePopularIn(rand, c) : tastes.sampleItem(rand, c, false);
  if (scene === 'search' && ctx.queries) {
    const topic = world.catTopic[c];
    const named = rand() < QUERY_NAMES_CATEGORY;
    const tokens = [`t${topic}`];
    if (named) tokens.push(`c${c}`);
    if (rand() < 0.3) tokens.push(pick(rand, FILLER_TOKENS));
    const likelihood = named ? (x: number) => (x === c ? QUERY_NAMES_CATEGORY : 0) : (x: number) => (world.catTopic[x] === topic ? 1 - QUERY_NAMES_CATEGORY : 0);
    return { click, query: shuffle(rand, tokens).join(' '), noise: NOISE.search, likelihood };
  }
  // Without a query the scene is hidden: mix over the scenes that show none.
  const hidden: Scene[] = ctx.queries ? ['recommend', 'ads'] : [...SCENES];
  const share = hidden.reduce((s, x) => s + SCENE_SHARE[x], 0);
  const noise = hidden.reduce((s, x) => s + SCENE_SHARE[x] * NOISE[x], 0) / share;
  return { click, noise, likelihood: () => 1 };
}

/** P(first click = item i | tastes, request). */
export function clickProbability(ctx: CutContext, req: Request, i: number, normaliser: number): number {
  const { world, tastes } = ctx;
  const c = world.itemCat[i];
  const lik = req.likelihood(c);
  if (lik === 0) return 0;
  const interest = tastes.browse.of(c);
  const p = req.noise * world.catPop[c] * world.popWithin(i) + (interest > 0 ? (1 - req.noise) * interest * tastes.itemShare(i, false) : 0);
  return (lik * p) / normaliser;
}

export function clickNormaliser(ctx: CutContext, req: Request): number {
  const { world, tastes } = ctx;
  if (!req.query) return 1;
  let z = 0;
  for (let c = 0; c < world.sizes.categories; c++) {
    const lik = req.likelihood(c);
    if (lik > 0) z += lik * (req.noise * world.catPop[c] + (1 - req.noise) * tastes.browse.of(c));
  }
  return z;
}
