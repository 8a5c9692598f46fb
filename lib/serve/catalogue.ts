/**
 * The item catalogue (issue 13, item 2): item attributes (category, shop, brand, price, extra item fields)
 * read once from CSV/TSV or JSON Lines, so that a request can name its candidates by item id alone.
 *
 * Columns are mapped as the log readers map them (lib/data/csv-log.ts): `role=column` pairs, a column a
 * 0-based index or a header name (`item=item_id,category=cat_id,price=3`). Roles: `item` (required), `category`,
 * `shop`, `brand`, `price` (a number ≥ 0, hashed as the log reader reads it), and any other name is an extra item
 * field (as `seller=3` in a log). The behaviour roles of a log (`user`, `type`, `time`, `day`, `month`, `offset`,
 * `scene`) are refused. Without a mapping a CSV/TSV file needs a header, and each of its columns is the role of
 * its name. A JSON Lines file holds one object per line; a mapping there maps roles to keys (names only).
 *
 * The file is untrusted: the first problem stops the read with `E_INPUT` naming the file, the line and the
 * field (`items.csv:7: column 3 "price" (price): must be a number >= 0, got "abc"`); an unreadable file is `E_IO`.
 * An item id seen twice is refused (naming both lines).
 */
import { DupnError, describe } from '../errors';
import { CandidateInput, UserInput, packCandidates } from '../model/features';
import { CandidateColumns } from '../model/columns';
import { keyOf } from '../model/hashing';
import { Model } from '../model/model';
import { BinaryTask, ResolvedConfig, TaskConfig, callerDense } from '../network/config';
import { ColumnMapping, NUMBER_RE, delimiterFor, parseColumnPairs, resolveIndex, splitFields } from '../data/csv-log';
import { readLineBatches } from '../data/lines';

/** Options of {@link ItemCatalogue.load}. */
export interface CatalogueReadOptions {
  /** `csv` (CSV/TSV) or `jsonl`; default `jsonl` for `.jsonl`/`.ndjson` (optionally `.gz`), else `csv`. */
  format?: 'csv' | 'jsonl';
  /** Column mapping (see the module comment); default: a CSV header's names, a JSON object's keys. */
  columns?: string | ColumnMapping;
  /** CSV field delimiter; default tab for `.tsv`/`.tab`, else comma. */
  delimiter?: string;
  /** Whether a CSV file's first line is a header (default: true unless every mapped column is an index). */
  header?: boolean;
  /** Most items accepted (default 10,000,000): a larger file is refused. */
  maxItems?: number;
}

/** One catalogue item: its id and attributes, in the form a candidate takes. */
export type CatalogueItem = CandidateInput & { item: string };

/** Counters of a {@link ItemCatalogue}. */
export interface CatalogueStats {
  /** Items in the catalogue. */
  items: number;
  /** Candidates named by id and found. */
  found: number;
  /** Candidates named by id and not found (scored with the empty-attribute row). */
  unknown: number;
}

/** What {@link ItemCatalogue.resolve} returns. */
export interface ResolvedCandidates {
  /** The candidates as the model takes them, in request order. */
  candidates: CandidateInput[];
  /** Per candidate, its item id (a string given, or an object's `item`; undefined when it has none). */
  ids: (string | undefined)[];
  /** Ids given that the catalogue does not hold. */
  unknown: number;
}

const BEHAVIOUR_ROLES = new Set(['user', 'type', 'time', 'day', 'month', 'offset', 'scene']);
const MAX_LINE_CHARS = 1 << 20;
const DEFAULT_MAX_ITEMS = 10_000_000;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(where: string, problem: string): never {
  throw new DupnError('E_INPUT', `${where}: ${problem}`, { path: where });
}

/** The role mapping checked for a catalogue: `item` present, no behaviour role. */
function catalogueColumns(spec: string | ColumnMapping): ColumnMapping {
  const mapping = parseColumnPairs(spec);
  for (const role of Object.keys(mapping)) {
    if (BEHAVIOUR_ROLES.has(role)) {
      fail(`columns.${role}`, 'is a behaviour column of a log, not an item attribute (roles: item, category, shop, brand, price, or an extra item field)');
    }
  }
  if (mapping['item'] === undefined) fail('columns.item', 'missing (the item id column)');
  return mapping;
}

/**
 * One attribute value from a file: a categorical string, or the price as a number ≥ 0; undefined when empty
 * (missing). Returns a string problem for a bad value.
 */
function attribute(role: string, raw: unknown): string | number | undefined | { problem: string } {
  if (raw === undefined || raw === null) return undefined;
  if (role === 'price') {
    const n = typeof raw === 'number' ? raw : typeof raw === 'string' && NUMBER_RE.test(raw.trim()) ? Number(raw.trim()) : typeof raw === 'string' && raw.trim() === '' ? undefined : NaN;
    if (n === undefined) return undefined;
    if (!Number.isFinite(n) || n < 0) return { problem: `must be a number >= 0, got ${describe(raw)}` };
    return n;
  }
  if (typeof raw === 'number') {
    if (!Number.isFinite(raw)) return { problem: `must be a finite number or a string, got ${describe(raw)}` };
    return String(raw);
  }
  if (typeof raw !== 'string') return { problem: `must be a string or a number, got ${describe(raw)}` };
  const v = raw.trim();
  return v.length === 0 ? undefined : v;
}

/**
 * The items in columns: row r is item `ids[r]`; each attribute a column of codes into its distinct values (-1:
 * missing). A catalogue lives in every serving worker, so it is kept compact: a JavaScript object per item (and
 * a string per attribute occurrence) took 28 MiB of heap for 100,000 items, the columns about a third of that;
 * an item's object is built when a request needs it.
 */
class ItemColumns {
  readonly ids: string[] = [];
  readonly rowOf = new Map<string, number>();
  private readonly columns = new Map<string, { codes: number[]; values: (string | number)[]; codeOf: Map<string | number, number> }>();

  get size(): number {
    return this.ids.length;
  }

  /** Appends `item` (its id not yet present) as the next row. */
  add(item: CatalogueItem): void {
    const r = this.ids.length;
    this.ids.push(item.item);
    this.rowOf.set(item.item, r);
    for (const [k, v] of Object.entries(item)) {
      if (k === 'item' || v === undefined) continue;
      let col = this.columns.get(k);
      if (col === undefined) {
        col = { codes: [], values: [], codeOf: new Map() };
        this.columns.set(k, col);
      }
      let code = col.codeOf.get(v as string | number);
      if (code === undefined) {
        code = col.values.length;
        col.values.push(v as string | number);
        col.codeOf.set(v as string | number, code);
      }
      while (col.codes.length < r) col.codes.push(-1);
      col.codes.push(code);
    }
  }

  /** Done adding: the codes become typed arrays and the value lookups are dropped. */
  seal(): { names: string[]; codes: Int32Array[]; values: (string | number)[][] } {
    const names = [...this.columns.keys()];
    const codes = names.map((n) => {
      const c = this.columns.get(n)!.codes;
      const out = new Int32Array(this.ids.length).fill(-1);
      out.set(c);
      return out;
    });
    const values = names.map((n) => this.columns.get(n)!.values);
    this.columns.clear();
    return { names, codes, values };
  }
}

/**
 * Item attributes by item id: requests name candidates by id, and {@link resolve} turns the ids into the
 * candidate objects the model scores. Unknown ids get the empty-attribute row (the id alone, every other
 * field missing, as a log row without those columns) and are counted.
 */
export class ItemCatalogue {
  /** The attribute names present in the catalogue (roles), `item` first. */
  readonly fields: readonly string[];
  private found = 0;
  private unknownCount = 0;
  /** Per model config, every item's fields hashed once: row i of `items` ([N × F]) is item `ids[i]`. */
  private readonly hashed = new WeakMap<ResolvedConfig, { row: Map<string, number>; items: Int32Array }>();
  /** Each item's row (its place in `ids`, the order of the hashed rows): one lookup per request id. */
  private readonly rowOf: Map<string, number>;
  private readonly ids: string[];
  private readonly columnNames: string[];
  private readonly codes: Int32Array[];
  private readonly values: (string | number)[][];
  /** Per dense width, the frozen zeros a catalogue candidate carries (rank heads with dense inputs). */
  private readonly zeros = new Map<number, readonly number[]>();

  private constructor(items: ItemColumns, fields: string[]) {
    this.fields = fields;
    this.ids = items.ids;
    this.rowOf = items.rowOf;
    const { names, codes, values } = items.seal();
    this.columnNames = names;
    this.codes = codes;
    this.values = values;
  }

  /** Item `r`'s candidate object (with `dense` zero features when dense > 0). */
  private itemAt(r: number, dense = 0): CandidateInput & { item: string } {
    const item: CatalogueItem = { item: this.ids[r] };
    for (let j = 0; j < this.columnNames.length; j++) {
      const code = this.codes[j][r];
      if (code >= 0) item[this.columnNames[j]] = this.values[j][code];
    }
    if (dense > 0) {
      let z = this.zeros.get(dense);
      if (z === undefined) this.zeros.set(dense, (z = Object.freeze(new Array<number>(dense).fill(0))));
      item.dense = z as number[];
    }
    return Object.freeze(item) as CatalogueItem;
  }

  /** Reads a catalogue file (see the module comment). Rejects with `E_INPUT` naming the line and field, or `E_IO`. */
  static async load(path: string, options: CatalogueReadOptions = {}): Promise<ItemCatalogue> {
    const o: unknown = options;
    if (!isObject(o)) fail('options', `must be an object, got ${describe(o)}`);
    const maxItems = options.maxItems ?? DEFAULT_MAX_ITEMS;
    if (!Number.isInteger(maxItems) || maxItems < 1) fail('options.maxItems', `must be an integer >= 1, got ${describe(maxItems)}`);
    const format = options.format ?? (/\.(jsonl|ndjson)(\.gz)?$/i.test(path) ? 'jsonl' : 'csv');
    if (format !== 'csv' && format !== 'jsonl') fail('options.format', `must be "csv" or "jsonl", got ${describe(format)}`);
    const mapping = options.columns === undefined ? undefined : catalogueColumns(options.columns);
    const items = new ItemColumns();
    const lines: number[] = [];
    const fields = new Set<string>(['item']);
    const add = (line: number, item: CatalogueItem): void => {
      const seen = items.rowOf.get(item.item);
      if (seen !== undefined) fail(`${path}:${line}`, `item ${describe(item.item)} was already given on line ${lines[seen]}`);
      if (items.size >= maxItems) fail(`${path}:${line}`, `more than maxItems = ${maxItems} items`);
      items.add(item);
      lines.push(line);
      for (const k of Object.keys(item)) fields.add(k);
    };
    if (format === 'jsonl') await readJsonl(path, mapping, add);
    else await readCsv(path, mapping, options, add);
    return new ItemCatalogue(items, [...fields]);
  }

  /** A catalogue from items in memory (ids must be unique non-empty strings). Throws `E_INPUT` naming the entry. */
  static fromItems(items: Iterable<CatalogueItem>): ItemCatalogue {
    const map = new ItemColumns();
    const fields = new Set<string>(['item']);
    let i = 0;
    for (const item of items) {
      const path = `items[${i++}]`;
      const raw: unknown = item;
      if (!isObject(raw)) fail(path, `must be an object, got ${describe(raw)}`);
      if (typeof item.item !== 'string' || item.item.length === 0) fail(`${path}.item`, `must be a non-empty string, got ${describe(item.item)}`);
      if (map.rowOf.has(item.item)) fail(`${path}.item`, `${describe(item.item)} is given twice`);
      const own: CatalogueItem = { item: item.item };
      for (const [k, v] of Object.entries(item)) {
        if (k === 'item' || v === undefined) continue;
        if (k === 'dense') fail(`${path}.dense`, 'dense features come with a request, not from the catalogue');
        const a = attribute(k, v);
        if (typeof a === 'object') fail(`${path}.${k}`, a.problem);
        if (a !== undefined) own[k] = a;
        fields.add(k);
      }
      map.add(own);
    }
    return new ItemCatalogue(map, [...fields]);
  }

  /** Number of items. */
  get size(): number {
    return this.ids.length;
  }

  /** The item of id `id` (a new frozen object on each call), or undefined. */
  get(id: string): CatalogueItem | undefined {
    const r = this.rowOf.get(id);
    return r === undefined ? undefined : this.itemAt(r);
  }

  /** Whether the catalogue holds `id`. */
  has(id: string): boolean {
    return this.rowOf.has(id);
  }

  /** Counters since the catalogue was made. */
  get stats(): CatalogueStats {
    return { items: this.ids.length, found: this.found, unknown: this.unknownCount };
  }

  /**
   * The item fields of `config` that this catalogue does not give (they hash as missing for every catalogue
   * item): what a server warns about when it attaches a catalogue to a model.
   */
  missingFields(config: ResolvedConfig): string[] {
    return config.itemFields.map((f) => f.name).filter((n) => !this.fields.includes(n));
  }

  /**
   * Request candidates (ids or candidate objects) as the model takes them: an id becomes its catalogue item
   * (unknown: `{ item: id }`, counted), an object is used as given. `dense` > 0: catalogue items and unknown
   * ids carry that many zero dense features (the rank heads' inputs a log does not have either). Throws
   * `E_INPUT` naming `path[i]` for an entry that is neither.
   */
  resolve(candidates: readonly unknown[], dense = 0, path = 'candidates'): ResolvedCandidates {
    const { ids, unknown } = this.check(candidates, path);
    return { candidates: this.objects(candidates, dense), ids, unknown };
  }

  /**
   * Request candidates as {@link resolve} takes them, checked and counted now, packed later for whichever model
   * the request is computed on (a batcher's {@link CandidatePacker}): catalogue ids from rows hashed once per
   * model config ({@link prepare}), the rest (unknown ids, explicit candidates) by `model.packCandidates`. The
   * columns equal `model.packCandidates(resolve(candidates, catalogueDense(config, tasks)).candidates, { tasks,
   * user })` on every field the tasks target; history heads (retrieval, or binary or rank with `history`) get their
   * features from the user per request, beside the rows hashed once.
   */
  packer(candidates: readonly unknown[], path = 'candidates'): { ids: (string | undefined)[]; unknown: number; pack: (model: Model, tasks: string[] | undefined, user: UserInput) => CandidateColumns } {
    const { ids, unknown, rows } = this.check(candidates, path);
    const pack = (model: Model, tasks: string[] | undefined, user: UserInput): CandidateColumns => {
      const config = model.config;
      const D = catalogueDense(config, tasks);
      const { items: table } = this.prepare(config);
      const C = candidates.length;
      const F = config.itemFields.length;
      // The others (unknown ids, explicit candidates: row -1) are packed by the model, in request order.
      const others: unknown[] = [];
      for (let i = 0; i < C; i++) if (rows[i] < 0) others.push(candidates[i]);
      let packed: CandidateColumns;
      try {
        // Also checks the tasks (names, kinds, dense widths) as model.packCandidates does, with or without others.
        packed = model.packCandidates(this.objects(others, D), { tasks, user });
      } catch (e) {
        // Packed alone, a bad candidate's error would name its place among the others: this names its own.
        model.packCandidates(this.objects(candidates, D), { tasks, user });
        throw e;
      }
      const items = new Int32Array(C * F);
      const dense = new Float32Array(C * D);
      for (let i = 0, k = 0; i < C; i++) {
        const r = rows[i];
        if (r >= 0) {
          for (let f = 0; f < F; f++) items[i * F + f] = table[r * F + f];
          continue;
        }
        items.set(packed.items.subarray(k * F, (k + 1) * F), i * F);
        if (D > 0) dense.set(packed.dense.subarray(k * D, (k + 1) * D), i * D);
        k++;
      }
      // History heads: their features from the user's history, the catalogue rows' keys read where they lie.
      return model.withHistory({ items, dense }, (field) => this.keysOf(field, rows, candidates), { tasks, user });
    };
    return { ids, unknown, pack };
  }

  /**
   * Hashes every item's fields for `config` once (a server calls it when it loads a model, so the first request
   * does not pay for it); later calls with the same config return the same rows.
   */
  prepare(config: ResolvedConfig): { row: Map<string, number>; items: Int32Array } {
    let h = this.hashed.get(config);
    if (h === undefined) {
      // A binary head that targets every item field: packCandidates then hashes them all, as for any head.
      const every: BinaryTask = { name: 'catalogue', kind: 'binary', target: config.itemFields.map((f) => f.name), layers: [] };
      const F = config.itemFields.length;
      const items = new Int32Array(this.ids.length * F);
      // In slices, so that the item objects packing takes never all live at once.
      const SLICE = 8192;
      for (let r0 = 0; r0 < this.ids.length; r0 += SLICE) {
        const list = Array.from({ length: Math.min(SLICE, this.ids.length - r0) }, (_, k) => this.itemAt(r0 + k));
        items.set(packCandidates(config, every, list).items, r0 * F);
      }
      h = { row: this.rowOf, items };
      this.hashed.set(config, h);
    }
    return h;
  }

  /**
   * The id of each request candidate, its catalogue row (-1: an unknown id or an explicit candidate) and how many
   * ids the catalogue lacks (counted); `E_INPUT` for a bad entry.
   */
  private check(candidates: readonly unknown[], path: string): { ids: (string | undefined)[]; unknown: number; rows: Int32Array } {
    if (!Array.isArray(candidates)) fail(path, `must be an array, got ${describe(candidates)}`);
    const ids: (string | undefined)[] = new Array(candidates.length);
    const rows = new Int32Array(candidates.length).fill(-1);
    let unknown = 0;
    for (let i = 0; i < candidates.length; i++) {
      const c: unknown = candidates[i];
      if (typeof c === 'string') {
        ids[i] = c;
        const r = this.rowOf.get(c);
        if (r === undefined) unknown++;
        else rows[i] = r;
      } else if (isObject(c)) {
        const id = c['item'];
        ids[i] = typeof id === 'string' ? id : typeof id === 'number' ? String(id) : undefined;
      } else {
        fail(`${path}[${i}]`, `must be an item id (string) or a candidate object, got ${describe(c)}`);
      }
    }
    this.unknownCount += unknown;
    this.found += candidates.length - unknown;
    return { ids, unknown, rows };
  }

  /**
   * Each request candidate's value of `field` as packing hashes it: catalogue row r's (r ≥ 0), else an unknown id's
   * (`{ item: id }`) or an explicit candidate's (checked already by `model.packCandidates`).
   */
  private keysOf(field: string, rows: Int32Array, candidates: readonly unknown[]): string[] {
    const j = field === 'item' ? -1 : this.columnNames.indexOf(field);
    const keys = new Array<string>(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      const c = candidates[i];
      if (r < 0) keys[i] = typeof c === 'string' ? (field === 'item' ? c : '') : (keyOf((c as CandidateInput)[field]) ?? '');
      else if (field === 'item') keys[i] = this.ids[r];
      else {
        const code = j < 0 ? -1 : this.codes[j][r];
        keys[i] = code < 0 ? '' : (keyOf(this.values[j][code]) ?? '');
      }
    }
    return keys;
  }

  /** The candidate objects of `candidates` (ids resolved; unknown ones `{ item: id }`), not counted. */
  private objects(candidates: readonly unknown[], dense: number): CandidateInput[] {
    return candidates.map((c) => {
      if (typeof c !== 'string') return c as CandidateInput;
      const r = this.rowOf.get(c);
      if (r !== undefined) return this.itemAt(r, dense);
      return dense > 0 ? { item: c, dense: new Float32Array(dense) } : { item: c };
    });
  }
}

/**
 * The dense width a catalogue candidate needs for `tasks` of `config` (default: every non-multiclass head):
 * the `denseFeatures` of their rank heads when they agree, else 0 (a retrieval head computes its own).
 */
export function catalogueDense(config: ResolvedConfig, tasks?: readonly string[]): number {
  const picked: TaskConfig[] = config.tasks.filter((t) => t.kind === 'rank' && (tasks === undefined || tasks.includes(t.name)));
  const widths = new Set(picked.map((t) => callerDense(t)).filter((d) => d > 0));
  return widths.size === 1 ? [...widths][0] : 0;
}

/**
 * The default size of the model's candidate projection cache for a catalogue of `items` items: the next power
 * of two ≥ items (a direct-mapped cache: room keeps collisions rare), at least 1024, at most 2^20 entries per head.
 */
export function candidateCacheFor(items: number): number {
  if (items <= 0) return 0;
  let n = 1024;
  while (n < items && n < 1 << 20) n *= 2;
  return n;
}

/** Calls `fn` with each non-blank line of a catalogue file, its number and `file:line`; an over-long line is refused. */
async function eachLine(path: string, fn: (text: string, line: number, where: string) => void): Promise<void> {
  for await (const batch of readLineBatches(path, MAX_LINE_CHARS)) {
    batch.lines.forEach((text, k) => {
      const line = batch.first + k;
      const where = `${path}:${line}`;
      if (text === null) fail(where, `line longer than ${MAX_LINE_CHARS} characters`);
      if (text.trim().length > 0) fn(text, line, where);
    });
  }
}

async function readJsonl(path: string, mapping: ColumnMapping | undefined, add: (line: number, item: CatalogueItem) => void): Promise<void> {
  if (mapping !== undefined) {
    for (const [role, col] of Object.entries(mapping)) {
      if (typeof col === 'number') fail(`columns.${role}`, `a JSON Lines catalogue maps roles to keys, not column indices (got ${col})`);
    }
  }
  const roles: [string, string][] | undefined = mapping === undefined ? undefined : Object.entries(mapping).map(([r, c]) => [r, String(c)]);
  await eachLine(path, (text, line, where) => {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      fail(where, `not valid JSON (${(e as Error).message})`);
    }
    if (!isObject(value)) fail(where, `must be a JSON object, got ${describe(value)}`);
    const pairs: [string, string][] = roles ?? Object.keys(value).map((key) => [key, key]);
    const item: Partial<CatalogueItem> = {};
    for (const [role, key] of pairs) {
      if (roles === undefined && BEHAVIOUR_ROLES.has(role)) fail(`${where}: ${role}`, 'is a behaviour field, not an item attribute');
      if (role === 'dense') fail(`${where}: dense`, 'dense features come with a request, not from the catalogue');
      const a = attribute(role, value[key]);
      if (typeof a === 'object') fail(`${where}: ${key}`, a.problem);
      if (a !== undefined) item[role] = a;
    }
    if (typeof item.item !== 'string') fail(`${where}: ${roles === undefined ? 'item' : String(mapping?.['item'])}`, 'missing or empty item id');
    add(line, Object.freeze(item) as CatalogueItem);
  });
}

async function readCsv(path: string, mapping: ColumnMapping | undefined, options: CatalogueReadOptions, add: (line: number, item: CatalogueItem) => void): Promise<void> {
  const delimiter = options.delimiter ?? delimiterFor(path);
  if (typeof delimiter !== 'string' || delimiter.length === 0 || delimiter.includes('"') || delimiter.includes('\n')) {
    fail('options.delimiter', `must be a non-empty string without quotes or line breaks, got ${describe(delimiter)}`);
  }
  const header = options.header ?? (mapping === undefined || Object.values(mapping).some((c) => typeof c === 'string'));
  if (mapping === undefined && !header) fail('columns', 'a catalogue without a header needs a column mapping (e.g. item=0,category=1,price=2)');
  let plan: { index: [string, number][]; labels: string[]; count: number } | undefined;
  const makePlan = (names: string[] | undefined): void => {
    let m = mapping;
    if (m === undefined) {
      const spec: ColumnMapping = {};
      (names as string[]).forEach((n, i) => {
        if (n.length > 0) spec[n] = i;
      });
      try {
        m = catalogueColumns(spec);
      } catch (e) {
        fail(`${path}:1`, `header: ${(e as Error).message}`);
      }
    }
    const index = resolveIndex(m, names, path);
    const entries = Object.entries(index);
    const labels = entries.map(([role, at]) => (names !== undefined ? `column ${at + 1} "${names[at]}" (${role})` : `column ${at + 1} (${role})`));
    const count = names !== undefined ? names.length : -(Math.max(...entries.map(([, at]) => at)) + 1);
    plan = { index: entries, labels, count };
  };
  if (!header) makePlan(undefined);
  await eachLine(path, (text, line, where) => {
    const fields = splitFields(text, delimiter);
    if (typeof fields === 'string') fail(where, fields);
    if (plan === undefined) return makePlan(fields.map((f) => f.trim()));
    const p = plan;
    if (p.count > 0 ? fields.length !== p.count : fields.length < -p.count) {
      fail(where, `expected ${p.count > 0 ? '' : 'at least '}${Math.abs(p.count)} columns, got ${fields.length}`);
    }
    const item: Partial<CatalogueItem> = {};
    p.index.forEach(([role, at], j) => {
      const a = attribute(role, fields[at]);
      if (typeof a === 'object') fail(`${where}: ${p.labels[j]}`, a.problem);
      if (a !== undefined) item[role] = a;
    });
    if (typeof item.item !== 'string') fail(`${where}: ${p.labels[p.index.findIndex(([r]) => r === 'item')]}`, 'empty item id');
    add(line, Object.freeze(item) as CatalogueItem);
  });
}
