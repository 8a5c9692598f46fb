/**
 * `dupn eval`: the per-task validation table of a model file on a data file, optionally beside the
 * popularity baseline counted from a training file.
 */
import { ReadExamplesOptions, readExamples, splitByTime } from '../data';
import { TrainingExample } from '../data/example';
import { EvalReport, evaluate, formatReport, modelScorer, popularityScorer } from '../evaluate';
import { Model } from '../model';
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
    baselines['popularity'] = await evaluate(popularityScorer(train), part(), model.config);
  }
  if (flags.json) io.out(JSON.stringify({ model: report, ...baselines }, null, 2));
  else io.out(formatReport(report, baselines));
  model.dispose();
}
