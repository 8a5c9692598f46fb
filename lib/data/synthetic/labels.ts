/**
 * Labels and oracle at a cut: the role each task of the config plays (next click, shown list, price level or
 * shop of the next purchase), its labels drawn from the tastes at the cut, and the generator's own
 * probabilities for them as the oracle.
 */
import { ResolvedConfig, TaskConfig } from '../../network/config';
import { DupnError } from '../../errors';
import { UserInput } from '../../model/features';
import { GRADES, LabelledCandidate, TrainingExample } from '../training-example';
import { positivePosterior } from './negatives';
import { GRADE_THRESHOLDS, LIST_HISTORY, LIST_PERSONAL } from './planted';
import { normal, shuffle, sigmoid } from './random';
import { clickNormaliser, clickProbability, CutContext, drawRequest, Request } from './requests';

/** One example with its ground truth. */
export interface SyntheticRecord {
  /** The example, as a reader would yield it. */
  example: TrainingExample;
  /**
   * The generator's truth for every labelled task, laid out as lib/eval/evaluate.ts's `Scorer` returns scores
   * for one example: binary tasks the probability that each candidate (in label order) is the positive;
   * rank tasks the logit of each shown item's true click probability (a monotone function of its expected
   * gain, so it also ranks optimally for NDCG); multiclass tasks the class distribution (`classes` entries).
   */
  oracle: Record<string, Float64Array>;
}

const GENERATED_FIELDS = ['item', 'category', 'shop', 'brand'];

export type Role =
  | { task: TaskConfig; role: 'click' }
  | { task: TaskConfig; role: 'list'; dense: number }
  | { task: TaskConfig; role: 'price'; classes: number }
  | { task: TaskConfig; role: 'purchase'; fields: string[] };

export function roles(config: ResolvedConfig): Role[] {
  return config.tasks.map((task, i): Role => {
    if (task.kind === 'multiclass') return { task, role: 'price', classes: task.classes };
    if (task.kind === 'rank') return { task, role: 'list', dense: task.denseFeatures };
    if (task.target.includes('item')) return { task, role: 'click' };
    const fields = task.target.filter((f) => GENERATED_FIELDS.includes(f));
    if (fields.length === 0) {
      throw new DupnError('E_CONFIG', `tasks[${i}].target: the synthetic generator produces only ${GENERATED_FIELDS.join(', ')}; task "${task.name}" targets ${task.target.join(', ')}`, {
        path: `tasks[${i}].target`,
      });
    }
    return { task, role: 'purchase', fields };
  });
}

/** Draws negatives until one differs from the positive (by `differs`); refuses a universe with no other. */
function drawNegative(ctx: CutContext, task: string, differs: (i: number) => boolean): number {
  for (let attempt = 0; attempt < 10_000; attempt++) {
    const i = ctx.negativeSampler.sample(ctx.rand);
    if (differs(i)) return i;
  }
  throw new DupnError('E_INPUT', `options: the universe is too small to draw negatives for task "${task}" (raise items, categories, shops or brands)`, { path: 'options' });
}

function clickLabels(ctx: CutContext, task: string, req: Request, normaliser: number): { labels: LabelledCandidate[]; oracle: Float64Array } {
  const { world, rand, negatives } = ctx;
  const items = [req.click];
  while (items.length < negatives + 1) items.push(drawNegative(ctx, task, (i) => i !== req.click));
  const order = shuffle(rand, items.map((item, k) => ({ item, label: k === 0 ? 1 : 0 })));
  return {
    labels: order.map((x) => ({ candidate: world.candidate(x.item), label: x.label })),
    oracle: Float64Array.from(order, (x) => positivePosterior(clickProbability(ctx, req, x.item, normaliser), ctx.negativeSampler.mass(x.item), negatives)),
  };
}

function listLabels(ctx: CutContext, dense: number): { labels: LabelledCandidate[]; oracle: Float64Array } {
  const { world, tastes, rand, listSize } = ctx;
  const personal = Math.round(LIST_PERSONAL * listSize);
  const historical = personal + Math.round(LIST_HISTORY * listSize);
  const items: number[] = [];
  for (let k = 0; k < listSize; k++) {
    if (k < personal) items.push(tastes.sampleItem(rand, tastes.browse.sample(rand), false));
    else if (k < historical) items.push(ctx.negativeSampler.sampleHistorical(rand));
    else items.push(world.samplePopular(rand));
  }
  shuffle(rand, items);
  const labels: LabelledCandidate[] = [];
  const oracle = new Float64Array(listSize);
  items.forEach((i, k) => {
    const r = tastes.relevance(i);
    let grade = 0;
    while (grade < GRADES.buy && rand() < sigmoid(r - GRADE_THRESHOLDS[grade])) grade++;
    const candidate = world.candidate(i);
    if (dense > 0) {
      // The first dense features carry item facts a ranker may use; the rest are noise.
      const facts = [world.itemQuality[i], world.itemPrice[i] / Math.max(1, ctx.priceLevels - 1), Math.log(world.itemPop[i] * world.sizes.items)];
      candidate.dense = Array.from({ length: dense }, (_, d) => (d < facts.length ? facts[d] : normal(rand)));
    }
    labels.push({ candidate, label: grade });
    oracle[k] = r - GRADE_THRESHOLDS[0];
  });
  return { labels, oracle };
}

/** The next purchase and its distribution (drawn once per cut, shared by price and purchase-entity tasks). */
class NextPurchase {
  readonly item: number;
  private readonly dist: { items: Int32Array; p: Float64Array };

  constructor(private readonly ctx: CutContext) {
    this.dist = ctx.tastes.purchaseItems();
    const c = ctx.tastes.buy.sample(ctx.rand);
    this.item = ctx.tastes.sampleItem(ctx.rand, c, true);
  }

  priceClass(classes: number): number {
    return Math.floor((this.ctx.world.itemPrice[this.item] * classes) / this.ctx.priceLevels);
  }

  priceOracle(classes: number): Float64Array {
    const { items, p } = this.dist;
    const out = new Float64Array(classes);
    for (let k = 0; k < items.length; k++) out[Math.floor((this.ctx.world.itemPrice[items[k]] * classes) / this.ctx.priceLevels)] += p[k];
    // A class holding every item's share sums to 1 plus an ulp or two, which the evaluator refuses.
    for (let c = 0; c < classes; c++) out[c] = Math.min(out[c], 1);
    return out;
  }

  entityLabels(task: string, fields: string[]): { labels: LabelledCandidate[]; oracle: Float64Array } {
    const { world, rand, negatives } = this.ctx;
    const index = world.entities(fields);
    const positive = index.ids[this.item];
    const picked = [{ item: this.item, entity: positive, label: 1 }];
    while (picked.length < negatives + 1) {
      const i = drawNegative(this.ctx, task, (x) => index.ids[x] !== positive);
      picked.push({ item: i, entity: index.ids[i], label: 0 });
    }
    const wanted = picked.map((x) => x.entity);
    const p = new Map<number, number>(wanted.map((e) => [e, 0]));
    const { items, p: share } = this.dist;
    for (let k = 0; k < items.length; k++) {
      const e = index.ids[items[k]];
      const q = p.get(e);
      if (q !== undefined) p.set(e, q + share[k]);
    }
    const mass = this.ctx.negativeSampler.entityMass(index, wanted);
    shuffle(rand, picked);
    return {
      labels: picked.map((x) => ({ candidate: world.candidate(x.item, fields), label: x.label })),
      oracle: Float64Array.from(picked, (x) => positivePosterior(p.get(x.entity)!, mass.get(x.entity)!, negatives)),
    };
  }
}

export function cutRecord(ctx: CutContext, taskRoles: Role[], user: UserInput, userId: string, time: number): SyntheticRecord {
  const req = drawRequest(ctx);
  if (req.query !== undefined) user.query = req.query;
  let normaliser = -1;
  let purchase: NextPurchase | null = null;
  const labels: TrainingExample['labels'] = {};
  const oracle: Record<string, Float64Array> = {};
  for (const r of taskRoles) {
    const name = r.task.name;
    if (r.role === 'click') {
      if (normaliser < 0) normaliser = clickNormaliser(ctx, req);
      const out = clickLabels(ctx, name, req, normaliser);
      labels[name] = out.labels;
      oracle[name] = out.oracle;
    } else if (r.role === 'list') {
      const out = listLabels(ctx, r.dense);
      labels[name] = out.labels;
      oracle[name] = out.oracle;
    } else {
      purchase ??= new NextPurchase(ctx);
      if (r.role === 'price') {
        labels[name] = purchase.priceClass(r.classes);
        oracle[name] = purchase.priceOracle(r.classes);
      } else {
        const out = purchase.entityLabels(name, r.fields);
        labels[name] = out.labels;
        oracle[name] = out.oracle;
      }
    }
  }
  return { example: { user, userId, time, labels }, oracle };
}
