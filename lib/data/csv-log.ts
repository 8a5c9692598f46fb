/**
 * Behaviour logs as delimited text (docs/model.md, Training data): the Taobao UserBehavior layout and any CSV/TSV described by a
 * column mapping. Rows stream in bounded batches; malformed rows are counted and reported with their line
 * numbers (never used), and are fatal with `strict`.
 *
 * Column mapping (`columns`): `role=column` pairs, comma-separated (`user=0,item=1,type=3,time=4`) or as
 * an object. A column is a 0-based index or a header name (`user=user_id,item=item_id,day=time_stamp`).
 * Roles: `user`, `item` (required), `type`, at most one of `time` / `day`, `month` (with `day`), `offset`
 * (with `time` or `day`), `category`, `shop`, `brand`, `price`, `scene`, and any other name (an extra item
 * field, e.g. `seller=3`, kept in {@link LogRow.extra}). A session log without user ids maps `user` to the
 * session id: the session is the user.
 *
 * - `time`: Unix seconds, fractions allowed (`timeUnit: 'ms'` for milliseconds), or an ISO 8601 date or
 *   date-time (`2017-11-25`, `2017-11-25T08:30:00Z`, `2017-11-25 08:30:00`, UTC unless a zone is given).
 * - `day`: a calendar day, placed at 12:00 UTC so that a day never moves to its neighbour in any time zone:
 *   `MMDD` (3–4 digits, e.g. Tmall's `1111` = 11 Nov) in the year `year` (default 2015, the year of the Tmall
 *   logs), `YYYYMMDD`, or `YYYY-MM-DD`. With a `month` column, `day` is the day of that month (1–31) in
 *   `year`. Rows of one user on one day keep their file order ({@link LogRow.dayLevel}).
 * - `offset`: milliseconds added to the `time` or `day` (a session's date plus the time since its start,
 *   as in Diginetica's `eventdate` + `timeframe`); the row is then at 00:00 UTC of the day plus the offset.
 * - Neither `time` nor `day`: the file order is the time, line n of the file at n minutes ({@link FILE_ORDER_STEP}).
 * - `type`: mapped through `types` (e.g. Tmall's `{"0":"pv","1":"cart","2":"buy","3":"fav"}`); without a
 *   `type` column every row is `defaultType` (`pv`). A type outside `knownTypes` is malformed in strict mode;
 *   otherwise it is kept (the model gives it the unknown-type id) and counted in `unknownTypes`.
 * - Empty `category`/`shop`/`brand`/`scene`/`price`/extra values are missing; an empty `user` or `item` is
 *   malformed, as is a negative or non-numeric `price` and a row with the wrong number of columns.
 *
 * The `sequences` layout (`format: 'sequences'`) has no columns: each line is a user id followed by that user's
 * items, oldest first. Its rows are `pv`s with the file order as the time (the n-th item of the file at n minutes).
 */
import * as nodePath from 'node:path';
import { DupnError, describe } from '../errors';
import { MAX_LINE_CHARS, MalformedLog, readLineBatches } from './lines';
import { duckdbTextRows } from './duckdb';

/** One behaviour row of a log. */
export interface LogRow {
  userId: string;
  item: string;
  category?: string;
  shop?: string;
  brand?: string;
  /** Behaviour type after the `types` mapping. */
  type: string;
  /** Unix seconds. */
  time: number;
  price?: number;
  scene?: string;
  /** Further mapped columns (extra item fields) by name. */
  extra?: Record<string, string>;
  /** 1-based line number in the file. */
  line: number;
  /** The time is a day only (a `day` column without `offset`): rows of one day are ordered by the file. */
  dayLevel?: boolean;
}

/** Column of one role: a 0-based index or a header name. */
export type ColumnRef = number | string;

/** Roles → columns, as parsed from a `columns` spec. */
export type ColumnMapping = Record<string, ColumnRef>;

/** Options of the delimited-log reader. */
export interface LogReadOptions {
  /**
   * `taobao`: the UserBehavior preset (`user_id,item_id,category_id,behavior_type,timestamp`, no header). `csv`: needs
   * `columns`. `sequences`: one user per line, the user id and then the items in order (`7 31 2 977`, split on white
   * space unless `delimiter` is given), as the sequential-recommendation benchmarks ship their logs; the file order
   * is the time.
   */
  format?: 'taobao' | 'csv' | 'sequences';
  /** Column mapping (see the module comment); implies `format: 'csv'`. */
  columns?: string | ColumnMapping;
  /** Field delimiter; default tab for `.tsv`/`.tab` files (also gzipped), else comma. */
  delimiter?: string;
  /** Whether the first line is a header; default: when a column is named rather than numbered. */
  header?: boolean;
  /** Exact number of columns each row must have; default: the header's, 5 for taobao, else "enough". */
  columnCount?: number;
  /** Year of `MMDD` day values (default 2015). */
  year?: number;
  /** Raw type value → type name, e.g. `{"0":"pv","1":"cart","2":"buy","3":"fav"}`; unmapped values stay as they are. */
  types?: Record<string, string>;
  /** Type vocabulary (default `pv, fav, cart, buy`; readExamples passes the config's). */
  knownTypes?: readonly string[];
  /** Type of every row when there is no `type` column (default `pv`). */
  defaultType?: string;
  /** Unit of a numeric `time` column (default seconds). */
  timeUnit?: 's' | 'ms';
  /** The first malformed row throws `DupnError('E_INPUT', 'file:line: problem')`. */
  strict?: boolean;
}

/** Counters of one read of a log. */
export interface LogStats {
  /** Lines read, header and blank lines included. */
  lines: number;
  /** Well-formed rows yielded. */
  rows: number;
  /** Rows kept whose type is outside `knownTypes` (non-strict mode only). */
  unknownTypes: number;
}

/** The Taobao UserBehavior layout. */
export const TAOBAO_COLUMNS: ColumnMapping = { user: 0, item: 1, category: 2, type: 3, time: 4 };

/**
 * Seconds between consecutive rows of a log whose file order is its time: a minute, so that the model's
 * time-gap buckets (log2 of the minutes since a behaviour, docs/model.md, Inputs) say how many steps back a behaviour is.
 */
export const FILE_ORDER_STEP = 60;

const FIXED_ROLES = ['user', 'item', 'category', 'shop', 'brand', 'type', 'time', 'day', 'month', 'offset', 'price', 'scene'];
const ROLE_RE = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;
/** A decimal number as a log's numeric fields write it. */
export const NUMBER_RE = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/**
 * The `role=column` pairs of a column mapping spec (string or object), each role name and column checked, no
 * role required: what {@link parseColumns} and the item catalogue's reader share. Throws `E_INPUT` naming the pair.
 */
export function parseColumnPairs(spec: string | ColumnMapping): ColumnMapping {
  const out: ColumnMapping = {};
  const pairs: [string, unknown][] =
    typeof spec === 'string'
      ? spec
          .split(',')
          .map((p) => p.trim())
          .filter((p) => p.length > 0)
          .map((p): [string, unknown] => {
            const eq = p.indexOf('=');
            if (eq <= 0) throw new DupnError('E_INPUT', `columns: "${p}" is not role=column`, { path: 'columns' });
            const col = p.slice(eq + 1).trim();
            return [p.slice(0, eq).trim(), /^\d+$/.test(col) ? Number(col) : col];
          })
      : Object.entries(spec);
  for (const [role, col] of pairs) {
    const path = `columns.${role}`;
    if (!ROLE_RE.test(role)) throw new DupnError('E_INPUT', `${path}: not a valid role name`, { path });
    if (role in out) throw new DupnError('E_INPUT', `${path}: given twice`, { path });
    if (typeof col === 'number') {
      if (!Number.isInteger(col) || col < 0) throw new DupnError('E_INPUT', `${path}: column index must be an integer >= 0, got ${col}`, { path });
    } else if (typeof col !== 'string' || col.length === 0) {
      throw new DupnError('E_INPUT', `${path}: must be a column index or a header name, got ${describe(col)}`, { path });
    }
    out[role] = col;
  }
  return out;
}

/**
 * Parses a column mapping spec (`user=0,item=item_id,...`). Throws `DupnError('E_INPUT')` naming the bad pair.
 */
export function parseColumns(spec: string | ColumnMapping): ColumnMapping {
  const out = parseColumnPairs(spec);
  if (out['user'] === undefined) throw new DupnError('E_INPUT', 'columns.user: missing (the user id column)', { path: 'columns.user' });
  if (out['item'] === undefined) throw new DupnError('E_INPUT', 'columns.item: missing (the item id column)', { path: 'columns.item' });
  if (out['time'] !== undefined && out['day'] !== undefined) {
    throw new DupnError('E_INPUT', 'columns: give at most one of time (Unix seconds or an ISO date-time) and day (a date)', { path: 'columns.time' });
  }
  if (out['month'] !== undefined && out['day'] === undefined) {
    throw new DupnError('E_INPUT', 'columns.month: needs a day column (the day of the month)', { path: 'columns.month' });
  }
  if (out['offset'] !== undefined && out['time'] === undefined && out['day'] === undefined) {
    throw new DupnError('E_INPUT', 'columns.offset: needs a time or day column to add the milliseconds to', { path: 'columns.offset' });
  }
  return out;
}

/** Default delimiter of a file: tab for `.tsv`/`.tab` (optionally `.gz`), else comma. */
export function delimiterFor(path: string): string {
  const ext = nodePath.extname(path.replace(/\.gz$/i, '')).toLowerCase();
  return ext === '.tsv' || ext === '.tab' ? '\t' : ',';
}

/**
 * Unix seconds at 12:00 UTC of a day value (`MMDD` in `year`, `YYYYMMDD`, `YYYY-MM-DD`), or undefined when
 * it is not a valid date.
 */
export function dayToTime(value: string, year = 2015): number | undefined {
  let y: number;
  let m: number;
  let d: number;
  let match: RegExpMatchArray | null;
  if ((match = /^(\d{1,2})(\d{2})$/.exec(value)) !== null) {
    y = year;
    m = Number(match[1]);
    d = Number(match[2]);
  } else if ((match = /^(\d{4})-?(\d{2})-?(\d{2})$/.exec(value)) !== null) {
    y = Number(match[1]);
    m = Number(match[2]);
    d = Number(match[3]);
  } else return undefined;
  const ms = Date.UTC(y, m - 1, d, 12);
  const date = new Date(ms);
  // Date.UTC rolls 31 Feb over into March; a round trip catches it.
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== m - 1 || date.getUTCDate() !== d) return undefined;
  return ms / 1000;
}

const ISO_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$/i;

/**
 * Unix seconds of an ISO 8601 date or date-time (`2017-11-25`, `2017-11-25T08:30:00Z`, `2017-11-25
 * 08:30:00.250+08:00`; UTC without a zone), or undefined when it is not one. A date alone is 00:00 UTC.
 */
export function isoToTime(value: string): number | undefined {
  const m = ISO_RE.exec(value);
  if (m === null) return undefined;
  const [y, mo, d, h, mi, sec] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] ?? 0));
  if (h > 23 || mi > 59 || sec > 60) return undefined;
  let ms = Date.UTC(y, mo - 1, d, h, mi, sec) + (m[7] ? Number(m[7]) * 1000 : 0);
  const check = new Date(Date.UTC(y, mo - 1, d));
  if (check.getUTCFullYear() !== y || check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d) return undefined;
  const zone = m[8];
  if (zone !== undefined && zone.toUpperCase() !== 'Z') {
    const z = /^([+-])(\d{2}):?(\d{2})$/.exec(zone);
    if (z === null || Number(z[2]) > 23 || Number(z[3]) > 59) return undefined;
    ms -= (z[1] === '-' ? -1 : 1) * (Number(z[2]) * 60 + Number(z[3])) * 60_000;
  }
  return ms / 1000;
}

/** Splits one line; quoted fields ("a,b", "say ""hi""") are understood. Returns a string on a quoting error. */
export function splitFields(line: string, delimiter: string): string[] | string {
  if (!line.includes('"')) return line.split(delimiter);
  const out: string[] = [];
  let field = '';
  let i = 0;
  let quoted = false;
  let wasQuoted = false;
  while (i < line.length) {
    const c = line[i];
    if (quoted) {
      if (c === '"') {
        if (line[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        continue;
      }
      field += c;
      i++;
    } else if (line.startsWith(delimiter, i)) {
      out.push(field);
      field = '';
      wasQuoted = false;
      i += delimiter.length;
    } else if (c === '"' && field.trim().length === 0 && !wasQuoted) {
      quoted = true;
      wasQuoted = true;
      field = '';
      i++;
    } else {
      if (wasQuoted && c.trim().length > 0) return `column ${out.length + 1}: text after a closing quote`;
      field += c;
      i++;
    }
  }
  if (quoted) return `column ${out.length + 1}: unterminated quote`;
  out.push(field);
  return out;
}

interface Plan {
  delimiter: string;
  header: boolean;
  /** Exact count, or -(minimum count) when only a minimum is known. */
  count: number;
  index: Record<string, number>;
  label: Record<string, string>;
}

/** Column index of each role, header names looked up (exactly, then ignoring case); throws `E_INPUT` naming the role. */
export function resolveIndex(mapping: ColumnMapping, headerFields: string[] | undefined, file: string): Record<string, number> {
  const index: Record<string, number> = {};
  for (const [role, col] of Object.entries(mapping)) {
    if (typeof col === 'number') {
      if (headerFields !== undefined && col >= headerFields.length) {
        throw new DupnError('E_INPUT', `${file}:1: columns.${role} = ${col} but the header has ${headerFields.length} columns`, { path: `columns.${role}` });
      }
      index[role] = col;
      continue;
    }
    if (headerFields === undefined) {
      throw new DupnError('E_INPUT', `${file}: columns.${role} names column "${col}" but the file has no header (header: false)`, { path: `columns.${role}` });
    }
    let at = headerFields.indexOf(col);
    if (at < 0) at = headerFields.findIndex((h) => h.toLowerCase() === col.toLowerCase());
    if (at < 0) {
      throw new DupnError('E_INPUT', `${file}:1: columns.${role} names "${col}", which is not in the header (${headerFields.join(', ')})`, {
        path: `columns.${role}`,
      });
    }
    index[role] = at;
  }
  return index;
}

/**
 * Streams the rows of a delimited behaviour log in batches (one per read chunk). `stats` and `malformed`
 * are updated as it goes; each call reads the file anew.
 */
export async function* readLogBatches(
  path: string,
  options: LogReadOptions,
  stats: LogStats,
  malformed: MalformedLog,
): AsyncGenerator<LogRow[]> {
  if (options.format === 'sequences') {
    yield* readSequenceBatches(path, options, stats, malformed);
    return;
  }
  const taobao = options.columns === undefined;
  if (taobao && options.format === 'csv') throw new DupnError('E_INPUT', 'columns: format "csv" needs a column mapping', { path: 'columns' });
  const mapping = taobao ? TAOBAO_COLUMNS : parseColumns(options.columns as string | ColumnMapping);
  const named = Object.values(mapping).some((c) => typeof c === 'string');
  const header = options.header ?? named;
  const delimiter = options.delimiter ?? delimiterFor(path);
  if (delimiter.length === 0 || delimiter.includes('"') || delimiter.includes('\n')) {
    throw new DupnError('E_INPUT', `delimiter: must be a non-empty string without quotes or line breaks, got ${describe(delimiter)}`, { path: 'delimiter' });
  }
  const year = options.year ?? 2015;
  if (!Number.isInteger(year) || year < 1 || year > 9999) throw new DupnError('E_INPUT', `year: must be an integer in [1, 9999], got ${describe(year)}`, { path: 'year' });
  const types = options.types ?? {};
  const known = new Set(options.knownTypes ?? ['pv', 'fav', 'cart', 'buy']);
  const defaultType = options.defaultType ?? 'pv';
  const timeScale = options.timeUnit === 'ms' ? 1 / 1000 : 1;

  let plan: Plan | undefined;
  const makePlan = (headerFields: string[] | undefined): Plan => {
    const index = resolveIndex(mapping, headerFields, path);
    const label: Record<string, string> = {};
    for (const [role, at] of Object.entries(index)) {
      label[role] = headerFields !== undefined ? `column ${at + 1} "${headerFields[at]}" (${role})` : `column ${at + 1} (${role})`;
    }
    const minimum = Math.max(...Object.values(index)) + 1;
    const count = options.columnCount ?? (headerFields !== undefined ? headerFields.length : taobao ? 5 : -minimum);
    if (count > 0 && count < minimum) {
      throw new DupnError('E_INPUT', `columnCount: ${count} columns cannot hold column ${minimum}`, { path: 'columnCount' });
    }
    return { delimiter, header, count, index, label };
  };

  const extras = Object.keys(mapping).filter((r) => !FIXED_ROLES.includes(r));
  // A Parquet file comes as rows of text fields with its column names as the header (line 1).
  const parquet = isParquet(path);
  if (!header && !parquet) plan = makePlan(undefined);
  const source: AsyncIterable<FieldBatch> = parquet ? duckdbTextRows(path) : textFieldBatches(path, delimiter);
  for await (const batch of source) {
    const rows: LogRow[] = [];
    for (let k = 0; k < batch.fields.length; ++k) {
      const line = batch.first + k;
      const fields = batch.fields[k];
      stats.lines++;
      if (fields === null) {
        malformed.add(line, `line longer than ${MAX_LINE_CHARS} characters`);
        continue;
      }
      if (fields === undefined) continue;
      if (typeof fields === 'string') {
        if (plan === undefined) throw new DupnError('E_INPUT', `${path}:${line}: header: ${fields}`, { path: `${path}:${line}` });
        malformed.add(line, fields);
        continue;
      }
      if (plan === undefined) {
        plan = makePlan(fields.map((f) => f.trim()));
        continue;
      }
      const row = parseRow(fields, line, plan);
      if (typeof row === 'string') malformed.add(line, row);
      else {
        rows.push(row);
        stats.rows++;
      }
    }
    if (rows.length > 0) yield rows;
  }

  function parseRow(f: string[], line: number, p: Plan): LogRow | string {
    if (p.count > 0 ? f.length !== p.count : f.length < -p.count) {
      return `expected ${p.count > 0 ? '' : 'at least '}${Math.abs(p.count)} columns, got ${f.length}`;
    }
    const at = p.index;
    const userId = clean(f[at['user']]);
    if (userId.length === 0) return `${p.label['user']}: empty user id`;
    const item = clean(f[at['item']]);
    if (item.length === 0) return `${p.label['item']}: empty item id`;
    let type = defaultType;
    if (at['type'] !== undefined) {
      const raw = clean(f[at['type']]);
      if (raw.length === 0) return `${p.label['type']}: empty behaviour type`;
      type = types[raw] ?? raw;
    }
    let time: number;
    let dayLevel = false;
    if (at['time'] !== undefined) {
      const raw = clean(f[at['time']]);
      time = NUMBER_RE.test(raw) ? Number(raw) * timeScale : (isoToTime(raw) ?? NaN);
      if (!Number.isFinite(time)) {
        return `${p.label['time']}: time must be a number (Unix ${timeScale === 1 ? 'seconds' : 'milliseconds'}) or an ISO date-time, got ${describe(raw)}`;
      }
    } else if (at['day'] !== undefined) {
      const raw = clean(f[at['day']]);
      let t: number | undefined;
      if (at['month'] !== undefined) {
        const month = clean(f[at['month']]);
        t = /^\d{1,2}$/.test(month) && /^\d{1,2}$/.test(raw) ? dayToTime(`${month.padStart(2, '0')}${raw.padStart(2, '0')}`, year) : undefined;
        if (t === undefined) return `${p.label['month']} and ${p.label['day']}: not a date in ${year}, got month ${describe(month)} day ${describe(raw)}`;
      } else {
        t = dayToTime(raw, year);
        if (t === undefined) return `${p.label['day']}: not a date (MMDD, YYYYMMDD or YYYY-MM-DD), got ${describe(raw)}`;
      }
      time = t;
      dayLevel = at['offset'] === undefined;
    } else {
      time = line * FILE_ORDER_STEP;
    }
    if (at['offset'] !== undefined) {
      const raw = clean(f[at['offset']]);
      const offset = NUMBER_RE.test(raw) ? Number(raw) : NaN;
      if (!Number.isFinite(offset) || offset < 0) return `${p.label['offset']}: offset must be a number of milliseconds >= 0, got ${describe(raw)}`;
      // A day is placed at 12:00; an offset counts from the start of the day.
      time += (at['day'] !== undefined ? -43_200 : 0) + offset / 1000;
    }
    const row: LogRow = { userId, item, type, time, line };
    if (dayLevel) row.dayLevel = true;
    for (const role of ['category', 'shop', 'brand', 'scene'] as const) {
      if (at[role] === undefined) continue;
      const v = clean(f[at[role]]);
      if (v.length > 0) row[role] = v;
    }
    if (at['price'] !== undefined) {
      const raw = clean(f[at['price']]);
      if (raw.length > 0) {
        const price = NUMBER_RE.test(raw) ? Number(raw) : NaN;
        if (!Number.isFinite(price) || price < 0) return `${p.label['price']}: price must be a number >= 0, got ${describe(raw)}`;
        row.price = price;
      }
    }
    for (const name of extras) {
      const v = clean(f[at[name]]);
      if (v.length > 0) (row.extra ??= {})[name] = v;
    }
    // Checked last, so that a row with a real defect reports that defect rather than its type.
    if (!known.has(type)) {
      if (malformed.strict) return `${at['type'] === undefined ? 'defaultType' : p.label['type']}: unknown behaviour type ${describe(type)} (known: ${[...known].join(', ')})`;
      stats.unknownTypes++;
    }
    return row;
  }
}

/** Checks the options of a `sequences` file: no column mapping, a usable delimiter if one is given. */
export function checkSequenceOptions(options: LogReadOptions): void {
  if (options.columns !== undefined) throw new DupnError('E_INPUT', 'columns: format "sequences" has no columns (each line is a user id and its items)', { path: 'columns' });
  const delimiter = options.delimiter;
  if (delimiter !== undefined && (delimiter.length === 0 || delimiter.includes('\n'))) {
    throw new DupnError('E_INPUT', `delimiter: must be a non-empty string without line breaks, got ${describe(delimiter)}`, { path: 'delimiter' });
  }
}

/** The rows of a `sequences` file (see the module comment): `user item item …` per line. */
async function* readSequenceBatches(path: string, options: LogReadOptions, stats: LogStats, malformed: MalformedLog): AsyncGenerator<LogRow[]> {
  checkSequenceOptions(options);
  const delimiter = options.delimiter;
  const type = options.defaultType ?? 'pv';
  const known = options.knownTypes ?? ['pv', 'fav', 'cart', 'buy'];
  const unknown = !known.includes(type);
  if (unknown && malformed.strict) {
    throw new DupnError('E_INPUT', `defaultType: unknown behaviour type ${describe(type)} (known: ${known.join(', ')})`, { path: 'defaultType' });
  }
  const split = (text: string): string[] => (delimiter === undefined ? text.trim().split(/\s+/) : text.split(delimiter).map(clean));
  let n = 0;
  for await (const batch of readLineBatches(path, MAX_LINE_CHARS)) {
    const rows: LogRow[] = [];
    batch.lines.forEach((text, k) => {
      const line = batch.first + k;
      stats.lines++;
      if (text === null) return malformed.add(line, `line longer than ${MAX_LINE_CHARS} characters`);
      if (text.trim().length === 0) return;
      const [userId, ...items] = split(text);
      if (userId.length === 0) return malformed.add(line, 'field 1 (user): empty user id');
      if (items.length === 0) return malformed.add(line, 'no items after the user id');
      const empty = items.indexOf('');
      if (empty >= 0) return malformed.add(line, `field ${empty + 2} (item): empty item id`);
      for (const item of items) rows.push({ userId, item, type, time: ++n * FILE_ORDER_STEP, line });
      stats.rows += items.length;
      if (unknown) stats.unknownTypes += items.length;
    });
    if (rows.length > 0) yield rows;
  }
}

/** Fields of numbered lines: split, a problem with the quoting, `null` for an over-long line, `undefined` for a blank one. */
interface FieldBatch {
  first: number;
  fields: (string[] | string | null | undefined)[];
}

async function* textFieldBatches(path: string, delimiter: string): AsyncGenerator<FieldBatch> {
  for await (const batch of readLineBatches(path, MAX_LINE_CHARS)) {
    yield {
      first: batch.first,
      fields: batch.lines.map((text) => (text === null ? null : text.trim().length === 0 ? undefined : splitFields(text, delimiter))),
    };
  }
}

/** Whether a data file is Parquet (read through DuckDB, an optional peer dependency). */
export function isParquet(path: string): boolean {
  return /\.parquet$/i.test(path);
}

/** `s.trim()`, without the copy in the usual case of nothing to trim. */
function clean(s: string): string {
  return s.length > 0 && (s.charCodeAt(0) <= 32 || s.charCodeAt(s.length - 1) <= 32) ? s.trim() : s;
}

/** Rows one by one (a convenience over {@link readLogBatches}). */
export async function* readLogRows(path: string, options: LogReadOptions = {}, stats?: LogStats, malformed?: MalformedLog): AsyncGenerator<LogRow> {
  const s = stats ?? { lines: 0, rows: 0, unknownTypes: 0 };
  const m = malformed ?? new MalformedLog(path, options.strict === true);
  for await (const batch of readLogBatches(path, options, s, m)) yield* batch;
}
