/**
 * Reading a model back from its ONNX files (docs/format.md, "ONNX"): the user file `<stem>.onnx` and one head
 * file per task. Only the metadata and the initializers are read — the initializers are the model-file tensors
 * under their own names, shapes and values — so the graphs themselves are never interpreted.
 *
 * Like the safetensors loader, this trusts nothing in the files: protobuf decoding errors are wrapped, the
 * config goes through the same validation as a caller's, and every initializer is checked against the layout
 * that config implies (name, graph, data type, dims, byte length, finiteness) before anything reaches native code.
 */
import * as nodePath from 'node:path';
import { onnx } from './generated/onnx';
import { ONNX_FORMAT_VERSION } from './export';
import { ResolvedConfig } from '../network/config';
import { DupnError, describe } from '../errors';
import { readRegularFile } from '../io/atomic-file';
import { checkModelMetadata, firstNonFinite, float32At, shapeText } from '../io/model-file';
import { TensorSpec, elementCount, isHeadTensor, isTaskTensor, itemTableName, tensorSpecs } from '../network/tensors';

/** What one ONNX file of a dupn model holds, after validation. */
export interface OnnxModelFile {
  config: ResolvedConfig;
  /** The file's initializers, by name, in file order; each already checked against the config. */
  tensors: Map<string, Float32Array>;
  /** `dupn.graph`: the user part, or one task's head. */
  graph: 'user' | 'head';
  /** `dupn.task` of a head file. */
  task?: string;
  /** `dupn.heads` of the user file: task name → head file name, relative to the user file's folder. */
  heads?: Record<string, string>;
}

type Fail = (problem: string, cause?: unknown) => never;

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const EXTERNAL = onnx.TensorProto.DataLocation.EXTERNAL;

/** The tensor names a graph may hold: the user graph everything but `head.*`; a head its own layers and target tables. */
function graphTensorNames(config: ResolvedConfig, graph: 'user' | 'head', taskName?: string): Set<string> {
  const specs = tensorSpecs(config);
  if (graph === 'user') return new Set(specs.filter((s) => !isHeadTensor(s.name)).map((s) => s.name));
  const task = config.tasks.find((t) => t.name === taskName);
  const names = new Set(specs.filter((s) => taskName !== undefined && isTaskTensor(s.name, taskName)).map((s) => s.name));
  if (task && task.kind !== 'multiclass') {
    for (const field of task.target) {
      if (config.itemFields.some((f) => f.name === field && f.dim > 0)) names.add(itemTableName(field));
    }
  }
  return names;
}

/** A dims entry (int64, so a `Long` when protobufjs has long.js) as a plain number; exact for every size a config allows. */
function dimValue(d: unknown): number {
  if (typeof d === 'number') return d;
  if (typeof d === 'object' && d !== null && typeof (d as { toNumber?: unknown }).toNumber === 'function') {
    return (d as { toNumber(): number }).toNumber();
  }
  return Number.NaN;
}

/** A head file name from `dupn.heads`: a plain file name in the user file's folder, nothing that could leave it. */
function checkHeadFileName(value: unknown, key: string, fail: Fail): string {
  if (typeof value !== 'string' || value.length === 0) fail(`${key} must be a file name, got ${describe(value)}`);
  if (/[/\\\0]/.test(value) || value.includes('..')) {
    fail(`${key} ${describe(value)} must be a plain file name in the user file's folder (no path separators, no "..")`);
  }
  return value;
}

/** One initializer's data as float32, after checking its type, dims and byte length against `spec`. */
function initializerData(init: onnx.ITensorProto, spec: TensorSpec, where: string, fail: Fail): Float32Array {
  if (init.dataLocation === EXTERNAL || (init.externalData?.length ?? 0) > 0) {
    fail(`${where}: external data is not supported (the weights must be stored inside the file, in raw_data or float_data)`);
  }
  if (init.segment) fail(`${where}: segmented tensors are not supported`);
  const dataType = init.dataType ?? 0;
  if (dataType !== FLOAT) {
    const typeName = onnx.TensorProto.DataType[dataType] ?? 'unknown';
    fail(`${where}: data_type ${dataType} (${typeName}), expected ${FLOAT} (FLOAT)`);
  }
  const dims = (init.dims ?? []).map(dimValue);
  if (dims.length !== spec.shape.length || dims.some((d, i) => d !== spec.shape[i])) {
    const shown = (init.dims ?? []).map((d) => String(d));
    fail(`${where}: dims [${shown.join(', ')}] do not match the config, expected ${shapeText(spec.shape)}`);
  }
  const count = elementCount(spec.shape);
  for (const field of ['int32Data', 'stringData', 'int64Data', 'doubleData', 'uint64Data'] as const) {
    if ((init[field]?.length ?? 0) > 0) fail(`${where}: holds ${field} values, but a FLOAT tensor keeps its values in raw_data or float_data`);
  }
  const raw = init.rawData ?? new Uint8Array(0);
  const floats = init.floatData ?? [];
  if (raw.length > 0 && floats.length > 0) fail(`${where}: has both raw_data and float_data`);
  if (floats.length > 0) {
    if (floats.length !== count) fail(`${where}: float_data holds ${floats.length} values, dims ${shapeText(spec.shape)} need ${count}`);
    return Float32Array.from(floats);
  }
  if (raw.length !== 4 * count) {
    fail(`${where}: raw_data holds ${raw.length} bytes, dims ${shapeText(spec.shape)} need ${4 * count} (${count} float32 values)`);
  }
  // raw_data is a view into `bytes`; float32At keeps it a view when aligned, else copies (and byte-swaps on big-endian hosts).
  return float32At(raw, 0, count);
}

/**
 * Decodes and validates one ONNX file of a dupn model (the user file or a head file) from untrusted bytes.
 * `source` (usually the path) starts every error message. Tensors may be views over `bytes`, which must not
 * be modified afterwards. Throws only `DupnError('E_MODEL_FILE')`, naming the field or tensor at fault.
 */
export function decodeOnnxModel(bytes: Uint8Array, source: string): OnnxModelFile {
  const fail: Fail = (problem, cause) => {
    throw new DupnError('E_MODEL_FILE', `${source}: ${problem}`, cause === undefined ? undefined : { cause });
  };
  if (!(bytes instanceof Uint8Array)) fail(`expected the file's bytes as a Uint8Array, got ${describe(bytes)}`);

  let model: onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    // protobufjs throws plain Errors and RangeErrors (index out of range, invalid wire type, stack overflow on
    // absurd nesting); none of them may escape as anything but a model-file error.
    return fail(`not a valid ONNX file (protobuf decoding failed: ${err instanceof Error ? err.message : String(err)})`, err);
  }

  // metadata_props: a dupn.* key given twice would be ambiguous, so it is refused.
  const meta = new Map<string, string>();
  for (const entry of model.metadataProps ?? []) {
    const key = entry.key ?? '';
    if (!key.startsWith('dupn.')) continue;
    if (meta.has(key)) fail(`metadata_props ${key} appears more than once`);
    meta.set(key, entry.value ?? '');
  }
  const config = checkModelMetadata(
    { format: meta.get('dupn.format'), version: meta.get('dupn.format_version'), config: meta.get('dupn.config') },
    {
      format: 'metadata_props dupn.format',
      version: 'metadata_props dupn.format_version',
      config: 'metadata_props dupn.config',
      file: 'dupn ONNX model',
    },
    fail,
    [ONNX_FORMAT_VERSION],
  );

  const graphKind = meta.get('dupn.graph');
  if (graphKind !== 'user' && graphKind !== 'head') {
    fail(`metadata_props dupn.graph is ${describe(graphKind)}, expected "user" or "head"`);
  }
  const taskNames = config.tasks.map((t) => t.name);
  let task: string | undefined;
  let heads: Record<string, string> | undefined;
  if (graphKind === 'head') {
    task = meta.get('dupn.task');
    if (task === undefined || !taskNames.includes(task)) {
      fail(`metadata_props dupn.task ${describe(task)} names no task of the config (tasks: ${taskNames.join(', ') || 'none'})`);
    }
  } else {
    const text = meta.get('dupn.heads');
    if (text === undefined) fail('metadata_props dupn.heads is missing (the user file must list its head files)');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      return fail(`metadata_props dupn.heads is not valid JSON (${err instanceof Error ? err.message : String(err)})`, err);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      fail(`metadata_props dupn.heads must be a JSON object mapping task names to file names, got ${describe(parsed)}`);
    }
    const entries = parsed as Record<string, unknown>;
    for (const key of Object.keys(entries)) {
      if (!taskNames.includes(key)) fail(`metadata_props dupn.heads lists ${describe(key)}, which is not a task of the config`);
    }
    heads = {};
    for (const name of taskNames) {
      if (!Object.prototype.hasOwnProperty.call(entries, name)) fail(`metadata_props dupn.heads has no file for task "${name}"`);
      heads[name] = checkHeadFileName(entries[name], `metadata_props dupn.heads["${name}"]`, fail);
    }
  }

  const graph = model.graph;
  if (!graph) fail('the model has no graph');
  if ((graph.sparseInitializer?.length ?? 0) > 0) fail('graph.sparse_initializer is not supported (dupn weights are dense)');

  const specs = new Map(tensorSpecs(config).map((s) => [s.name, s]));
  const allowed = graphTensorNames(config, graphKind, task);
  const graphName = graphKind === 'user' ? 'the user graph' : `the head graph of task "${task}"`;
  const tensors = new Map<string, Float32Array>();
  (graph.initializer ?? []).forEach((init, index) => {
    const name = init.name ?? '';
    const where = `initializer "${name}"`;
    if (name === '') fail(`initializer ${index} has no name`);
    const spec = specs.get(name);
    if (spec === undefined) fail(`unknown ${where}: not a tensor of this config (see docs/format.md for the names)`);
    if (!allowed.has(name)) fail(`${where} does not belong in ${graphName}`);
    if (tensors.has(name)) fail(`${where} appears more than once`);
    const data = initializerData(init, spec, where, fail);
    const bad = firstNonFinite(data);
    if (bad >= 0) fail(`${where}: non-finite value (${data[bad]}) at index ${bad}`);
    tensors.set(name, data);
  });

  const out: OnnxModelFile = { config, tensors, graph: graphKind };
  if (task !== undefined) out.task = task;
  if (heads !== undefined) out.heads = heads;
  return out;
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** The first top-level config key on which two resolved configs differ, or null when they are equal. */
function configDifference(a: ResolvedConfig, b: ResolvedConfig): string | null {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]) as Set<keyof ResolvedConfig>;
  for (const key of keys) if (JSON.stringify(a[key]) !== JSON.stringify(b[key])) return key;
  return null;
}

/**
 * Reads a model from its ONNX files: the user file at `path`, then every head file its `dupn.heads` lists
 * (relative to the user file's folder). Each file must hold every tensor its graph uses (a head file also the
 * `emb.item.*` tables of its targets), the files must agree on the config and on every tensor they share (bit
 * for bit), and tensors with no elements, which a writer may leave out, are created empty. Tensors come back in canonical ({@link tensorSpecs}) order.
 * Rejects with `E_IO` when a file cannot be read, `E_MODEL_FILE` when one is bad.
 */
export async function readOnnxModel(path: string): Promise<{ config: ResolvedConfig; tensors: Map<string, Float32Array> }> {
  const user = decodeOnnxModel(await readRegularFile(path, 'ONNX model file'), path);
  if (user.graph !== 'user') {
    throw new DupnError('E_MODEL_FILE', `${path}: metadata_props dupn.graph is "${user.graph}" (the head of task "${user.task}"); open the user file, which lists the heads`);
  }
  const { config } = user;
  const specs = new Map(tensorSpecs(config).map((s) => [s.name, s]));
  /** Each file must hold every tensor its graph uses, except empty ones, which a writer may leave out. */
  const requireComplete = (file: OnnxModelFile, source: string): void => {
    for (const name of graphTensorNames(config, file.graph, file.task)) {
      const spec = specs.get(name)!;
      if (!file.tensors.has(name) && elementCount(spec.shape) > 0) {
        throw new DupnError('E_MODEL_FILE', `${source}: missing initializer "${name}" (shape ${shapeText(spec.shape)} expected by the config)`);
      }
    }
  };
  requireComplete(user, path);
  const merged = new Map(user.tensors);

  const folder = nodePath.dirname(path);
  for (const task of config.tasks) {
    // decodeOnnxModel has already refused separators and ".." in the name.
    const headPath = nodePath.join(folder, user.heads![task.name]);
    const fail: Fail = (problem, cause) => {
      throw new DupnError('E_MODEL_FILE', `${headPath}: ${problem}`, cause === undefined ? undefined : { cause });
    };
    const head = decodeOnnxModel(await readRegularFile(headPath, `head file of task "${task.name}"`), headPath);
    if (head.graph !== 'head' || head.task !== task.name) {
      fail(`listed in ${path} as the head of task "${task.name}", but its metadata_props say dupn.graph = "${head.graph}"${head.task === undefined ? '' : `, dupn.task = "${head.task}"`}`);
    }
    const differs = configDifference(head.config, config);
    if (differs !== null) fail(`metadata_props dupn.config differs from that of the user file ${path} (config.${differs})`);
    requireComplete(head, headPath);
    for (const [name, data] of head.tensors) {
      const seen = merged.get(name);
      if (seen === undefined) merged.set(name, data);
      else if (!sameBits(seen, data)) fail(`initializer "${name}" differs from the one in ${path}: a tensor shared by two files must be identical`);
    }
  }

  // Every file is complete, so only the left-out empty tensors are missing here.
  const tensors = new Map<string, Float32Array>();
  for (const spec of specs.values()) tensors.set(spec.name, merged.get(spec.name) ?? new Float32Array(0));
  return { config, tensors };
}
