/**
 * The training loop: epochs over a re-readable stream of examples, batches of `batchSize`, progress after
 * every step, validation after every epoch, and checkpoints that record exactly how far the data went —
 * a resumed run skips the examples already trained on and continues with the same batches.
 */
import { DupnError, inputError } from '../errors';
import { TrainingExample } from '../data/training-example';
import { Model } from '../model/model';
import { mulberry32, seedFor } from '../random';
import { NativeTrainBatch } from '../native/addon';
import { StepReport, Trainer } from './trainer';

/** Where training stands in the data: `examples` of epoch `epoch` (0-based) are done. */
export interface DataPosition {
  /** The epoch under way, 0-based. */
  epoch: number;
  /** Examples of that epoch already trained on, counted in the stream's order. */
  examples: number;
  /** With early stopping: the best epoch so far (0-based) and its validation score. */
  best?: BestEpoch;
}

/** The epoch whose validation scored highest so far. */
export interface BestEpoch {
  /** The epoch, 0-based. */
  epoch: number;
  /** Its score by {@link EarlyStopping.score}. */
  score: number;
}

/**
 * Stop when the validation score has not improved for `patience` epochs. The caller keeps the best epoch's
 * model (e.g. writes the model file only from {@link EpochReport.improved} epochs).
 */
export interface EarlyStopping<V> {
  /** Epochs without a better score before the run stops, an integer ≥ 1. */
  patience: number;
  /** Higher is better; from what `validate` returned. */
  score: (validation: V) => number;
}

/** Progress after each step. */
export interface FitProgress {
  /** The epoch under way, 0-based. */
  epoch: number;
  /** The run's number of epochs ({@link FitOptions.epochs}). */
  epochs: number;
  /** What {@link Trainer.step} reported for this step. */
  step: StepReport;
  /** Examples done in this epoch. */
  examples: number;
  /** Examples per epoch when known (given, or measured by the first epoch). */
  examplesPerEpoch?: number;
  /** Examples per second over the run so far. */
  examplesPerSecond: number;
  /** Exponential moving average of the loss (smoother than one batch's). */
  smoothedLoss: number;
  /** Seconds left, when the epoch size is known. */
  etaSeconds?: number;
}

/**
 * What {@link fit} reports after each epoch.
 *
 * @typeParam V - What `validate` returns.
 */
export interface EpochReport<V = unknown> {
  /** The epoch, 0-based. */
  epoch: number;
  /** Optimizer steps this run took in the epoch. */
  steps: number;
  /** Examples of the epoch trained on, those of a resumed run's earlier part included. */
  examples: number;
  /** Wall-clock seconds this run spent in the epoch, validation excluded. */
  seconds: number;
  /** Mean loss over the epoch's steps. */
  trainLoss: number;
  /** What `validate` returned, if given. */
  validation?: V;
  /** With early stopping: the score of this epoch. */
  score?: number;
  /** With early stopping: whether this epoch scored higher than every earlier one. */
  improved?: boolean;
  /** With early stopping: the best epoch so far (this one when `improved`). */
  best?: BestEpoch;
  /** With early stopping: the last epoch of the run (no improvement for `patience` epochs). */
  stopping?: boolean;
}

/**
 * How {@link fit} trains: the data, the number of epochs, shuffling, validation and early stopping,
 * checkpoints and resuming, and progress callbacks. The batch size is the trainer's `batchSize` option.
 *
 * @typeParam V - What `validate` returns.
 */
export interface FitOptions<V = unknown> {
  /** A fresh pass over the training examples each time it is called (same order every time). */
  data: () => AsyncIterable<TrainingExample> | Iterable<TrainingExample>;
  /** Passes over the data, an integer ≥ 1 (default 1); with early stopping, the most passes. */
  epochs?: number;
  /** Known size of one pass (for the ETA before the first epoch ends). */
  examplesPerEpoch?: number;
  /**
   * Shuffle window: each run of this many examples of the stream is trained in a seeded random order that
   * depends only on the epoch and the run's position (so a resumed run continues with the same batches).
   * Logs come user by user; without it a batch holds one user's cuts. Default 0: the stream's order.
   */
  shuffle?: number;
  /** Called after each epoch with a serving snapshot of the model (disposed afterwards). */
  validate?: (model: Model, epoch: number) => Promise<V>;
  /** Stop early on the validation score (needs `validate`); `epochs` is then the most epochs. */
  earlyStopping?: EarlyStopping<V>;
  /** Checkpoint path: written atomically after each epoch and every `checkpointEvery` steps. */
  checkpoint?: string;
  /** Optimizer steps between checkpoints within an epoch, counted on {@link Trainer.steps} (default 0: at epoch ends only). */
  checkpointEvery?: number;
  /** Resume from here (what `Trainer.resume` returned). */
  start?: DataPosition;
  /** Stop after this many optimizer steps in all (counting the trainer's earlier steps). */
  maxSteps?: number;
  /** Called after each optimizer step with the progress. */
  onStep?: (p: FitProgress) => void;
  /** Called after each epoch (awaited), e.g. to save the model. */
  onEpoch?: (r: EpochReport<V>) => void | Promise<void>;
}

/** Whether `v` is a well-formed {@link DataPosition} (e.g. one read back from a checkpoint). */
export function isDataPosition(v: unknown): v is DataPosition {
  const p = v as DataPosition;
  const best = p?.best;
  const bestOk = best === undefined || (typeof best === 'object' && best !== null && Number.isSafeInteger(best.epoch) && best.epoch >= 0 && Number.isFinite(best.score));
  return typeof v === 'object' && v !== null && Number.isSafeInteger(p.epoch) && p.epoch >= 0 && Number.isSafeInteger(p.examples) && p.examples >= 0 && bestOk;
}

/** The stream in windows of `window` examples, each window in a seeded random order (Fisher–Yates); `dupn shards` packs epoch 0's order. */
export async function* shuffled(
  data: AsyncIterable<TrainingExample> | Iterable<TrainingExample>,
  window: number,
  epoch: number,
): AsyncGenerator<TrainingExample> {
  if (window <= 1) {
    yield* data;
    return;
  }
  let buf: TrainingExample[] = [];
  let w = 0;
  const flush = function* (): Generator<TrainingExample> {
    const rand = mulberry32(seedFor(epoch, `shuffle|${w++}`));
    for (let i = buf.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [buf[i], buf[j]] = [buf[j], buf[i]];
    }
    yield* buf;
    buf = [];
  };
  for await (const ex of data) {
    buf.push(ex);
    if (buf.length === window) yield* flush();
  }
  if (buf.length > 0) yield* flush();
}

/** Trains `trainer` as `options` say; returns one report per epoch run. */
export async function fit<V = unknown>(trainer: Trainer, options: FitOptions<V>): Promise<EpochReport<V>[]> {
  const epochs = options.epochs ?? 1;
  if (!Number.isSafeInteger(epochs) || epochs < 1) inputError('options.epochs', `must be an integer ≥ 1, got ${epochs}`);
  const every = options.checkpointEvery ?? 0;
  if (!Number.isSafeInteger(every) || every < 0) inputError('options.checkpointEvery', `must be an integer ≥ 0, got ${every}`);
  const start = options.start ?? { epoch: 0, examples: 0 };
  if (!isDataPosition(start)) inputError('options.start', 'must be a data position {epoch, examples}');
  const batchSize = trainer.options.batchSize;
  const shuffle = options.shuffle ?? 0;
  if (!Number.isSafeInteger(shuffle) || shuffle < 0) inputError('options.shuffle', `must be an integer ≥ 0, got ${shuffle}`);
  const stopper = options.earlyStopping;
  if (stopper !== undefined) {
    if (!options.validate) inputError('options.earlyStopping', 'needs options.validate (the score comes from the validation)');
    if (!Number.isSafeInteger(stopper.patience) || stopper.patience < 1) inputError('options.earlyStopping.patience', `must be an integer ≥ 1, got ${stopper.patience}`);
  }
  let best = start.best;
  // Every checkpoint carries the best epoch, mid-epoch ones too: a run resumed from any of them keeps the
  // early-stopping state (else its next epoch would count as an improvement and replace the best model).
  const position = (epoch: number, examples: number): DataPosition => (best === undefined ? { epoch, examples } : { epoch, examples, best });
  const reports: EpochReport<V>[] = [];
  let perEpoch = options.examplesPerEpoch;
  let smoothed = NaN;
  const t0 = Date.now();
  let doneThisRun = 0;

  // Whether the step numbered `step` writes a checkpoint after it, and whether it is the last of the run.
  const checkpointsAfter = (step: number): boolean => Boolean(options.checkpoint) && every > 0 && step % every === 0;
  const lastStep = (step: number): boolean => options.maxSteps !== undefined && step >= options.maxSteps;

  for (let epoch = start.epoch; epoch < epochs; epoch++) {
    // A resumed run that had already stopped stays stopped.
    if (stopper !== undefined && best !== undefined && epoch - best.epoch > stopper.patience) break;
    const skip = epoch === start.epoch ? start.examples : 0;
    let seen = 0; // examples of this pass read so far (skipped ones included)
    let done = skip; // examples of this epoch trained on
    let lossSum = 0;
    let steps = 0;
    const e0 = Date.now();
    let batch: TrainingExample[] = [];
    // Bookkeeping after a step of `count` examples; true when maxSteps is reached.
    const afterStep = async (report: StepReport, count: number): Promise<boolean> => {
      done += count;
      doneThisRun += count;
      steps++;
      lossSum += report.loss;
      smoothed = Number.isNaN(smoothed) ? report.loss : 0.98 * smoothed + 0.02 * report.loss;
      const rate = doneThisRun / Math.max(1e-3, (Date.now() - t0) / 1000);
      const left = perEpoch === undefined ? undefined : (epochs - epoch - 1) * perEpoch + Math.max(0, perEpoch - done);
      options.onStep?.({
        epoch,
        epochs,
        step: report,
        examples: done,
        examplesPerEpoch: perEpoch,
        examplesPerSecond: rate,
        smoothedLoss: smoothed,
        etaSeconds: left === undefined ? undefined : left / rate,
      });
      if (checkpointsAfter(trainer.steps)) await trainer.saveCheckpoint(options.checkpoint!, position(epoch, done));
      return lastStep(trainer.steps);
    };
    // The next batch is read and packed on this thread while the current step runs on the native threads.
    let running: Promise<boolean> | null = null;
    // Waits for the running step (and its bookkeeping), if any; true when it was the last.
    const settle = async (): Promise<boolean> => {
      const r = running;
      running = null;
      return r === null ? false : r;
    };
    const launch = async (): Promise<boolean> => {
      const count = batch.length;
      // Packing records log Q in the prior tables: a checkpoint after the running step (every n steps, or at
      // maxSteps) must not hold this batch's, so such a step finishes first (a resumed run is then identical).
      const current = trainer.steps + 1; // the running step's number
      if (running !== null && (checkpointsAfter(current) || lastStep(current)) && (await settle())) return true;
      let packed: NativeTrainBatch;
      try {
        packed = trainer.packBatch(batch);
      } catch (e) {
        await settle().catch(() => false); // no step left in flight behind the failure
        throw e;
      }
      batch = [];
      if (await settle()) return true;
      running = trainer.stepPacked(packed).then((report) => afterStep(report, count));
      return false;
    };
    let stopped = false;
    try {
      for await (const ex of shuffled(options.data(), shuffle, epoch)) {
        if (seen++ < skip) continue;
        batch.push(ex);
        if (batch.length === batchSize && (stopped = await launch())) break;
      }
      if (!stopped && batch.length > 0) stopped = await launch();
    } finally {
      // A failure while the next batch was read leaves no step running behind it.
      if (!stopped) stopped = await settle();
      else await settle().catch(() => false);
    }
    if (stopped) {
      if (options.checkpoint) await trainer.saveCheckpoint(options.checkpoint, position(epoch, done));
      break;
    }
    if (skip > seen) throw new DupnError('E_INPUT', `start: the data have ${seen} examples, fewer than the ${skip} already done in epoch ${epoch}`);
    perEpoch = perEpoch ?? seen;
    if (options.checkpoint) await trainer.saveCheckpoint(options.checkpoint, position(epoch + 1, 0));
    const report: EpochReport<V> = {
      epoch,
      steps,
      examples: done,
      seconds: (Date.now() - e0) / 1000,
      trainLoss: steps > 0 ? lossSum / steps : NaN,
    };
    if (options.validate) {
      const model = trainer.toModel();
      try {
        report.validation = await options.validate(model, epoch);
      } finally {
        model.dispose();
      }
    }
    if (stopper !== undefined) {
      const score = stopper.score(report.validation as V);
      report.score = score;
      report.improved = best === undefined || score > best.score;
      if (report.improved) best = { epoch, score };
      report.best = best;
      report.stopping = epoch - best!.epoch >= stopper.patience && epoch + 1 < epochs;
      // Again, now with the best epoch, so a resumed run stops where this one would have.
      if (options.checkpoint) await trainer.saveCheckpoint(options.checkpoint, position(epoch + 1, 0));
    }
    reports.push(report);
    await options.onEpoch?.(report);
    if (report.stopping) break;
  }
  return reports;
}
