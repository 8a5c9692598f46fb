/**
 * What every data reader shares: numbered lines streamed from a file in bounded batches, and the log of
 * malformed lines (counted, the first ones kept, fatal in strict mode). Memory is bounded by one read chunk
 * plus the longest line, never by the file size.
 */
import * as fs from 'node:fs';
import { Readable, pipeline } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip } from 'node:zlib';
import { DupnError } from '../errors';
import { MalformedRow } from './training-example';

/** Bytes per read; a batch holds the lines completed by one chunk. */
const CHUNK_BYTES = 256 << 10;

/** Longest accepted line (a file with no line breaks must not grow a string without bound). */
export const MAX_LINE_CHARS = 64 << 20;

/** Lines completed by one read: `lines[k]` is line `first + k` (1-based); `null` marks an over-long line. */
export interface LineBatch {
  first: number;
  lines: (string | null)[];
}

/**
 * Streams the lines of `path` (UTF-8; a leading BOM and the `\r` of CRLF are dropped; `.gz` files are
 * gunzipped). Each call opens the file anew. Read failures reject with `DupnError('E_IO')` naming the file.
 */
export async function* readLineBatches(path: string, maxLineChars = MAX_LINE_CHARS): AsyncGenerator<LineBatch> {
  const file = fs.createReadStream(path, { highWaterMark: CHUNK_BYTES });
  let source: Readable = file;
  if (path.endsWith('.gz')) {
    // pipeline() carries a read error of the file into the gunzip stream, where the loop below sees it.
    const gunzip = createGunzip();
    pipeline(file, gunzip, () => undefined);
    source = gunzip;
  }
  const decoder = new StringDecoder('utf8');
  let rest = '';
  let overlong = false;
  let next = 1;
  let atStart = true;
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      let text = decoder.write(chunk);
      if (atStart && text.length > 0) {
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
        atStart = false;
      }
      const parts = text.split('\n');
      if (parts.length === 1) {
        // No line break in this chunk: keep growing the current line, unless it is already too long.
        if (!overlong) rest += parts[0];
        if (rest.length > maxLineChars) {
          overlong = true;
          rest = '';
        }
        continue;
      }
      const lines: (string | null)[] = new Array(parts.length - 1);
      lines[0] = overlong || rest.length + parts[0].length > maxLineChars ? null : trimCr(rest + parts[0]);
      for (let k = 1; k < parts.length - 1; ++k) lines[k] = parts[k].length > maxLineChars ? null : trimCr(parts[k]);
      rest = parts[parts.length - 1];
      overlong = rest.length > maxLineChars;
      if (overlong) rest = '';
      const batch: LineBatch = { first: next, lines };
      next += lines.length;
      yield batch;
    }
    rest += decoder.end();
  } catch (err) {
    if (err instanceof DupnError) throw err;
    throw new DupnError('E_IO', `cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`, { path, cause: err });
  } finally {
    file.destroy();
    source.destroy();
  }
  // A last line without a line break still counts.
  if (overlong || rest.length > 0) yield { first: next, lines: [overlong ? null : trimCr(rest)] };
}

function trimCr(s: string): string {
  return s.length > 0 && s.charCodeAt(s.length - 1) === 13 ? s.slice(0, -1) : s;
}

/** How many malformed lines a report keeps by default (all of them are counted). */
export const KEEP_MALFORMED = 100;

/**
 * Malformed lines of one read of one file: every one is counted, the first `keep` are kept with their line
 * number and problem, and in strict mode the first one throws `DupnError('E_INPUT', 'file:line: problem')`.
 */
export class MalformedLog {
  count = 0;
  readonly first: MalformedRow[] = [];

  constructor(
    readonly file: string,
    readonly strict = false,
    readonly keep = KEEP_MALFORMED,
  ) {}

  /** Records line `line` as malformed (throws in strict mode). */
  add(line: number, problem: string): void {
    if (this.strict) {
      const where = `${this.file}:${line}`;
      throw new DupnError('E_INPUT', `${where}: ${problem}`, { path: where });
    }
    this.count++;
    if (this.first.length < this.keep) this.first.push({ line, problem });
  }
}
