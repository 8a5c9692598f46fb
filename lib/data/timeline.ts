/**
 * Rows → per-user timelines, in one of three ways:
 *
 * - `stream` ({@link groupTimelines}): the log is grouped by user (one contiguous block each), so only the
 *   current user's rows are held: memory is bounded by the largest user, not by the file.
 * - `memory` ({@link groupTimelinesInMemory}): rows of a user anywhere in the file (event logs sorted by
 *   time, users interleaved); every row is held, at most `maxMemoryRows` of them.
 * - `disk` (`groupTimelinesOnDisk` in duckdb.ts): the same timelines for an interleaved log of any size,
 *   sorted out of core by an embedded DuckDB (an optional peer dependency).
 *
 * Rows of a timeline may be in any time order; it is sorted stably by time (rows at the same time keep their
 * file order), and rows whose time is a day only ({@link LogRow.dayLevel}) are then spread one second apart
 * within their day in file order, so that a day-level log still has cuts within a day.
 *
 * A user id that comes back after another user starts a new block (a separate timeline, counted in
 * `reappeared`); ids are remembered for the last `recentUsers` users only, so a reappearance further back is
 * not counted (it is still a separate timeline). A block longer than `maxUserRows` is cut there (counted in
 * `splitBlocks`), so that one runaway user cannot exhaust memory.
 */
import { DupnError } from '../errors';
import { LogRow } from './csv-log';

/** One block of one user's rows, sorted by time. */
export interface UserTimeline {
  userId: string;
  /** Oldest first (stable by file order at equal times). */
  rows: LogRow[];
  /** Line of the block's first row in the file: where the block starts (for reports; seeds use the user and its first time). */
  firstLine: number;
}

/** Options of {@link groupTimelines}. */
export interface TimelineOptions {
  /** Most rows held for one block (default 100,000). */
  maxUserRows?: number;
  /** How many finished user ids are remembered to detect reappearances (default 65,536). */
  recentUsers?: number;
  /**
   * `auto` (default): `stream` when the file is grouped by user, else `memory` up to `maxMemoryRows` rows and
   * `disk` past them (readExamples checks with one pass over the user column first); or one of them forced.
   */
  grouping?: Grouping | 'auto';
  /** Most rows `memory` grouping holds (default 20,000,000); past them `auto` groups on disk. */
  maxMemoryRows?: number;
  /** `disk` grouping: DuckDB's memory limit (default "1GB"; DuckDB's syntax, e.g. "512MB"). */
  diskMemoryLimit?: string;
  /** `disk` grouping: where its temporary folder goes (default the OS's temporary folder). */
  tempDir?: string;
}

/** The default of {@link TimelineOptions.maxMemoryRows}. */
export const MAX_MEMORY_ROWS = 20_000_000;

/** How rows become user timelines (see the module comment). */
export type Grouping = 'stream' | 'memory' | 'disk';
export const GROUPINGS: readonly Grouping[] = ['stream', 'memory', 'disk'];

/** Counters of one grouping pass. */
export interface TimelineStats {
  /** Timelines yielded (user blocks). */
  users: number;
  /** Blocks whose user id had already been seen among the recent users. */
  reappeared: number;
  /** Blocks cut because they reached `maxUserRows`. */
  splitBlocks: number;
  /** Most rows held at once (current block plus the batch being read): the memory bound in rows. */
  maxRowsHeld: number;
}

/** Fresh zeroed counters. */
export function timelineStats(): TimelineStats {
  return { users: 0, reappeared: 0, splitBlocks: 0, maxRowsHeld: 0 };
}

/**
 * Groups consecutive rows of the same user into sorted timelines. `batches` is the reader's output (arrays
 * of rows in file order).
 */
export async function* groupTimelines(
  batches: AsyncIterable<LogRow[]>,
  stats: TimelineStats,
  options: TimelineOptions = {},
): AsyncGenerator<UserTimeline> {
  const maxUserRows = options.maxUserRows ?? 100_000;
  const recentCap = options.recentUsers ?? 65_536;
  // Insertion-ordered set: deleting the first key evicts the oldest remembered user.
  const recent = new Set<string>();
  let current: LogRow[] = [];
  let userId: string | undefined;

  const finish = (): UserTimeline => {
    const rows = current;
    current = [];
    stats.users++;
    return timelineOf(rows);
  };
  const remember = (id: string): void => {
    recent.delete(id);
    recent.add(id);
    if (recent.size > recentCap) recent.delete(recent.values().next().value as string);
  };

  for await (const batch of batches) {
    for (const row of batch) {
      if (row.userId !== userId || current.length >= maxUserRows) {
        if (current.length > 0) {
          if (row.userId === userId) stats.splitBlocks++;
          else remember(userId as string);
          yield finish();
        }
        if (row.userId !== userId && recent.has(row.userId)) stats.reappeared++;
        userId = row.userId;
      }
      current.push(row);
      if (current.length + batch.length > stats.maxRowsHeld) stats.maxRowsHeld = current.length + batch.length;
    }
  }
  if (current.length > 0) yield finish();
}

/**
 * Every row of each user wherever it is in the file, one timeline per user in the order users first
 * appear. Throws `DupnError('E_UNSUPPORTED')` past `maxMemoryRows` rows.
 */
export async function* groupTimelinesInMemory(
  batches: AsyncIterable<LogRow[]>,
  stats: TimelineStats,
  options: TimelineOptions = {},
  path = 'the log',
): AsyncGenerator<UserTimeline> {
  const maxUserRows = options.maxUserRows ?? 100_000;
  const maxRows = options.maxMemoryRows ?? MAX_MEMORY_ROWS;
  const users = new Map<string, LogRow[]>();
  let held = 0;
  for await (const batch of batches) {
    for (const row of batch) {
      let rows = users.get(row.userId);
      if (rows === undefined) users.set(row.userId, (rows = []));
      rows.push(row);
    }
    held += batch.length;
    if (held > maxRows) {
      throw new DupnError(
        'E_UNSUPPORTED',
        `${path}: the log is not grouped by user (users interleave) and has more than ${maxRows} rows, the most grouping in memory holds ` +
          '(maxMemoryRows): use --grouping disk (grouping: "disk", out of core with the optional @duckdb/node-api) or group it by user first, ' +
          'e.g. `sort -s -t, -k1,1 log.csv > by-user.csv` (a stable sort keeps each user\'s order)',
      );
    }
  }
  stats.maxRowsHeld = Math.max(stats.maxRowsHeld, held);
  for (const rows of users.values()) yield* userTimelines(rows, maxUserRows, stats);
}

/**
 * All of one user's rows (grouped in memory or on disk) as timelines: one, or blocks of `maxUserRows`
 * when longer (counted in `splitBlocks`).
 */
export function* userTimelines(rows: LogRow[], maxUserRows: number, stats: TimelineStats): Generator<UserTimeline> {
  for (let i = 0; i < rows.length; i += maxUserRows) {
    if (i > 0) stats.splitBlocks++;
    stats.users++;
    yield timelineOf(i === 0 && rows.length <= maxUserRows ? rows : rows.slice(i, i + maxUserRows));
  }
}

/** A user's rows as a timeline: sorted stably by time, day-level ties spread in file order. */
function timelineOf(rows: LogRow[]): UserTimeline {
  if (!isSorted(rows)) rows.sort((a, b) => a.time - b.time); // Array.prototype.sort is stable
  for (let i = 1; i < rows.length; ++i) {
    // Same day (noon + the rows before it), so one second later; the next day's noon is 86,400 s on.
    if (rows[i].dayLevel && rows[i - 1].dayLevel && rows[i].time <= rows[i - 1].time) rows[i].time = rows[i - 1].time + 1;
  }
  return { userId: rows[0].userId, rows, firstLine: rows[0].line };
}

function isSorted(rows: LogRow[]): boolean {
  for (let i = 1; i < rows.length; ++i) if (rows[i].time < rows[i - 1].time) return false;
  return true;
}
