/**
 * The trainer's checkpoint file: one safetensors file that holds every tensor of the model, the optimizer
 * state beside each (`opt.m.<name>` where the tensor has first moments, `opt.v.<name>` of the tensor's shape,
 * or `[rows]` for row-wise state; nothing for a statistic such as the prior, which no gradient moves) and, as
 * metadata, the config, the training options, the step count, the caller's data position and the tensors'
 * checksum. A hashed table whose used rows (any of its value, m or v nonzero) are under half of it is stored
 * by those rows, as in a model file (docs/format.md, Sparse tables): the table, its opt.m and its opt.v hold
 * the used rows and `<table>#rows` their ids (checkpoint version 2). With weight averaging (`averageDecay`),
 * `avg.<name>` holds each averaged tensor's average, current at the step (stored like the tensor). Written atomically, so a crash leaves the
 * previous checkpoint intact; read back with the checks a model file gets.
 */
import { DupnError } from '../errors';
import { ResolvedConfig, resolveConfig } from '../network/config';
import { TensorSpec, Tensors, elementCount, isHashedTable, tensorSpecs } from '../network/tensors';
import { readRegularFile, writeFileAtomic } from './atomic-file';
import { CHECKSUM_KEY, firstNonFinite, int32TensorAt, refuseRowKeys, rowKeysAt, tensorAt, tensorsDigest, verifyChecksum } from './model-file';
import { encodeSafetensors, parseSafetensors } from './safetensors';
import { ROWS_SUFFIX, gatherRows, scatterRows, usedRowKeys } from './sparse-rows';
import type { AverageState } from '../train/weight-average';

const CHECKPOINT_FORMAT = 'dupn-checkpoint';
/** The name prefix of a tensor's weight average in a checkpoint. */
const AVERAGE_PREFIX = 'avg.';
/** The name prefix of a hashed table's per-row average steps (I32, one per stored row). */
const AVERAGE_AT_PREFIX = 'avg.at.';
const CHECKPOINT_VERSION = '1';
/** A checkpoint with a table stored by its used rows. */
const SPARSE_CHECKPOINT_VERSION = '2';

/** Optimizer state of one tensor: m and v like the data, or, under row-wise Adagrad, no m (length 0) and one v per row. */
export interface Moments {
  m: Float32Array;
  v: Float32Array;
}

/** What a checkpoint holds. */
export interface CheckpointState {
  config: ResolvedConfig;
  /** The training options to resume with, as JSON (run-time settings left out by the caller). */
  options: object;
  /** Optimizer steps done. */
  step: number;
  /** Where the caller's data stand: any JSON value. */
  position: unknown;
  tensors: Tensors;
  moments: ReadonlyMap<string, Moments>;
  /** With weight averaging: the averaged tensors' averages and, per hashed table, the step each row's is current at. */
  averages?: AverageState;
}

/** Writes `state` to `path` atomically. */
export async function writeCheckpoint(path: string, state: CheckpointState): Promise<void> {
  const specs = tensorSpecs(state.config);
  const moments = (name: string): Moments => state.moments.get(name)!;
  // A hashed table whose used rows (its value, m or v nonzero) are few is stored by them, state included.
  const keys = new Map<string, Int32Array>();
  for (const s of specs) {
    if (!isHashedTable(s.name) || s.shape[1] === 0) continue;
    const mo = moments(s.name);
    const avg = state.averages?.values.get(s.name);
    const at = state.averages?.at.get(s.name);
    // A row whose average some step made current is used too (its average and weights are nonzero anyway).
    const current = at === undefined ? [] : [Float32Array.from(at, (x) => (x >= 0 ? 1 : 0))];
    const k = usedRowKeys(s.shape[0], s.shape[1], [state.tensors.get(s.name)!, mo.m, mo.v, ...(avg ? [avg] : []), ...current]);
    if (k !== undefined) keys.set(s.name, k);
  }
  // A tensor (value, m or v) of table `s`: its used rows when the table is stored so, else all of it.
  const part = (name: string, s: TensorSpec, data: Float32Array): { name: string; data: Float32Array; shape: number[] } => {
    const shape = data.length === elementCount(s.shape) ? s.shape : [s.shape[0]];
    const k = keys.get(s.name);
    if (k === undefined) return { name, data, shape };
    return { name, data: gatherRows(data, k, data.length / s.shape[0]), shape: [k.length, ...shape.slice(1)] };
  };
  const tensors = [
    ...specs.flatMap((s) => {
      const k = keys.get(s.name);
      const table = part(s.name, s, state.tensors.get(s.name)!);
      return k === undefined ? [table] : [table, { name: s.name + ROWS_SUFFIX, data: k, shape: [k.length] }];
    }),
    // Row-wise state (no m, one v per row) is stored as it is: opt.v.<table> of shape [rows].
    ...specs.filter((s) => moments(s.name).m.length > 0).map((s) => part(`opt.m.${s.name}`, s, moments(s.name).m)),
    // A statistic has no state (v empty) and no opt.v.
    ...specs.filter((s) => moments(s.name).v.length > 0).map((s) => part(`opt.v.${s.name}`, s, moments(s.name).v)),
    ...specs.flatMap((s) => {
      const avg = state.averages?.values.get(s.name);
      if (avg === undefined) return [];
      const at = state.averages?.at.get(s.name);
      if (at === undefined) return [part(`${AVERAGE_PREFIX}${s.name}`, s, avg)];
      const k = keys.get(s.name);
      const steps = k === undefined ? at : Int32Array.from(k, (r) => at[r]);
      return [part(`${AVERAGE_PREFIX}${s.name}`, s, avg), { name: `${AVERAGE_AT_PREFIX}${s.name}`, data: steps, shape: [steps.length] }];
    }),
  ];
  const metadata = {
    format: CHECKPOINT_FORMAT,
    format_version: keys.size > 0 ? SPARSE_CHECKPOINT_VERSION : CHECKPOINT_VERSION,
    config: JSON.stringify(state.config),
    options: JSON.stringify(state.options),
    step: String(state.step),
    position: JSON.stringify(state.position ?? null),
    [CHECKSUM_KEY]: tensorsDigest(tensors.map((x) => x.data)),
  };
  await writeFileAtomic(path, encodeSafetensors(metadata, tensors));
}

/** A checkpoint whose metadata is read and checked; {@link readState} reads its tensors. */
export interface OpenedCheckpoint {
  config: ResolvedConfig;
  /** The training options as saved (JSON, unchecked: the caller resolves them). */
  options: unknown;
  step: number;
  position: unknown;
  /**
   * Every tensor of the config and its optimizer state, checked like a model file's (there, F32, the
   * config's shape, finite) and second moments ≥ 0, then the checksum; copies, for the trainer to write.
   * `fresh(spec)` is the zeroed state the resumed run's options give a tensor: which moments the file must
   * hold and their lengths (an empty `m` is kept as it is).
   */
  readState(fresh: (spec: TensorSpec) => Moments): CheckpointTensors;
}

/** What {@link OpenedCheckpoint.readState} reads: the tensors, their optimizer state and any weight averages. */
export interface CheckpointTensors {
  tensors: Tensors;
  moments: Map<string, Moments>;
  /** The weight averages the file holds (none from a run without weight averaging). */
  averages?: AverageState;
}

/** Reads the checkpoint at `path` and checks its format, version and metadata (E_MODEL_FILE naming the problem). */
export async function openCheckpoint(path: string): Promise<OpenedCheckpoint> {
  const bytes = await readRegularFile(path, 'checkpoint');
  const fail = (problem: string): never => {
    throw new DupnError('E_MODEL_FILE', `${path}: ${problem}`);
  };
  const parsed = parseSafetensors(bytes, path);
  const meta = parsed.metadata;
  if (meta['format'] !== CHECKPOINT_FORMAT) fail(`not a dupn checkpoint (format ${JSON.stringify(meta['format'])})`);
  if (meta['format_version'] !== CHECKPOINT_VERSION && meta['format_version'] !== SPARSE_CHECKPOINT_VERSION) {
    fail(`unsupported checkpoint version ${JSON.stringify(meta['format_version'])}`);
  }
  let config: ResolvedConfig;
  let options: unknown;
  let position: unknown;
  try {
    config = resolveConfig(JSON.parse(meta['config'] ?? ''));
    options = JSON.parse(meta['options'] ?? '');
    position = JSON.parse(meta['position'] ?? 'null');
  } catch (e) {
    throw new DupnError('E_MODEL_FILE', `${path}: bad metadata: ${(e as Error).message}`, { cause: e });
  }
  const step = Number(meta['step']);
  if (!Number.isSafeInteger(step) || step < 0) fail(`bad step ${JSON.stringify(meta['step'])}`);

  if (meta['format_version'] !== SPARSE_CHECKPOINT_VERSION) refuseRowKeys(parsed, `checkpoint version "${SPARSE_CHECKPOINT_VERSION}"`, fail);
  const readState = (fresh: (spec: TensorSpec) => Moments): CheckpointTensors => {
    const read = (name: string, shape: readonly number[], nonNegative = false): Float32Array => {
      const data = Float32Array.from(tensorAt(bytes, parsed, name, shape, fail));
      const bad = firstNonFinite(data);
      if (bad >= 0) fail(`tensor "${name}" holds a non-finite value at ${bad}`);
      if (nonNegative) {
        const neg = data.findIndex((x) => x < 0);
        if (neg >= 0) fail(`tensor "${name}" holds a negative value at ${neg} (optimizer second moments are ≥ 0)`);
      }
      return data;
    };
    const tensors: Tensors = new Map();
    const moments = new Map<string, Moments>();
    const values = new Map<string, Float32Array>();
    const steps = new Map<string, Int32Array>();
    for (const s of tensorSpecs(config)) {
      const keys = parsed.tensors.has(s.name + ROWS_SUFFIX) ? rowKeysAt(bytes, parsed, s.name, s.shape, fail) : undefined;
      // A tensor of full shape `shape`, or of the table's stored rows, expanded (the other rows are zero).
      const readRows = (name: string, shape: readonly number[], nonNegative = false): Float32Array => {
        if (keys === undefined) return read(name, shape, nonNegative);
        return scatterRows(read(name, [keys.length, ...shape.slice(1)], nonNegative), keys, shape[0], elementCount(shape) / shape[0]);
      };
      tensors.set(s.name, readRows(s.name, s.shape));
      const f = fresh(s);
      moments.set(s.name, {
        m: f.m.length > 0 ? readRows(`opt.m.${s.name}`, s.shape) : f.m,
        // No state expected: a checkpoint of an earlier version may still hold an opt.v of it, unread.
        v: f.v.length === 0 ? f.v : readRows(`opt.v.${s.name}`, f.v.length === elementCount(s.shape) ? s.shape : [f.v.length], true),
      });
      if (!parsed.tensors.has(`${AVERAGE_PREFIX}${s.name}`)) continue;
      values.set(s.name, readRows(`${AVERAGE_PREFIX}${s.name}`, s.shape));
      const atName = `${AVERAGE_AT_PREFIX}${s.name}`;
      if (!parsed.tensors.has(atName)) {
        if (isHashedTable(s.name) && s.shape[1] > 0) fail(`tensor "${atName}" is missing (a hashed table's average needs its rows' steps)`);
        continue;
      }
      const stored = int32TensorAt(bytes, parsed, atName, [keys?.length ?? s.shape[0]], fail);
      const bad = stored.findIndex((x) => x < -1 || x > step);
      if (bad >= 0) fail(`tensor "${atName}" holds ${stored[bad]} at ${bad}, not a step in [-1, ${step}]`);
      const at = new Int32Array(s.shape[0]).fill(-1);
      if (keys === undefined) at.set(stored);
      else keys.forEach((r, j) => (at[r] = stored[j]));
      steps.set(s.name, at);
    }
    verifyChecksum(bytes, parsed, fail); // last: a structural problem is said as such
    return { tensors, moments, ...(values.size > 0 ? { averages: { values, at: steps } } : {}) };
  };
  return { config, options, step, position, readState };
}
