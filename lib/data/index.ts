/**
 * Training data, re-exported: the unit of training data (training-example.ts), {@link readExamples} and the
 * other whole-file readers (reader.ts), the log readers (csv-log.ts, lines.ts), timelines (timeline.ts),
 * examples cut and labelled from timelines (example-builder.ts), the time and user splits (split.ts) and JSON
 * Lines (jsonl.ts).
 */
export { defaultValidFrom, formatOf, groupedByUser, readExamples, readRows, readTimelines } from './reader';
export type { DataFormat, DataReport, ExampleSource, ReadExamplesOptions } from './reader';
export { GRADES } from './training-example';
export type { LabelledCandidate, MalformedRow, TrainingExample } from './training-example';
export { TAOBAO_COLUMNS, dayToTime, isoToTime, parseColumns, readLogBatches, readLogRows } from './csv-log';
export type { ColumnMapping, ColumnRef, LogReadOptions, LogRow, LogStats } from './csv-log';
export { groupTimelines, groupTimelinesInMemory, timelineStats } from './timeline';
export type { TimelineOptions, TimelineStats, UserTimeline } from './timeline';
export { ExampleBuilder, PopularityRing, fieldOf } from './example-builder';
export type { ClassOf, ExampleOptions, ExampleStats } from './example-builder';
export { TimeHistogram, isHeldOutUser, isValidation, splitByTime, splitByUser, validFromTimes } from './split';
export type { ValidFromOptions } from './split';
export { checkExample, readJsonl, readJsonlBatches, writeJsonl } from './jsonl';
export type { JsonlReadOptions, JsonlStats } from './jsonl';
export { MalformedLog } from './lines';
