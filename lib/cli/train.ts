/**
 * `dupn train`: a data file → a trained model file. New model, `--init` (incremental training or transfer
 * with a bigger config) or `--resume` (continue a killed run from its checkpoint with nothing lost).
 * Validation metrics are printed after every epoch; the model file and the checkpoint are written
 * atomically after every epoch, the checkpoint also every `--checkpoint-every` steps.
 */
import { ExampleSource, ReadExamplesOptions, defaultValidFrom, formatOf, readExamples, readTimelines, splitByTime, splitByUser } from '../data';

/** The share of users `--split user` holds out. */
const VALID_USERS = 0.1;
import { TrainingExample } from '../data/example';
import { DupnError } from '../errors';
import { EvalReport, evaluate, formatReport, modelScorer } from '../evaluate';
import { BASELINES, SequenceStats, candidateTasks } from '../eval/baselines';
import { evaluateNextItem, formatNextItem } from '../eval/next-item';
import { DataPosition, fit, isDataPosition } from '../train/fit';
import { TrainOptions } from '../train/options';
import { Trainer } from '../train/trainer';
import { progressSink } from './progress';
import { formatDataReport, refuseEmpty } from './data-report';
import { sizeTablesFromData } from './table-sizes';
import { ReaderFlags, Settings, readSettings, readerOptions } from './settings';

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
  embeddingOptimizer?: 'adam' | 'adagrad';
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
  /** `--no-next-item`: skip the full-catalogue and sampled next-item table after training. */
  nextItem?: boolean;
}

/** Where the CLI writes: results to `out`, progress and notes to `err`. */
export interface Output {
  out: (line: string) => void;
  err: (line: string) => void;
  stream: NodeJS.WriteStream;
}

function trainOptions(flags: TrainFlags, settings: Settings): { options: TrainOptions; epochs: number } {
  const { epochs: fileEpochs, ...fromFile } = settings.train ?? {};
  const o: TrainOptions = { ...fromFile };
  if (flags.batchSize !== undefined) o.batchSize = flags.batchSize;
  if (flags.lr !== undefined) o.learningRate = flags.lr;
  if (flags.embeddingOptimizer !== undefined) o.embeddingOptimizer = flags.embeddingOptimizer;
  if (flags.embeddingLr !== undefined) o.embeddingLearningRate = flags.embeddingLr;
  if (flags.threads !== undefined) o.threads = flags.threads;
  if (flags.seed !== undefined) o.seed = flags.seed;
  if (flags.deterministic) o.deterministic = true;
  if (flags.pairwise) o.pairwise = true;
  if (flags.warmup !== undefined) o.warmupSteps = flags.warmup;
  if (flags.decay !== undefined) o.decay = flags.decay;
  if (flags.freeze !== undefined) o.freeze = flags.freeze;
  if (flags.tasks !== undefined) o.tasks = flags.tasks;
  if (flags.freezeTensors !== undefined) o.freezeTensors = flags.freezeTensors;
  return { options: o, epochs: flags.epochs ?? fileEpochs ?? 1 };
}

export async function trainCommand(flags: TrainFlags, io: Output): Promise<void> {
  const settings = await readSettings(flags.config);
  const { options, epochs } = trainOptions(flags, settings);
  const checkpoint = flags.checkpoint ?? `${flags.out}.ckpt`;

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
    if (formatOf(flags.data, readerOptions(flags, settings)) !== 'jsonl' && flags.dataSizedTables !== false) {
      const sized = await sizeTablesFromData(flags.data, model, readerOptions(flags, settings));
      model = sized.config;
      if (sized.notes.length > 0) io.err(`tables sized from the data (--no-data-sized-tables keeps the defaults): ${sized.notes.join('; ')}`);
    }
    trainer = Trainer.create(model, options);
  }

  const dataOptions: ReadExamplesOptions = { ...readerOptions(flags, settings), config: trainer.config };
  let trainData: AsyncIterable<TrainingExample>;
  let validData: (() => AsyncIterable<TrainingExample>) | undefined;
  let validSource: ExampleSource | undefined;
  let source: ExampleSource;
  // The baselines of a log, counted from its training period (none for JSON Lines or a separate --valid).
  let stats: SequenceStats | undefined;
  let baselineReports: Record<string, EvalReport> | undefined;
  let testData: (() => AsyncIterable<TrainingExample>) | undefined;
  if (flags.valid) {
    source = readExamples(flags.data, dataOptions);
    trainData = source.examples;
    validSource = readExamples(flags.valid, dataOptions);
    validData = () => validSource!.examples;
  } else if (formatOf(flags.data, dataOptions) !== 'jsonl' && flags.split === 'leave-one-out') {
    // Leave-one-out: each user's second-last behaviour validates, the last one tests (the next-item table).
    source = readExamples(flags.data, { ...dataOptions, leaveOneOut: 'train' });
    trainData = source.examples;
    validData = () => readExamples(flags.data, { ...dataOptions, leaveOneOut: 'valid' }).examples;
    testData = () => readExamples(flags.data, { ...dataOptions, leaveOneOut: 'test' }).examples;
    stats = await SequenceStats.from(readTimelines(flags.data, dataOptions), trainer.config, { holdLast: 2 });
    io.err('validation: leave-one-out (the second-last behaviour of each user with 3 or more validates, the last tests)');
  } else if (formatOf(flags.data, dataOptions) !== 'jsonl' && flags.split === 'user') {
    // By user: a tenth of the users (by a hash of the id) validate; their rows feed no training negative.
    source = readExamples(flags.data, { ...dataOptions, validUsers: VALID_USERS });
    const split = splitByUser(source.examples, VALID_USERS);
    trainData = split.train;
    validData = () => split.validation;
    stats = await SequenceStats.from(readTimelines(flags.data, dataOptions), trainer.config, { validUsers: VALID_USERS });
    io.err(`validation: the users whose id hashes into the held-out ${VALID_USERS * 100}%`);
  } else if (formatOf(flags.data, dataOptions) !== 'jsonl') {
    // A behaviour log without a validation file: hold out the last day, as SPEC §5 splits by time; negatives
    // and labels of training cuts come from before the split only (trainBefore).
    const validFrom = flags.validFrom ?? (await defaultValidFrom(flags.data, dataOptions));
    source = readExamples(flags.data, { ...dataOptions, trainBefore: validFrom });
    stats = await SequenceStats.from(readTimelines(flags.data, dataOptions), trainer.config, { before: validFrom });
    const split = splitByTime(source.examples, validFrom);
    trainData = split.train;
    validData = () => split.validation;
    io.err(`validation: examples cut at or after ${new Date(validFrom * 1000).toISOString()} (--valid-from ${validFrom})`);
  } else {
    source = readExamples(flags.data, dataOptions);
    trainData = source.examples;
  }
  // The first pass shows what the reader made of the file; a file that gives nothing is refused before training.
  let firstPass = true;
  const counted = trainData;
  trainData = {
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
        if (n === 0 && all > 0) {
          const where = flags.split === 'user' ? 'belong to held-out users (--split user)' : flags.split === 'leave-one-out' ? 'are held out (--split leave-one-out)' : 'are cut at or after the validation split (--valid-from)';
          throw new DupnError('E_INPUT', `${flags.data}: no training examples: all ${all} examples ${where}`, { path: '--split' });
        }
        if (n === 0) refuseEmpty(flags.data, source.report());
      }
    },
  };

  const progress = progressSink(io.stream, flags.progress === false);
  const reports = await fit(trainer, {
    data: () => trainData,
    epochs,
    start,
    checkpoint,
    checkpointEvery: flags.checkpointEvery ?? 0,
    maxSteps: flags.maxSteps,
    onStep: (p) => progress.update(p),
    validate: validData
      ? async (model) => evaluate(modelScorer(model), validData!(), trainer.config)
      : undefined,
    onEpoch: async (r) => {
      progress.pause();
      io.out(`epoch ${r.epoch + 1}/${epochs}: ${r.steps} steps, ${r.examples} examples, ${r.seconds.toFixed(1)} s, train loss ${r.trainLoss.toFixed(4)}`);
      if (r.validation) {
        if (stats && validData && baselineReports === undefined) {
          baselineReports = {};
          for (const name of BASELINES) baselineReports[name] = await evaluate(stats.scorer(name), validData(), candidateTasks(trainer.config));
        }
        io.out(formatReport(r.validation, baselineReports ?? {}));
      }
      await trainer.save(flags.out);
    },
  });
  progress.stop();
  if (firstPass) for (const line of formatDataReport(`${flags.data} (first pass, not read to the end)`, source.report())) io.err(line);
  if (validSource) for (const line of formatDataReport(flags.valid!, validSource.report())) io.err(line);
  await trainer.save(flags.out);
  io.out(`saved ${flags.out} (${trainer.steps} steps${reports.length === 0 ? '; nothing left to train' : ''})`);
  if (stats && validData && flags.nextItem !== false && [...stats.byTask.values()].some((e) => e.fields.join() === 'item')) {
    const model = trainer.toModel();
    try {
      if (testData) io.out('test (the last behaviour of each user):');
      io.out(formatNextItem(await evaluateNextItem((testData ?? validData)(), stats, model)));
    } finally {
      model.dispose();
    }
  }
  trainer.dispose();
}
