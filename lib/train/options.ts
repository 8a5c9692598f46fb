/**
 * Trainer options: what a caller may set, the defaults, and their validation (errors name the option).
 */
import { ResolvedConfig } from '../network/config';
import { DupnError, describe, inputError } from '../errors';
import { tensorSpecs } from '../network/tensors';

/** Default {@link TrainOptions.successorDropout}. */
export const SUCCESSOR_DROPOUT = 0.5;

/** The optimizers of the embedding tables (see {@link TrainOptions.embeddingOptimizer}). */
export const EMBEDDING_OPTIMIZERS = ['adam', 'adagrad', 'rowwise-adagrad'] as const;
/** One of {@link EMBEDDING_OPTIMIZERS}. */
export type EmbeddingOptimizer = (typeof EMBEDDING_OPTIMIZERS)[number];
/** Default {@link TrainOptions.embeddingOptimizer}. */
export const DEFAULT_EMBEDDING_OPTIMIZER: EmbeddingOptimizer = 'rowwise-adagrad';

/**
 * Default {@link TrainOptions.embeddingLearningRate} of an optimizer. Adagrad's accumulator sums the squared
 * gradients of every step, so a row's steps shrink as it is trained where Adam's stay near the step size: its
 * best step size is larger (row-wise, 0.2 against lazy Adam's 0.05 on the real logs and the synthetic data,
 * docs/real-data.md).
 */
export function defaultEmbeddingLearningRate(optimizer: EmbeddingOptimizer): number {
  return optimizer === 'rowwise-adagrad' ? 0.2 : 0.05;
}

/** How {@link Trainer} learns. Every key is optional. */
export interface TrainOptions {
  /** Examples per optimizer step (default 64: what learned best on the synthetic and the real logs, docs/training.md). */
  batchSize?: number;
  /** Adam step size for the dense weights (default 5e-3). */
  learningRate?: number;
  /**
   * Step size for embedding rows (default 0.2 for `'rowwise-adagrad'`, 0.05 for lazy Adam and Adagrad: what
   * measured best for each, docs/real-data.md).
   */
  embeddingLearningRate?: number;
  /**
   * Optimizer of the embedding tables: `'rowwise-adagrad'` (default: one accumulator per row, of the mean
   * squared gradient, as large-table trainers keep it: the optimizer state of a table is one float per row
   * instead of two per value, so a checkpoint is about the size of the model instead of three times it;
   * ranking quality level with lazy Adam on the real logs, docs/real-data.md), `'adam'` (lazy Adam: only the
   * rows a batch touched move) or `'adagrad'`.
   */
  embeddingOptimizer?: EmbeddingOptimizer;
  /** Adam β1, the decay of the gradient's running mean, in [0, 0.999999] (default 0.9). */
  beta1?: number;
  /** Adam β2, the decay of the squared gradient's running mean, in [0, 0.99999999] (default 0.999). */
  beta2?: number;
  /** Adam ε, added to the denominator's square root, in [1e-30, 1] (default 1e-8). */
  epsilon?: number;
  /** Clip the global L2 norm of the gradient to this (default 5; 0 turns clipping off). */
  clipNorm?: number;
  /** Steps of linear learning-rate warm-up from 0 (default 0). */
  warmupSteps?: number;
  /** Decay after warm-up: `'none'` (default), `'linear'` or `'cosine'` down to 10% at `totalSteps`. */
  decay?: 'none' | 'linear' | 'cosine';
  /** Length of the decay schedule in steps (needed by `'linear'` and `'cosine'`). */
  totalSteps?: number;
  /** Task weights λ_k by task name (default 1 each). */
  taskWeights?: Record<string, number>;
  /** Train only these heads (the others keep their weights and add no loss). Default: all. */
  tasks?: string[];
  /** `'shared'` keeps embeddings, LSTM and attention fixed and trains only heads (transfer). Default `'none'`. */
  freeze?: 'none' | 'shared';
  /**
   * Tensors kept at their values, by name (`attn.v`) or prefix ending in a dot (`lstm.bw.`), on top of
   * `freeze`. With `attn.v` at zero the attention is a plain mean over the behaviours (an ablation).
   */
  freezeTensors?: string[];
  /**
   * Share of training examples whose successor features (retrieval heads with `successors`) are zeroed, so
   * the towers keep learning what the features would explain; by a hash of the user and time, the same
   * examples every epoch (default 0.5: on Amazon Beauty and the Taobao sample it kept more of the towers'
   * sampled-protocol ranking, with the full-catalogue metrics level; docs/real-data.md).
   */
  successorDropout?: number;
  /**
   * Inverted dropout in training, in [0, 0.95]: each value of a behaviour's input row (its field embeddings and
   * property embeddings) and of the user vector U is zeroed with this probability, the rest scaled up to keep
   * the mean (default 0). Serving and evaluation never drop anything.
   */
  dropout?: number;
  /**
   * Decoupled weight decay (AdamW), in [0, 1]: every update also shrinks a weight by learning rate × this × the
   * weight — dense weights each step (biases excepted), embedding rows when a batch touches them (default 0).
   */
  weightDecay?: number;
  /**
   * Weight averaging, in [0, 1): with d > 0 the trainer keeps an exponential moving average of the trained
   * weights, avg ← d_n·avg + (1 − d_n)·w after step n with d_n = min(d, (1 + n)/(10 + n)), and serves and saves it ({@link Trainer.toModel},
   * {@link Trainer.save}; checkpoints keep both). Default 0 (off); `dupn train` uses 0.999, which raised the
   * sampled next-item metrics of every Amazon and Yelp run and the shared logs' wins over "recently seen"
   * (docs/real-data.md, "Weight averaging").
   */
  averageDecay?: number;
  /** Add the pairwise logistic loss within each user's candidates to `rank` heads (default false). */
  pairwise?: boolean;
  /** Seed of the initial weights of new tensors (default 1). */
  seed?: number;
  /** One thread and a fixed summation order: two runs give bit-identical models (default false). */
  deterministic?: boolean;
  /** Threads per step (default: all cores; 1 when deterministic). */
  threads?: number;
  /** Force an instruction-set path (like the model option). */
  isa?: string;
}

/** {@link TrainOptions} with the defaults applied and every value checked (what `Trainer.options` holds). */
export type ResolvedTrainOptions = Required<Omit<TrainOptions, 'embeddingLearningRate' | 'tasks' | 'taskWeights' | 'isa' | 'freezeTensors'>> & {
  freezeTensors: string[];
  embeddingLearningRate: number;
  /** λ per head, in config task order (0: not trained). */
  lambdas: number[];
  tasks: string[];
  taskWeights: Record<string, number>;
  isa: string;
};

function num(v: unknown, path: string, min: number, max: number, integer = false): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    inputError(path, `must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got ${describe(v)}`);
  }
  return v;
}

const KEYS = new Set([
  'batchSize', 'learningRate', 'embeddingLearningRate', 'embeddingOptimizer', 'beta1', 'beta2', 'epsilon', 'clipNorm',
  'warmupSteps', 'decay', 'totalSteps', 'taskWeights', 'tasks', 'freeze', 'freezeTensors', 'pairwise', 'seed', 'deterministic', 'threads', 'isa',
  'successorDropout', 'dropout', 'weightDecay', 'averageDecay',
]);

/** Defaults applied and every value checked against `config` (task names). Throws `E_INPUT` naming the option. */
export function resolveTrainOptions(config: ResolvedConfig, o: TrainOptions = {}, cores = 1): ResolvedTrainOptions {
  if (typeof o !== 'object' || o === null) inputError('options', `must be an object, got ${describe(o)}`);
  for (const k of Object.keys(o)) if (!KEYS.has(k)) inputError(`options.${k}`, 'is not a trainer option');
  const opt = (k: keyof TrainOptions) => o[k] !== undefined;
  const embeddingOptimizer = o.embeddingOptimizer ?? DEFAULT_EMBEDDING_OPTIMIZER;
  if (!EMBEDDING_OPTIMIZERS.includes(embeddingOptimizer)) {
    inputError('options.embeddingOptimizer', `must be ${EMBEDDING_OPTIMIZERS.map((x) => `"${x}"`).join(', ')}, got ${describe(embeddingOptimizer)}`);
  }
  const learningRate = opt('learningRate') ? num(o.learningRate, 'options.learningRate', 0, 10) : 5e-3;
  const decay = o.decay ?? 'none';
  if (!['none', 'linear', 'cosine'].includes(decay)) inputError('options.decay', `must be "none", "linear" or "cosine", got ${describe(decay)}`);
  const totalSteps = opt('totalSteps') ? num(o.totalSteps, 'options.totalSteps', 0, 1e12, true) : 0;
  if (decay !== 'none' && totalSteps === 0) inputError('options.totalSteps', `is needed by decay "${decay}"`);
  const freeze = o.freeze ?? 'none';
  if (freeze !== 'none' && freeze !== 'shared') inputError('options.freeze', `must be "none" or "shared", got ${describe(freeze)}`);
  const names = config.tasks.map((t) => t.name);
  const tasks = o.tasks ?? names;
  if (!Array.isArray(tasks) || tasks.length === 0) inputError('options.tasks', 'must be a non-empty array of task names');
  tasks.forEach((n, i) => {
    if (!names.includes(n)) throw new DupnError('E_TASK', `options.tasks[${i}]: unknown task ${describe(n)} (tasks: ${names.join(', ')})`, { path: `options.tasks[${i}]` });
  });
  const freezeTensors = o.freezeTensors ?? [];
  if (!Array.isArray(freezeTensors)) inputError('options.freezeTensors', 'must be an array of tensor names or prefixes');
  const tensorNames = tensorSpecs(config).map((s) => s.name);
  freezeTensors.forEach((n, i) => {
    if (typeof n !== 'string' || !tensorNames.some((t) => frozenBy(t, n))) {
      inputError(`options.freezeTensors[${i}]`, `${describe(n)} names no tensor of this model (e.g. "attn.v", "lstm.bw.")`);
    }
  });
  const taskWeights = o.taskWeights ?? {};
  if (typeof taskWeights !== 'object' || taskWeights === null) inputError('options.taskWeights', 'must be an object of task name → weight');
  for (const [k, v] of Object.entries(taskWeights)) {
    if (!names.includes(k)) throw new DupnError('E_TASK', `options.taskWeights.${k}: unknown task (tasks: ${names.join(', ')})`, { path: `options.taskWeights.${k}` });
    num(v, `options.taskWeights.${k}`, 0, 1e6);
  }
  const deterministic = o.deterministic ?? false;
  if (typeof deterministic !== 'boolean') inputError('options.deterministic', `must be a boolean, got ${describe(deterministic)}`);
  const pairwise = o.pairwise ?? false;
  if (typeof pairwise !== 'boolean') inputError('options.pairwise', `must be a boolean, got ${describe(pairwise)}`);
  const threads = deterministic ? 1 : opt('threads') ? num(o.threads, 'options.threads', 1, 1024, true) : Math.max(1, cores);
  if (deterministic && opt('threads') && o.threads !== 1) inputError('options.threads', 'must be 1 (or unset) in deterministic mode');
  if (o.isa !== undefined && typeof o.isa !== 'string') inputError('options.isa', `must be a string, got ${describe(o.isa)}`);
  return {
    batchSize: opt('batchSize') ? num(o.batchSize, 'options.batchSize', 1, 1 << 20, true) : 64,
    learningRate,
    successorDropout: opt('successorDropout') ? num(o.successorDropout, 'options.successorDropout', 0, 1) : SUCCESSOR_DROPOUT,
    dropout: opt('dropout') ? num(o.dropout, 'options.dropout', 0, 0.95) : 0,
    weightDecay: opt('weightDecay') ? num(o.weightDecay, 'options.weightDecay', 0, 1) : 0,
    averageDecay: opt('averageDecay') ? num(o.averageDecay, 'options.averageDecay', 0, 0.999999) : 0,
    embeddingLearningRate: opt('embeddingLearningRate')
      ? num(o.embeddingLearningRate, 'options.embeddingLearningRate', 0, 10)
      : defaultEmbeddingLearningRate(embeddingOptimizer),
    embeddingOptimizer,
    beta1: opt('beta1') ? num(o.beta1, 'options.beta1', 0, 0.999999) : 0.9,
    beta2: opt('beta2') ? num(o.beta2, 'options.beta2', 0, 0.99999999) : 0.999,
    epsilon: opt('epsilon') ? num(o.epsilon, 'options.epsilon', 1e-30, 1) : 1e-8,
    clipNorm: opt('clipNorm') ? num(o.clipNorm, 'options.clipNorm', 0, 1e30) : 5,
    warmupSteps: opt('warmupSteps') ? num(o.warmupSteps, 'options.warmupSteps', 0, 1e12, true) : 0,
    decay,
    totalSteps,
    taskWeights: { ...taskWeights },
    tasks: [...tasks],
    lambdas: config.tasks.map((t) => (tasks.includes(t.name) ? (taskWeights[t.name] ?? 1) : 0)),
    freeze,
    freezeTensors: [...freezeTensors],
    pairwise,
    seed: opt('seed') ? num(o.seed, 'options.seed', -(2 ** 31), 2 ** 32, true) : 1,
    deterministic,
    threads,
    isa: o.isa ?? process.env.DUPN_ISA ?? '',
  };
}

/** Whether `pattern` (a name, or a prefix ending in a dot) covers tensor `name`. */
export function frozenBy(name: string, pattern: string): boolean {
  return pattern.endsWith('.') ? name.startsWith(pattern) : name === pattern;
}

/** The learning rate of optimizer step `step` (1-based): warm-up, then the decay (floor 10% of the base). */
export function learningRateAt(base: number, o: Pick<ResolvedTrainOptions, 'warmupSteps' | 'decay' | 'totalSteps'>, step: number): number {
  if (o.warmupSteps > 0 && step <= o.warmupSteps) return (base * step) / o.warmupSteps;
  if (o.decay === 'none') return base;
  const span = Math.max(1, o.totalSteps - o.warmupSteps);
  const progress = Math.min(1, Math.max(0, (step - o.warmupSteps) / span));
  const floor = 0.1;
  const shape = o.decay === 'linear' ? 1 - progress : 0.5 * (1 + Math.cos(Math.PI * progress));
  return base * (floor + (1 - floor) * shape);
}
