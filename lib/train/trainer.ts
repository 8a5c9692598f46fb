/**
 * The Trainer: owns a writable copy of a model's tensors and their optimizer state, and runs one native
 * step (forward, backward, update, on the compute pool) per batch of {@link TrainingExample}s. It can hand
 * out a serving {@link Model} at any time, save the model, and save/resume checkpoints (weights + optimizer
 * state + step + the caller's data position) written atomically (the file: lib/io/checkpoint.ts).
 */
import * as os from 'node:os';
import { DupnConfig, ResolvedConfig, resolveConfig } from '../network/config';
import { DupnError, inputError } from '../errors';
import { TrainingExample } from '../data/training-example';
import { initTensors } from '../network/init';
import { Model, ModelOptions } from '../model/model';
import { Moments, openCheckpoint, writeCheckpoint } from '../io/checkpoint';
import { loadModelFile, saveModelFile } from '../io/model-file';
import { NativeTrainBatch, NativeTrainer, fromNativeError, native } from '../native/addon';
import { nativeSpec } from '../native/spec';
import { Tensors, elementCount, isEmbeddingTable, isStatistic, priorName, tensorSpecs } from '../network/tensors';
import { SUCCESSOR_WINDOW, SuccessorTable, checkSuccessorTable } from '../model/successors';
import { packTrainBatch } from './batch';
import { SuccessorWeights, ValueCounts, fillPrior, fillSuccessors } from '../model/statistics';
import { EmbeddingOptimizer, ResolvedTrainOptions, TrainOptions, frozenBy, learningRateAt, resolveTrainOptions } from './options';
import { seedFor } from '../random';
import { LazyRows } from './lazy-rows';
import { AverageState, WeightAverage } from './weight-average';

/**
 * Zeroed optimizer state of one tensor: m and v like the data, or, for an embedding table under row-wise
 * Adagrad, no m and one v per row. Adagrad accumulators start small and positive (as TensorFlow's do), so
 * the first steps are bounded; row-wise ones at 0 (as FBGEMM's: the first step is then a normalised one).
 * Statistics have none.
 */
function freshMoments(spec: { name: string; shape: number[] }, optimizer: EmbeddingOptimizer): Moments {
  // Statistics (the prior, the successor table) are set from counts, never by a gradient: no state.
  if (isStatistic(spec.name)) return { m: new Float32Array(0), v: new Float32Array(0) };
  const n = elementCount(spec.shape);
  const table = isEmbeddingTable(spec.name);
  if (table && optimizer === 'rowwise-adagrad' && spec.shape.length === 2 && spec.shape[1] > 1) {
    return { m: new Float32Array(0), v: new Float32Array(spec.shape[0]) };
  }
  const v = new Float32Array(n);
  if (table && optimizer === 'adagrad') v.fill(0.1);
  return { m: new Float32Array(n), v };
}

/** What one step reports. */
export interface StepReport {
  /** Optimizer steps done so far (this one included). */
  step: number;
  /** Σ_k λ_k · loss_k of this batch (before the update). */
  loss: number;
  /** Per task: the weighted mean loss and the total example weight (0: the batch had no labels for it). */
  tasks: Record<string, { loss: number; weight: number }>;
  /** Global L2 norm of the gradient before clipping. */
  gradNorm: number;
  /** The dense learning rate used. */
  learningRate: number;
}

/**
 * Trains a DUPN model: {@link Trainer.create} (new weights), {@link Trainer.fromModelFile} or
 * {@link Trainer.fromModel} (from existing ones) or {@link Trainer.resume} (from a checkpoint); then
 * {@link Trainer.step} per batch (or {@link fit} for epochs, shuffling and checkpoints), {@link Trainer.toModel}
 * or {@link Trainer.save} for the result, and {@link Trainer.dispose} at the end. One step runs at a time: a
 * second step, or reading, changing or saving the weights while a step runs, is refused with `E_BUSY`.
 */
export class Trainer {
  /** The resolved config of the model being trained. */
  readonly config: ResolvedConfig;
  /** The training options with their defaults applied. */
  readonly options: ResolvedTrainOptions;
  /** Optimizer steps done. */
  get steps(): number {
    return this.stepCount;
  }
  private readonly tensors: Tensors;
  private readonly moments: Map<string, Moments>;
  private handle: NativeTrainer | null;
  private stepCount: number;
  private running = false;
  private readonly frozen: boolean[];
  private readonly successorTables = new Map<string, SuccessorTable | undefined>();
  private readonly lazyRows: LazyRows;
  /** With `averageDecay` > 0: the averages a snapshot serves. */
  private readonly average?: WeightAverage;

  /** `given`: the tensors that came from a model or checkpoint rather than this trainer's own start. */
  private constructor(
    config: ResolvedConfig,
    tensors: Tensors,
    options: ResolvedTrainOptions,
    given: ReadonlySet<string>,
    moments?: Map<string, Moments>,
    step = 0,
    averages?: AverageState,
  ) {
    checkSuccessorTable(config, tensors, 'model');
    this.config = config;
    this.options = options;
    this.tensors = tensors;
    this.stepCount = step;
    this.moments = moments ?? new Map();
    for (const spec of tensorSpecs(config)) {
      if (this.moments.has(spec.name)) continue;
      this.moments.set(spec.name, freshMoments(spec, options.embeddingOptimizer));
    }
    // Priors and successor tables are statistics, not weights: the optimizer never moves them.
    // Statistics need no entry: without optimizer state (freshMoments) the native step never updates them.
    this.frozen = tensorSpecs(config).map((s) => options.freezeTensors.some((p) => frozenBy(s.name, p)));
    // A frozen table from a model keeps its zero rows: what that model gives those ids (a frozen shared part
    // must keep computing the same U). A frozen table this trainer made still gets its rows started, as fixed
    // random features. (Hashed tables are shared tensors, so freeze 'shared' holds them all.)
    const still = new Set(tensorSpecs(config).filter((s, i) => given.has(s.name) && (this.frozen[i] || options.freeze === 'shared')).map((s) => s.name));
    this.lazyRows = new LazyRows(config, tensors, options.seed, (name) => !still.has(name));
    const frozen = new Set(tensorSpecs(config).filter((_, i) => this.frozen[i]).map((s) => s.name));
    // A resumed run that averaged continues its averages; one that did not starts them at its weights.
    if (options.averageDecay > 0) this.average = new WeightAverage(config, tensors, options.averageDecay, step, (name) => !frozen.has(name), averages);
    const params = tensorSpecs(config).map((s) => {
      const avg = this.average?.denseAverage(s.name);
      return { data: tensors.get(s.name)!, ...this.moments.get(s.name)!, ...(avg ? { avg } : {}) };
    });
    try {
      this.handle = new (native().NativeTrainer)(nativeSpec(config, tensors, 0, false), options.isa, params);
    } catch (e) {
      throw fromNativeError(e, 'trainer');
    }
  }

  /**
   * A trainer for a new model with seeded random weights. The hashed embedding tables (item, profile and query
   * fields) start at zero, and each row gets its seeded random start just before the first step that uses it
   * (lib/train/lazy-rows.ts): rows no training id lands in stay zero, so the saved file holds only the rows
   * training used, and an id the log never had gets the zero row.
   */
  static create(config: DupnConfig = {}, options: TrainOptions = {}): Trainer {
    const resolved = resolveConfig(config);
    const o = resolveTrainOptions(resolved, options, os.availableParallelism());
    return new Trainer(resolved, initTensors(resolved, o.seed, { hashedAtZero: true }), o, new Set());
  }

  /**
   * A trainer that starts from the weights of a model file (incremental training, transfer). With a
   * `config`, the model may differ from the file's: tensors with the same name and shape are taken from the
   * file and the others (e.g. a new head) start fresh; `fresh` lists those.
   */
  static async fromModelFile(path: string, options: TrainOptions = {}, config?: DupnConfig): Promise<{ trainer: Trainer; fresh: string[] }> {
    const file = await loadModelFile(path);
    const resolved = config === undefined ? file.config : resolveConfig(config);
    const o = resolveTrainOptions(resolved, options, os.availableParallelism());
    // A new hashed table (one the file lacks) starts as in create: rows drawn when first used.
    const tensors = initTensors(resolved, o.seed, { hashedAtZero: true });
    const fresh: string[] = [];
    const given = new Set<string>();
    for (const spec of tensorSpecs(resolved)) {
      const from = file.tensors.get(spec.name);
      if (from && from.length === elementCount(spec.shape)) {
        tensors.get(spec.name)!.set(from);
        given.add(spec.name);
      } else fresh.push(spec.name);
    }
    return { trainer: new Trainer(resolved, tensors, o, given), fresh };
  }

  /** A trainer over a copy of `model`'s weights. */
  static fromModel(model: Model, options: TrainOptions = {}): Trainer {
    const o = resolveTrainOptions(model.config, options, os.availableParallelism());
    const weights = new Map(model.weights); // copies
    return new Trainer(model.config, weights, o, new Set(weights.keys()));
  }

  private live(): NativeTrainer {
    if (!this.handle) throw new DupnError('E_DISPOSED', 'the trainer was disposed');
    return this.handle;
  }

  // Reading the weights while a step writes them would give a torn snapshot.
  private idle(what: string): void {
    this.live();
    if (this.running) throw new DupnError('E_BUSY', `${what}: a step is running (await it first)`);
  }

  /**
   * `examples` packed as {@link step} packs them (users, labelled candidates with in-batch negatives, the
   * retrieval heads' history features), without a step: what `dupn shards` writes for another trainer. Like a
   * step, it records the examples' log Q in the prior tables.
   */
  packBatch(examples: TrainingExample[]): NativeTrainBatch {
    this.live();
    if (!Array.isArray(examples) || examples.length === 0) inputError('examples', 'must be a non-empty array');
    const o = this.options;
    return packTrainBatch(
      this.config,
      examples,
      o.lambdas.map((lambda) => ({ lambda, pairwise: o.pairwise, successorDropout: o.successorDropout })),
      (task) => this.tensors.get(priorName(task)),
      (task) => this.successorTable(task),
    );
  }

  /**
   * Gives the rows of the hashed tables that `batch` uses and no step has used yet their random start, as a step
   * on it would: for a trainer outside dupn that takes this trainer's saved weights and batches (`dupn shards`).
   */
  startRows(batch: NativeTrainBatch): void {
    this.idle('startRows');
    this.lazyRows.start(batch);
  }

  /** One optimizer step on `examples` (a batch; any size ≥ 1). Rejects with E_INPUT naming a bad example. */
  async step(examples: TrainingExample[]): Promise<StepReport> {
    this.startable();
    return this.stepPacked(this.packBatch(examples));
  }

  /** The engine, when a step may start now (E_DISPOSED, E_BUSY otherwise). */
  private startable(): NativeTrainer {
    const h = this.live();
    if (this.running) throw new DupnError('E_BUSY', 'step: the previous step has not finished (await it)');
    return h;
  }

  /**
   * One optimizer step on a batch {@link packBatch} packed. Packing touches no weight, so the next batch can be
   * packed while this step runs (what `fit` does).
   */
  async stepPacked(batch: NativeTrainBatch): Promise<StepReport> {
    const h = this.startable();
    // Here rather than in packBatch: no step runs now, and a step only reads the rows its own batch uses.
    const started = this.lazyRows.start(batch);
    this.average?.beforeStep(batch);
    const o = this.options;
    const step = this.stepCount + 1;
    const scale = learningRateAt(1, o, step);
    const report = new Float64Array(2 + 2 * this.config.tasks.length);
    this.running = true;
    try {
      await h.step(
        batch,
        {
          lr: o.learningRate * scale,
          embeddingLr: o.embeddingLearningRate * scale,
          beta1: o.beta1,
          beta2: o.beta2,
          eps: o.epsilon,
          clipNorm: o.clipNorm,
          embeddingAdagrad: o.embeddingOptimizer === 'adagrad',
          trainShared: o.freeze !== 'shared',
          step,
          frozen: this.frozen,
          ...(o.dropout > 0 ? { dropout: o.dropout, dropoutSeed: seedFor(o.seed, `dropout|${step}`) } : {}),
          ...(o.weightDecay > 0 ? { weightDecay: o.weightDecay } : {}),
          ...(this.average ? { averageRate: this.average.rate() } : {}),
        },
        report,
        o.threads,
        true,
      );
    } catch (e) {
      started.undo();
      this.average?.abandonStep();
      throw fromNativeError(e, 'step');
    } finally {
      this.running = false;
    }
    if (!Number.isFinite(report[0]) || !Number.isFinite(report[1])) {
      // Rows this step started go back to zero too, so that nothing of the refused step stays.
      started.undo();
      this.average?.abandonStep();
      throw new DupnError('E_DIVERGED', `step ${step}: the loss or gradient is not finite (loss ${report[0]}); the weights were left as they were — lower the learning rate or check the data`);
    }
    this.stepCount = step;
    this.average?.afterStep();
    const T = this.config.tasks.length;
    const tasks: StepReport['tasks'] = {};
    this.config.tasks.forEach((t, i) => {
      tasks[t.name] = { loss: report[2 + i], weight: report[2 + T + i] };
    });
    return { step, loss: report[0], tasks, gradNorm: report[1], learningRate: o.learningRate * scale };
  }

  /**
   * Sets retrieval head `task`'s log prior (the `head.<task>.prior` table) from counts of its history field's
   * values — for an item head, how often each item was acted on in the training period: each bucket gets
   * log(its count / the total). Buckets with no count get the floor, below every counted share.
   *
   * Training fills the table as it goes, each bucket with the log Q its item had in the last batch that held
   * it: a share of the popularity ring *at that example's place in the log*, which early users see with few
   * rows in it. That is right for the loss of that batch and noisy as a popularity to serve with; `dupn train`
   * calls this after every epoch with the training period's counts, so a saved model ranks the items it knows
   * nothing else about by their popularity.
   */
  setPrior(task: string, counts: ValueCounts): void {
    this.idle('setPrior');
    fillPrior(this.config, this.tensors, task, counts);
  }

  /**
   * Fills retrieval head `task`'s successor table (config `successors`) from the sequential-rules weights of
   * the training log: per item value, the values that followed it within {@link SUCCESSOR_WINDOW} steps,
   * each occurrence weighted 1/distance (`EntityStats.rules` of lib/eval/baselines.ts counts exactly this).
   * Values are bucketed as the history field is (weights of values that share a bucket add up); the
   * `perItem` heaviest successors of the `items` most-followed items are kept.
   *
   * Call it before training: the features are inputs. Training assumes the weights count the training
   * examples' own sequences and takes each positive's own occurrence out of its features.
   */
  setSuccessors(task: string, weights: SuccessorWeights): void {
    this.idle('setSuccessors');
    fillSuccessors(this.config, this.tensors, task, weights);
    this.successorTables.delete(task);
  }

  private successorTable(task: string): SuccessorTable | undefined {
    const t = this.config.tasks.find((x) => x.name === task);
    if (t === undefined || t.kind !== 'retrieval' || !t.successors) return undefined;
    if (!this.successorTables.has(task)) this.successorTables.set(task, SuccessorTable.of(t, this.tensors));
    return this.successorTables.get(task);
  }

  /** The weights a snapshot serves: with weight averaging the averages (caught up to now), else the weights. */
  private served(): Tensors {
    if (this.average === undefined) return this.tensors;
    const t = new Map(this.tensors);
    for (const [k, v] of this.average.current()) t.set(k, v);
    return t;
  }

  /** A serving model over a snapshot of the current weights (later steps do not change it). */
  toModel(options: ModelOptions = {}): Model {
    this.idle('toModel');
    return Model.fromTensors(this.config, this.served(), options); // which copies them
  }

  /** Saves the current weights as a model file (atomically). */
  async save(path: string): Promise<void> {
    this.idle('save');
    await saveModelFile(path, this.config, this.served());
  }

  /**
   * Saves weights, optimizer state, the step count and `position` (any JSON value: where the caller's data
   * stand) to one safetensors file, atomically: a crash leaves the previous checkpoint intact.
   */
  async saveCheckpoint(path: string, position: unknown = null): Promise<void> {
    this.idle('saveCheckpoint');
    const { isa: _isa, threads: _threads, ...kept } = this.options;
    const averages = this.average?.state();
    await writeCheckpoint(path, { config: this.config, options: kept, step: this.stepCount, position, tensors: this.tensors, moments: this.moments, averages });
  }

  /**
   * Restores a trainer from a checkpoint. `options` may override run-time settings (threads, isa) and, for
   * a deliberate change, any other option. Returns the saved position.
   */
  static async resume(path: string, options: TrainOptions = {}): Promise<{ trainer: Trainer; position: unknown }> {
    const file = await openCheckpoint(path);
    const { lambdas: _l, ...rest } = file.options as TrainOptions & { lambdas?: number[] };
    const o = resolveTrainOptions(file.config, { ...rest, ...options }, os.availableParallelism());
    const { tensors, moments, averages } = file.readState((s) => freshMoments(s, o.embeddingOptimizer));
    // Every tensor counts as given: a run that fine-tuned a model with its shared part frozen resumes so.
    return { trainer: new Trainer(file.config, tensors, o, new Set(tensors.keys()), moments, file.step, averages), position: file.position };
  }

  /** Frees the native trainer (the weights stay readable through models made by {@link toModel}). */
  dispose(): void {
    // A step in flight keeps the native trainer alive until it settles (it holds its own reference).
    this.handle?.release();
    this.handle = null;
  }
}
