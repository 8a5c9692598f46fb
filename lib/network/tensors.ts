/**
 * The tensor layout of a model (docs/format.md, Tensors): names and shapes, in the one canonical order used by the model
 * file, the native addon and the reference. Weights are float32, row-major `[rows, cols]`, y = W x + b.
 */
import { ResolvedConfig, denseCount, deriveDims, layerStacks } from './config';

/** The tensor of a retrieval head's history-feature weights. */
export function historyWeightName(task: string): string {
  return `head.${task}.history.w`;
}

/**
 * A retrieval head's log prior per bucket of its history field: log of the share of the training sampler's
 * draws that were this item (its recent popularity), set by the trainer from the examples' log Q, never by
 * gradients, and at the end from the training period's counts (`Trainer.setPrior`). Buckets never seen keep
 * {@link PRIOR_FLOOR} (or lower: below every counted share).
 */
export function priorName(task: string): string {
  return `head.${task}.prior`;
}

/** Whether a tensor is a retrieval head's prior table. */
export function isPrior(name: string): boolean {
  return /^head\.[^]*\.prior$/.test(name);
}

/**
 * A retrieval head's successor table (config `successors`): `from` [items] holds the bucket ids of the items
 * that have successors, ascending, then {@link SUCCESSORS_UNUSED} in the rows left over; row r of `to`
 * [items, perItem] the bucket ids of its successors and of `weight` their sequential-rules weights (0: an
 * empty slot). Ids are whole numbers stored as float32. Set by `Trainer.setSuccessors`, never by gradients.
 */
export function successorNames(task: string): { from: string; to: string; weight: string } {
  return { from: `head.${task}.successors.from`, to: `head.${task}.successors.to`, weight: `head.${task}.successors.weight` };
}

/** The `from` value of an unused successor row: above every bucket id (-1 would break the ascending order). */
export const SUCCESSORS_UNUSED = 2 ** 24;

/** Whether a tensor holds statistics the trainer sets (a prior or successor table) rather than weights. */
export function isStatistic(name: string): boolean {
  return isPrior(name) || /^head\.[^]*\.successors\.(from|to|weight)$/.test(name);
}

/** The log prior of an item never seen in training: rarer than once in a full popularity window (10^5). */
export const PRIOR_FLOOR = Math.log(1e-5);

/** The field that identifies a candidate in the user's history: `item` when targeted, else the first target. */
export function historyField(task: { target: string[] }): string {
  return task.target.includes('item') ? 'item' : task.target[0];
}

export interface TensorSpec {
  name: string;
  shape: number[];
}

/** Every tensor the config calls for, in canonical order. A table whose dim is 0 has no tensor. */
export function tensorSpecs(c: ResolvedConfig): TensorSpec[] {
  const d = deriveDims(c);
  const H = c.hidden;
  const out: TensorSpec[] = [];
  for (const f of c.itemFields) if (f.dim > 0) out.push({ name: `emb.item.${f.name}`, shape: [f.buckets, f.dim] });
  const p = c.properties;
  if (p.typeDim > 0) out.push({ name: 'emb.prop.type', shape: [p.types.length + 1, p.typeDim] });
  if (p.gapDim > 0) out.push({ name: 'emb.prop.gap', shape: [p.gapBuckets, p.gapDim] });
  if (p.sceneDim > 0) out.push({ name: 'emb.prop.scene', shape: [p.scenes.length + 1, p.sceneDim] });
  if (c.query) out.push({ name: 'emb.query', shape: [c.query.buckets, c.query.dim] });
  for (const f of c.profileFields) if (f.dim > 0) out.push({ name: `emb.profile.${f.name}`, shape: [f.buckets, f.dim] });
  for (const dir of c.bidirectional ? ['fw', 'bw'] : ['fw']) {
    out.push({ name: `lstm.${dir}.wx`, shape: [4 * H, d.dx] });
    out.push({ name: `lstm.${dir}.wp`, shape: [3 * H, d.dp] });
    out.push({ name: `lstm.${dir}.wh`, shape: [4 * H, H] });
    out.push({ name: `lstm.${dir}.b`, shape: [4 * H] });
  }
  out.push({ name: 'attn.w', shape: [c.attentionHidden, d.attnIn] });
  out.push({ name: 'attn.b', shape: [c.attentionHidden] });
  out.push({ name: 'attn.v', shape: [c.attentionHidden] });
  for (const t of c.tasks) {
    for (const { stem, widths } of layerStacks(c, t)) {
      for (let k = 0; k + 1 < widths.length; k++) {
        out.push({ name: `${stem}.${k}.w`, shape: [widths[k + 1], widths[k]] });
        out.push({ name: `${stem}.${k}.b`, shape: [widths[k + 1]] });
      }
    }
    if (t.kind === 'retrieval' && t.history) {
      out.push({ name: historyWeightName(t.name), shape: [1, denseCount(t)] });
      const field = c.itemFields.find((f) => f.name === historyField(t))!;
      out.push({ name: priorName(t.name), shape: [field.buckets] });
      if (t.successors) {
        const names = successorNames(t.name);
        const { items, perItem } = t.successors;
        out.push({ name: names.from, shape: [items] }, { name: names.to, shape: [items, perItem] }, { name: names.weight, shape: [items, perItem] });
      }
    }
  }
  return out;
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Named float32 weights of a model, in any order; {@link tensorSpecs} gives the canonical one. */
export type Tensors = Map<string, Float32Array>;
