/**
 * Training data in one call: {@link readExamples} picks the reader by format (Taobao UserBehavior CSV, a
 * column-mapped CSV/TSV, or JSON Lines of labelled examples), streams the file, cuts and labels examples,
 * and reports what it read. Every iteration of the returned `examples` is a fresh, identical pass over the
 * file (same seed, same file → same sequence), so a trainer can re-read it each epoch and skip the first k
 * examples on resume.
 */
import { promises as fsp } from 'node:fs';
import { DupnConfig, ResolvedConfig, resolveConfig } from '../network/config';
import { DupnError } from '../errors';
import { LogReadOptions, LogRow, LogStats, checkSequenceOptions, parseColumns, readLogBatches } from './csv-log';
import { MalformedRow, TrainingExample } from './training-example';
import { ExampleBuilder, ExampleOptions, ExampleStats } from './example-builder';
import { JsonlStats, readJsonlBatches } from './jsonl';
import { KEEP_MALFORMED, MalformedLog } from './lines';
import { TimeHistogram, ValidFromOptions } from './split';
import { GROUPINGS, Grouping, MAX_MEMORY_ROWS, TimelineOptions, TimelineStats, UserTimeline, groupTimelines, groupTimelinesInMemory, timelineStats } from './timeline';
import { groupTimelinesOnDisk } from './duckdb';

/** Input layouts. */
export type DataFormat = 'taobao' | 'csv' | 'jsonl' | 'sequences';

/** Options of {@link readExamples}: reader, timeline and example options together. */
export interface ReadExamplesOptions extends Omit<LogReadOptions, 'format'>, ExampleOptions, TimelineOptions {
  /** Default: `jsonl` for `.jsonl`/`.ndjson` files (also gzipped), `csv` when `columns` is given, else `taobao`. */
  format?: DataFormat;
  /** The model config whose tasks decide the labels (default: the paper config). For JSON Lines, only when given, labels are checked against it. */
  config?: DupnConfig | ResolvedConfig;
  /** How many malformed lines the report keeps (default 100; all are counted). */
  keepMalformed?: number;
}

/** What the latest pass over the file read. */
export interface DataReport {
  /** Well-formed rows (logs) or examples read (JSON Lines). */
  rows: number;
  /** User timelines (logs: blocks of one user; JSON Lines: runs of one userId). */
  users: number;
  /** Examples yielded. */
  examples: number;
  /** Malformed lines, all counted. */
  malformed: number;
  /** The first malformed lines (up to `keepMalformed`). */
  firstMalformed: MalformedRow[];
  /** Lines read (header and blank lines included). */
  lines: number;
  /** Logs: blocks whose user id had appeared before (the file is not grouped by user there). */
  reappearedUsers: number;
  /** Logs: blocks cut at `maxUserRows`. */
  splitBlocks: number;
  /** Logs: rows kept with a type outside the vocabulary. */
  unknownTypes: number;
  /** Logs: cuts dropped for having no label. */
  unlabelled: number;
  /** Logs: label lists with fewer negatives than asked. */
  shortOfNegatives: number;
  /** Logs: most rows held in memory at once. */
  maxRowsHeld: number;
  /** Logs: how rows were grouped into users (`memory` when the file is not grouped by user). */
  grouping?: Grouping;
  /** Logs: timelines that gave no cut (shorter than `minHistory` + 1, or no behaviour at a later time). */
  shortTimelines: number;
  /** Logs: eligible cuts left out by `maxExamplesPerUser`. */
  cutsNotTaken: number;
  /** Whether the pass reached the end of the file. */
  complete: boolean;
}

/** A re-creatable example stream and the report of its latest pass. */
export interface ExampleSource {
  /** The examples; the file is read anew on every iteration. */
  examples: AsyncIterable<TrainingExample>;
  /** What the latest (or the running) pass over the file found. */
  report(): DataReport;
}

/** The format {@link readExamples} uses for `path` and `options`. */
export function formatOf(path: string, options: { format?: DataFormat; columns?: unknown } = {}): DataFormat {
  if (options.format !== undefined) {
    if (!['taobao', 'csv', 'jsonl', 'sequences'].includes(options.format)) {
      throw new DupnError('E_INPUT', `format: must be "taobao", "csv", "jsonl" or "sequences", got ${JSON.stringify(options.format)}`, { path: 'format' });
    }
    return options.format;
  }
  if (/\.(jsonl|ndjson)(\.gz)?$/i.test(path)) return 'jsonl';
  return options.columns !== undefined ? 'csv' : 'taobao';
}

interface Pass {
  log: LogStats;
  timeline: TimelineStats;
  jsonl: JsonlStats;
  builder?: ExampleBuilder;
  malformed: MalformedLog;
  examples: number;
  complete: boolean;
  grouping?: Grouping;
}

function emptyReport(): DataReport {
  return {
    rows: 0, users: 0, examples: 0, malformed: 0, firstMalformed: [], lines: 0, reappearedUsers: 0,
    splitBlocks: 0, unknownTypes: 0, unlabelled: 0, shortOfNegatives: 0, maxRowsHeld: 0, shortTimelines: 0, cutsNotTaken: 0, complete: false,
  };
}

function logOptions(options: ReadExamplesOptions, format: DataFormat, config: ResolvedConfig): LogReadOptions {
  if (format === 'csv' && options.columns === undefined) throw new DupnError('E_INPUT', 'columns: format "csv" needs a column mapping', { path: 'columns' });
  if (format === 'sequences') {
    const o: LogReadOptions = { ...options, format, knownTypes: options.knownTypes ?? config.properties.types };
    checkSequenceOptions(o);
    return o;
  }
  return { ...options, format: format === 'csv' ? 'csv' : 'taobao', columns: format === 'csv' ? options.columns : undefined, knownTypes: options.knownTypes ?? config.properties.types };
}

/**
 * Examples of a data file. Options are checked at once (bad ones throw `DupnError('E_INPUT'/'E_CONFIG')`);
 * the file is read only when `examples` is iterated, and anew on every iteration. `report()` describes the
 * latest pass (so far, while it runs). In strict mode the first malformed line rejects the iteration with
 * `DupnError('E_INPUT', 'file:line: problem')`; a missing or unreadable file rejects with `E_IO`.
 */
export function readExamples(path: string, options: ReadExamplesOptions = {}): ExampleSource {
  const format = formatOf(path, options);
  const config = resolveConfig(options.config ?? {});
  const jsonlConfig = options.config === undefined ? undefined : config;
  const strict = options.strict === true;
  const keep = options.keepMalformed ?? KEEP_MALFORMED;
  const logOpts = format === 'jsonl' ? undefined : logOptions(options, format, config);
  if (logOpts?.columns !== undefined) parseColumns(logOpts.columns);
  new ExampleBuilder(config, options); // validates the example options now rather than mid-file

  let pass: Pass | undefined;
  let grouping: Grouping | undefined = options.grouping === 'auto' || options.grouping === undefined ? undefined : options.grouping;
  if (grouping !== undefined && !GROUPINGS.includes(grouping)) {
    throw new DupnError('E_INPUT', `grouping: must be "auto", "stream", "memory" or "disk", got ${JSON.stringify(options.grouping)}`, { path: 'grouping' });
  }
  async function* run(p: Pass): AsyncGenerator<TrainingExample> {
    if (logOpts === undefined) {
      for await (const batch of readJsonlBatches(path, { strict, config: jsonlConfig }, p.jsonl, p.malformed)) {
        for (const ex of batch) {
          p.examples++;
          yield ex;
        }
      }
    } else {
      const builder = p.builder as ExampleBuilder;
      grouping ??= await autoGrouping(path, logOpts, options);
      p.grouping = grouping;
      for await (const timeline of timelinesOf(path, logOpts, grouping, p.log, p.timeline, p.malformed, options)) {
        for (const ex of builder.build(timeline)) {
          p.examples++;
          yield ex;
        }
      }
    }
    p.complete = true;
  }
  const examples: AsyncIterable<TrainingExample> = {
    [Symbol.asyncIterator]() {
      // Each pass starts from nothing (fresh popularity ring included): that is what makes passes identical.
      pass = {
        log: { lines: 0, rows: 0, unknownTypes: 0 },
        timeline: timelineStats(),
        jsonl: { lines: 0, rows: 0, users: 0 },
        builder: logOpts === undefined ? undefined : new ExampleBuilder(config, options),
        malformed: new MalformedLog(path, strict, keep),
        examples: 0,
        complete: false,
      };
      return run(pass);
    },
  };
  const report = (): DataReport => {
    const r = emptyReport();
    if (pass === undefined) return r;
    const b: ExampleStats | undefined = pass.builder?.stats;
    const isLog = logOpts !== undefined;
    r.rows = isLog ? pass.log.rows : pass.jsonl.rows;
    r.users = isLog ? pass.timeline.users : pass.jsonl.users;
    r.examples = pass.examples;
    r.malformed = pass.malformed.count;
    r.firstMalformed = pass.malformed.first.slice();
    r.lines = isLog ? pass.log.lines : pass.jsonl.lines;
    r.reappearedUsers = pass.timeline.reappeared;
    r.splitBlocks = pass.timeline.splitBlocks;
    r.unknownTypes = pass.log.unknownTypes;
    r.unlabelled = b?.unlabelled ?? 0;
    r.shortOfNegatives = b?.shortOfNegatives ?? 0;
    r.maxRowsHeld = pass.timeline.maxRowsHeld;
    r.shortTimelines = b?.shortTimelines ?? 0;
    r.cutsNotTaken = b?.cutsNotTaken ?? 0;
    if (pass.grouping !== undefined) r.grouping = pass.grouping;
    r.complete = pass.complete;
    return r;
  };
  return { examples, report };
}

function timelinesOf(
  path: string,
  logOpts: LogReadOptions,
  grouping: Grouping,
  log: LogStats,
  stats: TimelineStats,
  malformed: MalformedLog,
  options: TimelineOptions,
): AsyncGenerator<UserTimeline> {
  const batches = readLogBatches(path, logOpts, log, malformed);
  if (grouping === 'disk') return groupTimelinesOnDisk(batches, stats, options);
  return grouping === 'memory' ? groupTimelinesInMemory(batches, stats, options, path) : groupTimelines(batches, stats, options);
}

/**
 * The user timelines of a behaviour log (not JSON Lines), grouped as {@link readExamples} groups them
 * (`grouping`, default `auto`); malformed lines are skipped (fatal with `strict`). The baselines count
 * their statistics from these.
 */
export async function* readTimelines(path: string, options: ReadExamplesOptions = {}): AsyncGenerator<UserTimeline> {
  const logOpts = logOptionsOf(path, options);
  const grouping = options.grouping !== undefined && options.grouping !== 'auto' ? options.grouping : await autoGrouping(path, logOpts, options);
  yield* timelinesOf(path, logOpts, grouping, { lines: 0, rows: 0, unknownTypes: 0 }, timelineStats(), new MalformedLog(path, options.strict === true, 0), options);
}

/**
 * The rows of a behaviour log in file order, in batches, read as {@link readExamples} reads them: for a pass
 * that needs rows but not users (a time histogram, distinct ids), so nothing is grouped or held. Malformed
 * lines go to `malformed` (skipped; fatal with `strict`).
 */
export function readRows(path: string, options: ReadExamplesOptions = {}, malformed = new MalformedLog(path, options.strict === true, 0)): AsyncGenerator<LogRow[]> {
  return readLogBatches(path, logOptionsOf(path, options), { lines: 0, rows: 0, unknownTypes: 0 }, malformed);
}

function logOptionsOf(path: string, options: ReadExamplesOptions): LogReadOptions {
  const format = formatOf(path, options);
  if (format === 'jsonl') throw new DupnError('E_INPUT', `${path}: JSON Lines hold examples, not a behaviour log`, { path });
  return logOptions(options, format, resolveConfig(options.config ?? {}));
}

/** `auto` grouping: stream a file grouped by user, else group in memory up to `maxMemoryRows` rows, else on disk. */
async function autoGrouping(path: string, logOpts: LogReadOptions, options: TimelineOptions): Promise<Grouping> {
  const scan = await scanOf(path, logOpts);
  if (scan.grouped) return 'stream';
  return scan.rows <= (options.maxMemoryRows ?? MAX_MEMORY_ROWS) ? 'memory' : 'disk';
}

/**
 * Whether every user's rows form one contiguous block (one pass over the file, holding only the set of user
 * ids seen). Malformed lines are ignored here; the real pass reports them.
 */
export async function groupedByUser(path: string, options: LogReadOptions): Promise<boolean> {
  return (await scanOf(path, options)).grouped;
}

async function scanOf(path: string, options: LogReadOptions): Promise<{ grouped: boolean; rows: number }> {
  // Several readers of one run (table sizing, baselines, training) ask about the same unchanged file.
  let key: string | undefined;
  try {
    const st = await fsp.stat(path);
    key = JSON.stringify([path, st.size, st.mtimeMs, options.columns, options.delimiter, options.header, options.format]);
    const known = groupedCache.get(key);
    if (known !== undefined) return known;
  } catch {
    // the read below reports the problem
  }
  const scan = await scanGrouping(path, options);
  if (key !== undefined) groupedCache.set(key, scan);
  return scan;
}

const groupedCache = new Map<string, { grouped: boolean; rows: number }>();

// One pass: whether users form contiguous blocks, and how many rows there are (what `auto` decides by).
async function scanGrouping(path: string, options: LogReadOptions): Promise<{ grouped: boolean; rows: number }> {
  const finished = new Set<string>();
  let current: string | undefined;
  let grouped = true;
  const stats = { lines: 0, rows: 0, unknownTypes: 0 };
  for await (const batch of readLogBatches(path, { ...options, strict: false }, stats, new MalformedLog(path, false, 0))) {
    if (!grouped) continue;
    for (const row of batch) {
      if (row.userId === current) continue;
      if (finished.has(row.userId)) {
        grouped = false;
        finished.clear();
        break;
      }
      if (current !== undefined) finished.add(current);
      current = row.userId;
    }
  }
  return { grouped, rows: stats.rows };
}

/**
 * The default train/validation split point of a data file: one cheap pass over its timestamps (row times
 * of a log, example times of JSON Lines), then {@link TimeHistogram.validFrom}: the start of the last day
 * that holds at least `minDayShare` of the timestamps. Malformed lines are skipped (fatal with `strict`).
 */
export async function defaultValidFrom(path: string, options: ReadExamplesOptions & ValidFromOptions = {}): Promise<number> {
  const format = formatOf(path, options);
  const hist = new TimeHistogram(options);
  const malformed = new MalformedLog(path, options.strict === true, 5);
  if (format === 'jsonl') {
    const stats = { lines: 0, rows: 0, users: 0 };
    for await (const batch of readJsonlBatches(path, { strict: options.strict === true }, stats, malformed)) for (const ex of batch) hist.add(ex.time);
  } else {
    for await (const batch of readRows(path, options, malformed)) for (const row of batch) hist.add(row.time);
  }
  if (hist.count === 0 && malformed.count > 0) {
    const first = malformed.first.map((m) => `line ${m.line}: ${m.problem}`).join('; ');
    throw new DupnError('E_INPUT', `${path}: all ${malformed.count} data lines are malformed (check --columns, --delimiter, --header, --types), e.g. ${first}`, { path });
  }
  if (hist.count === 0) throw new DupnError('E_INPUT', `${path}: no data rows (the file is empty, or holds a header only): nothing to train on`, { path });
  return hist.validFrom();
}
