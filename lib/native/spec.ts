/**
 * Config + tensors → the spec object the native addon reads (addon.ts). The arrays are passed by
 * reference: the addon borrows them (and the trainer updates them in place).
 */
import { ResolvedConfig, denseCount } from '../network/config';
import { DupnError } from '../errors';
import { NativeModelSpec, NativeTable } from './addon';
import { RowKeys } from '../io/sparse-rows';
import { ATTENTION_NAMES, QUERY_TABLE_NAME, Tensors, historyWeightName, itemTableName, layerNames, layerStacks, lstmDirections, lstmNames, profileTableName, propertyTableName } from '../network/tensors';

const KIND_CODE = { binary: 0, rank: 1, multiclass: 2, retrieval: 3 } as const;

/**
 * The spec the addon's NativeModel and NativeTrainer take: dimensions plus the tensors, borrowed. A table named
 * in `rowKeys` is its stored rows, found by key (a model only: a trainer refuses it).
 */
export function nativeSpec(c: ResolvedConfig, t: Tensors, projectionCache: number, bf16: boolean, rowKeys: RowKeys = new Map()): NativeModelSpec {
  const tableOf = (tensors: Tensors, name: string, rows: number, dim: number): NativeTable => {
    const keys = rowKeys.get(name);
    return { rows, dim, data: dim > 0 ? (tensors.get(name) ?? null) : null, ...(keys !== undefined ? { keys } : {}) };
  };
  const p = c.properties;
  const get = (name: string): Float32Array => {
    const v = t.get(name);
    if (!v) throw new DupnError('E_MODEL_FILE', `missing tensor "${name}"`);
    return v;
  };
  return {
    maxSeqLen: c.maxSeqLen,
    hidden: c.hidden,
    directions: c.bidirectional ? 2 : 1,
    attentionHidden: c.attentionHidden,
    projectionCache,
    bf16,
    itemTables: c.itemFields.map((f) => tableOf(t, itemTableName(f.name), f.buckets, f.dim)),
    typeTable: tableOf(t, propertyTableName('type'), p.types.length + 1, p.typeDim),
    gapTable: tableOf(t, propertyTableName('gap'), p.gapBuckets, p.gapDim),
    sceneTable: tableOf(t, propertyTableName('scene'), p.scenes.length + 1, p.sceneDim),
    queryTable: tableOf(t, QUERY_TABLE_NAME, c.query?.buckets ?? 0, c.query?.dim ?? 0),
    profileTables: c.profileFields.map((f) => tableOf(t, profileTableName(f.name), f.buckets, f.dim)),
    lstm: lstmDirections(c).map((d) => {
      const names = lstmNames(d);
      return { wx: get(names.wx), wp: get(names.wp), wh: get(names.wh), b: get(names.b) };
    }),
    attn: { w: get(ATTENTION_NAMES.w), b: get(ATTENTION_NAMES.b), v: get(ATTENTION_NAMES.v) },
    heads: c.tasks.map((task) => {
      const [main, item] = layerStacks(c, task).map(({ stem, widths }) =>
        widths.slice(1).map((out, k) => {
          const names = layerNames(stem, k);
          return { w: get(names.w), b: get(names.b), out };
        }),
      );
      const dense = denseCount(task);
      return {
        kind: KIND_CODE[task.kind],
        targetFields: task.kind === 'multiclass' ? [] : task.target.map((n) => c.itemFields.findIndex((f) => f.name === n)),
        dense,
        layers: main,
        ...(item !== undefined ? { itemLayers: item } : {}),
        ...(task.kind === 'retrieval' && dense > 0 ? { denseW: get(historyWeightName(task.name)) } : {}),
      };
    }),
  };
}

