/**
 * Rows → per-user timelines. Logs are grouped by user (one contiguous block each), so only the current
 * user's rows are held: memory is bounded by the largest user, not by the file. Rows within a block may be
 * in any time order; a block is sorted stably by time (rows at the same time keep their file order).
 *
 * A user id that comes back after another user starts a new block (a separate timeline, counted in
 * `reappeared`); ids are remembered for the last `recentUsers` users only, so a reappearance further back is
 * not counted (it is still a separate timeline). A block longer than `maxUserRows` is cut there (counted in
 * `splitBlocks`), so that one runaway user cannot exhaust memory.
 */
import { LogRow } from './csv-log';

/** One block of one user's rows, sorted by time. */
export interface UserTimeline {
  userId: string;
  /** Oldest first (stable by file order at equal times). */
  rows: LogRow[];
  /** Line of the block's first row in the file: identifies the block (seeds are derived from it). */
  firstLine: number;
}

/** Options of {@link groupTimelines}. */
export interface TimelineOptions {
  /** Most rows held for one block (default 100,000). */
  maxUserRows?: number;
  /** How many finished user ids are remembered to detect reappearances (default 65,536). */
  recentUsers?: number;
}

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
    if (!isSorted(rows)) rows.sort((a, b) => a.time - b.time); // Array.prototype.sort is stable
    stats.users++;
    return { userId: rows[0].userId, rows, firstLine: rows[0].line };
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

function isSorted(rows: LogRow[]): boolean {
  for (let i = 1; i < rows.length; ++i) if (rows[i].time < rows[i - 1].time) return false;
  return true;
}
