/**
 * Deterministic random weights and inputs for tests and benchmarks. Not part of the serving path.
 * Everything here is a pure function of its arguments (seeded PRNG), so a failing test reproduces exactly.
 */
import { DupnError } from '../errors';
import { ResolvedConfig, RetrievalTask, TaskConfig, denseCount } from '../network/config';
import { SUCCESSORS_UNUSED, Tensors, elementCount, historyField, priorName, successorNames, tensorSpecs } from '../network/tensors';
import { CandidateColumns, UserColumns } from '../model/columns';
import { mulberry32, seedFor } from '../random';

export { mulberry32 };

/** Integer uniform in [0, n). */
function randInt(rand: () => number, n: number): number {
  return Math.floor(rand() * n);
}

/**
 * Every tensor of `tensorSpecs(config)`, filled with values uniform in [-scale, scale] (default 0.5, small
 * enough that the LSTM gates are not saturated). Each tensor is seeded from `seed` and its own name.
 */
export function randomTensors(config: ResolvedConfig, seed: number, scale = 0.5): Tensors {
  const out: Tensors = new Map();
  for (const spec of tensorSpecs(config)) {
    const data = new Float32Array(elementCount(spec.shape));
    const rand = mulberry32(seedFor(seed, spec.name));
    for (let i = 0; i < data.length; i++) data[i] = (rand() * 2 - 1) * scale;
    out.set(spec.name, data);
  }
  for (const t of config.tasks) if (t.kind === 'retrieval' && t.successors) randomSuccessors(config, t, out, seed);
  return out;
}

/**
 * A valid random successor table for `task`: most rows used (distinct ascending buckets, the rest unused),
 * random successor buckets, weights in [0, 4) with about a quarter of the slots empty.
 */
function randomSuccessors(config: ResolvedConfig, task: RetrievalTask, tensors: Tensors, seed: number): void {
  const { items } = task.successors!;
  const buckets = config.itemFields.find((f) => f.name === historyField(task))!.buckets;
  const rand = mulberry32(seedFor(seed, `successors.${task.name}`));
  const names = successorNames(task.name);
  const used = Math.min(buckets, Math.ceil(items * 0.8));
  const picked = new Set<number>();
  while (picked.size < used) picked.add(randInt(rand, buckets));
  const from = tensors.get(names.from)!.fill(SUCCESSORS_UNUSED);
  from.set([...picked].sort((a, b) => a - b));
  const to = tensors.get(names.to)!;
  const weight = tensors.get(names.weight)!;
  for (let j = 0; j < to.length; j++) {
    to[j] = randInt(rand, buckets);
    weight[j] = rand() < 0.25 ? 0 : rand() * 4;
  }
}

/** A copy of user columns, every array its own. */
export function cloneUserColumns(c: UserColumns): UserColumns {
  return {
    lengths: c.lengths.slice(), items: c.items.slice(), properties: c.properties.slice(),
    queryOffsets: c.queryOffsets.slice(), queryTokens: c.queryTokens.slice(), profile: c.profile.slice(),
  };
}

/**
 * A batch of users with the given `lengths` and valid, in-range rows for every table: item fields in
 * [0, buckets), type in [0, types.length] and scene in [0, scenes.length] (the last row, "unknown", included),
 * gap in [0, gapBuckets), 0..`queryTokens` query tokens per user (none when the config has no query).
 */
export function randomUserColumns(
  config: ResolvedConfig,
  seed: number,
  lengths: number[],
  opts: { queryTokens?: number } = {},
): UserColumns {
  const rand = mulberry32(seedFor(seed, 'users'));
  const F = config.itemFields.length;
  const P = config.profileFields.length;
  const B = lengths.length;
  const N = lengths.reduce((s, l) => s + l, 0);
  const maxTokens = config.query ? (opts.queryTokens ?? 3) : 0;

  const items = new Int32Array(N * F);
  const properties = new Int32Array(N * 3);
  const p = config.properties;
  for (let n = 0; n < N; n++) {
    for (let f = 0; f < F; f++) items[n * F + f] = randInt(rand, config.itemFields[f].buckets);
    properties[3 * n] = randInt(rand, p.types.length + 1);
    properties[3 * n + 1] = randInt(rand, p.gapBuckets);
    properties[3 * n + 2] = randInt(rand, p.scenes.length + 1);
  }

  const queryOffsets = new Int32Array(B + 1);
  const tokens: number[] = [];
  for (let b = 0; b < B; b++) {
    const count = randInt(rand, maxTokens + 1);
    for (let k = 0; k < count; k++) tokens.push(randInt(rand, config.query!.buckets));
    queryOffsets[b + 1] = tokens.length;
  }

  const profile = new Int32Array(B * P);
  for (let b = 0; b < B; b++) {
    for (let f = 0; f < P; f++) profile[b * P + f] = randInt(rand, config.profileFields[f].buckets);
  }

  return { lengths: Int32Array.from(lengths), items, properties, queryOffsets, queryTokens: Int32Array.from(tokens), profile };
}

/** `count` candidates for `task` (a task or its name): in-range item rows, dense features in [-1, 1] for rank. */
export function randomCandidateColumns(
  config: ResolvedConfig,
  task: TaskConfig | string,
  seed: number,
  count: number,
): CandidateColumns {
  const t = typeof task === 'string' ? config.tasks.find((x) => x.name === task) : task;
  if (!t) throw new DupnError('E_TASK', `unknown task ${JSON.stringify(task)}`);
  const rand = mulberry32(seedFor(seed, `candidates.${t.name}`));
  const F = config.itemFields.length;
  const items = new Int32Array(count * F);
  for (let c = 0; c < count; c++) {
    for (let f = 0; f < F; f++) items[c * F + f] = randInt(rand, config.itemFields[f].buckets);
  }
  const D = denseCount(t);
  const dense = new Float32Array(count * D);
  for (let i = 0; i < dense.length; i++) dense[i] = rand() * 2 - 1;
  return { items, dense };
}

/**
 * `cands` with a retrieval head's prior column set from its prior table, as `packCandidates` fills it (the
 * ONNX head graph looks the prior up itself, so a comparison needs the two to agree).
 */
export function withPrior(config: ResolvedConfig, tensors: Map<string, Float32Array>, task: string, cands: CandidateColumns): CandidateColumns {
  const t = config.tasks.find((x) => x.name === task);
  const D = t ? denseCount(t) : 0;
  if (!t || t.kind !== 'retrieval' || D === 0) return cands;
  const table = tensors.get(priorName(task))!;
  const F = config.itemFields.length;
  const fi = config.itemFields.findIndex((f) => f.name === historyField(t));
  const dense = Float32Array.from(cands.dense);
  for (let c = 0; c < dense.length / D; c++) dense[c * D + D - 1] = table[cands.items[c * F + fi]];
  return { items: cands.items, dense };
}
