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
 * `data` (rows × dim) by its nonzero rows, or undefined when that would not save at least half the bytes
 * (a table most of whose rows are used stays dense: one read per row instead of a search).
 */
export function sparseRowsOf(data: Float32Array, dim: number): SparseRows | undefined {
  const rows = data.length / dim;
  let used = 0;
  const nonzero = new Uint8Array(rows);
  for (let r = 0; r < rows; r++) {
    const at = r * dim;
    for (let k = 0; k < dim; k++) {
      if (data[at + k] !== 0) {
        nonzero[r] = 1;
        used++;
        break;
      }
    }
  }
  if (2 * used * (dim + 1) > rows * dim) return undefined;
  const keys = new Int32Array(used);
  const values = new Float32Array(used * dim);
  for (let r = 0, j = 0; r < rows; r++) {
    if (!nonzero[r]) continue;
    keys[j] = r;
    values.set(data.subarray(r * dim, (r + 1) * dim), j * dim);
    j++;
  }
  return { keys, values };
}

/** Every row of a sparse table: `rows` × dim values, zero where no key names the row. */
export function denseRows(s: SparseRows, rows: number, dim: number): Float32Array {
  const out = new Float32Array(rows * dim);
  for (let j = 0; j < s.keys.length; j++) out.set(s.values.subarray(j * dim, (j + 1) * dim), s.keys[j] * dim);
  return out;
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
    out.set(name, denseRows({ keys, values: tensors.get(name)! }, rows, dim));
  }
  return out;
}
