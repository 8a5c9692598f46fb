/**
 * The tensor layout of a model (docs/format.md, Tensors): names and shapes, in the one canonical order used by the model
 * file, the native addon and the reference. Weights are float32, row-major `[rows, cols]`, y = W x + b.
 */
import { ResolvedConfig, TaskConfig, denseCount, deriveDims, headInputDim, targetDim, taskOutputs } from './config';

// The names, built here and nowhere else (docs/format.md lists them; a model file is found by them).

/** An item field's embedding table. */
export function itemTableName(field: string): string {
  return `emb.item.${field}`;
}

/** A behaviour property's embedding table: its type, its time-gap bucket or its scene. */
export function propertyTableName(property: 'type' | 'gap' | 'scene'): string {
  return `emb.prop.${property}`;
}

/** The query tokens' embedding table. */
export const QUERY_TABLE_NAME = 'emb.query';

/** A profile field's embedding table. */
export function profileTableName(field: string): string {
  return `emb.profile.${field}`;
}

/** Whether a tensor is an embedding table (item, property, query or profile). */
export function isEmbeddingTable(name: string): boolean {
  return name.startsWith('emb.');
}

/** An LSTM direction: forward, or backward in a bidirectional model. */
export type LstmDirection = 'fw' | 'bw';

/** The LSTM directions a config runs, forward first. */
export function lstmDirections(c: { bidirectional: boolean }): LstmDirection[] {
  return c.bidirectional ? ['fw', 'bw'] : ['fw'];
}

/** One LSTM direction's weights: input `wx` [4H, dx], property gates `wp` [3H, dp], recurrent `wh` [4H, H], bias `b` [4H]. */
export function lstmNames(dir: LstmDirection): { wx: string; wp: string; wh: string; b: string } {
  return { wx: `lstm.${dir}.wx`, wp: `lstm.${dir}.wp`, wh: `lstm.${dir}.wh`, b: `lstm.${dir}.b` };
}

/** Whether a tensor is an LSTM weight or bias. */
export function isLstm(name: string): boolean {
  return name.startsWith('lstm.');
}

/** The attention's tensors: `w` [A, attnIn], `b` [A], `v` [A]. */
export const ATTENTION_NAMES = { w: 'attn.w', b: 'attn.b', v: 'attn.v' } as const;

/** The stem of a head's layer stack: the head's own, or one tower of a retrieval head. */
export function headStem(task: string, tower?: 'user' | 'item'): string {
  return tower === undefined ? `head.${task}` : `head.${task}.${tower}`;
}

/** Layer `k` (from 0) of the layer stack named by `stem` ({@link headStem}). */
export function layerNames(stem: string, k: number): { w: string; b: string } {
  return { w: `${stem}.${k}.w`, b: `${stem}.${k}.b` };
}

/** Whether a tensor belongs to a head (any task's). */
export function isHeadTensor(name: string): boolean {
  return name.startsWith('head.');
}

/** Whether a tensor belongs to the head of `task`. */
export function isTaskTensor(name: string, task: string): boolean {
  return name.startsWith(`head.${task}.`);
}

/** The tensor of a retrieval head's history-feature weights. */
export function historyWeightName(task: string): string {
  return `head.${task}.history.w`;
}

/** Whether a tensor is a retrieval head's history-feature weights. */
export function isHistoryWeight(name: string): boolean {
  return /^head\.[^]*\.history\.w$/.test(name);
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

/** The hidden widths and tensor-name stems of a task's layer stacks (one stack, two for retrieval). */
export function layerStacks(c: ResolvedConfig, t: TaskConfig): { stem: string; widths: number[] }[] {
  if (t.kind === 'retrieval') {
    return [
      { stem: headStem(t.name, 'user'), widths: [deriveDims(c).userDim, ...t.layers] },
      { stem: headStem(t.name, 'item'), widths: [targetDim(c, t), ...t.layers] },
    ];
  }
  return [{ stem: headStem(t.name), widths: [headInputDim(c, t), ...t.layers, taskOutputs(t)] }];
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
  for (const f of c.itemFields) if (f.dim > 0) out.push({ name: itemTableName(f.name), shape: [f.buckets, f.dim] });
  const p = c.properties;
  if (p.typeDim > 0) out.push({ name: propertyTableName('type'), shape: [p.types.length + 1, p.typeDim] });
  if (p.gapDim > 0) out.push({ name: propertyTableName('gap'), shape: [p.gapBuckets, p.gapDim] });
  if (p.sceneDim > 0) out.push({ name: propertyTableName('scene'), shape: [p.scenes.length + 1, p.sceneDim] });
  if (c.query) out.push({ name: QUERY_TABLE_NAME, shape: [c.query.buckets, c.query.dim] });
  for (const f of c.profileFields) if (f.dim > 0) out.push({ name: profileTableName(f.name), shape: [f.buckets, f.dim] });
  for (const dir of lstmDirections(c)) {
    const names = lstmNames(dir);
    out.push({ name: names.wx, shape: [4 * H, d.dx] });
    out.push({ name: names.wp, shape: [3 * H, d.dp] });
    out.push({ name: names.wh, shape: [4 * H, H] });
    out.push({ name: names.b, shape: [4 * H] });
  }
  out.push({ name: ATTENTION_NAMES.w, shape: [c.attentionHidden, d.attnIn] });
  out.push({ name: ATTENTION_NAMES.b, shape: [c.attentionHidden] });
  out.push({ name: ATTENTION_NAMES.v, shape: [c.attentionHidden] });
  for (const t of c.tasks) {
    for (const { stem, widths } of layerStacks(c, t)) {
      for (let k = 0; k + 1 < widths.length; k++) {
        const names = layerNames(stem, k);
        out.push({ name: names.w, shape: [widths[k + 1], widths[k]] });
        out.push({ name: names.b, shape: [widths[k + 1]] });
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

/**
 * Whether a tensor is a hashed embedding table (an item field's, a profile field's or the query tokens'): one
 * whose rows are buckets of ids, most of which no id of a given log lands in. Those tables start at zero in a
 * trainer and are stored by their nonzero rows (docs/format.md, Sparse tables).
 */
export function isHashedTable(name: string): boolean {
  return name.startsWith('emb.item.') || name.startsWith('emb.profile.') || name === QUERY_TABLE_NAME;
}
