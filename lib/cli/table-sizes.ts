/**
 * Embedding tables sized from the data for a new model trained on a log: the paper's defaults (2^20 item
 * buckets × 32 dims alone are 128 MiB) are made for Taobao's whole catalogue and write a 170 MiB model for a
 * log of a few thousand items. Each item field gets the next power of two at or above {@link BUCKETS_PER_ID} ×
 * its distinct values, at least 64 and at most the default; a log has no query text, so the query table keeps
 * one bucket. A settings file that sets `itemFields` or `query` decides itself.
 *
 * Why 64 and not fewer: ids that share a bucket share an embedding row and a successor row, and a sparse log
 * cannot tell them apart. At 8 × (the first choice here) about 9% of Amazon Beauty's items shared a bucket; at
 * 64 × about 1%, and its sampled HR@10 rose from 0.475–0.483 to 0.487–0.498 over three seeds (docs/real-data.md,
 * eleventh session). Unused rows cost file size only: training touches the rows of ids it sees.
 *
 * The item id table is also made narrower (16 wide instead of the paper's 32) when the log has fewer than
 * {@link SPARSE_ROWS_PER_ITEM} rows per distinct item: an id seen a dozen times cannot fill 32 dimensions, and
 * on Amazon Beauty (16 rows per item) 16 wide beat 32 on every metric over two seeds each (docs/real-data.md);
 * denser logs keep the paper's width, which no log here could test.
 */
import { DupnConfig, ResolvedConfig, resolveConfig } from '../network/config';
import { ReadExamplesOptions, readRows } from '../data';
import { fieldOf } from '../data/example-builder';

/** Buckets per distinct id of an item field (then up to the next power of two, within the field's default). */
export const BUCKETS_PER_ID = 64;
/** Below this many log rows per distinct item id, the item table is {@link SPARSE_ITEM_DIM} wide. */
export const SPARSE_ROWS_PER_ITEM = 64;
/** The item embedding width for sparse logs. */
export const SPARSE_ITEM_DIM = 16;

export interface SizedTables {
  config: DupnConfig;
  /** What was chosen, one entry per field: `item: 9481 ids → 131072 buckets`. */
  notes: string[];
  /** Distinct values per item field in the log. */
  distinct: Map<string, number>;
}

export async function sizeTablesFromData(path: string, model: DupnConfig, data: ReadExamplesOptions): Promise<SizedTables> {
  const base: ResolvedConfig = resolveConfig(model);
  const distinct = new Map<string, Set<string>>(base.itemFields.map((f) => [f.name, new Set<string>()]));
  let rows = 0;
  for await (const batch of readRows(path, { ...data, config: base })) {
    rows += batch.length;
    for (const row of batch) {
      for (const [name, seen] of distinct) {
        const v = fieldOf(row, name);
        if (v !== undefined) seen.add(String(v));
      }
    }
  }
  const notes: string[] = [];
  const config: DupnConfig = { ...model };
  if (model.itemFields === undefined) {
    config.itemFields = base.itemFields.map((f) => {
      const n = distinct.get(f.name)?.size ?? 0;
      let buckets = 64;
      while (buckets < BUCKETS_PER_ID * n && buckets < f.buckets) buckets *= 2;
      buckets = Math.min(buckets, f.buckets);
      if (f.name === 'item' && n > 0 && rows / n < SPARSE_ROWS_PER_ITEM && f.dim > SPARSE_ITEM_DIM) {
        notes.push(`${f.name}: ${n} ids → ${buckets} buckets × ${SPARSE_ITEM_DIM} (${(rows / n).toFixed(1)} rows per id, under ${SPARSE_ROWS_PER_ITEM})`);
        return { name: f.name, buckets, dim: SPARSE_ITEM_DIM };
      }
      notes.push(`${f.name}: ${n} ids → ${buckets} buckets`);
      return { name: f.name, buckets, dim: f.dim };
    });
  }
  if (model.query === undefined && base.query !== null) {
    config.query = { buckets: 1, dim: base.query.dim };
    notes.push('query: none in a log → 1 bucket');
  }
  return { config, notes, distinct: new Map([...distinct].map(([name, seen]) => [name, seen.size])) };
}
