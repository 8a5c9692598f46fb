/**
 * Candidate generation with a `retrieval` head: a catalogue's item vectors computed once, and exact top-k by
 * dot product in the native addon. With history features, the items a user acted on (and, with successor
 * features, the items that followed the user's recent ones in training) carry an extra term w·h; since h is
 * zero for every other item, the exact top k is the native top k over the other items merged with those few
 * items scored in full.
 */
import { CandidateColumns } from './columns';
import { HISTORY_FEATURES, ResolvedConfig, RetrievalTask, denseCount } from '../network/config';
import { HistoryIndex, UserInput, historyFeatures, historyIndex } from './features';
import { historyField } from '../network/tensors';
import { SuccessorTable, recentItems, successorFeatures } from './successors';
import { describe, inputError } from '../errors';
import { hashKey } from './hashing';

/** What {@link Model.retrieve} returns: catalogue rows, best first, and their scores. */
export interface Retrieved {
  /** Catalogue rows, best first (fewer than k when the catalogue less the excluded rows is smaller). */
  index: Int32Array;
  /** Their scores, as {@link Model.score} gives them. */
  score: Float32Array;
}

/** Options of {@link Model.retrieve}. */
export interface RetrieveOptions {
  /** Catalogue rows never returned (e.g. what the page already shows). */
  exclude?: Iterable<number>;
  /**
   * The user whose vector this is. With a head that has history features (`history: true`, the default),
   * the catalogue items this user acted on (and with successor features the items that followed the user's
   * recent ones) get their history term, as {@link Model.score} with `user` gives; without it every item
   * scores by the dot product and the prior alone.
   */
  user?: UserInput;
}

/** A retrieval head's catalogue: packed candidates, their item vectors (in the search layout) and row by history key. */
export class Catalogue {
  readonly size: number;
  private rowsByKey?: Map<string, number>;
  private rowsByBucket?: Map<number, number[]>;

  constructor(
    readonly task: RetrievalTask,
    readonly items: Int32Array,
    readonly vectors: Float32Array,
    readonly dim: number,
    private readonly keys: string[],
    /** With history features: every row's dense features (the prior in the last column). */
    private readonly dense?: Float32Array,
  ) {
    this.size = vectors.length / dim;
  }

  /**
   * The skip mask for `exclude` plus the rows whose dense features are not the prior alone (the user's
   * history items and, with successor features, the items that followed the user's recent ones), and
   * those rows with their features: the native top-k scores every other row as q·v + w_p·prior.
   */
  plan(config: ResolvedConfig, options: RetrieveOptions, successors?: SuccessorTable): { skip: Uint8Array; rows: number[]; dense: Float32Array } {
    const skip = new Uint8Array(this.size);
    if (options.exclude !== undefined) {
      const ex: unknown = options.exclude;
      if (typeof ex !== 'object' || ex === null || typeof (ex as Iterable<unknown>)[Symbol.iterator] !== 'function') {
        inputError('options.exclude', `must be an iterable of catalogue rows, got ${describe(ex)}`);
      }
      let i = 0;
      for (const r of ex as Iterable<unknown>) {
        if (typeof r !== 'number' || !Number.isInteger(r) || r < 0 || r >= this.size) {
          inputError(`options.exclude[${i}]`, `must be a catalogue row 0..${this.size - 1}, got ${describe(r)}`);
        }
        skip[r] = 1;
        i++;
      }
    }
    const rows: number[] = [];
    const D = denseCount(this.task);
    if (D === 0 || options.user === undefined) return { skip, rows, dense: new Float32Array(0) };
    const add = (r: number | undefined): void => {
      if (r === undefined || skip[r]) return;
      skip[r] = 1;
      rows.push(r);
    };
    const behaviors = Array.isArray(options.user.behaviors) ? options.user.behaviors : [];
    const history = historyIndex(behaviors, historyField(this.task), config.maxSeqLen);
    const rowsByKey = this.byKey();
    for (const key of history.keys()) add(rowsByKey.get(key));
    const F = config.itemFields.length;
    const fi = config.itemFields.findIndex((f) => f.name === historyField(this.task));
    const after = successors?.after(recentItems(config, this.task, behaviors).recent);
    if (after !== undefined && after.size > 0) {
      const rowsByBucket = this.byBucket(F, fi);
      for (const b of after.keys()) rowsByBucket.get(b)?.forEach(add);
    }
    return { skip, rows, dense: this.denseOf(rows, history, after, F, fi) };
  }

  /**
   * Rows `rows` of the catalogue as packed candidates with `user`'s dense features (history, successors, the
   * prior), as {@link packCandidates} would give the same candidates: what {@link Model.scoreRows} scores.
   */
  rowColumns(config: ResolvedConfig, rows: ArrayLike<number>, user: RetrieveOptions['user'], successors?: SuccessorTable): CandidateColumns {
    const F = config.itemFields.length;
    const D = denseCount(this.task);
    const n = rows.length;
    for (let i = 0; i < n; i++) {
      const r = rows[i];
      if (typeof r !== 'number' || !Number.isInteger(r) || r < 0 || r >= this.size) inputError(`rows[${i}]`, `must be a catalogue row 0..${this.size - 1}, got ${describe(r)}`);
    }
    const items = new Int32Array(n * F);
    for (let i = 0; i < n; i++) items.set(this.items.subarray(rows[i] * F, (rows[i] + 1) * F), i * F);
    if (D === 0) return { items, dense: new Float32Array(0) };
    const behaviors = user !== undefined && Array.isArray(user.behaviors) ? user.behaviors : [];
    const history = user === undefined ? undefined : historyIndex(behaviors, historyField(this.task), config.maxSeqLen);
    const fi = config.itemFields.findIndex((f) => f.name === historyField(this.task));
    const after = user === undefined ? undefined : successors?.after(recentItems(config, this.task, behaviors).recent);
    return { items, dense: this.denseOf(rows, history, after, F, fi) };
  }

  /** The dense features of `rows` for one user: history (of `history`), successors (of `after`), the prior. */
  private denseOf(rows: ArrayLike<number>, history: HistoryIndex | undefined, after: Map<number, Float64Array> | undefined, F: number, fi: number): Float32Array {
    const D = denseCount(this.task);
    const dense = new Float32Array(rows.length * D);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      historyFeatures(history?.get(this.keys[r]), dense, i * D);
      if (after !== undefined && D > HISTORY_FEATURES) successorFeatures(after.get(this.items[r * F + fi]), dense, i * D + HISTORY_FEATURES - 1);
      dense[i * D + D - 1] = this.dense ? this.dense[r * D + D - 1] : 0;
    }
    return dense;
  }

  /** The first row of each history key. */
  private byKey(): Map<string, number> {
    if (this.rowsByKey === undefined) {
      const m = new Map<string, number>();
      this.keys.forEach((k, r) => {
        if (!m.has(k)) m.set(k, r);
      });
      this.rowsByKey = m;
    }
    return this.rowsByKey;
  }

  /** Every row of each bucket of the history field (items that share a bucket share its successor features). */
  private byBucket(F: number, fi: number): Map<number, number[]> {
    if (this.rowsByBucket === undefined) {
      const m = new Map<number, number[]>();
      for (let r = 0; r < this.size; r++) {
        const b = this.items[r * F + fi];
        const list = m.get(b);
        if (list === undefined) m.set(b, [r]);
        else list.push(r);
      }
      this.rowsByBucket = m;
    }
    return this.rowsByBucket;
  }

  /** The packed candidate columns of `rows` with their `dense` features. */
  columns(rows: number[], dense: Float32Array, fields: number): CandidateColumns {
    const items = new Int32Array(rows.length * fields);
    rows.forEach((r, i) => items.set(this.items.subarray(r * fields, (r + 1) * fields), i * fields));
    return { items, dense };
  }
}

/** Rows per block of a catalogue's search layout: 4 MiB of vectors at dim 64, a few blocks per thread. */
export const SEARCH_BLOCK = 16_384;

/**
 * `vectors` (n × dim, row-major), with `extra(i)` as one more column when given, in the search layout of the
 * native top-k: blocks of {@link SEARCH_BLOCK} rows (the last may be shorter), each block transposed to
 * width × its rows, so one block's scores are one wide 1 × rows product on the kernels.
 */
export function blockTransposed(vectors: Float32Array, dim: number, extra?: (row: number) => number): Float32Array {
  const n = vectors.length / dim;
  const width = extra ? dim + 1 : dim;
  const out = new Float32Array(n * width);
  for (let r0 = 0; r0 < n; r0 += SEARCH_BLOCK) {
    const rows = Math.min(SEARCH_BLOCK, n - r0);
    const base = r0 * width;
    for (let i = 0; i < rows; i++) {
      const from = (r0 + i) * dim;
      for (let j = 0; j < dim; j++) out[base + j * rows + i] = vectors[from + j];
      if (extra) out[base + dim * rows + i] = extra(r0 + i);
    }
  }
  return out;
}

/** The history key of each candidate (the value of the head's history field, as hashed). */
export function catalogueKeys(task: RetrievalTask, candidates: readonly Record<string, unknown>[]): string[] {
  const field = historyField(task);
  return candidates.map((c, i) => hashKey(c?.[field], `candidates[${i}].${field}`));
}

/** Merges the native top k with the fully scored history rows: the k best, ties by lower row. */
export function mergeTop(k: number, top: Retrieved, found: number, rows: number[], scores: Float32Array): Retrieved {
  const all: [number, number][] = [];
  for (let i = 0; i < found; i++) all.push([top.score[i], top.index[i]]);
  rows.forEach((r, i) => all.push([scores[i], r]));
  all.sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  const n = Math.min(k, all.length);
  return { index: Int32Array.from(all.slice(0, n), (e) => e[1]), score: Float32Array.from(all.slice(0, n), (e) => e[0]) };
}
