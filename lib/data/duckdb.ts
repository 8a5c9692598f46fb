/**
 * What dupn asks of an embedded DuckDB (`@duckdb/node-api`, an optional peer dependency loaded only here):
 *
 * - Grouping a log whose users interleave when it is too big to group in memory: the parsed rows go into a
 *   DuckDB table (with their file position), and one `ORDER BY` — which DuckDB runs out of core, spilling to
 *   a temporary folder past its memory limit — gives them back user by user, in the order users first appear
 *   and each user's rows in file order: the same timelines as `groupTimelinesInMemory`.
 * - Reading Parquet: every column as text, in file order, so the log readers parse and validate a Parquet
 *   file exactly as they do a CSV file.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DupnError } from '../errors';
import { LogRow } from './csv-log';
import { TimelineOptions, TimelineStats, UserTimeline, userTimelines } from './timeline';

interface DuckChunk {
  rowCount: number;
  getColumns(): unknown[][];
}
interface DuckResult {
  fetchChunk(): Promise<DuckChunk | null>;
  columnNames(): string[];
}
interface DuckAppender {
  appendVarchar(v: string): void;
  appendBigInt(v: bigint): void;
  endRow(): void;
  flushSync(): void;
  closeSync(): void;
}
interface DuckConnection {
  run(sql: string): Promise<unknown>;
  stream(sql: string): Promise<DuckResult>;
  createAppender(table: string): Promise<DuckAppender>;
  closeSync?(): void;
}
interface DuckInstance {
  connect(): Promise<DuckConnection>;
  closeSync?(): void;
}
interface DuckModule {
  DuckDBInstance: { create(path: string, options: Record<string, string>): Promise<DuckInstance> };
}

/** The DuckDB binding, or E_UNSUPPORTED saying how to get it. */
function duckdb(why: string): DuckModule {
  try {
    return require('@duckdb/node-api') as DuckModule;
  } catch (e) {
    throw new DupnError('E_UNSUPPORTED', `${why} needs the optional peer dependency @duckdb/node-api: npm install @duckdb/node-api@^1.5.6-r.1`, { cause: e });
  }
}

/** A DuckDB SQL string literal. */
function literal(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/**
 * A Parquet file as numbered text rows: line 1 its column names, then one line per row (every value cast to
 * text, NULL as ""), in file order. A file DuckDB cannot read rejects with E_IO naming it.
 */
export async function* duckdbTextRows(path: string): AsyncGenerator<{ first: number; fields: string[][] }> {
  const { DuckDBInstance } = duckdb(`reading Parquet (${path})`);
  const instance = await DuckDBInstance.create(':memory:', { threads: '2' });
  const connection = await instance.connect();
  try {
    let result: DuckResult;
    try {
      result = await connection.stream(`SELECT COLUMNS(*)::VARCHAR FROM read_parquet(${literal(path)})`);
    } catch (e) {
      throw new DupnError('E_IO', `cannot read ${path} as Parquet: ${(e as Error).message}`, { cause: e });
    }
    yield { first: 1, fields: [result.columnNames()] };
    let line = 2;
    for (;;) {
      const chunk = await result.fetchChunk();
      if (chunk === null || chunk.rowCount === 0) break;
      const cols = chunk.getColumns();
      const fields: string[][] = [];
      for (let i = 0; i < chunk.rowCount; i++) fields.push(cols.map((c) => (c[i] === null ? '' : String(c[i]))));
      yield { first: line, fields };
      line += chunk.rowCount;
    }
  } finally {
    connection.closeSync?.();
    instance.closeSync?.();
  }
}

/**
 * Every row of each user, one timeline per user in the order users first appear, grouped by DuckDB with at
 * most `diskMemoryLimit` of memory (default 1 GB) and a temporary folder under `tempDir` (default the OS's),
 * removed afterwards.
 */
export async function* groupTimelinesOnDisk(
  batches: AsyncIterable<LogRow[]>,
  stats: TimelineStats,
  options: TimelineOptions = {},
): AsyncGenerator<UserTimeline> {
  const { DuckDBInstance } = duckdb('grouping a log on disk (an interleaved log past the in-memory limit)');
  const maxUserRows = options.maxUserRows ?? 100_000;
  const dir = fs.mkdtempSync(path.join(options.tempDir ?? os.tmpdir(), 'dupn-group-'));
  let instance: DuckInstance | undefined;
  let connection: DuckConnection | undefined;
  try {
    instance = await DuckDBInstance.create(':memory:', {
      memory_limit: options.diskMemoryLimit ?? '1GB',
      temp_directory: dir,
      threads: String(Math.max(1, Math.min(4, os.availableParallelism()))),
    });
    connection = await instance.connect();
    await connection.run('CREATE TABLE rows (u VARCHAR, s BIGINT, r VARCHAR)');
    const appender = await connection.createAppender('rows');
    let seq = 0n;
    for await (const batch of batches) {
      for (const row of batch) {
        appender.appendVarchar(row.userId);
        appender.appendBigInt(seq++);
        appender.appendVarchar(JSON.stringify(row));
        appender.endRow();
      }
      if (batch.length > stats.maxRowsHeld) stats.maxRowsHeld = batch.length;
    }
    appender.flushSync();
    appender.closeSync();
    const result = await connection.stream('SELECT u, r FROM rows ORDER BY min(s) OVER (PARTITION BY u), s');
    let user: string | undefined;
    let rows: LogRow[] = [];
    for (;;) {
      const chunk = await result.fetchChunk();
      if (chunk === null || chunk.rowCount === 0) break;
      const [users, payloads] = chunk.getColumns();
      for (let i = 0; i < chunk.rowCount; i++) {
        const u = users[i] as string;
        if (u !== user && rows.length > 0) {
          yield* userTimelines(rows, maxUserRows, stats);
          rows = [];
        }
        user = u;
        rows.push(JSON.parse(payloads[i] as string) as LogRow);
      }
    }
    if (rows.length > 0) yield* userTimelines(rows, maxUserRows, stats);
  } finally {
    connection?.closeSync?.();
    instance?.closeSync?.();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
