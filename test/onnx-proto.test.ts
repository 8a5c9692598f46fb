// The protobufjs code generated from lib/onnx/onnx.proto (`npm run build:proto`) against the ONNX wire format:
// every field's number and wire type read straight off the encoded bytes (not through the generated decoder)
// and compared with upstream onnx/onnx.proto; files whose repeated numeric fields are packed (as proto3
// writers write them) decode too; dupn's own export decodes with the fields it wrote and re-encodes to the
// same bytes; and a ModelProto using every message of the subset (external data, each kind of attribute,
// symbolic dims, 64-bit integers beyond 2^53) round-trips encode → decode field for field.
import t from 'tap';
import Long from 'long';
import { Reader, Writer } from 'protobufjs/minimal';
import { buildOnnxGraphs } from '../lib/onnx/export';
import { onnx } from '../lib/onnx/generated/onnx';
import { randomTensors } from '../lib/reference/random-model';
import { noPropertiesConfig } from './support/configs';

/** The top-level (field number, wire type) pairs of one message's bytes, read with protobufjs's bare Reader. */
function tags(bytes: Uint8Array): [number, number][] {
  const reader = Reader.create(bytes);
  const out: [number, number][] = [];
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    out.push([tag >>> 3, tag & 7]);
    reader.skipType(tag & 7);
  }
  return out;
}

type Kind = 'varint' | 'float' | 'double' | 'string' | 'bytes' | 'message';
type Field = [number: number, kind: Kind, label?: 'repeated' | 'packed'];

/**
 * Upstream onnx/onnx.proto's numbers, kinds and labels for every field of the subset, written out here
 * independently of the .proto file (ModelProto.ir_version = 1, and so on); `packed` is upstream's
 * [packed = true]. A field added to lib/onnx/onnx.proto must be added here too.
 */
const UPSTREAM: Record<string, Record<string, Field>> = {
  ModelProto: {
    irVersion: [1, 'varint'], producerName: [2, 'string'], producerVersion: [3, 'string'], domain: [4, 'string'],
    modelVersion: [5, 'varint'], docString: [6, 'string'], graph: [7, 'message'], opsetImport: [8, 'message', 'repeated'],
    metadataProps: [14, 'message', 'repeated'], trainingInfo: [20, 'message', 'repeated'], functions: [25, 'message', 'repeated'],
  },
  OperatorSetIdProto: { domain: [1, 'string'], version: [2, 'varint'] },
  StringStringEntryProto: { key: [1, 'string'], value: [2, 'string'] },
  TrainingInfoProto: {
    initialization: [1, 'message'], algorithm: [2, 'message'],
    initializationBinding: [3, 'message', 'repeated'], updateBinding: [4, 'message', 'repeated'],
  },
  FunctionProto: {
    name: [1, 'string'], input: [4, 'string', 'repeated'], output: [5, 'string', 'repeated'], attribute: [6, 'string', 'repeated'],
    node: [7, 'message', 'repeated'], docString: [8, 'string'], opsetImport: [9, 'message', 'repeated'], domain: [10, 'string'],
  },
  GraphProto: {
    node: [1, 'message', 'repeated'], name: [2, 'string'], initializer: [5, 'message', 'repeated'], docString: [10, 'string'],
    input: [11, 'message', 'repeated'], output: [12, 'message', 'repeated'], valueInfo: [13, 'message', 'repeated'],
    sparseInitializer: [15, 'message', 'repeated'],
  },
  NodeProto: {
    input: [1, 'string', 'repeated'], output: [2, 'string', 'repeated'], name: [3, 'string'], opType: [4, 'string'],
    attribute: [5, 'message', 'repeated'], docString: [6, 'string'], domain: [7, 'string'],
  },
  AttributeProto: {
    name: [1, 'string'], f: [2, 'float'], i: [3, 'varint'], s: [4, 'bytes'], t: [5, 'message'], g: [6, 'message'],
    floats: [7, 'float', 'repeated'], ints: [8, 'varint', 'repeated'], strings: [9, 'bytes', 'repeated'],
    tensors: [10, 'message', 'repeated'], graphs: [11, 'message', 'repeated'], docString: [13, 'string'], tp: [14, 'message'],
    typeProtos: [15, 'message', 'repeated'], type: [20, 'varint'], refAttrName: [21, 'string'], sparseTensor: [22, 'message'],
    sparseTensors: [23, 'message', 'repeated'],
  },
  TensorProto: {
    dims: [1, 'varint', 'repeated'], dataType: [2, 'varint'], segment: [3, 'message'], floatData: [4, 'float', 'packed'],
    int32Data: [5, 'varint', 'packed'], stringData: [6, 'bytes', 'repeated'], int64Data: [7, 'varint', 'packed'],
    name: [8, 'string'], rawData: [9, 'bytes'], doubleData: [10, 'double', 'packed'], uint64Data: [11, 'varint', 'packed'],
    docString: [12, 'string'], externalData: [13, 'message', 'repeated'], dataLocation: [14, 'varint'],
  },
  'TensorProto.Segment': { begin: [1, 'varint'], end: [2, 'varint'] },
  SparseTensorProto: { values: [1, 'message'], indices: [2, 'message'], dims: [3, 'varint', 'repeated'] },
  ValueInfoProto: { name: [1, 'string'], type: [2, 'message'], docString: [3, 'string'] },
  TypeProto: { tensorType: [1, 'message'], denotation: [6, 'string'] },
  'TypeProto.Tensor': { elemType: [1, 'varint'], shape: [2, 'message'] },
  TensorShapeProto: { dim: [1, 'message', 'repeated'] },
  'TensorShapeProto.Dimension': { dimValue: [1, 'varint'], dimParam: [2, 'string'], denotation: [3, 'string'] },
};

interface Codec {
  prototype: object;
  encode(m: object): Writer;
  decode(b: Uint8Array): object;
}

function codec(path: string): Codec {
  return path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], onnx) as Codec;
}

const WIRE_TYPE: Record<Kind, number> = { varint: 0, double: 1, string: 2, bytes: 2, message: 2, float: 5 };
const SAMPLE: Record<Kind, unknown> = { varint: 3, float: 1.5, double: 2.5, string: 'x', bytes: Uint8Array.of(7), message: {} };

t.test('every field has upstream ONNX’s number and wire type, and the subset has no other field', async (t) => {
  t.same(Object.keys(onnx).sort(), Object.keys(UPSTREAM).filter((m) => !m.includes('.')).sort(), 'the messages are those listed');
  for (const [message, fields] of Object.entries(UPSTREAM)) {
    const C = codec(message);
    const generated = Object.keys(C.prototype).filter((k) => typeof (C.prototype as Record<string, unknown>)[k] !== 'function');
    t.same(generated.sort(), Object.keys(fields).sort(), `${message}: the generated fields are those listed`);
    for (const [name, [number, kind, label]] of Object.entries(fields)) {
      // Two elements for a repeated field: two tags when unpacked, one length-delimited run when packed.
      const value = label ? [SAMPLE[kind], SAMPLE[kind]] : SAMPLE[kind];
      const expected: [number, number][] =
        label === 'packed' ? [[number, 2]] : label === 'repeated' ? [[number, WIRE_TYPE[kind]], [number, WIRE_TYPE[kind]]] : [[number, WIRE_TYPE[kind]]];
      t.same(tags(C.encode({ [name]: value }).finish()), expected, `${message}.${name}: field ${number}, ${label ?? 'optional'} ${kind}`);
    }
  }
});

t.test('repeated numbers decode both packed (proto3 writers) and unpacked (proto2, onnx Python)', async (t) => {
  // TensorProto.dims = 1 and AttributeProto.ints = 8 / floats = 7 packed; float_data = 4 unpacked.
  const tensor = Writer.create();
  tensor.uint32((1 << 3) | 2).fork().int64(2).int64(3).ldelim();
  tensor.uint32((4 << 3) | 5).float(0.5);
  tensor.uint32((4 << 3) | 5).float(-2);
  const decoded = onnx.TensorProto.decode(tensor.finish());
  t.same(decoded.dims.map(Number), [2, 3], 'packed dims');
  t.same(decoded.floatData, [0.5, -2], 'unpacked float_data');
  const attr = Writer.create();
  attr.uint32((8 << 3) | 2).fork().int64(-1).int64(4).ldelim();
  attr.uint32((7 << 3) | 2).fork().float(0.25).ldelim();
  const a = onnx.AttributeProto.decode(attr.finish());
  t.same(a.ints.map(Number), [-1, 4], 'packed ints');
  t.same(a.floats, [0.25], 'packed floats');
});

t.test('a model exported by dupn decodes with the fields it wrote, and re-encodes to the same bytes', async (t) => {
  const config = noPropertiesConfig();
  const { user, heads } = buildOnnxGraphs(config, randomTensors(config, 5), 'm');
  for (const [name, bytes] of [['user', user], ...heads] as [string, Uint8Array][]) {
    const fields = [...new Set(tags(bytes).map(([n]) => n))];
    t.same(fields, [1, 2, 3, 7, 8, 14], `${name}: ir_version, producer_name, producer_version, graph, opset_import, metadata_props`);
    const m = onnx.ModelProto.decode(bytes);
    t.equal(Number(m.irVersion), 8, `${name}: ir_version`);
    t.same(m.opsetImport.map((o) => [o.domain, Number(o.version)]), [['', 17]], `${name}: opset_import`);
    t.equal(m.producerName, 'dupn', `${name}: producer_name`);
    t.ok(m.metadataProps.some((p) => p.key === 'dupn.config'), `${name}: metadata_props`);
    const graph = m.graph!;
    // Every dim of the inputs and outputs is one of the oneof: a symbolic name ("B", "T", "C", ...) or a size.
    const dims = [...graph.input!, ...graph.output!].flatMap((v) => v.type!.tensorType!.shape!.dim!);
    t.ok(dims.every((d) => (d.value === 'dimParam' ? /^[A-Z]$/.test(d.dimParam!) : d.value === 'dimValue' && Number(d.dimValue) > 0)), `${name}: dims`);
    t.ok(dims.some((d) => d.dimParam === (name === 'user' ? 'B' : 'C')), `${name}: symbolic batch dim`);
    for (const init of graph.initializer!) {
      t.equal(init.dataType, onnx.TensorProto.DataType.FLOAT, `${name}: ${init.name} FLOAT`);
      t.equal(init.rawData!.length, 4 * init.dims!.reduce<number>((a, d) => a * Number(d), 1), `${name}: ${init.name} raw_data`);
    }
    // Each attribute holds exactly the value field its type names (decoded messages hold [] for absent repeated fields).
    const AT = onnx.AttributeProto.AttributeType;
    const field: Partial<Record<number, string>> = { [AT.INT]: 'i', [AT.INTS]: 'ints', [AT.STRING]: 's', [AT.TENSOR]: 't', [AT.FLOAT]: 'f', [AT.FLOATS]: 'floats' };
    for (const attr of graph.node!.flatMap((n) => n.attribute ?? [])) {
      const present = Object.entries(attr)
        .filter(([k, v]) => !['name', 'type'].includes(k) && !(Array.isArray(v) && v.length === 0))
        .map(([k]) => k);
      t.same(present, [field[attr.type!]], `${name}: attribute ${attr.name} of type ${AT[attr.type!]}`);
    }
    const softmax = graph.node!.find((n) => n.opType === 'Softmax');
    if (softmax) t.equal(Number(softmax.attribute![0].i), -1, `${name}: negative int64 attribute`);
    t.same(onnx.ModelProto.encode(m).finish(), bytes, `${name}: decode → encode gives the same bytes`);
  }
});

t.test('a ModelProto using every message of the subset round-trips field for field', async (t) => {
  const big = Long.fromString('-9007199254740993'); // not a float64
  const u64max = Long.fromString('18446744073709551615', true);
  const external: onnx.ITensorProto = {
    name: 'w',
    dims: [2, 3],
    dataType: onnx.TensorProto.DataType.FLOAT,
    dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
    externalData: [
      { key: 'location', value: 'weights.bin' },
      { key: 'offset', value: '4096' },
      { key: 'length', value: '24' },
    ],
    docString: 'external',
  };
  const ints: onnx.ITensorProto = {
    name: 'i', dims: [Long.fromString('1099511627776'), 0], dataType: onnx.TensorProto.DataType.INT64, int64Data: [big, 0, 7],
    segment: { begin: 0, end: Long.fromNumber(2 ** 40) },
  };
  const others: onnx.ITensorProto = {
    name: 'o', floatData: [1.5, -0, Number.POSITIVE_INFINITY], int32Data: [-1, 2 ** 31 - 1], stringData: [Buffer.from('é')],
    doubleData: [Math.PI], uint64Data: [u64max, 1], rawData: Uint8Array.of(0, 255),
  };
  const sparse: onnx.ISparseTensorProto = { values: { name: 's', dims: [2], dataType: 1, floatData: [1, 2] }, indices: { dims: [2], dataType: 7, int64Data: [0, 5] }, dims: [6] };
  const type: onnx.ITypeProto = {
    tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'batch', denotation: 'DATA_BATCH' }, { dimValue: 3 }, { dimValue: big }, {}] } },
    denotation: 'TENSOR',
  };
  const AT = onnx.AttributeProto.AttributeType;
  const subgraph: onnx.IGraphProto = { name: 'body', node: [{ opType: 'Identity', input: ['a'], output: ['b'] }] };
  const attributes: onnx.IAttributeProto[] = [
    { name: 'f', type: AT.FLOAT, f: 0.5 },
    { name: 'i', type: AT.INT, i: big },
    { name: 's', type: AT.STRING, s: Buffer.from('forward') },
    { name: 't', type: AT.TENSOR, t: ints },
    { name: 'g', type: AT.GRAPH, g: subgraph },
    { name: 'st', type: AT.SPARSE_TENSOR, sparseTensor: sparse },
    { name: 'tp', type: AT.TYPE_PROTO, tp: type },
    { name: 'fs', type: AT.FLOATS, floats: [1, -2.5] },
    { name: 'is', type: AT.INTS, ints: [-1, 0, big] },
    { name: 'ss', type: AT.STRINGS, strings: [Buffer.from('a'), Buffer.from('')] },
    { name: 'ts', type: AT.TENSORS, tensors: [others, external] },
    { name: 'gs', type: AT.GRAPHS, graphs: [subgraph, {}] },
    { name: 'sts', type: AT.SPARSE_TENSORS, sparseTensors: [sparse] },
    { name: 'tps', type: AT.TYPE_PROTOS, typeProtos: [type, {}] },
    { name: 'ref', type: AT.INT, refAttrName: 'outer', docString: 'a reference' },
  ];
  const model: onnx.IModelProto = {
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }],
    producerName: 'pytorch',
    producerVersion: '2.5.0',
    domain: 'ai.example',
    modelVersion: u64max.toSigned(),
    docString: 'doc',
    graph: {
      name: 'main',
      node: [{ name: 'n', opType: 'Custom', domain: 'com.microsoft', input: ['x', ''], output: ['y'], attribute: attributes, docString: 'node' }],
      initializer: [external, ints, others],
      sparseInitializer: [sparse],
      docString: 'graph',
      input: [{ name: 'x', type, docString: 'input' }],
      output: [{ name: 'y', type: { tensorType: { elemType: 1 } } }],
      valueInfo: [{ name: 'z' }],
    },
    metadataProps: [{ key: 'k', value: 'v' }, { key: '', value: '' }],
    trainingInfo: [{ initialization: subgraph, algorithm: {}, initializationBinding: [{ key: 'w', value: 'w0' }], updateBinding: [{ key: 'w', value: 'w1' }] }],
    functions: [{ name: 'F', domain: 'local', input: ['a'], output: ['b'], attribute: ['alpha'], node: subgraph.node, docString: 'fn', opsetImport: [{ domain: '', version: 17 }] }],
  };
  const bytes = onnx.ModelProto.encode(model).finish();
  const decoded = onnx.ModelProto.decode(bytes);
  // Both sides as plain objects, 64-bit integers as decimal strings (exact), bytes as arrays, oneof names included.
  const plain = (m: onnx.IModelProto) => onnx.ModelProto.toObject(m as onnx.ModelProto, { longs: String, bytes: Array, oneofs: true });
  t.same(plain(decoded), plain(model), 'decode(encode(model)) holds every field of model');
  t.notOk(decoded.$unknowns, 'no field was unknown to the decoder');
  t.equal(String(decoded.graph!.initializer![1].int64Data![0]), '-9007199254740993', 'int64 beyond 2^53, exact');
  t.equal(String(decoded.graph!.initializer![2].uint64Data![0]), '18446744073709551615', 'uint64 max, exact');
  t.equal(decoded.graph!.input![0].type!.tensorType!.shape!.dim![0].dimParam, 'batch', 'symbolic dim');
  t.same(onnx.ModelProto.encode(decoded).finish(), bytes, 'and re-encodes to the same bytes');
});
