/**
 * `dupn eval`: the per-task validation table of a model file on a data file, optionally beside the
 * popularity baseline counted from a training file.
 */
import { DataFormat, readExamples } from '../data';
import { TrainingExample } from '../data/example';
import { EvalReport, evaluate, formatReport, modelScorer, popularityScorer } from '../evaluate';
import { Model } from '../model';
import { Output } from './train';
import { readSettings } from './settings';

export interface EvalFlags {
  model: string;
  data: string;
  config?: string;
  popularity?: string;
  format?: DataFormat;
  columns?: string;
  strict?: boolean;
  threads?: number;
  json?: boolean;
}

export async function evalCommand(flags: EvalFlags, io: Output): Promise<void> {
  const settings = await readSettings(flags.config);
  const model = await Model.load(flags.model, flags.threads === undefined ? {} : { threads: flags.threads });
  const dataOptions = { ...settings.data, config: model.config } as Parameters<typeof readExamples>[1] & object;
  if (flags.format !== undefined) dataOptions.format = flags.format;
  if (flags.columns !== undefined) dataOptions.columns = flags.columns;
  if (flags.strict) dataOptions.strict = true;
  const source = readExamples(flags.data, dataOptions);
  const report = await evaluate(modelScorer(model), source.examples, model.config);
  const baselines: Record<string, EvalReport> = {};
  if (flags.popularity) {
    // The baseline counts positives over the training examples, so they are held in memory once.
    const train: TrainingExample[] = [];
    for await (const ex of readExamples(flags.popularity, dataOptions).examples) train.push(ex);
    baselines['popularity'] = await evaluate(popularityScorer(train), readExamples(flags.data, dataOptions).examples, model.config);
  }
  if (flags.json) io.out(JSON.stringify({ model: report, ...baselines }, null, 2));
  else io.out(formatReport(report, baselines));
  const r = source.report();
  if (r.malformed > 0) io.err(`${flags.data}: ${r.malformed} malformed line(s) skipped; first at line ${r.firstMalformed[0]?.line}: ${r.firstMalformed[0]?.problem}`);
  model.dispose();
}
