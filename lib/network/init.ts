/**
 * Initial weights of a new model, deterministic by seed. Scales follow common practice for this
 * architecture: small uniform embeddings; LSTM weights U(±1/√H) with forget-gate bias 1 (keeps early
 * training from forgetting); Xavier-uniform attention; heads U(±1/√fan_in) like PyTorch's Linear.
 */
import { ResolvedConfig } from './config';
import { mulberry32, seedFor } from '../random';
import { PRIOR_FLOOR, SUCCESSORS_UNUSED, Tensors, TensorSpec, elementCount, isPrior, isStatistic, tensorSpecs } from './tensors';

/**
 * The starting weight of a retrieval head's log-prior feature. Under the log-Q-corrected softmax the weight
 * settles at a clearly positive value (after 3 epochs from 0: 0.49 on the Taobao sample, 0.54 on Diginetica),
 * but the feature is not scaled up like the one-hot ones, so Adam at the dense learning rate needs several
 * epochs to get there, and a model of one epoch ranked the items a user never touched below plain popularity
 * (docs/real-data.md). Starting halfway between "no popularity" and "the full log prior" saves that.
 */
export const PRIOR_WEIGHT_INIT = 0.5;

function scaleOf(spec: TensorSpec, specs: Map<string, TensorSpec>, hidden: number): number {
  if (spec.name.startsWith('emb.')) return 0.1;
  if (spec.name.startsWith('lstm.')) return 1 / Math.sqrt(hidden);
  if (spec.name === 'attn.b') return 0;
  // A retrieval head's history weights start at 0 (no opinion on repeats until training forms one), but for
  // the log prior's (PRIOR_WEIGHT_INIT); its prior table is filled below.
  if (/^head\..*\.history\.w$/.test(spec.name) || isStatistic(spec.name)) return 0;
  if (spec.name === 'attn.w') return Math.sqrt(6 / (spec.shape[0] + spec.shape[1]));
  if (spec.name === 'attn.v') return Math.sqrt(6 / (spec.shape[0] + 1));
  // head.<task>.<k>.w / .b: fan-in is the weight's column count.
  const weight = specs.get(spec.name.replace(/\.b$/, '.w')) ?? spec;
  return 1 / Math.sqrt(Math.max(1, weight.shape[1] ?? 1));
}

/** Fresh weights for every tensor of `config`, deterministic in `seed`. */
export function initTensors(config: ResolvedConfig, seed: number): Tensors {
  const specs = tensorSpecs(config);
  const byName = new Map(specs.map((s) => [s.name, s]));
  const out: Tensors = new Map();
  const H = config.hidden;
  for (const spec of specs) {
    // One stream per tensor, so adding a table does not change every other tensor's values.
    const rand = mulberry32(seedFor(seed, spec.name));
    const data = new Float32Array(elementCount(spec.shape));
    const scale = scaleOf(spec, byName, H);
    if (scale !== 0) for (let i = 0; i < data.length; ++i) data[i] = (rand() * 2 - 1) * scale;
    if (/^lstm\.(fw|bw)\.b$/.test(spec.name)) data.fill(1, H, 2 * H);
    if (isPrior(spec.name)) data.fill(PRIOR_FLOOR);
    // An empty successor table: every row unused, every slot weight 0.
    if (isStatistic(spec.name) && !isPrior(spec.name)) data.fill(spec.name.endsWith('.from') ? SUCCESSORS_UNUSED : 0);
    if (/^head\..*\.history\.w$/.test(spec.name)) data[data.length - 1] = PRIOR_WEIGHT_INIT;
    out.set(spec.name, data);
  }
  return out;
}
