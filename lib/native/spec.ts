/**
 * Config + tensors → the spec object the native addon reads (addon.ts). The arrays are passed by
 * reference: the addon borrows them (and the trainer updates them in place).
 */
import { ResolvedConfig, denseCount, layerStacks } from '../network/config';
import { DupnError } from '../errors';
import { NativeModelSpec, NativeTable } from './addon';
import { Tensors, historyWeightName } from '../network/tensors';

const KIND_CODE = { binary: 0, rank: 1, multiclass: 2, retrieval: 3 } as const;

function tableOf(tensors: Tensors, name: string, rows: number, dim: number): NativeTable {
  return { rows, dim, data: dim > 0 ? (tensors.get(name) ?? null) : null };
}

/** The spec the addon's NativeModel and NativeTrainer take: dimensions plus the tensors, borrowed. */
export function nativeSpec(c: ResolvedConfig, t: Tensors, projectionCache: number, bf16: boolean): NativeModelSpec {
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
    itemTables: c.itemFields.map((f) => tableOf(t, `emb.item.${f.name}`, f.buckets, f.dim)),
    typeTable: tableOf(t, 'emb.prop.type', p.types.length + 1, p.typeDim),
    gapTable: tableOf(t, 'emb.prop.gap', p.gapBuckets, p.gapDim),
    sceneTable: tableOf(t, 'emb.prop.scene', p.scenes.length + 1, p.sceneDim),
    queryTable: tableOf(t, 'emb.query', c.query?.buckets ?? 0, c.query?.dim ?? 0),
    profileTables: c.profileFields.map((f) => tableOf(t, `emb.profile.${f.name}`, f.buckets, f.dim)),
    lstm: (c.bidirectional ? ['fw', 'bw'] : ['fw']).map((d) => ({
      wx: get(`lstm.${d}.wx`),
      wp: get(`lstm.${d}.wp`),
      wh: get(`lstm.${d}.wh`),
      b: get(`lstm.${d}.b`),
    })),
    attn: { w: get('attn.w'), b: get('attn.b'), v: get('attn.v') },
    heads: c.tasks.map((task) => {
      const [main, item] = layerStacks(c, task).map(({ stem, widths }) =>
        widths.slice(1).map((out, k) => ({ w: get(`${stem}.${k}.w`), b: get(`${stem}.${k}.b`), out })),
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

