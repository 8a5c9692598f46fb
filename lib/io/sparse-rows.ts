/**
 * Hashed tables stored by their nonzero rows (docs/format.md, Sparse tables). A table sized from the data has
 * 64 buckets per distinct id, and a trainer leaves the rows no id used at zero (lib/train/lazy-rows.ts), so a
 * table of 2^20 rows may hold 12,000 that matter. The file then keeps those rows, with their ids as an I32
 * tensor `<table>#rows`; a serving model keeps them so too (the native lookup finds a row by binary search over
 * the keys, zero for the others), and everything that needs every row (a trainer, ONNX, the reference)
 * expands them.
 */
import { Tensors } from '../network/tensors';

/** The suffix of the row-key tensor of a table stored sparse: `emb.item.item#rows`. */
export const ROWS_SUFFIX = '#rows';

/** The row keys of the tables held sparse, by table name (empty when every table is dense). */
export type RowKeys = Map<string, Int32Array>;

/** A table by its nonzero rows. */
export interface SparseRows {
  /** The ids of the stored rows, strictly increasing. */
  keys: Int32Array;
  /** Their rows, in that order: keys.length × dim values. */
  values: Float32Array;
}

/**
 * The rows of a table of `rows` rows and width `dim` that are nonzero in any of `arrays` (each `rows` × its own
 * width: the table, or optimizer state beside it), strictly increasing; undefined when storing them with their
 * ids would not save at least half the table's bytes (a table most of whose rows are used stays dense: one read
 * per row instead of a search).
 */
export function usedRowKeys(rows: number, dim: number, arrays: readonly Float32Array[]): Int32Array | undefined {
  const used = new Uint8Array(rows);
  for (const a of arrays) {
    const w = a.length / rows;
    for (let i = 0; i < a.length; i++) if (a[i] !== 0) used[(i / w) | 0] = 1;
  }
  let n = 0;
  for (let r = 0; r < rows; r++) n += used[r];
  if (2 * n * (dim + 1) > rows * dim) return undefined;
  const keys = new Int32Array(n);
  for (let r = 0, j = 0; r < rows; r++) if (used[r]) keys[j++] = r;
  return keys;
}

/** Rows `keys` of `data` (`width` values a row), packed in that order. */
export function gatherRows(data: Float32Array, keys: Int32Array, width: number): Float32Array {
  const out = new Float32Array(keys.length * width);
  keys.forEach((r, j) => out.set(data.subarray(r * width, (r + 1) * width), j * width));
  return out;
}

/** Every row of a table stored by `keys`: `rows` × width values, zero where no key names the row. */
export function scatterRows(stored: Float32Array, keys: Int32Array, rows: number, width: number): Float32Array {
  const out = new Float32Array(rows * width);
  keys.forEach((r, j) => out.set(stored.subarray(j * width, (j + 1) * width), r * width));
  return out;
}

/** `data` (rows × dim) by its nonzero rows, or undefined when that is not worth it ({@link usedRowKeys}). */
export function sparseRowsOf(data: Float32Array, dim: number): SparseRows | undefined {
  const keys = usedRowKeys(data.length / dim, dim, [data]);
  return keys === undefined ? undefined : { keys, values: gatherRows(data, keys, dim) };
}

/** Index of the first key that is out of 0 .. rows - 1 or not above the one before it, or -1. */
export function badKey(keys: Int32Array, rows: number): number {
  for (let j = 0; j < keys.length; j++) {
    if (keys[j] < 0 || keys[j] >= rows || (j > 0 && keys[j] <= keys[j - 1])) return j;
  }
  return -1;
}

/**
 * `tensors` with every sparse table of `rowKeys` expanded to all its rows (a new map; dense tensors are the
 * same arrays). `shapeOf` gives a table's full shape.
 */
export function expandTensors(tensors: Tensors, rowKeys: RowKeys, shapeOf: (name: string) => readonly number[]): Tensors {
  if (rowKeys.size === 0) return tensors;
  const out: Tensors = new Map(tensors);
  for (const [name, keys] of rowKeys) {
    const [rows, dim] = shapeOf(name);
    out.set(name, scatterRows(tensors.get(name)!, keys, rows, dim));
  }
  return out;
}
