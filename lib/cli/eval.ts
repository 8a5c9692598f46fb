/**
 * `dupn eval`: the per-task validation table of a model file on a data file; with `--valid-from` on a log,
 * beside the four sequence baselines counted from the rows before it and with the next-item table;
 * `--popularity <train>` adds the label-popularity baseline counted from a training file.
 */
import { ReadExamplesOptions, formatOf, readExamples, readTimelines, splitByTime } from '../data';
import { BASELINES, SequenceStats, candidateTasks } from '../eval/baselines';
import { NextItemReport, evaluateNextItem, formatNextItem } from '../eval/next-item';
import { TrainingExample } from '../data/training-example';
import { EvalReport, evaluate, formatReport, modelScorer, popularityScorer } from '../eval/evaluate';
import { Model } from '../model/model';
import { Output } from './train';
import { formatDataReport, refuseEmpty } from './data-report';
import { ReaderFlags, readSettings, readerOptions } from './settings';

export interface EvalFlags extends ReaderFlags {
  model: string;
  data: string;
  config?: string;
  popularity?: string;
  validFrom?: number;
  threads?: number;
  json?: boolean;
}

export async function evalCommand(flags: EvalFlags, io: Output): Promise<void> {
  const settings = await readSettings(flags.config);
  const model = await Model.load(flags.model, flags.threads === undefined ? {} : { threads: flags.threads });
  const dataOptions: ReadExamplesOptions = { ...readerOptions(flags, settings), config: model.config };
  if (flags.validFrom !== undefined) dataOptions.trainBefore = flags.validFrom;
  const source = readExamples(flags.data, dataOptions);
  const part = () => (flags.validFrom === undefined ? source.examples : splitByTime(source.examples, flags.validFrom).validation);
  const report = await evaluate(modelScorer(model), part(), model.config);
  for (const line of formatDataReport(flags.data, source.report())) io.err(line);
  refuseEmpty(flags.data, source.report());
  const baselines: Record<string, EvalReport> = {};
  if (flags.popularity) {
    // The baseline counts positives over the training examples, so they are held in memory once.
    const train: TrainingExample[] = [];
    for await (const ex of readExamples(flags.popularity, dataOptions).examples) train.push(ex);
    baselines['label-popularity'] = await evaluate(popularityScorer(train), part(), model.config);
  }
  // A log split by time: the four sequence baselines counted from its rows before the split, and the
  // next-item protocols (full catalogue, sampled) beside the model.
  let nextItem: NextItemReport | undefined;
  if (flags.validFrom !== undefined && formatOf(flags.data, dataOptions) !== 'jsonl') {
    const stats = await SequenceStats.from(readTimelines(flags.data, dataOptions), model.config, { before: flags.validFrom });
    for (const name of BASELINES) baselines[name] = await evaluate(stats.scorer(name), part(), candidateTasks(model.config));
    if (stats.itemTask() !== undefined) nextItem = await evaluateNextItem(part(), stats, model);
  }
  if (flags.json) io.out(JSON.stringify({ model: report, ...baselines, ...(nextItem ? { nextItem } : {}) }, null, 2));
  else {
    io.out(formatReport(report, baselines));
    if (nextItem) io.out(formatNextItem(nextItem));
  }
  model.dispose();
}
