/**
 * Thin typed helpers over the protobufjs classes generated from ./onnx.proto (into ./generated, by `npm run
 * build:proto`): tensors (raw little-endian bytes), nodes with attributes, value infos with symbolic dims, and
 * ModelProto encode/decode. No hand-written protobuf.
 */
import { endianness } from 'node:os';
import { onnx } from './generated/onnx';

/** `TensorProto.DataType` values used by dupn. */
export const DataType = { FLOAT: 1, INT32: 6, INT64: 7, BOOL: 9 } as const;
export type DataTypeCode = (typeof DataType)[keyof typeof DataType];

const LITTLE_ENDIAN = endianness() === 'LE';

/** The bytes of `a` in little-endian order (a view, no copy, on little-endian machines). */
function leBytes(a: Float32Array | Int32Array | BigInt64Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const out = new Uint8Array(a.byteLength);
  const view = new DataView(out.buffer);
  for (let i = 0; i < a.length; i++) {
    if (a instanceof Float32Array) view.setFloat32(4 * i, a[i], true);
    else if (a instanceof Int32Array) view.setInt32(4 * i, a[i], true);
    else view.setBigInt64(8 * i, a[i], true);
  }
  return out;
}

/** A float32 tensor whose values travel as `rawData` (little-endian). `name` may be empty for attributes. */
export function floatTensor(name: string, dims: readonly number[], data: Float32Array): onnx.ITensorProto {
  return { name, dims: [...dims], dataType: DataType.FLOAT, rawData: leBytes(data) };
}

/** An int64 tensor from small integers (shapes, axes, indices). */
export function int64Tensor(name: string, dims: readonly number[], values: readonly number[]): onnx.ITensorProto {
  return { name, dims: [...dims], dataType: DataType.INT64, rawData: leBytes(BigInt64Array.from(values, (v) => BigInt(v))) };
}

/** An int32 tensor. */
export function int32Tensor(name: string, dims: readonly number[], values: readonly number[]): onnx.ITensorProto {
  return { name, dims: [...dims], dataType: DataType.INT32, rawData: leBytes(Int32Array.from(values)) };
}

/** The values of a float32 tensor (rawData or floatData), as a fresh Float32Array. */
export function floatTensorData(t: onnx.ITensorProto): Float32Array {
  if (t.dataType !== DataType.FLOAT) throw new Error(`tensor ${t.name}: data type ${t.dataType} is not FLOAT`);
  const count = (t.dims ?? []).reduce<number>((a, d) => a * Number(d), 1);
  if (t.rawData && t.rawData.length > 0) {
    if (t.rawData.length !== 4 * count) throw new Error(`tensor ${t.name}: ${t.rawData.length} raw bytes for ${count} values`);
    const out = new Float32Array(count);
    if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(t.rawData);
    else {
      const view = new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
    }
    return out;
  }
  const values = t.floatData ?? [];
  if (values.length !== count) throw new Error(`tensor ${t.name}: ${values.length} values, expected ${count}`);
  return Float32Array.from(values);
}

/** One attribute value, tagged by its ONNX kind. */
export type AttrValue =
  | { int: number }
  | { float: number }
  | { string: string }
  | { ints: readonly number[] }
  | { floats: readonly number[] }
  | { tensor: onnx.ITensorProto };

const AT = onnx.AttributeProto.AttributeType;

export function attribute(name: string, v: AttrValue): onnx.IAttributeProto {
  if ('int' in v) return { name, type: AT.INT, i: v.int };
  if ('float' in v) return { name, type: AT.FLOAT, f: v.float };
  if ('string' in v) return { name, type: AT.STRING, s: Buffer.from(v.string, 'utf8') };
  if ('ints' in v) return { name, type: AT.INTS, ints: [...v.ints] };
  if ('floats' in v) return { name, type: AT.FLOATS, floats: [...v.floats] };
  return { name, type: AT.TENSOR, t: v.tensor };
}

/** A node of the default domain. */
export function node(
  opType: string,
  inputs: readonly string[],
  outputs: readonly string[],
  attrs: Record<string, AttrValue> = {},
  name = '',
): onnx.INodeProto {
  return {
    opType,
    input: [...inputs],
    output: [...outputs],
    name,
    attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
  };
}

/** A tensor value info; a string dim is symbolic (`dimParam`, e.g. "B"), a number fixed (`dimValue`). */
export function valueInfo(name: string, elemType: DataTypeCode, dims: readonly (number | string)[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  };
}

export interface ModelParts {
  graph: onnx.IGraphProto;
  opset: number;
  irVersion: number;
  metadata: Record<string, string>;
  producerName?: string;
  producerVersion?: string;
}

/** A ModelProto importing only the default domain at `opset`. */
export function model(p: ModelParts): onnx.ModelProto {
  return onnx.ModelProto.create({
    irVersion: p.irVersion,
    opsetImport: [{ domain: '', version: p.opset }],
    producerName: p.producerName ?? 'dupn',
    producerVersion: p.producerVersion ?? '',
    graph: p.graph,
    metadataProps: Object.entries(p.metadata).map(([key, value]) => ({ key, value })),
  });
}

export function encodeModel(m: onnx.IModelProto): Uint8Array {
  return onnx.ModelProto.encode(m).finish();
}

export function decodeModel(bytes: Uint8Array): onnx.ModelProto {
  return onnx.ModelProto.decode(bytes);
}

/** `metadata_props` of a model as a plain object. */
export function metadataOf(m: onnx.IModelProto): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of m.metadataProps ?? []) if (p.key) out[p.key] = p.value ?? '';
  return out;
}
