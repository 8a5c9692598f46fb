/**
 * Initial weights of a new model, deterministic by seed. Scales follow common practice for this
 * architecture: small uniform embeddings; LSTM weights U(±1/√H) with forget-gate bias 1 (keeps early
 * training from forgetting); Xavier-uniform attention; heads U(±1/√fan_in) like PyTorch's Linear.
 */
import { ResolvedConfig } from './config';
import { mulberry32, seedFor } from '../random';
import { ATTENTION_NAMES, PRIOR_FLOOR, SUCCESSORS_UNUSED, Tensors, TensorSpec, elementCount, isEmbeddingTable, isHashedTable, isHistoryWeight, isLstm, isPrior, isStatistic, layerNames, layerStacks, lstmDirections, lstmNames, successorNames, tensorSpecs } from './tensors';

/**
 * The starting weight of a retrieval head's log-prior feature. Under the log-Q-corrected softmax the weight
 * settles at a clearly positive value (after 3 epochs from 0: 0.49 on the Taobao sample, 0.54 on Diginetica),
 * but the feature is not scaled up like the one-hot ones, so Adam at the dense learning rate needs several
 * epochs to get there, and a model of one epoch ranked the items a user never touched below plain popularity
 * (docs/real-data.md). Starting halfway between "no popularity" and "the full log prior" saves that.
 */
export const PRIOR_WEIGHT_INIT = 0.5;

/** Embedding rows start uniform in ±this (small, so that early sums over a history stay in the gates' linear range). */
export const EMBEDDING_INIT_SCALE = 0.1;

function scaleOf(spec: TensorSpec, fanIns: Map<string, number>, hidden: number): number {
  if (isEmbeddingTable(spec.name)) return EMBEDDING_INIT_SCALE;
  if (isLstm(spec.name)) return 1 / Math.sqrt(hidden);
  if (spec.name === ATTENTION_NAMES.b) return 0;
  // A retrieval head's history weights start at 0 (no opinion on repeats until training forms one), but for
  // the log prior's (PRIOR_WEIGHT_INIT); its prior table is filled below.
  if (isHistoryWeight(spec.name) || isStatistic(spec.name)) return 0;
  if (spec.name === ATTENTION_NAMES.w) return Math.sqrt(6 / (spec.shape[0] + spec.shape[1]));
  if (spec.name === ATTENTION_NAMES.v) return Math.sqrt(6 / (spec.shape[0] + 1));
  // A head layer's weight and bias: fan-in is the weight's column count.
  return 1 / Math.sqrt(Math.max(1, fanIns.get(spec.name) ?? spec.shape[1] ?? 1));
}

/** The fan-in of every head layer's weight and bias, by tensor name: the weight's column count. */
function layerFanIns(config: ResolvedConfig): Map<string, number> {
  const out = new Map<string, number>();
  for (const t of config.tasks) {
    for (const { stem, widths } of layerStacks(config, t)) {
      for (let k = 0; k + 1 < widths.length; k++) {
        const names = layerNames(stem, k);
        out.set(names.w, widths[k]).set(names.b, widths[k]);
      }
    }
  }
  return out;
}

/**
 * Fresh weights for every tensor of `config`, deterministic in `seed`. `hashedAtZero`: the hashed tables
 * (item, profile and query fields) are left at zero, not drawn: a trainer draws each row when a step first
 * uses it (lib/train/lazy-rows.ts), and the pages of a large table stay untouched until then.
 */
export function initTensors(config: ResolvedConfig, seed: number, options: { hashedAtZero?: boolean } = {}): Tensors {
  const specs = tensorSpecs(config);
  const fanIns = layerFanIns(config);
  const out: Tensors = new Map();
  const H = config.hidden;
  const lstmBiases = new Set(lstmDirections(config).map((dir) => lstmNames(dir).b));
  const successorRows = new Set(config.tasks.map((t) => successorNames(t.name).from));
  for (const spec of specs) {
    // One stream per tensor, so adding a table does not change every other tensor's values.
    const rand = mulberry32(seedFor(seed, spec.name));
    const data = new Float32Array(elementCount(spec.shape));
    const scale = options.hashedAtZero && isHashedTable(spec.name) ? 0 : scaleOf(spec, fanIns, H);
    if (scale !== 0) for (let i = 0; i < data.length; ++i) data[i] = (rand() * 2 - 1) * scale;
    if (lstmBiases.has(spec.name)) data.fill(1, H, 2 * H);
    if (isPrior(spec.name)) data.fill(PRIOR_FLOOR);
    // An empty successor table: every row unused, every slot weight 0.
    if (isStatistic(spec.name) && !isPrior(spec.name)) data.fill(successorRows.has(spec.name) ? SUCCESSORS_UNUSED : 0);
    if (isHistoryWeight(spec.name)) data[data.length - 1] = PRIOR_WEIGHT_INIT;
    out.set(spec.name, data);
  }
  return out;
}
