/**
 * `dupn train`: a data file → a trained model file. New model, `--init` (incremental training or transfer
 * with a bigger config) or `--resume` (continue a killed run from its checkpoint with nothing lost).
 * Validation metrics are printed after every epoch; the model file and the checkpoint are written
 * atomically after every epoch, the checkpoint also every `--checkpoint-every` steps.
 */
import { ExampleSource, ReadExamplesOptions, defaultValidFrom, formatOf, isHeldOutUser, readExamples, readTimelines, splitByTime, splitByUser } from '../data';
import { DupnConfig, ResolvedConfig, defaultConfig, resolveConfig } from '../network/config';
import { TrainingExample } from '../data/training-example';
import { DupnError } from '../errors';
import { EvalReport, evaluate, formatReport, modelScorer } from '../eval/evaluate';
import { BASELINES, SequenceStats, SequenceStatsOptions, candidateTasks } from '../eval/baselines';
import { NextItemMetrics, evaluateNextItem, formatNextItem, selectionScore } from '../eval/next-item';
import { calibrateHistoryWeights } from '../eval/calibrate';
import { DataPosition, fit, isDataPosition } from '../train/fit';
import { EmbeddingOptimizer, TrainOptions, resolveTrainOptions } from '../train/options';
import { Trainer } from '../train/trainer';
import { Model } from '../model/model';
import { historyField } from '../network/tensors';
import { SUCCESSOR_WINDOW } from '../model/successors';
import { progressSink } from './progress';
import { formatDataReport, refuseEmpty } from './data-report';
import { sizeTablesFromData } from './table-sizes';
import { ReaderFlags, Settings, readSettings, readerOptions } from './settings';

/** The examples of the users `keep` says yes to. */
function only(examples: AsyncIterable<TrainingExample>, keep: (userId: string | number) => boolean): AsyncIterable<TrainingExample> {
  return {
    async *[Symbol.asyncIterator]() {
      for await (const e of examples) if (keep(e.userId)) yield e;
    },
  };
}

/** The mean AUC over a report's tasks that have one. */
function meanAuc(report: EvalReport): number {
  const aucs = Object.values(report.tasks).map((t) => t.auc).filter((a): a is number => typeof a === 'number' && Number.isFinite(a));
  return aucs.length > 0 ? aucs.reduce((a, b) => a + b, 0) / aucs.length : 0;
}

/** The share of users `--split user` holds out. */
const VALID_USERS = 0.1;

/**
 * Early stopping (the default on a log): at most this many epochs, stopping after {@link PATIENCE} epochs
 * without a better validation score; the model file holds the best epoch.
 */
export const MAX_EPOCHS = 20;
export const PATIENCE = 2;

/**
 * Successors kept per item by the default retrieval head: on Amazon Beauty the sequential rules cut to their
 * 16 heaviest successors per item lose 0.007 of HR@20 (full catalogue), to 32 under 0.001.
 */
export const SUCCESSORS_PER_ITEM = 32;

/** Selection cases the history weights are calibrated on at most (evenly spaced; lib/eval/calibrate.ts). */
const CALIBRATION_CASES = 5000;

/** Rows of the successor table when the item count is not known (tables not sized from the data). */
const SUCCESSOR_ROWS_UNSIZED = 1 << 16;

/**
 * In the time and user splits the validation period is also what the final table reports, so the epoch is
 * chosen on the cases of a share of the users (by a hash of their id, apart from --split user's) and the
 * final table leaves them out. Leave-one-out chooses on the second-last behaviours and reports the last.
 */
const SELECTION_USERS = 0.1;
const isSelectionUser = (userId: string | number): boolean => isHeldOutUser(`select|${userId}`, SELECTION_USERS);

/** The retrieval head a new model trained on a log gets besides the paper's four (when the config names no tasks). */
export const NEXT_ITEM_TASK: NonNullable<DupnConfig['tasks']>[number] = { name: 'next', kind: 'retrieval', layers: [64], history: true };

export interface TrainFlags extends ReaderFlags {
  data: string;
  out: string;
  valid?: string;
  validFrom?: number;
  config?: string;
  checkpoint?: string;
  checkpointEvery?: number;
  resume?: boolean;
  init?: string;
  freeze?: 'none' | 'shared';
  tasks?: string[];
  freezeTensors?: string[];
  epochs?: number;
  batchSize?: number;
  lr?: number;
  embeddingLr?: number;
  embeddingOptimizer?: EmbeddingOptimizer;
  threads?: number;
  seed?: number;
  deterministic?: boolean;
  pairwise?: boolean;
  warmup?: number;
  decay?: 'none' | 'linear' | 'cosine';
  maxSteps?: number;
  progress?: boolean;
  /** How a log without --valid is split: `time` (its last day, or --valid-from) or `leave-one-out`. */
  split?: 'time' | 'leave-one-out' | 'user';
  /** `--no-data-sized-tables`: keep the config's (paper-size) table sizes for a new model. */
  dataSizedTables?: boolean;
  /** `--shuffle <n>`: train each run of n examples in a seeded random order (default 4096; 0: file order). */
  shuffle?: number;
  /** `--no-next-item`: skip the full-catalogue and sampled next-item table after training. */
  nextItem?: boolean;
  /** `--no-calibrate`: keep the history, successor and prior weights as trained (no held-out calibration). */
  calibrate?: boolean;
  /** `--successor-dropout <p>`: share of training examples without successor features (TrainOptions.successorDropout). */
  successorDropout?: number;
  /** `--dropout <p>`: inverted dropout of the behaviour inputs and of U in training (TrainOptions.dropout). */
  dropout?: number;
  /** `--weight-decay <w>`: decoupled weight decay (TrainOptions.weightDecay). */
  weightDecay?: number;
  /** `--average-decay <d>`: the decay of the weight average a run saves (TrainOptions.averageDecay; default {@link CLI_AVERAGE_DECAY}, 0: off). */
  averageDecay?: number;
  /** `--successors <n>`: successors kept per item for the default retrieval head (0: no successor features). */
  successors?: number;
  /** `--patience <n>`: stop after n epochs without a better validation score (default on a log: 2, with at most 20 epochs). */
  patience?: number;
}

/** Where the CLI writes: results to `out`, progress and notes to `err`. */
export interface Output {
  out: (line: string) => void;
  err: (line: string) => void;
  stream: NodeJS.WriteStream;
}

/**
 * The weight average's decay that `dupn train` saves unless told otherwise (the library's default is off): an
 * average over the last thousand or so steps (after a warm-up), which raised the held-out next-item metrics
 * of the sampled protocol on every log measured (docs/real-data.md, "Weight averaging").
 */
export const CLI_AVERAGE_DECAY = 0.999;

function trainOptions(flags: TrainFlags, settings: Settings): { options: TrainOptions; epochs?: number } {
  const { epochs: fileEpochs, ...fromFile } = settings.train ?? {};
  const o: TrainOptions = { ...fromFile };
  if (flags.batchSize !== undefined) o.batchSize = flags.batchSize;
  if (flags.lr !== undefined) o.learningRate = flags.lr;
  if (flags.embeddingOptimizer !== undefined) o.embeddingOptimizer = flags.embeddingOptimizer;
  if (flags.embeddingLr !== undefined) o.embeddingLearningRate = flags.embeddingLr;
  if (flags.successorDropout !== undefined) o.successorDropout = flags.successorDropout;
  if (flags.dropout !== undefined) o.dropout = flags.dropout;
  if (flags.weightDecay !== undefined) o.weightDecay = flags.weightDecay;
  if (flags.averageDecay !== undefined) o.averageDecay = flags.averageDecay;
  else if (o.averageDecay === undefined) o.averageDecay = CLI_AVERAGE_DECAY;
  if (flags.threads !== undefined) o.threads = flags.threads;
  if (flags.seed !== undefined) o.seed = flags.seed;
  if (flags.deterministic) o.deterministic = true;
  if (flags.pairwise) o.pairwise = true;
  if (flags.warmup !== undefined) o.warmupSteps = flags.warmup;
  if (flags.decay !== undefined) o.decay = flags.decay;
  if (flags.freeze !== undefined) o.freeze = flags.freeze;
  if (flags.tasks !== undefined) o.tasks = flags.tasks;
  if (flags.freezeTensors !== undefined) o.freezeTensors = flags.freezeTensors;
  return { options: o, epochs: flags.epochs ?? fileEpochs };
}

/** The training and validation parts of a data file, and the baselines' counts where it is a log. */
interface Parts {
  source: ExampleSource;
  train: AsyncIterable<TrainingExample>;
  valid?: () => AsyncIterable<TrainingExample>;
  /** Leave-one-out: each user's last behaviour, for the next-item table. */
  test?: () => AsyncIterable<TrainingExample>;
  /** Whether the validation examples also make the final table (time and user splits), so the epoch is chosen on a share of the users. */
  validIsTest?: boolean;
  /** The four baselines' counts, from the training part only. */
  stats?: SequenceStats;
  /** Where examples that are not training ones went (for the no-training-examples error). */
  heldOut: string;
  note?: string;
}

/**
 * A behaviour log without a validation file, split as `--split` says. In every split the training cuts'
 * negatives and labels, and the baselines' counts, come from the training part only.
 */
async function splitLog(flags: TrainFlags, options: ReadExamplesOptions, config: ResolvedConfig): Promise<Parts> {
  const counted = (o: SequenceStatsOptions) => SequenceStats.from(readTimelines(flags.data, options), config, o);
  if (flags.split === 'leave-one-out') {
    const source = readExamples(flags.data, { ...options, leaveOneOut: 'train' });
    const part = (leaveOneOut: 'valid' | 'test') => () => readExamples(flags.data, { ...options, leaveOneOut }).examples;
    return {
      source, train: source.examples, valid: part('valid'), test: part('test'), stats: await counted({ holdLast: 2 }),
      heldOut: 'are held out (--split leave-one-out)',
      note: 'validation: leave-one-out (the second-last behaviour of each user with 3 or more validates, the last tests)',
    };
  }
  if (flags.split === 'user') {
    const source = readExamples(flags.data, { ...options, validUsers: VALID_USERS });
    const { train, validation } = splitByUser(source.examples, VALID_USERS);
    return {
      source, train, valid: () => validation, stats: await counted({ validUsers: VALID_USERS }), validIsTest: true,
      heldOut: 'belong to held-out users (--split user)',
      note: `validation: the users whose id hashes into the held-out ${VALID_USERS * 100}%`,
    };
  }
  // By time (docs/model.md, Training data): the last day unless --valid-from says otherwise.
  const validFrom = flags.validFrom ?? (await defaultValidFrom(flags.data, options));
  const source = readExamples(flags.data, { ...options, trainBefore: validFrom });
  const { train, validation } = splitByTime(source.examples, validFrom);
  return {
    source, train, valid: () => validation, stats: await counted({ before: validFrom }), validIsTest: true,
    heldOut: 'are cut at or after the validation split (--valid-from)',
    note: `validation: examples cut at or after ${new Date(validFrom * 1000).toISOString()} (--valid-from ${validFrom})`,
  };
}

/** What {@link setUpTraining} prepares: the trainer (new, `--init` or resumed) and its data, split and counted. */
export interface TrainingSetup {
  trainer: Trainer;
  /** Where a resumed run stands in the data. */
  start?: DataPosition;
  /** `--epochs` or the settings file's `train.epochs`, when given. */
  fixedEpochs?: number;
  checkpoint: string;
  parts: Parts;
  /** The training part; its first full pass prints the reader's report and refuses a file with no examples. */
  trainData: AsyncIterable<TrainingExample>;
  /** Whether a pass over {@link trainData} has ended (the reader's report is printed). */
  firstPassDone: () => boolean;
  /** The `--valid` file's source, for its report. */
  validSource?: ExampleSource;
  /** Sets every retrieval head's prior from the training part's counts (where the log was split here). */
  setPriors: () => void;
}

/**
 * `dupn train`'s preparation, shared with `dupn shards` (which packs the same batches for another trainer):
 * the trainer, the split, the successor tables filled from the training part, and the prior setter.
 */
export async function setUpTraining(flags: TrainFlags, io: Output): Promise<TrainingSetup> {
  const settings = await readSettings(flags.config);
  const { options, epochs: fixedEpochs } = trainOptions(flags, settings);
  const checkpoint = flags.checkpoint ?? `${flags.out}.ckpt`;
  const reader = readerOptions(flags, settings);
  const log = formatOf(flags.data, reader) !== 'jsonl';

  let trainer: Trainer;
  let start: DataPosition | undefined;
  if (flags.resume) {
    if (flags.init) throw new DupnError('E_INPUT', '--resume and --init cannot be used together', { path: '--resume' });
    const run: TrainOptions = {};
    if (options.threads !== undefined) run.threads = options.threads;
    const resumed = await Trainer.resume(checkpoint, run);
    trainer = resumed.trainer;
    if (!isDataPosition(resumed.position)) throw new DupnError('E_MODEL_FILE', `${checkpoint}: the checkpoint has no data position`);
    start = resumed.position;
    io.err(`resumed from ${checkpoint}: step ${trainer.steps}, epoch ${start.epoch + 1}, ${start.examples} examples done in it`);
  } else if (flags.init) {
    const { trainer: t, fresh } = await Trainer.fromModelFile(flags.init, options, settings.model);
    trainer = t;
    io.err(`initialised from ${flags.init}${fresh.length ? `; new tensors: ${fresh.join(', ')}` : ''}`);
  } else {
    let model = settings.model ?? {};
    // A log's model also learns candidate generation: the paper's heads plus a retrieval head over the item.
    const addNext = log && model.tasks === undefined;
    // Its binary and rank heads (ctr, spp, l2r) also read whether and how recently the user acted on the candidate
    // (history features): on the shared Tmall log the shop head's AUC went from below "recently seen" to above it.
    if (addNext) model = { ...model, tasks: [...defaultConfig().tasks.map((t) => (t.kind === 'binary' || t.kind === 'rank' ? { ...t, history: true } : t)), NEXT_ITEM_TASK] };
    // Options are checked before the pass over the data that sizes the tables, so a typo fails at once.
    resolveTrainOptions(resolveConfig(model), options);
    let distinctItems: number | undefined;
    if (log && flags.dataSizedTables !== false) {
      const sized = await sizeTablesFromData(flags.data, model, reader);
      model = sized.config;
      distinctItems = sized.distinct.get('item');
      if (sized.notes.length > 0) io.err(`tables sized from the data (--no-data-sized-tables keeps the defaults): ${sized.notes.join('; ')}`);
    }
    // The retrieval head learns from item-to-item transitions too: room for every item's successors.
    const perItem = flags.successors ?? SUCCESSORS_PER_ITEM;
    if (!Number.isInteger(perItem) || perItem < 0 || perItem > 256) throw new DupnError('E_INPUT', `--successors: must be an integer in [0, 256], got ${perItem}`, { path: '--successors' });
    // Only where the training part's counts will fill the table (a log split here, not a --valid file).
    if (addNext && perItem > 0 && !flags.valid) {
      const buckets = resolveConfig(model).itemFields.find((f) => f.name === 'item')?.buckets ?? 0;
      const items = Math.max(1, Math.min(buckets, distinctItems ?? SUCCESSOR_ROWS_UNSIZED));
      if (buckets > 0) model = { ...model, tasks: model.tasks!.map((t) => (t.name === NEXT_ITEM_TASK.name ? { ...t, successors: { items, perItem } } : t)) };
    }
    trainer = Trainer.create(model, options);
  }

  const dataOptions: ReadExamplesOptions = { ...reader, config: trainer.config };
  let validSource: ExampleSource | undefined;
  let parts: Parts;
  if (flags.valid) {
    const source = readExamples(flags.data, dataOptions);
    const valid = readExamples(flags.valid, dataOptions);
    validSource = valid;
    parts = { source, train: source.examples, valid: () => valid.examples, heldOut: `are in ${flags.valid}` };
  } else if (log) {
    parts = await splitLog(flags, dataOptions, trainer.config);
    if (parts.note) io.err(parts.note);
  } else {
    const source = readExamples(flags.data, dataOptions);
    parts = { source, train: source.examples, heldOut: '' };
  }
  const { source, stats } = parts;
  // The first pass shows what the reader made of the file; a file that gives nothing is refused before training.
  let firstPass = true;
  const counted = parts.train;
  const trainData: AsyncIterable<TrainingExample> = {
    async *[Symbol.asyncIterator]() {
      let n = 0;
      for await (const ex of counted) {
        n++;
        yield ex;
      }
      if (firstPass) {
        firstPass = false;
        for (const line of formatDataReport(flags.data, source.report())) io.err(line);
        const all = source.report().examples;
        if (n === 0 && all > 0) throw new DupnError('E_INPUT', `${flags.data}: no training examples: all ${all} examples ${parts.heldOut}`, { path: '--split' });
        if (n === 0) refuseEmpty(flags.data, source.report());
      }
    },
  };

  // Successor tables are inputs: filled from the training part's sequential-rules weights before training.
  for (const t of trainer.config.tasks) {
    if (t.kind !== 'retrieval' || !t.successors) continue;
    const es = stats?.byTask.get(t.name);
    if (es !== undefined && es.fields.length === 1 && es.fields[0] === historyField(t) && es.window === SUCCESSOR_WINDOW) {
      trainer.setSuccessors(t.name, es.rules);
    } else if (!flags.resume && !flags.init) {
      io.err(`note: the successor table of task "${t.name}" stays empty: only a log that dupn train splits itself gives the training-period counts it is filled from`);
    }
  }
  // Retrieval heads serve with the training period's popularity as their prior (Trainer.setPrior).
  const setPriors = (): void => {
    if (!stats) return;
    for (const t of trainer.config.tasks) {
      const es = stats.byTask.get(t.name);
      if (t.kind !== 'retrieval' || !t.history || es === undefined) continue;
      const field = historyField(t);
      const counts: [string | number, number][] = [];
      for (const [key, n] of es.count) {
        const v = es.features.get(key)?.[field];
        if (typeof v === 'string' || typeof v === 'number') counts.push([v, n]);
      }
      trainer.setPrior(t.name, counts);
    }
  };
  return { trainer, start, fixedEpochs, checkpoint, parts, trainData, firstPassDone: () => !firstPass, validSource, setPriors };
}

export async function trainCommand(flags: TrainFlags, io: Output): Promise<void> {
  const { trainer, start, fixedEpochs, checkpoint, parts, trainData, firstPassDone, validSource, setPriors } = await setUpTraining(flags, io);
  const { source, valid: validData, test: testData, stats } = parts;
  let baselineReports: Record<string, EvalReport> | undefined;
  // Early stopping: by default on a log split here (it has the baselines' counts and a validation part),
  // or whenever --patience is given; otherwise the given number of epochs (default 1).
  const retrieval = trainer.config.tasks.find((t) => t.kind === 'retrieval');
  const stopping = validData !== undefined && (flags.patience !== undefined || (fixedEpochs === undefined && stats !== undefined));
  const patience = flags.patience ?? PATIENCE;
  const epochs = fixedEpochs ?? (stopping ? MAX_EPOCHS : 1);
  // The cases the epoch is chosen on (see SELECTION_USERS) and the ones the final table reports.
  const selectionCases = (): AsyncIterable<TrainingExample> => (parts.validIsTest ? only(validData!(), isSelectionUser) : validData!());
  const testCases = (): AsyncIterable<TrainingExample> => (testData ? testData() : stopping && parts.validIsTest ? only(validData!(), (u) => !isSelectionUser(u)) : validData!());
  interface Validation {
    report: EvalReport;
    /** The first retrieval head's next-item metrics (open catalogue) on the selection cases. */
    next?: NextItemMetrics & { cases: number };
  }
  const nextItemSelection = stopping && stats !== undefined && retrieval !== undefined && stats.itemTask() !== undefined;
  const progress = progressSink(io.stream, flags.progress === false);
  const reports = await fit<Validation>(trainer, {
    data: () => trainData,
    epochs,
    shuffle: flags.shuffle ?? 4096,
    start,
    checkpoint,
    checkpointEvery: flags.checkpointEvery ?? 0,
    maxSteps: flags.maxSteps,
    onStep: (p) => progress.update(p),
    validate: validData
      ? async (model) => {
          const report = await evaluate(modelScorer(model), validData!(), trainer.config);
          if (!nextItemSelection) return { report };
          const r = await evaluateNextItem(selectionCases(), stats!, model, { baselines: false });
          return { report, next: { ...r.open.scorers[`model:${retrieval!.name}`], cases: r.open.cases } };
        }
      : undefined,
    earlyStopping: stopping
      ? {
          patience,
          // The retrieval head's NDCG over the whole catalogue and in the sampled protocol, else the mean AUC.
          score: (v) => (v.next ? selectionScore(v.next) : meanAuc(v.report)),
        }
      : undefined,
    onEpoch: async (r) => {
      progress.pause();
      io.out(`epoch ${r.epoch + 1}/${epochs}: ${r.steps} steps, ${r.examples} examples, ${r.seconds.toFixed(1)} s, train loss ${r.trainLoss.toFixed(4)}`);
      if (r.validation) {
        if (stats && validData && baselineReports === undefined) {
          baselineReports = {};
          for (const name of BASELINES) baselineReports[name] = await evaluate(stats.scorer(name), validData(), candidateTasks(trainer.config));
        }
        io.out(formatReport(r.validation.report, baselineReports ?? {}));
        const n = r.validation.next;
        if (n) {
          io.out(`validation next item (model:${retrieval!.name}, ${n.cases} cases${parts.validIsTest ? ' of the selection users' : ''}): ` +
            `HR@20 ${n.hr.toFixed(4)}, MRR@20 ${n.mrr.toFixed(4)}, NDCG@20 ${n.ndcg.toFixed(4)}, HR@10/100 ${n.sampledHr.toFixed(4)}, NDCG@10/100 ${n.sampledNdcg.toFixed(4)}`);
        }
      }
      if (r.score !== undefined && r.best) {
        io.out(`score ${r.score.toFixed(4)}${r.improved ? ' (best so far: model saved)' : `; best ${r.best.score.toFixed(4)} at epoch ${r.best.epoch + 1}`}` +
          `${r.stopping ? `; no better score for ${patience} epochs: stopping` : ''}`);
      }
      setPriors();
      if (!stopping || r.improved) await trainer.save(flags.out);
    },
  });
  progress.stop();
  if (!firstPassDone()) for (const line of formatDataReport(`${flags.data} (first pass, not read to the end)`, source.report())) io.err(line);
  if (validSource) for (const line of formatDataReport(flags.valid!, validSource.report())) io.err(line);
  // Early stopping saved the best epoch's model as it went; a run that ended no epoch (--max-steps) saves where it is.
  const best = reports.at(-1)?.best;
  // A resumed run with early stopping that had nothing left to train: the model file holds the best epoch
  // (calibrated), the trainer the last one, so nothing is saved.
  const finishedBefore = stopping && reports.length === 0 && start?.best !== undefined;
  const saveLast = !finishedBefore && (!stopping || reports.length === 0 || reports.at(-1)?.validation === undefined);
  if (saveLast) {
    setPriors();
    await trainer.save(flags.out);
  }
  if (finishedBefore) io.out(`kept ${flags.out} (the run had stopped early at the best epoch ${start!.best!.epoch + 1}; nothing left to train)`);
  else io.out(`saved ${flags.out} (${trainer.steps} steps${reports.length === 0 ? '; nothing left to train' : ''}${!saveLast && best ? `; the model of epoch ${best.epoch + 1}, the best on validation` : ''})`);
  // The history, successor and prior weights, calibrated on the selection cases (see lib/eval/calibrate.ts).
  let calibrated = false;
  // Only a model this run saved: a resumed run that found no better epoch keeps the file it calibrated before.
  const savedThisRun = reports.some((r) => r.improved);
  if (nextItemSelection && !saveLast && savedThisRun && retrieval?.kind === 'retrieval' && retrieval.history && historyField(retrieval) === 'item' && flags.calibrate !== false) {
    const chosen = await Model.load(flags.out);
    try {
      const all: TrainingExample[] = [];
      for await (const ex of selectionCases()) all.push(ex);
      // Evenly spaced through the file: a log's first users can differ from the rest (on Amazon Beauty the first
      // 5,000 scored 0.124 where every user scored 0.187).
      const cases = all.length <= CALIBRATION_CASES ? all : Array.from({ length: CALIBRATION_CASES }, (_, i) => all[Math.floor((i * all.length) / CALIBRATION_CASES)]);
      const { model: scaled, calibration: c } = await calibrateHistoryWeights(chosen, retrieval, cases, stats!, selectionScore);
      if (!Number.isFinite(c.before)) io.out(`not calibrated: the ${c.cases} selection cases give no next-item score`);
      else io.out(`calibrated on ${c.cases} selection cases: history weights ×${c.history}${retrieval.successors ? `, successor weights ×${c.successors}` : ''}, prior weight ×${c.prior} (score ${c.before.toFixed(4)} → ${c.after.toFixed(4)})`);
      if (scaled !== chosen) {
        await scaled.save(flags.out);
        scaled.dispose();
        calibrated = true;
      }
    } finally {
      chosen.dispose();
    }
  }
  if (stats && validData && flags.nextItem !== false && stats.itemTask() !== undefined) {
    const model = saveLast && !calibrated ? trainer.toModel() : await Model.load(flags.out);
    try {
      if (testData) io.out('test (the last behaviour of each user):');
      else if (stopping && parts.validIsTest) io.out('test (the validation period, less the users the epoch was chosen on):');
      io.out(formatNextItem(await evaluateNextItem(testCases(), stats, model)));
    } finally {
      model.dispose();
    }
  }
  trainer.dispose();
}
