// Importing models from ONNX files (docs/format.md, "ONNX"). The files are built here by hand with the protobufjs
// code generated from lib/onnx/onnx.proto, following the contract (initializers = model-file tensors,
// metadata_props, one user file + one file per head), and independently of dupn's own exporter; the graphs
// are a trivial Identity, since import reads only initializers and metadata.
import t, { Test } from 'tap';
import { promises as fsp } from 'node:fs';
import * as nodePath from 'node:path';
import { onnx } from '../lib/onnx/generated/onnx';
import { ResolvedConfig, resolveConfig } from '../lib/network/config';
import { DupnError } from '../lib/errors';
import { Model } from '../lib/model/model';
import { decodeOnnxModel, readOnnxModel } from '../lib/onnx/import';
import { mulberry32, randomCandidateColumns, randomTensors, randomUserColumns } from '../lib/reference/random-model';
import { tensorSpecs } from '../lib/network/tensors';
import { noPropertiesConfig } from './support/configs';
import { rejectsCode, throwsCode } from './support/errors';

function smallConfig(): ResolvedConfig {
  return resolveConfig({
    maxSeqLen: 12,
    itemFields: [
      { name: 'item', buckets: 97, dim: 5 },
      { name: 'category', buckets: 13, dim: 3 },
      { name: 'shop', buckets: 11, dim: 0 }, // no table at all
    ],
    properties: { types: ['pv', 'buy'], typeDim: 2, gapBuckets: 6, gapDim: 1, scenes: ['a'], sceneDim: 2 },
    query: { buckets: 17, dim: 3 },
    profileFields: [{ name: 'age', buckets: 7, dim: 2 }],
    hidden: 6,
    bidirectional: true,
    attentionHidden: 4,
    tasks: [
      { name: 'ctr', kind: 'binary', target: ['item', 'shop'], layers: [4] },
      { name: 'l2r', kind: 'rank', target: ['category', 'item'], layers: [5, 3], denseFeatures: 3 },
      { name: 'ppp', kind: 'multiclass', classes: 4, layers: [] },
    ],
  });
}

// ---- writing ONNX files by hand ----

function rawBytes(data: Float32Array): Uint8Array {
  const out = new Uint8Array(4 * data.length);
  const view = new DataView(out.buffer);
  data.forEach((v, i) => view.setFloat32(4 * i, v, true));
  return out;
}

function initializer(name: string, data: Float32Array, shape: number[]): onnx.ITensorProto {
  return { name, dataType: onnx.TensorProto.DataType.FLOAT, dims: shape, rawData: rawBytes(data) };
}

function modelProto(meta: Record<string, string>, initializers: onnx.ITensorProto[]): onnx.IModelProto {
  const floatInfo = (name: string): onnx.IValueInfoProto => ({
    name,
    type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimValue: 1 }] } } },
  });
  return {
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    producerName: 'onnx-import.test',
    graph: {
      name: 'trivial',
      node: [{ opType: 'Identity', input: ['x'], output: ['y'], name: 'id' }],
      input: [floatInfo('x')],
      output: [floatInfo('y')],
      initializer: initializers,
    },
    metadataProps: Object.entries(meta).map(([key, value]) => ({ key, value })),
  };
}

function encode(m: onnx.IModelProto): Uint8Array {
  return onnx.ModelProto.encode(m).finish();
}

/** The contract's split: the user file holds everything but head.*; a head its layers and its target tables. */
function belongsTo(config: ResolvedConfig, name: string): string[] {
  if (name.startsWith('head.')) return [name.split('.')[1]];
  const out = ['user'];
  for (const task of config.tasks) {
    if (task.kind !== 'multiclass' && task.target.some((f) => name === `emb.item.${f}`)) out.push(task.name);
  }
  return out;
}

type Tweak = (m: onnx.IModelProto) => void;

interface Files {
  userPath: string;
  /** Encoded bytes of every file, keyed 'user' or the task name (after tweaks). */
  bytes: Map<string, Uint8Array>;
}

/**
 * Writes `<dir>/<stem>.onnx` and `<dir>/<stem>.<task>.onnx` for `tensors`. `tweak` edits a file's ModelProto
 * before it is encoded (key 'user' or a task name); `omitEmpty` leaves out tensors with no elements.
 */
async function writeOnnxModel(
  dir: string,
  config: ResolvedConfig,
  tensors: Map<string, Float32Array>,
  opts: { stem?: string; tweak?: Record<string, Tweak>; omitEmpty?: boolean } = {},
): Promise<Files> {
  const stem = opts.stem ?? 'model';
  const configJson = JSON.stringify(config);
  const common = { 'dupn.format': 'dupn', 'dupn.format_version': '1', 'dupn.config': configJson };
  const groups = new Map<string, onnx.ITensorProto[]>([['user', []], ...config.tasks.map((task) => [task.name, []] as [string, onnx.ITensorProto[]])]);
  for (const spec of tensorSpecs(config)) {
    const data = tensors.get(spec.name)!;
    if (opts.omitEmpty && data.length === 0) continue;
    for (const owner of belongsTo(config, spec.name)) groups.get(owner)!.push(initializer(spec.name, data, spec.shape));
  }
  const heads = Object.fromEntries(config.tasks.map((task) => [task.name, `${stem}.${task.name}.onnx`]));
  const bytes = new Map<string, Uint8Array>();
  const models = new Map<string, onnx.IModelProto>();
  models.set('user', modelProto({ ...common, 'dupn.graph': 'user', 'dupn.heads': JSON.stringify(heads) }, groups.get('user')!));
  for (const task of config.tasks) {
    models.set(task.name, modelProto({ ...common, 'dupn.graph': 'head', 'dupn.task': task.name }, groups.get(task.name)!));
  }
  for (const [key, m] of models) {
    opts.tweak?.[key]?.(m);
    const b = encode(m);
    bytes.set(key, b);
    await fsp.writeFile(nodePath.join(dir, key === 'user' ? `${stem}.onnx` : heads[key]), b);
  }
  return { userPath: nodePath.join(dir, `${stem}.onnx`), bytes };
}

function meta(m: onnx.IModelProto, key: string, value: string | undefined): void {
  const props = m.metadataProps!.filter((p) => p.key !== key);
  if (value !== undefined) props.push({ key, value });
  m.metadataProps = props;
}

function init(m: onnx.IModelProto, name: string): onnx.ITensorProto {
  const found = m.graph!.initializer!.find((i) => i.name === name);
  if (!found) throw new Error(`test bug: no initializer ${name}`);
  return found;
}

function bitsEqual(a: Float32Array, b: Float32Array): boolean {
  return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

// ---- (a) round trip: bit-identical to fromTensors ----

async function checkSameOutputs(t: Test, config: ResolvedConfig, a: Model, b: Model, seed: number): Promise<void> {
  const lengths = Array.from({ length: 40 }, (_, i) => (i * 7 + seed) % (config.maxSeqLen + 3));
  const cols = randomUserColumns(config, seed, lengths.map((l) => Math.min(l, config.maxSeqLen)));
  const ua = a.encodeColumnsSync(cols);
  const ub = b.encodeColumnsSync(cols);
  t.ok(bitsEqual(ua, ub), 'encodeColumnsSync: same bits');
  const users = await a.encodeColumns(cols);
  t.ok(bitsEqual(users, ub), 'encodeColumns (async): same bits');
  for (const task of config.tasks) {
    if (task.kind === 'multiclass') {
      t.ok(bitsEqual(a.predictFromVectorsSync(task.name, ua), b.predictFromVectorsSync(task.name, ub)), `${task.name}: predictFromVectorsSync same bits`);
      continue;
    }
    const cands = randomCandidateColumns(config, task, seed + 1, 25);
    for (const u of [0, 7, lengths.length - 1]) {
      const user = ua.slice(u * a.userDim, (u + 1) * a.userDim);
      t.ok(bitsEqual(a.scoreSync(task.name, user, cands), b.scoreSync(task.name, user, cands)), `${task.name}: scoreSync same bits (user ${u})`);
    }
  }
}

t.test('fromOnnx gives bit-identical outputs to fromTensors (binary, rank with dense features, multiclass)', async (t) => {
  const config = smallConfig();
  const tensors = randomTensors(config, 42);
  const dir = t.testdir({});
  const { userPath } = await writeOnnxModel(dir, config, tensors);

  const read = await readOnnxModel(userPath);
  t.same(read.config, config, 'config round-trips');
  t.same([...read.tensors.keys()], tensorSpecs(config).map((s) => s.name), 'every tensor, in canonical order');
  for (const [name, data] of tensors) t.ok(bitsEqual(read.tensors.get(name)!, data), `tensor ${name} bit-identical`);

  const fromOnnx = await Model.fromOnnx(userPath, { threads: 2 });
  const fromTensors = Model.fromTensors(config, tensors, { threads: 2 });
  t.same(fromOnnx.config, fromTensors.config);
  t.equal(fromOnnx.userDim, fromTensors.userDim);
  await checkSameOutputs(t, config, fromOnnx, fromTensors, 5);
  fromOnnx.dispose();
  fromTensors.dispose();
});

t.test('float_data instead of raw_data, empty tensors left out (Dp = 0), unaligned raw_data', async (t) => {
  const config = noPropertiesConfig();
  const tensors = randomTensors(config, 3);
  t.equal(tensors.get('lstm.fw.wp')!.length, 0, 'the config has an empty wp');
  const dir = t.testdir({});
  const { userPath } = await writeOnnxModel(dir, config, tensors, {
    omitEmpty: true,
    tweak: {
      user: (m) => {
        const wh = init(m, 'lstm.fw.wh');
        wh.floatData = Array.from(tensors.get('lstm.fw.wh')!);
        wh.rawData = null;
        // A doc string before the data shifts raw_data of the next tensors off 4-byte alignment in some files.
        init(m, 'attn.b').docString = 'x';
      },
    },
  });
  const read = await readOnnxModel(userPath);
  t.equal(read.tensors.get('lstm.fw.wp')!.length, 0, 'the left-out empty tensor is created');
  for (const [name, data] of tensors) t.ok(bitsEqual(read.tensors.get(name)!, data), `tensor ${name} bit-identical`);

  const a = await Model.fromOnnx(userPath, { threads: 1 });
  const b = Model.fromTensors(config, tensors, { threads: 1 });
  await checkSameOutputs(t, config, a, b, 9);
  a.dispose();
  b.dispose();

  // An empty tensor that is present (dims [3H, 0], no data) is accepted too.
  const dir2 = t.testdir({});
  const files = await writeOnnxModel(dir2, config, tensors);
  t.equal(decodeOnnxModel(files.bytes.get('user')!, 'u.onnx').tensors.get('lstm.fw.wp')!.length, 0);
  t.ok((await readOnnxModel(files.userPath)).tensors.has('lstm.fw.wp'));
});

t.test('decodeOnnxModel reports the graph, task and heads', async (t) => {
  const config = smallConfig();
  const { bytes } = await writeOnnxModel(t.testdir({}), config, randomTensors(config, 1), { stem: 'm' });
  const user = decodeOnnxModel(bytes.get('user')!, 'm.onnx');
  t.equal(user.graph, 'user');
  t.same(user.heads, { ctr: 'm.ctr.onnx', l2r: 'm.l2r.onnx', ppp: 'm.ppp.onnx' });
  t.same([...user.tensors.keys()].filter((n) => n.startsWith('head.')), []);
  const head = decodeOnnxModel(bytes.get('l2r')!, 'm.l2r.onnx');
  t.equal(head.graph, 'head');
  t.equal(head.task, 'l2r');
  t.same([...head.tensors.keys()].sort(), ['emb.item.category', 'emb.item.item', 'head.l2r.0.b', 'head.l2r.0.w', 'head.l2r.1.b', 'head.l2r.1.w', 'head.l2r.2.b', 'head.l2r.2.w']);
  t.same([...decodeOnnxModel(bytes.get('ppp')!, 'm.ppp.onnx').tensors.keys()].sort(), ['head.ppp.0.b', 'head.ppp.0.w']);

  // The same bytes at every offset mod 4: raw_data is read in place when aligned and copied when not, same values.
  const tensors = randomTensors(config, 1);
  for (let shift = 0; shift < 4; shift++) {
    const b = bytes.get('user')!;
    const shifted = new Uint8Array(b.length + shift).subarray(shift);
    shifted.set(b);
    const got = decodeOnnxModel(shifted, 'm.onnx').tensors;
    const views = [...got.values()].filter((a) => a.buffer === shifted.buffer).length;
    t.ok([...got].every(([name, a]) => bitsEqual(a, tensors.get(name)!)), `shift ${shift}: bit-identical (${views} of ${got.size} read in place)`);
  }
});

// ---- (b) every kind of bad file ----

t.test('decodeOnnxModel refuses bad files with E_MODEL_FILE naming the problem', async (t) => {
  const config = smallConfig();
  const tensors = randomTensors(config, 7);
  const dir = t.testdir({});
  const good = (await writeOnnxModel(dir, config, tensors)).bytes;

  /** The user file after `tweak`, decoded. */
  const userWith = (tweak: Tweak) => {
    const m = onnx.ModelProto.decode(good.get('user')!);
    tweak(m);
    return () => decodeOnnxModel(encode(m), 'bad.onnx');
  };
  const expectBad = (fn: () => unknown, field: string, label: string) => {
    throwsCode(t, fn, 'E_MODEL_FILE', field, label);
    try {
      fn();
    } catch (e) {
      t.ok((e as Error).message.startsWith('bad.onnx: '), `${label}: message starts with the source`);
    }
  };

  // Not protobuf / not ONNX.
  expectBad(() => decodeOnnxModel(Uint8Array.of(0x3a, 0x7f, 0x0a, 0x00), 'bad.onnx'), 'protobuf decoding failed', 'graph length past the end');
  expectBad(() => decodeOnnxModel(Buffer.from('{"this is": "JSON, not protobuf"}'), 'bad.onnx'), 'ONNX', 'JSON text');
  expectBad(() => decodeOnnxModel(new Uint8Array(0), 'bad.onnx'), 'dupn.format', 'empty file');
  const user = good.get('user')!;
  expectBad(() => decodeOnnxModel(user.subarray(0, Math.floor(user.length / 2)), 'bad.onnx'), 'protobuf decoding failed', 'truncated');
  expectBad(() => decodeOnnxModel(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), 'bad.onnx'), 'protobuf decoding failed', 'bad varint');

  // Metadata.
  expectBad(userWith((m) => meta(m, 'dupn.format', undefined)), 'dupn.format', 'missing dupn.format');
  expectBad(userWith((m) => meta(m, 'dupn.format', 'other')), 'dupn.format', 'wrong dupn.format');
  expectBad(userWith((m) => meta(m, 'dupn.format_version', '2')), 'dupn.format_version "2" is not supported', 'wrong version');
  expectBad(userWith((m) => meta(m, 'dupn.config', undefined)), 'dupn.config is missing', 'missing config');
  expectBad(userWith((m) => meta(m, 'dupn.config', '{not json')), 'dupn.config is not valid JSON', 'bad config JSON');
  expectBad(userWith((m) => meta(m, 'dupn.config', JSON.stringify({ ...config, hidden: 0 }))), 'config.hidden', 'invalid config');
  expectBad(userWith((m) => meta(m, 'dupn.graph', 'both')), 'dupn.graph', 'bad dupn.graph');
  expectBad(userWith((m) => m.metadataProps!.push({ key: 'dupn.format', value: 'dupn' })), 'dupn.format appears more than once', 'duplicate key');
  expectBad(userWith((m) => meta(m, 'dupn.heads', undefined)), 'dupn.heads is missing', 'missing heads');
  expectBad(userWith((m) => meta(m, 'dupn.heads', '[1]')), 'dupn.heads must be a JSON object', 'heads not an object');
  expectBad(userWith((m) => meta(m, 'dupn.heads', JSON.stringify({ ctr: 'a.onnx', l2r: 'b.onnx' }))), 'no file for task "ppp"', 'head missing from dupn.heads');
  expectBad(userWith((m) => meta(m, 'dupn.heads', JSON.stringify({ ctr: 'a', l2r: 'b', ppp: 'c', zzz: 'd' }))), '"zzz"', 'unknown task in dupn.heads');
  for (const name of ['../model.ctr.onnx', 'sub/model.ctr.onnx', 'sub\\x.onnx', '..', '', '/etc/passwd']) {
    expectBad(userWith((m) => meta(m, 'dupn.heads', JSON.stringify({ ctr: name, l2r: 'b', ppp: 'c' }))), 'dupn.heads["ctr"]', `head name ${JSON.stringify(name)}`);
  }
  const head = onnx.ModelProto.decode(good.get('ctr')!);
  meta(head, 'dupn.task', 'nosuch');
  expectBad(() => decodeOnnxModel(encode(head), 'bad.onnx'), 'dupn.task "nosuch"', 'unknown dupn.task');

  // Initializers.
  expectBad(userWith((m) => (init(m, 'attn.w').dims = [...init(m, 'attn.w').dims!].reverse())), 'initializer "attn.w": dims', 'wrong dims');
  expectBad(userWith((m) => (init(m, 'attn.b').dims = [4, 1])), 'initializer "attn.b": dims [4, 1] do not match the config, expected [4]', 'wrong rank');
  expectBad(userWith((m) => (init(m, 'attn.b').dataType = onnx.TensorProto.DataType.DOUBLE)), 'initializer "attn.b": data_type 11 (DOUBLE)', 'wrong data_type');
  expectBad(userWith((m) => (init(m, 'attn.v').rawData = init(m, 'attn.v').rawData!.subarray(4))), 'initializer "attn.v": raw_data holds 12 bytes', 'raw_data too short');
  expectBad(userWith((m) => (init(m, 'attn.v').rawData = new Uint8Array(20))), 'initializer "attn.v": raw_data holds 20 bytes', 'raw_data too long');
  expectBad(userWith((m) => (init(m, 'attn.v').rawData = null)), 'initializer "attn.v": raw_data holds 0 bytes', 'no data');
  expectBad(userWith((m) => (init(m, 'attn.v').floatData = [1, 2, 3, 4])), 'both raw_data and float_data', 'both');
  expectBad(
    userWith((m) => {
      init(m, 'attn.v').rawData = null;
      init(m, 'attn.v').floatData = [1, 2, 3];
    }),
    'float_data holds 3 values',
    'float_data length',
  );
  expectBad(userWith((m) => (init(m, 'attn.v').int32Data = [1])), 'int32Data', 'data in another field');
  const nan = (name: string, value: number, at: number) =>
    userWith((m) => {
      const bytes = Uint8Array.from(init(m, name).rawData!);
      new DataView(bytes.buffer).setFloat32(4 * at, value, true);
      init(m, name).rawData = bytes;
    });
  expectBad(nan('lstm.fw.wh', Number.NaN, 3), 'initializer "lstm.fw.wh": non-finite value (NaN) at index 3', 'NaN weight');
  expectBad(nan('emb.item.item', -Infinity, 0), 'initializer "emb.item.item": non-finite value (-Infinity) at index 0', '-Infinity weight');
  expectBad(
    userWith((m) => {
      init(m, 'attn.v').rawData = null;
      init(m, 'attn.v').floatData = [1, Number.POSITIVE_INFINITY, 3, 4];
    }),
    'initializer "attn.v": non-finite value (Infinity) at index 1',
    'Infinity in float_data',
  );
  expectBad(userWith((m) => m.graph!.initializer!.push(initializer('emb.item.nosuch', new Float32Array(2), [1, 2]))), 'unknown initializer "emb.item.nosuch"', 'unknown initializer');
  expectBad(userWith((m) => m.graph!.initializer!.push(initializer('emb.item.shop', new Float32Array(0), [11, 0]))), 'unknown initializer "emb.item.shop"', 'a dim-0 table has no tensor');
  expectBad(userWith((m) => m.graph!.initializer!.push(initializer('head.ppp.0.b', new Float32Array(4), [4]))), 'initializer "head.ppp.0.b" does not belong in the user graph', 'head tensor in the user file');
  expectBad(userWith((m) => m.graph!.initializer!.push(init(m, 'attn.b'))), 'initializer "attn.b" appears more than once', 'duplicate initializer');
  expectBad(userWith((m) => (init(m, 'attn.b').name = '')), 'has no name', 'nameless initializer');
  expectBad(
    userWith((m) => {
      init(m, 'attn.b').dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      init(m, 'attn.b').externalData = [{ key: 'location', value: 'weights.bin' }];
      init(m, 'attn.b').rawData = null;
    }),
    'initializer "attn.b": external data is not supported',
    'external data',
  );
  expectBad(userWith((m) => (m.graph!.sparseInitializer = [{ values: initializer('attn.b', new Float32Array(4), [4]) }])), 'sparse_initializer', 'sparse initializer');
  expectBad(userWith((m) => (m.graph = null)), 'no graph', 'no graph');
  const head2 = onnx.ModelProto.decode(good.get('ppp')!);
  head2.graph!.initializer!.push(initializer('emb.item.item', tensors.get('emb.item.item')!, [97, 5]));
  expectBad(() => decodeOnnxModel(encode(head2), 'bad.onnx'), 'initializer "emb.item.item" does not belong in the head graph of task "ppp"', 'target table in a multiclass head');
});

t.test('readOnnxModel refuses inconsistent or incomplete sets of files', async (t) => {
  const config = smallConfig();
  const tensors = randomTensors(config, 11);
  const write = (tweak: Record<string, Tweak>) => writeOnnxModel(t.testdir({}), config, tensors, { tweak });
  const drop = (name: string): Tweak => (m) => {
    m.graph!.initializer = m.graph!.initializer!.filter((i) => i.name !== name);
  };

  await rejectsCode(t, () => readOnnxModel(nodePath.join(t.testdir({}), 'absent.onnx')), 'E_IO', 'absent.onnx', 'user file missing');
  await rejectsCode(t, () => Model.fromOnnx(nodePath.join(t.testdir({}), 'absent.onnx')), 'E_IO', 'absent.onnx', 'Model.fromOnnx: user file missing');

  {
    const { userPath } = await write({ user: drop('attn.v') });
    await rejectsCode(t, () => readOnnxModel(userPath), 'E_MODEL_FILE', `${userPath}: missing initializer "attn.v" (shape [4]`, 'missing user tensor');
    await rejectsCode(t, () => Model.fromOnnx(userPath), 'E_MODEL_FILE', 'missing initializer "attn.v"', 'Model.fromOnnx: missing tensor');
  }
  {
    const { userPath } = await write({ l2r: drop('head.l2r.1.w') });
    const headPath = nodePath.join(nodePath.dirname(userPath), 'model.l2r.onnx');
    await rejectsCode(t, () => readOnnxModel(userPath), 'E_MODEL_FILE', `${headPath}: missing initializer "head.l2r.1.w"`, 'missing head tensor names the head file');
  }
  {
    // Each file must be runnable on its own: a head's target table must be in the head file too …
    const { userPath } = await write({ ctr: drop('emb.item.item') });
    const headPath = nodePath.join(nodePath.dirname(userPath), 'model.ctr.onnx');
    await rejectsCode(t, () => readOnnxModel(userPath), 'E_MODEL_FILE', `${headPath}: missing initializer "emb.item.item"`, 'target table missing from its head file');
  }
  {
    // … and an item table in the user file, even when a head file has it.
    const { userPath } = await write({ user: drop('emb.item.category') });
    await rejectsCode(t, () => readOnnxModel(userPath), 'E_MODEL_FILE', `${userPath}: missing initializer "emb.item.category"`, 'item table only in a head file');
  }
  {
    const dir = t.testdir({});
    const { userPath } = await writeOnnxModel(dir, config, tensors);
    const headPath = nodePath.join(dir, 'model.ppp.onnx');
    await fsp.unlink(headPath);
    await rejectsCode(t, () => readOnnxModel(userPath), 'E_IO', headPath, 'head file missing');
  }
  {
    const { userPath } = await write({ user: (m) => meta(m, 'dupn.heads', JSON.stringify({ ctr: '../model.ctr.onnx', l2r: 'model.l2r.onnx', ppp: 'model.ppp.onnx' })) });
    await rejectsCode(t, () => readOnnxModel(userPath), 'E_MODEL_FILE', 'dupn.heads["ctr"] "../model.ctr.onnx" must be a plain file name', 'head name with ../');
  }
  {
    const other = JSON.stringify({ ...config, maxSeqLen: config.maxSeqLen + 1 });
    const { userPath } = await write({ l2r: (m) => meta(m, 'dupn.config', other) });
    await rejectsCode(t, () => readOnnxModel(userPath), 'E_MODEL_FILE', 'dupn.config differs from that of the user file', 'head config differs');
    await rejectsCode(t, () => readOnnxModel(userPath), 'E_MODEL_FILE', '(config.maxSeqLen)', 'head config difference named');
  }
  {
    const changed = Float32Array.from(tensors.get('emb.item.item')!);
    changed[10] += 1;
    const { userPath } = await write({ ctr: (m) => (init(m, 'emb.item.item').rawData = rawBytes(changed)) });
    await rejectsCode(t, () => readOnnxModel(userPath), 'E_MODEL_FILE', 'initializer "emb.item.item" differs from the one in', 'shared tensor differs');
  }
  {
    const { userPath } = await write({ user: (m) => meta(m, 'dupn.heads', JSON.stringify({ ctr: 'model.ctr.onnx', l2r: 'model.ctr.onnx', ppp: 'model.ppp.onnx' })) });
    await rejectsCode(t, () => readOnnxModel(userPath), 'E_MODEL_FILE', 'as the head of task "l2r", but its metadata_props say dupn.graph = "head", dupn.task = "ctr"', 'head file of the wrong task');
  }
  {
    const { userPath } = await write({});
    const headPath = nodePath.join(nodePath.dirname(userPath), 'model.ctr.onnx');
    await rejectsCode(t, () => readOnnxModel(headPath), 'E_MODEL_FILE', 'open the user file', 'a head file given as the user file');
  }
});

// ---- (c) fuzz: corrupted files never escape as anything but E_MODEL_FILE ----

t.test('fuzz: flipped bytes and truncations give a model or E_MODEL_FILE, nothing else', async (t) => {
  const config = smallConfig();
  const { bytes } = await writeOnnxModel(t.testdir({}), config, randomTensors(config, 3));
  const files = ['user', 'l2r'].map((k) => bytes.get(k)!);
  const rand = mulberry32(20240601);
  const counts = { ok: 0, bad: 0 };
  const failures: string[] = [];
  for (let iter = 0; iter < 2000; iter++) {
    const original = files[iter % 4 === 3 ? 1 : 0];
    let b = Uint8Array.from(original);
    const mode = Math.floor(rand() * 3); // 0: flip, 1: truncate, 2: both
    if (mode !== 1) {
      const flips = 1 + Math.floor(rand() * 8);
      for (let k = 0; k < flips; k++) {
        const at = Math.floor(rand() * b.length);
        b[at] = rand() < 0.5 ? b[at] ^ (1 << Math.floor(rand() * 8)) : Math.floor(rand() * 256);
      }
    }
    if (mode !== 0) b = b.subarray(0, Math.floor(rand() * b.length));
    try {
      decodeOnnxModel(b, 'fuzz.onnx');
      counts.ok++;
    } catch (e) {
      if (e instanceof DupnError && e.code === 'E_MODEL_FILE' && e.message.startsWith('fuzz.onnx: ')) counts.bad++;
      else failures.push(`iteration ${iter} (mode ${mode}, ${b.length} bytes): ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    }
  }
  t.same(failures.slice(0, 10), [], 'every failure is a DupnError E_MODEL_FILE naming the source');
  t.equal(counts.ok + counts.bad, 2000);
  t.ok(counts.bad > 500, `most corruptions are refused (${counts.bad} refused, ${counts.ok} accepted)`);
  t.comment(`fuzz: ${counts.ok} accepted, ${counts.bad} refused`);
});
