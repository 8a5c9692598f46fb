/**
 * Rows of hashed tables that start when first used. A table sized from the data has 64 buckets per distinct id
 * (lib/cli/table-sizes.ts), so almost all of its rows are ones no id of the log lands in; drawn at random up
 * front, they would fill the model file with rows that never learn and make every unseen id score as noise.
 * Instead a trainer starts these tables at zero and gives a row its random start (the same distribution a
 * dense init draws from) just before the first step that uses it. A row that is all zero is one no step has
 * used, so the saved model stores only the rows training used (docs/format.md, Sparse tables) and an id the
 * log never had gets the zero row.
 */
import { ResolvedConfig } from '../network/config';
import { EMBEDDING_INIT_SCALE } from '../network/init';
import { Tensors, QUERY_TABLE_NAME, itemTableName, profileTableName } from '../network/tensors';
import { NativeTrainBatch } from '../native/addon';
import { mulberry32, seedFor } from '../random';

/** One hashed table and where its ids sit in a packed batch. */
interface LazyTable {
  name: string;
  data: Float32Array;
  dim: number;
  /** The table's own seed; a row's start is drawn from it and the row index. */
  seed: number;
  /** Calls `use(id)` for every id of this table in `batch`. */
  ids(batch: NativeTrainBatch, use: (id: number) => void): void;
}

/** murmur3's 32-bit finaliser: spreads (table seed, row) into independent generator seeds. */
function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function strided(column: Int32Array | undefined, stride: number, at: number, use: (id: number) => void): void {
  if (column === undefined) return;
  for (let i = at; i < column.length; i += stride) use(column[i]);
}

/** A hashed table of a config, and where its ids sit in a packed batch. */
export interface BatchTableIds {
  name: string;
  dim: number;
  /** Calls `use(id)` for every id of this table in `batch` (an id used twice, twice). */
  ids(batch: NativeTrainBatch, use: (id: number) => void): void;
}

/** The hashed tables of `config` with a nonzero width: the rows a step can move are the ids of its batch. */
export function batchTableIds(config: ResolvedConfig): BatchTableIds[] {
  const out: BatchTableIds[] = [];
  const F = config.itemFields.length;
  const P = config.profileFields.length;
  config.itemFields.forEach((f, i) => {
    // A head's candidate rows hash only the fields it targets; its other columns are 0, not an id.
    const heads = config.tasks.flatMap((t, h) => (t.kind !== 'multiclass' && t.target.includes(f.name) ? [h] : []));
    out.push({
      name: itemTableName(f.name),
      dim: f.dim,
      ids: (b, use) => {
        strided(b.users.items, F, i, use);
        for (const h of heads) strided(b.heads[h]?.items, F, i, use);
      },
    });
  });
  config.profileFields.forEach((f, i) => out.push({ name: profileTableName(f.name), dim: f.dim, ids: (b, use) => strided(b.users.profile, P, i, use) }));
  if (config.query) out.push({ name: QUERY_TABLE_NAME, dim: config.query.dim, ids: (b, use) => strided(b.users.queryTokens, 1, 0, use) });
  return out.filter((t) => t.dim > 0);
}

/** The hashed tables of `config` in `tensors` (those with a nonzero width). */
function lazyTables(config: ResolvedConfig, tensors: Tensors, seed: number): LazyTable[] {
  return batchTableIds(config).flatMap(({ name, dim, ids }) => {
    const data = tensors.get(name);
    return data === undefined ? [] : [{ name, data, dim, seed: seedFor(seed, name), ids }];
  });
}

/** Gives the all-zero rows of the hashed tables that `batch` uses their random start. */
export class LazyRows {
  private readonly tables: LazyTable[];

  /** `trained(name)`: whether steps move table `name` (a frozen table's zero rows stay zero). */
  constructor(config: ResolvedConfig, tensors: Tensors, seed: number, trained: (name: string) => boolean = () => true) {
    this.tables = lazyTables(config, tensors, seed).filter((t) => trained(t.name));
  }

  /**
   * Starts every unused row `batch` refers to; ids out of range are left to the native checks. `undo` puts the
   * rows it started back to zero (for a step that was refused).
   */
  start(batch: NativeTrainBatch): { undo: () => void } {
    const started: [LazyTable, number][] = [];
    for (const t of this.tables) {
      const rows = t.data.length / t.dim;
      t.ids(batch, (id) => {
        if (id >= 0 && id < rows && startRow(t, id)) started.push([t, id]);
      });
    }
    return { undo: () => started.forEach(([t, id]) => t.data.fill(0, id * t.dim, (id + 1) * t.dim)) };
  }
}

/** Gives row `id` of `t` its random start if it is all zero; whether it did. */
function startRow(t: LazyTable, id: number): boolean {
  const at = id * t.dim;
  for (let k = 0; k < t.dim; k++) if (t.data[at + k] !== 0) return false;
  const rand = mulberry32(mix32((t.seed ^ Math.imul(id + 1, 0x9e3779b1)) >>> 0));
  for (let k = 0; k < t.dim; k++) t.data[at + k] = (rand() * 2 - 1) * EMBEDDING_INIT_SCALE;
  return true;
}
