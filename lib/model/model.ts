/**
 * The public model: create / load / save, encode users, score candidates, predict classes, explain.
 * Validation and packing happen here in TypeScript; compute happens in the native addon, off the
 * JavaScript thread for the async methods.
 */
import * as os from 'node:os';
import { CandidateColumns, UserColumns, columnsFor, userBatch } from './columns';
import { DupnConfig, HistoryTask, ResolvedConfig, RetrievalTask, TaskConfig, denseCount, deriveDims, historyDense, findMulticlassTask, findTask, resolveConfig, taskOutputs } from '../network/config';
import { DupnError, describe, inputError } from '../errors';
import { CandidateInput, HistoryIndex, PackOptions, RetrievalInputs, UserInput, packCandidates, packUsers, userHistory, userInputs, withHistory } from './features';
import { initTensors } from '../network/init';
import { firstNonFinite, loadModelFile, saveModelFile } from '../io/model-file';
import { RowKeys, expandTensors } from '../io/sparse-rows';
import { Backend, BackendName, Completion, withFiniteOutputs } from './backend';
import { fromNativeError, native } from '../native/addon';
import { nativeSpec } from '../native/spec';
import { SuccessorTable, checkSuccessorTable } from './successors';
import { Catalogue, Retrieved, RetrieveOptions, SEARCH_BLOCK, blockTransposed, catalogueKeys, mergeTop } from './retrieval';
import { Tensors, elementCount, historyField, historyWeightName, priorName, successorNames, tensorSpecs } from '../network/tensors';
import { SuccessorWeights, ValueCounts, fillPrior, fillSuccessors } from './statistics';

// onnxruntime-node and the protobuf code load only when a model asks for them, so native users never
// pay for them (onnxruntime's binary alone is hundreds of MiB).
function onnxBackend(): typeof import('../onnx/backend') {
  return require('../onnx/backend') as typeof import('../onnx/backend');
}
function onnxExport(): typeof import('../onnx/export') {
  return require('../onnx/export') as typeof import('../onnx/export');
}
function onnxImport(): typeof import('../onnx/import') {
  return require('../onnx/import') as typeof import('../onnx/import');
}

/** Options shared by {@link Model.create} and {@link Model.load}. */
export interface ModelOptions {
  /** Threads per call (default: `os.availableParallelism()`). */
  threads?: number;
  /**
   * {@link Model.load}: check the tensor data against the checksum the file carries (default true; 0.16 s
   * on the 178 MB paper-size file here). `false` skips it for very large files whose integrity is checked otherwise.
   */
  verifyChecksum?: boolean;
  /**
   * `'native'` (default): the C++ addon. `'onnxruntime'`: the same model exported to ONNX and run by
   * onnxruntime-node (async methods only; the `*Sync` twins need the native backend).
   */
  backend?: BackendName;
  /**
   * Cache the first-layer projection W_t·t of up to this many candidates per `binary`/`rank` head
   * (native backend; default 0 = no cache). Candidates are keyed by their target-field ids; each entry
   * holds one first-layer row (e.g. 128 floats = 512 B at paper size). Scores are bit-identical with
   * and without the cache; it pays off when the same items are scored for many users.
   */
  candidateCache?: number;
  /**
   * `'fp32'` (default) or `'bf16'`: the input projections, the recurrence and the attention products in
   * bfloat16 with fp32 accumulation (AVX-512-BF16 CPUs, native backend; elsewhere refused with
   * `E_UNSUPPORTED`). Faster, and within about 1e-2 of fp32; the heads stay fp32.
   */
  precision?: 'fp32' | 'bf16';
  /**
   * Force an instruction-set path ("baseline" | "avx2" | "avx512", one this CPU runs; `""`: the best it has);
   * default: `$DUPN_ISA`, else the best this CPU has. The onnxruntime backend has no paths and ignores it.
   */
  isa?: string;
}

/** Options of {@link Model.create}: the model options and the seed of the new weights. */
export interface CreateOptions extends ModelOptions {
  /** Seed of the initial weights (default 1). */
  seed?: number;
}

/** Every option key, so that the check below cannot miss one the interfaces gain. */
const OPTION_KEYS: Record<keyof CreateOptions, true> = {
  threads: true,
  verifyChecksum: true,
  backend: true,
  candidateCache: true,
  precision: true,
  isa: true,
  seed: true,
};
const MODEL_OPTIONS = Object.keys(OPTION_KEYS).filter((k) => k !== 'seed');
const CREATE_OPTIONS = Object.keys(OPTION_KEYS);

/** {@link ModelOptions} with the defaults applied. */
interface ResolvedModelOptions {
  threads: number;
  verifyChecksum: boolean;
  backend: BackendName;
  candidateCache: number;
  precision: 'fp32' | 'bf16';
  /** undefined: `$DUPN_ISA`, else the best path. */
  isa: string | undefined;
}

/** Options of {@link Model.encode} and its twins: the request time and where to write U. */
export interface EncodeOptions extends PackOptions {
  /** Write U here (B × userDim) instead of a new array. */
  out?: Float32Array;
}

/** Options of {@link Model.score} and its twins. */
export interface ScoreOptions {
  /** Write the scores here (one per candidate) instead of a new array. */
  out?: Float32Array;
  /**
   * retrieval heads with history features: the user whose vector this is, so candidates they acted on get
   * their history term (without it the term is zero: the plain two-tower score).
   */
  user?: UserInput;
}

/** Options of {@link Model.scoreAll} and {@link Model.packCandidates}. */
export interface ScoreAllOptions {
  /** The binary/rank/retrieval heads to score (default: every one that is not multiclass). */
  tasks?: string[];
  /**
   * retrieval heads with history features: the user, so candidates they acted on get their history term
   * (as {@link ScoreOptions.user}); without it the term is zero.
   */
  user?: UserInput;
  /**
   * Native threads of this call: 1 to the model's `threads` (default: the model's). Many small calls in
   * flight at once run side by side on the compute pool's per-core dispatchers, so one thread each wastes
   * less on splitting and waking than several (what the batcher does with a batch's rank requests).
   */
  threads?: number;
}

/** What {@link Model.explain} returns for one user. */
export interface Explanation {
  /** One attention weight per kept behaviour (the most recent `maxSeqLen`), oldest first; sums to 1 (empty for none). */
  attention: Float32Array;
  /** Index into the caller's `behaviors` of the first kept behaviour (older ones were truncated). */
  firstKept: number;
  /** The user vector U. */
  user: Float32Array;
}

/** One engine call, its arguments checked and its outputs allocated: what {@link Model} runs in either form. */
interface EngineCall<R> {
  /** Names the call in the message of an engine failure. */
  context: string;
  /** Starts the call: on this thread (`async` false), or queued (a promise). */
  call: (async: boolean) => Completion;
  /** What the caller gets once the call is done (the outputs it fills). */
  result: R;
}

function resolveThreads(threads: unknown): number {
  if (threads === undefined) return Math.max(1, os.availableParallelism());
  if (typeof threads !== 'number' || !Number.isInteger(threads) || threads < 1 || threads > 1024) {
    inputError('options.threads', `must be an integer in [1, 1024], got ${describe(threads)}`);
  }
  return threads;
}

function cacheSize(n: unknown): number {
  if (n === undefined) return 0;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 1 << 24) {
    inputError('options.candidateCache', `must be an integer in [0, 2^24], got ${describe(n)}`);
  }
  return n;
}

/**
 * Caller-given `taskDense` (untrusted): an object whose entry for each of `tasks` that has one is a Float32Array of
 * candidates × the task's dense width. The engine checks `dense` itself; this names the entry it came from.
 */
function checkTaskDense(cols: CandidateColumns, tasks: TaskConfig[], count: number): void {
  const td: unknown = cols.taskDense;
  if (td === undefined) return;
  if (typeof td !== 'object' || td === null) inputError('candidates.taskDense', `must be an object of Float32Array per task, got ${describe(td)}`);
  for (const t of tasks) {
    if (!Object.prototype.hasOwnProperty.call(td, t.name)) continue;
    const v: unknown = (td as Record<string, unknown>)[t.name];
    const path = `candidates.taskDense.${t.name}`;
    if (!(v instanceof Float32Array)) inputError(path, `must be a Float32Array, got ${describe(v)}`);
    const want = count * denseCount(t);
    if (v.length !== want) inputError(path, `must have ${want} entries (candidates × the task's dense inputs, ${denseCount(t)}), got ${v.length}`);
    for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) inputError(`${path}[${i}]`, `must be a finite number, got ${v[i]}`);
  }
}

/**
 * A factory's options checked as strictly as a config: an object of known keys (`allowed`), each of its type
 * and range. Throws `E_INPUT` naming the option (`options.isa`); `E_UNSUPPORTED` for bf16 on onnxruntime.
 */
function resolveModelOptions(o: unknown, allowed: readonly string[]): ResolvedModelOptions {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) inputError('options', `must be an object, got ${describe(o)}`);
  const options = o as CreateOptions;
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) inputError(`options.${key}`, `unknown key (allowed: ${allowed.join(', ')})`);
  }
  const backend = options.backend ?? 'native';
  if (backend !== 'native' && backend !== 'onnxruntime') {
    inputError('options.backend', `must be "native" or "onnxruntime", got ${describe(options.backend)}`);
  }
  const threads = resolveThreads(options.threads);
  const verifyChecksum = options.verifyChecksum ?? true;
  if (typeof verifyChecksum !== 'boolean') inputError('options.verifyChecksum', `must be a boolean, got ${describe(verifyChecksum)}`);
  const precision = options.precision ?? 'fp32';
  if (precision !== 'fp32' && precision !== 'bf16') inputError('options.precision', `must be "fp32" or "bf16", got ${describe(precision)}`);
  if (backend === 'onnxruntime' && precision !== 'fp32') {
    throw new DupnError('E_UNSUPPORTED', 'options.precision: "bf16" runs on the native backend only', { path: 'options.precision' });
  }
  const candidateCache = cacheSize(options.candidateCache);
  const isa = options.isa;
  if (isa !== undefined) {
    if (typeof isa !== 'string') inputError('options.isa', `must be a string, got ${describe(isa)}`);
    if (backend === 'native' && isa !== '') {
      // The addon's own list: what this CPU runs, so an unknown path and an unsupported one read alike.
      const supported = native().supportedIsas.split(',');
      if (!supported.includes(isa)) inputError('options.isa', `must be an instruction set this CPU runs (${supported.join(', ')}), got ${describe(isa)}`);
    }
  }
  return { threads, verifyChecksum, backend, candidateCache, precision, isa };
}

function checkFinite(v: Float32Array, path: string): void {
  const bad = firstNonFinite(v);
  if (bad >= 0) inputError(`${path}[${bad}]`, `is not a finite number (${v[bad]})`);
}

function checkOut(out: unknown, length: number, path: string): Float32Array {
  if (out === undefined) return new Float32Array(length);
  if (!(out instanceof Float32Array)) inputError(path, `must be a Float32Array, got ${describe(out)}`);
  if (out.length !== length) inputError(path, `must have ${length} entries, got ${out.length}`);
  return out;
}

/**
 * A DUPN model: a shared user network (embeddings → property-gated bi-LSTM → attention → U) and task heads.
 * All methods validate their input and reject with {@link DupnError}; async methods compute on native threads.
 */
export class Model {
  /** The resolved configuration (defaults applied). */
  readonly config: ResolvedConfig;
  /** Length of a user vector U = [r ; u ; q]. */
  readonly userDim: number;
  /** Threads used per call. */
  readonly threads: number;
  private readonly tensors: Tensors;
  /** The tables held by their stored rows (a model loaded from a file that stores them so), by name. */
  private readonly rowKeys: RowKeys;
  /** Which engine runs this model. */
  readonly backend: BackendName;
  /** Arithmetic of the large products: `'fp32'` or `'bf16'`. */
  readonly precision: 'fp32' | 'bf16';
  private handle: Backend | null;
  private readonly catalogues = new Map<string, Catalogue>();
  private readonly successorTables = new Map<string, SuccessorTable | undefined>();
  private multiStep = 0;
  private releaseWhenIdle: Backend | null = null;
  private readonly options: ResolvedModelOptions;

  private constructor(config: ResolvedConfig, tensors: Tensors, options: ResolvedModelOptions, rowKeys: RowKeys = new Map()) {
    checkSuccessorTable(config, tensors, 'model');
    this.options = options;
    this.config = config;
    this.userDim = deriveDims(config).userDim;
    this.threads = options.threads;
    this.tensors = tensors;
    this.rowKeys = rowKeys;
    this.backend = options.backend;
    this.precision = options.precision;
    if (options.backend === 'onnxruntime') {
      this.handle = withFiniteOutputs(new (onnxBackend().OnnxBackend)(config, this.allRows(), this.threads));
      return;
    }
    const isa = options.isa ?? process.env.DUPN_ISA ?? '';
    try {
      this.handle = withFiniteOutputs(new (native().NativeModel)(nativeSpec(config, tensors, options.candidateCache, options.precision === 'bf16', rowKeys), isa));
    } catch (e) {
      throw fromNativeError(e, 'model');
    }
  }

  /** A new model with seeded random weights. Throws `E_CONFIG` for an invalid config. */
  static create(config: DupnConfig = {}, options: CreateOptions = {}): Model {
    const resolved = resolveConfig(config);
    const checked = resolveModelOptions(options, CREATE_OPTIONS);
    const seed = options.seed ?? 1;
    if (!Number.isInteger(seed)) inputError('options.seed', `must be an integer, got ${describe(seed)}`);
    return new Model(resolved, initTensors(resolved, seed), checked);
  }

  /**
   * A model from a config and named float32 tensors (the layout of docs/format.md). Every tensor is checked
   * for presence, size and finiteness, and copied: the native side reads the embedding tables in place, so
   * the model must own them (a caller's array may be changed, transferred or detached later).
   */
  static fromTensors(config: DupnConfig, tensors: Map<string, Float32Array>, options: ModelOptions = {}): Model {
    const resolved = resolveConfig(config);
    const checked = resolveModelOptions(options, MODEL_OPTIONS);
    const own: Tensors = new Map();
    for (const spec of tensorSpecs(resolved)) {
      const t = tensors.get(spec.name);
      if (!(t instanceof Float32Array)) throw new DupnError('E_MODEL_FILE', `tensor "${spec.name}" is missing or not a Float32Array`);
      if (t.length !== elementCount(spec.shape)) {
        throw new DupnError('E_MODEL_FILE', `tensor "${spec.name}" has ${t.length} values, expected ${elementCount(spec.shape)} for shape [${spec.shape.join(', ')}]`);
      }
      const copy = t.slice();
      const bad = firstNonFinite(copy);
      if (bad >= 0) throw new DupnError('E_MODEL_FILE', `tensor "${spec.name}" holds a non-finite value at ${bad}`);
      own.set(spec.name, copy);
    }
    return new Model(resolved, own, checked);
  }

  /** Loads a `.safetensors` model file (docs/format.md). Rejects with `E_IO` or `E_MODEL_FILE`. */
  static async load(path: string, options: ModelOptions = {}): Promise<Model> {
    const checked = resolveModelOptions(options, MODEL_OPTIONS);
    // Tables stored sparse stay so: the native lookup reads the file's rows in place, shared between processes.
    const { config, tensors, rowKeys } = await loadModelFile(path, { verifyChecksum: checked.verifyChecksum, keepSparse: checked.backend === 'native' });
    return new Model(config, tensors, checked, rowKeys);
  }

  /**
   * Loads a model from its ONNX files (docs/format.md, "ONNX"): `path` is the user file `<stem>.onnx` written by
   * `model.exportOnnx` (or by another tool following that contract); the head files it lists in `dupn.heads`
   * are read from the same folder. Only the metadata and the initializers are read, with every tensor checked
   * like {@link load} does. Rejects with `E_IO` when a file cannot be read, `E_MODEL_FILE` when one is bad.
   */
  static async fromOnnx(path: string, options: ModelOptions = {}): Promise<Model> {
    const checked = resolveModelOptions(options, MODEL_OPTIONS);
    const { config, tensors } = await onnxImport().readOnnxModel(path);
    return new Model(config, tensors, checked);
  }

  /** Writes the model to `path` atomically (temporary file, then rename). */
  async save(path: string): Promise<void> {
    this.live();
    await saveModelFile(path, this.config, this.tensors, this.rowKeys);
  }

  /** The tensors with every table at all its rows (the same arrays when none is held sparse). */
  private allRows(): Tensors {
    return expandTensors(this.tensors, this.rowKeys, (name) => tensorSpecs(this.config).find((s) => s.name === name)!.shape);
  }

  /**
   * Writes the model as standard ONNX graphs (opset 17; docs/format.md § ONNX): `path` holds the user part
   * (ids and lengths in, U and attention out) and `<stem>.<task>.onnx` beside it each head. Initializers
   * carry the model's tensors under their dupn names. Returns the paths written (each atomically).
   */
  async exportOnnx(path: string): Promise<string[]> {
    this.live();
    return onnxExport().exportOnnx(this.config, this.allRows(), path);
  }

  /** Which kernel path runs: "baseline", "avx2" or "avx512" (native), or "onnxruntime". */
  get isa(): string {
    return this.live().isa;
  }

  /**
   * A copy of the weights, by tensor name, made on every read of this property (take it once: it is as
   * large as the model). The native side reads the model's own arrays in place, and a caller could
   * otherwise change, transfer or detach them under it.
   */
  get weights(): ReadonlyMap<string, Float32Array> {
    return new Map([...this.allRows()].map(([name, t]) => [name, this.rowKeys.has(name) ? t : t.slice()]));
  }

  /**
   * A new model whose retrieval head `task` has its log prior recomputed from newer counts of its history
   * field's values (as `Trainer.setPrior`: e.g. item id → times acted on in the last days): popularity moves
   * faster than the weights need retraining. Swap it in with `Batcher.setModel`. This model is unchanged; the
   * two share every other tensor (tensors are never written after a model is made). Throws `E_TASK` / `E_INPUT`.
   */
  withPrior(task: string, counts: ValueCounts): Model {
    return this.withStatistics([priorName(task)], (t) => fillPrior(this.config, t, task, counts));
  }

  /**
   * A new model whose retrieval head `task` has its successor table rebuilt from newer sequential-rules weights
   * (as `Trainer.setSuccessors`; `EntityStats.rules` counts them from a log). As {@link withPrior} otherwise.
   */
  withSuccessors(task: string, weights: SuccessorWeights): Model {
    const names = successorNames(task);
    return this.withStatistics([names.from, names.to, names.weight], (t) => fillSuccessors(this.config, t, task, weights));
  }

  /** A model over these tensors with `names` copied and rewritten by `fill`; the same options. */
  private withStatistics(names: string[], fill: (tensors: Tensors) => void): Model {
    this.live();
    const tensors: Tensors = new Map(this.tensors);
    for (const n of names) {
      const t = this.tensors.get(n);
      if (t !== undefined) tensors.set(n, t.slice());
    }
    fill(tensors);
    return new Model(this.config, tensors, this.options, this.rowKeys);
  }

  /**
   * Releases the native model; later calls reject with `E_DISPOSED`. Calls in flight finish first, those
   * of several native steps (`predict`, `retrieve`) included: the model is released when the last one ends.
   */
  dispose(): void {
    const h = this.handle;
    this.handle = null;
    this.catalogues.clear();
    if (h === null) return;
    if (this.multiStep === 0) h.release();
    else this.releaseWhenIdle = h;
  }

  /** Runs a call of several native steps (on a handle it took), so that dispose() in between lets it finish. */
  private async holding<T>(fn: () => Promise<T>): Promise<T> {
    this.multiStep++;
    try {
      return await fn();
    } finally {
      if (--this.multiStep === 0 && this.releaseWhenIdle !== null) {
        this.releaseWhenIdle.release();
        this.releaseWhenIdle = null;
      }
    }
  }

  private live(): Backend {
    if (!this.handle) throw new DupnError('E_DISPOSED', 'the model was disposed');
    return this.handle;
  }

  /**
   * Runs an engine call synchronously (`async` false: returns its result) or not (resolves to it): every
   * engine call of the Model goes through here, so a native failure becomes its DupnError in this one place.
   */
  private run<R>(c: EngineCall<R>, async: false): R;
  private run<R>(c: EngineCall<R>, async: true): Promise<R>;
  private run<R>(c: EngineCall<R>, async: boolean): R | Promise<R> {
    const fail = (e: unknown): never => {
      throw fromNativeError(e, c.context);
    };
    let done: Completion;
    try {
      done = c.call(async);
    } catch (e) {
      return fail(e);
    }
    return async ? Promise.resolve(done).then(() => c.result, fail) : c.result;
  }

  /** Packs users into columns (hashing, truncation, vocabularies): the form {@link encodeColumns} takes. */
  pack(users: UserInput[], options: PackOptions = {}): UserColumns {
    return packUsers(this.config, users, options);
  }

  /**
   * Packs (hashes) candidates once for the given binary/rank tasks (default: all of them), so a service
   * can score the same candidates for many users without hashing them again.
   */
  packCandidates(candidates: CandidateInput[], options: ScoreAllOptions = {}): CandidateColumns {
    const tasks = this.scoringTasks(options.tasks).map((name) => findTask(this.config, name).task);
    return packCandidates(this.config, tasks, candidates, this.historyInputs(options.user));
  }

  /**
   * `cols` (candidates packed already; `dense`: the rank heads' own numbers) with the dense inputs of the history
   * heads among `options.tasks` (default: all; a retrieval head, a binary or rank head with `history`) for
   * `options.user`, as {@link packCandidates} gives them: `keys(field)[c]` is candidate c's value of a field as a
   * string (a number as `String(n)`, a missing value as ""). For callers that pack a catalogue's rows once
   * (`ItemCatalogue.packer`); `cols` itself when `tasks` has no history head.
   */
  withHistory(cols: CandidateColumns, keys: (field: string) => ArrayLike<string>, options: ScoreAllOptions = {}): CandidateColumns {
    const tasks = this.scoringTasks(options.tasks).map((name) => findTask(this.config, name).task).filter(historyDense);
    return withHistory(this.config, tasks, cols, keys, this.historyInputs(options.user));
  }

  /** Retrieval head `t`'s successor table, if it has one. */
  private successorTable(t: RetrievalTask): SuccessorTable | undefined {
    if (!this.successorTables.has(t.name)) this.successorTables.set(t.name, SuccessorTable.of(t, this.tensors));
    return this.successorTables.get(t.name);
  }

  /** Where each history head's dense input comes from: `user`'s history, a retrieval head's prior and successor tables. */
  private historyInputs(user?: UserInput): (t: HistoryTask) => RetrievalInputs {
    // One history index per field, however many heads read it (ctr, l2r and the retrieval head all read the item's).
    const indexes = new Map<string, HistoryIndex | undefined>();
    return (t) => {
      const field = historyField(t);
      if (!indexes.has(field)) indexes.set(field, userHistory(this.config, field, user));
      const retrieval = t.kind === 'retrieval';
      return userInputs(this.config, t, user, retrieval ? this.tensors.get(priorName(t.name)) : undefined, retrieval ? this.successorTable(t) : undefined, indexes.get(field));
    };
  }

  /** User vectors U for a batch (B × userDim, row-major). */
  async encode(users: UserInput[], options: EncodeOptions = {}): Promise<Float32Array> {
    return this.encodeColumns(this.pack(users, options), options);
  }

  /** Synchronous {@link encode} (blocks the calling thread; for use inside worker_threads). */
  encodeSync(users: UserInput[], options: EncodeOptions = {}): Float32Array {
    return this.encodeColumnsSync(this.pack(users, options), options);
  }

  /**
   * {@link encode} from already-hashed columns (see {@link UserColumns}); every id is range-checked.
   * `threads`: native threads of this call, 1 to the model's (as {@link ScoreAllOptions.threads}).
   */
  async encodeColumns(cols: UserColumns, options: { out?: Float32Array; attention?: Float32Array; threads?: number } = {}): Promise<Float32Array> {
    return this.run(this.encodeCall(this.live(), cols, options), true);
  }

  /** Synchronous {@link encodeColumns}. */
  encodeColumnsSync(cols: UserColumns, options: { out?: Float32Array; attention?: Float32Array; threads?: number } = {}): Float32Array {
    return this.run(this.encodeCall(this.live(), cols, options), false);
  }

  private encodeCall(h: Backend, cols: UserColumns, options: { out?: Float32Array; attention?: Float32Array; threads?: number }): EngineCall<Float32Array> {
    const out = checkOut(options.out, userBatch(cols) * this.userDim, 'options.out');
    const threads = this.callThreads(options.threads, 'options.threads');
    return { context: 'encode', call: (async) => h.encode(cols, out, options.attention ?? null, threads, async), result: out };
  }

  /** The threads of one call: `given` (1 … the model's threads) or the model's. */
  private callThreads(given: unknown, path: string): number {
    if (given === undefined) return this.threads;
    if (typeof given !== 'number' || !Number.isInteger(given) || given < 1 || given > this.threads) {
      inputError(path, `must be an integer in [1, ${this.threads}] (the model's threads), got ${describe(given)}`);
    }
    return given;
  }

  // Validates a scoring call for several tasks at once; one output per task (options.out only for one).
  private scoreCall(context: string, tasks: string[], userVector: unknown, candidates: CandidateInput[] | CandidateColumns, out?: unknown, user?: UserInput, threads = this.threads): EngineCall<Float32Array[]> {
    const h = this.live();
    const picked = tasks.map((name) => {
      const { task: t, index } = findTask(this.config, name);
      if (t.kind === 'multiclass') throw new DupnError('E_TASK', `task "${t.name}" is multiclass: use predict(), not score()`, { path: 'task' });
      return { t, index };
    });
    if (!(userVector instanceof Float32Array)) inputError('userVector', `must be a Float32Array, got ${describe(userVector)}`);
    if (userVector.length !== this.userDim) inputError('userVector', `must have userDim = ${this.userDim} entries, got ${userVector.length}`);
    checkFinite(userVector, 'userVector');
    const tasksOf = picked.map((p) => p.t);
    const cols = Array.isArray(candidates) ? packCandidates(this.config, tasksOf, candidates, this.historyInputs(user)) : candidates;
    if (typeof cols !== 'object' || cols === null || !(cols.items instanceof Int32Array)) inputError('candidates', 'must be an array of candidates or CandidateColumns');
    const F = this.config.itemFields.length;
    const count = F > 0 ? Math.floor(cols.items.length / F) : 0;
    const outs = picked.map(() => (out === undefined ? new Float32Array(count) : checkOut(out, count, 'options.out')));
    checkTaskDense(cols, picked.map((p) => p.t), count);
    // Heads that read different dense inputs (history heads: each its own) go to the engine in separate calls.
    const groups = new Map<Float32Array, { cols: CandidateColumns; heads: number[]; outs: Float32Array[] }>();
    picked.forEach((p, i) => {
      const own = columnsFor(cols, p.t.name);
      const g = groups.get(own.dense) ?? { cols: own, heads: [], outs: [] };
      g.heads.push(p.index);
      g.outs.push(outs[i]);
      groups.set(own.dense, g);
    });
    const call = (async: boolean): Completion => {
      const runs = [...groups.values()].map((g) => h.score(g.heads, userVector, g.cols, g.outs, threads, async));
      if (!async) return undefined;
      // Every call has ended before an error is passed on (none still writes into `outs` or holds the model).
      return Promise.allSettled(runs).then((r) => {
        const failed = r.find((x): x is PromiseRejectedResult => x.status === 'rejected');
        if (failed !== undefined) throw failed.reason;
      });
    };
    return { context, call, result: outs };
  }

  private scoreOneCall(task: string, userVector: Float32Array, candidates: CandidateInput[] | CandidateColumns, options: ScoreOptions): EngineCall<Float32Array> {
    const c = this.scoreCall('score', [task], userVector, candidates, options.out, options.user);
    return { ...c, result: c.result[0] };
  }

  private scoreAllCall(userVector: Float32Array, candidates: CandidateInput[] | CandidateColumns, options: ScoreAllOptions): EngineCall<Record<string, Float32Array>> {
    const tasks = this.scoringTasks(options.tasks);
    const c = this.scoreCall('scoreAll', tasks, userVector, candidates, undefined, options.user, this.callThreads(options.threads, 'options.threads'));
    return { ...c, result: Object.fromEntries(tasks.map((t, i) => [t, c.result[i]])) };
  }

  /**
   * Scores candidates for one user vector with a `binary` (probability) or `rank` (raw score) head.
   * W_U·U is computed once; the rest per candidate (decoupled scoring).
   */
  async score(task: string, userVector: Float32Array, candidates: CandidateInput[] | CandidateColumns, options: ScoreOptions = {}): Promise<Float32Array> {
    return this.run(this.scoreOneCall(task, userVector, candidates, options), true);
  }

  /** Synchronous {@link score}. */
  scoreSync(task: string, userVector: Float32Array, candidates: CandidateInput[] | CandidateColumns, options: ScoreOptions = {}): Float32Array {
    return this.run(this.scoreOneCall(task, userVector, candidates, options), false);
  }

  /**
   * Scores the same candidates with several binary/rank heads in one call (default: all of them) — one
   * pack of the candidates, one native job. Returns one array per task, by task name.
   */
  async scoreAll(userVector: Float32Array, candidates: CandidateInput[] | CandidateColumns, options: ScoreAllOptions = {}): Promise<Record<string, Float32Array>> {
    return this.run(this.scoreAllCall(userVector, candidates, options), true);
  }

  /** Synchronous {@link scoreAll}. */
  scoreAllSync(userVector: Float32Array, candidates: CandidateInput[] | CandidateColumns, options: ScoreAllOptions = {}): Record<string, Float32Array> {
    return this.run(this.scoreAllCall(userVector, candidates, options), false);
  }

  private retrievalTask(task: string): { t: RetrievalTask; index: number; h: Backend & Required<Pick<Backend, 'itemVectors' | 'topK'>> } {
    const { task: t, index } = findTask(this.config, task);
    if (t.kind !== 'retrieval') throw new DupnError('E_TASK', `task "${t.name}" is ${t.kind}, not a retrieval head`, { path: 'task' });
    const h = this.live();
    if (!h.itemVectors || !h.topK) throw new DupnError('E_UNSUPPORTED', `retrieval runs on the native backend only (this model runs on ${this.backend})`);
    return { t, index, h: h as Backend & Required<Pick<Backend, 'itemVectors' | 'topK'>> };
  }

  /** The item tower's vector of each candidate of a `retrieval` head (C × dim, row-major). */
  async itemVectors(task: string, candidates: CandidateInput[] | CandidateColumns): Promise<Float32Array> {
    const { t, index, h } = this.retrievalTask(task);
    const cols = Array.isArray(candidates) ? packCandidates(this.config, t, candidates) : candidates;
    const F = this.config.itemFields.length;
    if (typeof cols !== 'object' || cols === null || !(cols.items instanceof Int32Array)) inputError('candidates', 'must be an array of candidates or CandidateColumns');
    const out = new Float32Array((cols.items.length / F) * taskOutputs(t));
    return this.run({ context: 'itemVectors', call: (async) => h.itemVectors(index, cols, out, this.threads, async), result: out }, true);
  }

  /** The user tower's vector of a `retrieval` head for B user vectors (B × dim): the query of {@link retrieve}. */
  async queryVectors(task: string, userVectors: Float32Array): Promise<Float32Array> {
    const { t, index, h } = this.retrievalTask(task);
    return this.queryOn(h, t, index, userVectors);
  }

  private async queryOn(h: Backend, t: RetrievalTask, index: number, userVectors: Float32Array): Promise<Float32Array> {
    if (!(userVectors instanceof Float32Array) || userVectors.length % this.userDim !== 0) {
      inputError('userVectors', `must be a Float32Array of B × userDim (${this.userDim}) entries, got ${describe(userVectors)}`);
    }
    checkFinite(userVectors, 'userVectors');
    const out = new Float32Array((userVectors.length / this.userDim) * taskOutputs(t));
    return this.run({ context: 'queryVectors', call: (async) => h.predict(index, userVectors, out, async), result: out }, true);
  }

  /**
   * Sets the catalogue that {@link retrieve} searches for a `retrieval` task: every item's vector is
   * computed once here (replacing an earlier catalogue). Rows of the results index `candidates`.
   */
  async setCatalogue(task: string, candidates: CandidateInput[]): Promise<void> {
    const { t } = this.retrievalTask(task);
    if (!Array.isArray(candidates)) inputError('candidates', `must be an array, got ${describe(candidates)}`);
    const cols = packCandidates(this.config, t, candidates, this.historyInputs());
    const dim = taskOutputs(t);
    const vectors = await this.itemVectors(task, cols);
    // The prior term w_p·prior(item) is the same for every user: it rides along as one more column of the
    // item vectors (the query gets w_p there), so the top k stays a plain dot-product search.
    const D = denseCount(t);
    const layout = blockTransposed(vectors, dim, D > 0 ? (c) => cols.dense[c * D + D - 1] : undefined);
    this.catalogues.set(t.name, new Catalogue(t, cols.items, layout, D > 0 ? dim + 1 : dim, catalogueKeys(t, candidates), D > 0 ? cols.dense : undefined));
  }

  /**
   * The `k` catalogue items (see {@link setCatalogue}) with the highest score for one user vector, best
   * first: exact search by SIMD dot products over every item vector, plus the history term of the items
   * `options.user` acted on. Scores equal {@link score} on the same items.
   */
  async retrieve(task: string, userVector: Float32Array, k: number, options: RetrieveOptions = {}): Promise<Retrieved> {
    const { t, index, h } = this.retrievalTask(task);
    const cat = this.catalogues.get(t.name);
    if (cat === undefined) throw new DupnError('E_TASK', `task "${t.name}" has no catalogue: call setCatalogue() first`, { path: 'task' });
    if (typeof k !== 'number' || !Number.isInteger(k) || k < 0 || k > 1 << 24) inputError('k', `must be an integer in 0..16777216, got ${describe(k)}`);
    if (!(userVector instanceof Float32Array) || userVector.length !== this.userDim) inputError('userVector', `must be a Float32Array of userDim = ${this.userDim} entries`);
    checkFinite(userVector, 'userVector');
    const plan = cat.plan(this.config, options, this.successorTable(t));
    return this.holding(async () => {
      let query = await this.queryOn(h, t, index, userVector);
      if (cat.dim > query.length) {
        const wide = new Float32Array(cat.dim);
        wide.set(query);
        const w = this.tensors.get(historyWeightName(t.name))!;
        wide[query.length] = w[w.length - 1];
        query = wide;
      }
      const top: Retrieved = { index: new Int32Array(k), score: new Float32Array(k) };
      const found = new Int32Array(1);
      const historyScores = new Float32Array(plan.rows.length);
      const search = (async: boolean) => h.topK(cat.vectors, cat.dim, SEARCH_BLOCK, query, k, plan.skip, top.index, top.score, found, this.threads, async);
      await this.run({ context: 'retrieve', call: search, result: undefined }, true);
      if (plan.rows.length > 0) {
        const history = (async: boolean) => h.score([index], userVector, cat.columns(plan.rows, plan.dense, this.config.itemFields.length), [historyScores], this.threads, async);
        await this.run({ context: 'retrieve', call: history, result: undefined }, true);
      }
      return mergeTop(k, top, found[0], plan.rows, historyScores);
    });
  }

  /**
   * Scores rows of `task`'s catalogue ({@link setCatalogue}) for one user vector: the scores {@link score}
   * gives the same candidates (with `options.user`, their history and successor terms), without hashing the
   * candidates again — what a service that names candidates by catalogue row, or an evaluation that scores a
   * few sampled items per user, wants.
   */
  async scoreRows(task: string, userVector: Float32Array, rows: ArrayLike<number>, options: ScoreOptions = {}): Promise<Float32Array> {
    const { t, index, h } = this.retrievalTask(task);
    const cat = this.catalogues.get(t.name);
    if (cat === undefined) throw new DupnError('E_TASK', `task "${t.name}" has no catalogue: call setCatalogue() first`, { path: 'task' });
    if (rows === null || typeof rows !== 'object' || typeof (rows as ArrayLike<number>).length !== 'number') inputError('rows', `must be an array of catalogue rows, got ${describe(rows)}`);
    if (!(userVector instanceof Float32Array) || userVector.length !== this.userDim) inputError('userVector', `must be a Float32Array of userDim = ${this.userDim} entries`);
    checkFinite(userVector, 'userVector');
    const cols = cat.rowColumns(this.config, rows, options.user, this.successorTable(t));
    const out = checkOut(options.out, rows.length, 'options.out');
    return this.run({ context: 'scoreRows', call: (async) => h.score([index], userVector, cols, [out], this.threads, async), result: out }, true);
  }

  private scoringTasks(tasks: unknown): string[] {
    if (tasks === undefined) return this.config.tasks.filter((t) => t.kind !== 'multiclass').map((t) => t.name);
    if (!Array.isArray(tasks) || tasks.some((t) => typeof t !== 'string')) inputError('options.tasks', `must be an array of task names, got ${describe(tasks)}`);
    return tasks as string[];
  }

  private predictCall(task: string, users: unknown, out: unknown, handle?: Backend): EngineCall<Float32Array> {
    const { task: t, index } = findMulticlassTask(this.config, task);
    if (!(users instanceof Float32Array) || users.length % this.userDim !== 0) {
      inputError('userVectors', `must be a Float32Array of B × userDim (${this.userDim}) entries, got ${describe(users)}`);
    }
    checkFinite(users, 'userVectors');
    const h = handle ?? this.live();
    const probabilities = checkOut(out, (users.length / this.userDim) * t.classes, 'options.out');
    return { context: 'predict', call: (async) => h.predict(index, users, probabilities, async), result: probabilities };
  }

  /** Class probabilities (B × classes) of a `multiclass` head for a batch of users. */
  async predict(task: string, users: UserInput[], options: EncodeOptions = {}): Promise<Float32Array> {
    findMulticlassTask(this.config, task); // fail before encoding
    const cols = this.pack(users, { now: options.now });
    const h = this.live();
    return this.holding(async () => {
      const userVectors = await this.run(this.encodeCall(h, cols, {}), true);
      return this.run(this.predictCall(task, userVectors, options.out, h), true);
    });
  }

  /** Synchronous {@link predict}. */
  predictSync(task: string, users: UserInput[], options: EncodeOptions = {}): Float32Array {
    findMulticlassTask(this.config, task); // fail before encoding
    return this.predictFromVectorsSync(task, this.encodeSync(users, { now: options.now }), options);
  }

  /** {@link predict} from user vectors already encoded (B × userDim). */
  async predictFromVectors(task: string, userVectors: Float32Array, options: ScoreOptions = {}): Promise<Float32Array> {
    return this.run(this.predictCall(task, userVectors, options.out, this.live()), true);
  }

  /** Synchronous {@link predictFromVectors}. */
  predictFromVectorsSync(task: string, userVectors: Float32Array, options: ScoreOptions = {}): Float32Array {
    return this.run(this.predictCall(task, userVectors, options.out), false);
  }

  private explainArgs(user: UserInput, options: PackOptions) {
    const cols = this.pack([user], options);
    const firstKept = (user.behaviors as unknown[]).length - cols.lengths[0];
    return { cols, firstKept, attention: new Float32Array(cols.lengths[0]) };
  }

  /** Which past behaviours the attention picked for one user (one weight per kept behaviour). */
  async explain(user: UserInput, options: PackOptions = {}): Promise<Explanation> {
    const { cols, firstKept, attention } = this.explainArgs(user, options);
    const u = await this.encodeColumns(cols, { attention });
    return { attention, firstKept, user: u };
  }

  /** Synchronous {@link explain}. */
  explainSync(user: UserInput, options: PackOptions = {}): Explanation {
    const { cols, firstKept, attention } = this.explainArgs(user, options);
    const u = this.encodeColumnsSync(cols, { attention });
    return { attention, firstKept, user: u };
  }
}
