/**
 * The dupn model file (docs/format.md): a standard safetensors file whose `__metadata__` carries the
 * format tag, the format version and the resolved config as JSON, and whose tensors are exactly those of
 * `tensorSpecs(config)`, float32, with exactly those shapes.
 *
 * Loading trusts nothing in the file: the config goes through the same validation as a caller's config, and
 * every tensor is checked against the layout that config implies, so the native code downstream can rely on
 * names, shapes and finiteness without checking again.
 */
import { createHash } from 'node:crypto';
import { ResolvedConfig, resolveConfig } from '../network/config';
import { DupnError, describe } from '../errors';
import { readRegularFile, writeFileAtomic } from './atomic-file';
import { native } from '../native/addon';
import { ParsedSafetensors, encodeSafetensors, parseSafetensors } from './safetensors';
import { elementCount, isHashedTable, tensorSpecs } from '../network/tensors';
import { ROWS_SUFFIX, RowKeys, badKey, scatterRows, sparseRowsOf } from './sparse-rows';

export const FORMAT = 'dupn';
/** The version of a file whose tables are all dense; readers of version 1 read it. */
export const FORMAT_VERSION = '1';
/** The version of a file with a table stored by its nonzero rows (docs/format.md, Sparse tables). */
export const SPARSE_FORMAT_VERSION = '2';
/** Versions this build can read; a newer writer must bump the version when old readers would misread it. */
const SUPPORTED_VERSIONS: readonly string[] = [FORMAT_VERSION, SPARSE_FORMAT_VERSION];

export interface ModelFileContents {
  config: ResolvedConfig;
  /**
   * In canonical (tensorSpecs) order. Every table has all its rows, but with `keepSparse` a table stored
   * sparse is its stored rows only and `rowKeys` holds their ids.
   */
  tensors: Map<string, Float32Array>;
  /** The row keys of the tables `tensors` holds sparse (empty without `keepSparse`). */
  rowKeys: RowKeys;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Index of the first NaN or ±Infinity in `a`, or -1. */
export function firstNonFinite(a: Float32Array): number {
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    // v - v is 0 for every finite v and NaN for NaN and ±Infinity; cheaper than Number.isFinite in a hot loop.
    if (v - v !== 0) return i;
  }
  return -1;
}

/** `[64, 12]`: a shape as error messages show it. */
export function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/**
 * Writes a model atomically (a crash leaves any previous file intact). Tensors are checked against the config
 * first, so a file that this function writes is always one that {@link loadModelFile} accepts. A hashed table
 * whose nonzero rows are under half its bytes is stored by those rows (docs/format.md, Sparse tables); a table
 * named in `rowKeys` is already that: its stored rows, with their ids.
 */
export async function saveModelFile(path: string, config: ResolvedConfig, tensors: Map<string, Float32Array>, rowKeys: RowKeys = new Map()): Promise<void> {
  const fail: (problem: string) => never = (problem) => {
    throw new DupnError('E_MODEL_FILE', `cannot save ${path}: ${problem}`);
  };
  // Round-trip the config through JSON and validation now, rather than discover an unloadable file later.
  const configJson = JSON.stringify(config);
  resolveConfig(JSON.parse(configJson));

  const ordered: { name: string; data: Float32Array | Int32Array; shape: number[] }[] = [];
  for (const spec of tensorSpecs(config)) {
    const data = tensors.get(spec.name);
    if (data === undefined) fail(`tensor "${spec.name}" is missing`);
    if (!(data instanceof Float32Array)) fail(`tensor "${spec.name}" must be a Float32Array, got ${describe(data)}`);
    const given = rowKeys.get(spec.name);
    const [rows, dim] = spec.shape;
    const expected = given === undefined ? elementCount(spec.shape) : given.length * dim;
    if (data.length !== expected) {
      fail(`tensor "${spec.name}" has ${data.length} values, ${given === undefined ? `shape ${shapeText(spec.shape)}` : `${given.length} stored rows of ${dim}`} needs ${expected}`);
    }
    if (given !== undefined && badKey(given, rows) >= 0) fail(`tensor "${spec.name}": its row keys must be strictly increasing ids below ${rows}`);
    const bad = firstNonFinite(data);
    if (bad >= 0) fail(`tensor "${spec.name}" holds a non-finite value (${data[bad]}) at index ${bad}`);
    const sparse = given !== undefined ? { keys: given, values: data } : isHashedTable(spec.name) && dim > 0 ? sparseRowsOf(data, dim) : undefined;
    if (sparse === undefined) {
      ordered.push({ name: spec.name, data, shape: spec.shape });
    } else {
      ordered.push({ name: spec.name, data: sparse.values, shape: [sparse.keys.length, dim] });
      ordered.push({ name: spec.name + ROWS_SUFFIX, data: sparse.keys, shape: [sparse.keys.length] });
    }
  }
  const version = ordered.some((o) => o.data instanceof Int32Array) ? SPARSE_FORMAT_VERSION : FORMAT_VERSION;
  const metadata = { format: FORMAT, format_version: version, config: configJson, [CHECKSUM_KEY]: tensorsDigest(ordered.map((o) => o.data)) };
  await writeFileAtomic(path, encodeSafetensors(metadata, ordered));
}

/**
 * The `__metadata__` key of the tensor data's checksum: the SHA-256 (hex) of every tensor's little-endian
 * bytes, in the order they lie in the file. dupn writes it into model files and checkpoints and checks it
 * on load (`verifyChecksum: false` skips that; a file without the key, older or from another tool, is not
 * checked). Cost: measured 0.16 s on the 178 MB paper-size model file (load 0.15 s without, 0.30 s with).
 */
export const CHECKSUM_KEY = 'tensors_sha256';

/** {@link CHECKSUM_KEY}'s value for tensors written in this order. */
export function tensorsDigest(tensors: readonly (Float32Array | Int32Array)[]): string {
  const h = createHash('sha256');
  for (const t of tensors) {
    if (LITTLE_ENDIAN) h.update(new Uint8Array(t.buffer, t.byteOffset, t.byteLength));
    else {
      const le = new DataView(new ArrayBuffer(t.byteLength));
      if (t instanceof Int32Array) t.forEach((v, i) => le.setInt32(4 * i, v, true));
      else t.forEach((v, i) => le.setFloat32(4 * i, v, true));
      h.update(new Uint8Array(le.buffer));
    }
  }
  return h.digest('hex');
}

/** Checks a parsed file's tensor bytes against its checksum, if it has one; `fail` says what is wrong. */
export function verifyChecksum(bytes: Uint8Array, parsed: ParsedSafetensors, fail: (problem: string) => never): void {
  const want = parsed.metadata[CHECKSUM_KEY];
  if (want === undefined) return;
  const h = createHash('sha256');
  for (const e of [...parsed.tensors.values()].sort((a, b) => a.begin - b.begin)) h.update(bytes.subarray(parsed.dataStart + e.begin, parsed.dataStart + e.end));
  const got = h.digest('hex');
  if (got !== want) fail(`the tensor data do not match the file's checksum (__metadata__.${CHECKSUM_KEY}): the file is corrupt or was changed after it was written`);
}

/**
 * Checks the metadata every dupn model file carries, whatever its container (safetensors `__metadata__`, ONNX
 * `metadata_props`): the format tag, a supported format version, and the config JSON, which goes through the
 * same validation as a caller's config. Returns the resolved config; every failure goes through `fail`, with
 * the field named as `keys` spells it. `versions`: the format versions the container may carry.
 */
export function checkModelMetadata(
  meta: { format: unknown; version: unknown; config: unknown },
  keys: { format: string; version: string; config: string; file: string },
  fail: (problem: string, cause?: unknown) => never,
  versions: readonly string[] = SUPPORTED_VERSIONS,
): ResolvedConfig {
  if (meta.format !== FORMAT) {
    fail(`not a ${keys.file} (${keys.format} is ${describe(meta.format)}, expected "${FORMAT}")`);
  }
  if (typeof meta.version !== 'string' || !versions.includes(meta.version)) {
    fail(`${keys.version} ${describe(meta.version)} is not supported (this version of dupn reads ${versions.join(', ')})`);
  }
  if (typeof meta.config !== 'string') fail(`${keys.config} is missing`);
  try {
    return resolveConfig(JSON.parse(meta.config));
  } catch (err) {
    if (err instanceof SyntaxError) fail(`${keys.config} is not valid JSON (${err.message})`, err);
    // The config error already names the offending key (config.tasks[1].kind …); keep it whole.
    return fail(`${keys.config} is invalid: ${err instanceof Error ? err.message : String(err)}`, err);
  }
}

/**
 * Decodes and validates the bytes of a model file. `source` (usually the path) prefixes every error message.
 * Tensors are zero-copy views over `bytes` where alignment allows, so `bytes` must not be modified afterwards.
 * Throws only `DupnError('E_MODEL_FILE')`.
 */
export function decodeModelFile(bytes: Uint8Array, source: string, options: LoadOptions = {}): ModelFileContents {
  // Typed as a never-returning function so TypeScript narrows after each check.
  const fail: (problem: string, cause?: unknown) => never = (problem, cause) => {
    throw new DupnError('E_MODEL_FILE', `${source}: ${problem}`, { cause });
  };
  const parsed = parseSafetensors(bytes, source);
  const meta = parsed.metadata;
  const config = checkModelMetadata(
    { format: meta['format'], version: meta['format_version'], config: meta['config'] },
    { format: '__metadata__.format', version: '__metadata__.format_version', config: '__metadata__.config', file: 'dupn model file' },
    fail,
  );

  if (meta['format_version'] !== SPARSE_FORMAT_VERSION) refuseRowKeys(parsed, `__metadata__.format_version "${SPARSE_FORMAT_VERSION}"`, fail);
  const specs = tensorSpecs(config);
  const tensors = new Map<string, Float32Array>();
  const rowKeys: RowKeys = new Map();
  const expected = new Set(specs.map((s) => s.name));
  for (const spec of specs) {
    const keysName = spec.name + ROWS_SUFFIX;
    const keys = parsed.tensors.has(keysName) ? rowKeysAt(bytes, parsed, spec.name, spec.shape, fail) : undefined;
    const data = tensorAt(bytes, parsed, spec.name, keys === undefined ? spec.shape : [keys.length, spec.shape[1]], fail);
    const bad = firstNonFinite(data);
    if (bad >= 0) fail(`tensor "${spec.name}": non-finite value (${data[bad]}) at index ${bad}`);
    if (keys === undefined) tensors.set(spec.name, data);
    else {
      expected.add(keysName);
      if (options.keepSparse) {
        tensors.set(spec.name, data);
        rowKeys.set(spec.name, keys);
      } else tensors.set(spec.name, scatterRows(data, keys, spec.shape[0], spec.shape[1]));
    }
  }

  // Extra tensors mean the file was written for a different layout; loading it silently would hide that.
  const extra = [...parsed.tensors.keys()].filter((n) => !expected.has(n));
  if (extra.length > 0) {
    const shown = extra.slice(0, 5).map((n) => describe(n)).join(', ');
    fail(`unexpected tensor${extra.length > 1 ? 's' : ''} not in the config: ${shown}${extra.length > 5 ? `, … (${extra.length} in all)` : ''}`);
  }
  // Last, so that a file with a structural problem is told that problem rather than "corrupt".
  if (options.verifyChecksum !== false) verifyChecksum(bytes, parsed, fail);
  return { config, tensors, rowKeys };
}

/** Refuses a file of a version without sparse tables that has row keys all the same (`needs`: the version that has them). */
export function refuseRowKeys(parsed: ParsedSafetensors, needs: string, fail: (problem: string) => never): void {
  const keyed = [...parsed.tensors.keys()].find((n) => n.endsWith(ROWS_SUFFIX));
  if (keyed !== undefined) fail(`tensor "${keyed}": a table stored by its rows needs ${needs}`);
}

/** The row keys of table `name` (full shape `shape`) stored sparse: I32, one dimension, valid ids in order. */
export function rowKeysAt(bytes: Uint8Array, parsed: ParsedSafetensors, name: string, shape: readonly number[], fail: (problem: string) => never): Int32Array {
  const keysName = name + ROWS_SUFFIX;
  const entry = parsed.tensors.get(keysName)!;
  if (!isHashedTable(name) || shape.length !== 2 || shape[1] === 0) fail(`tensor "${keysName}": only a hashed embedding table (item, profile or query field) can be stored by its rows`);
  if (entry.dtype !== 'I32') fail(`tensor "${keysName}": dtype ${entry.dtype}, expected I32`);
  if (entry.shape.length !== 1 || entry.shape[0] > shape[0]) fail(`tensor "${keysName}": shape ${shapeText(entry.shape)}, expected one dimension of at most ${shape[0]} (the table's rows)`);
  const keys = int32At(bytes, parsed.dataStart + entry.begin, entry.shape[0]);
  const bad = badKey(keys, shape[0]);
  if (bad >= 0) fail(`tensor "${keysName}": key ${bad} (${keys[bad]}) is not a row id above the one before it and below ${shape[0]}`);
  return keys;
}

/** Tensor `name`, checked to be there, I32 and of `shape`: as {@link tensorAt} for int32 values. */
export function int32TensorAt(bytes: Uint8Array, parsed: ParsedSafetensors, name: string, shape: readonly number[], fail: (problem: string) => never): Int32Array {
  const entry = parsed.tensors.get(name);
  if (entry === undefined) fail(`tensor "${name}" is missing`);
  if (entry!.dtype !== 'I32') fail(`tensor "${name}": dtype ${entry!.dtype}, expected I32`);
  if (shapeText(entry!.shape) !== shapeText(shape)) fail(`tensor "${name}": shape ${shapeText(entry!.shape)}, expected ${shapeText(shape)}`);
  return Int32Array.from(int32At(bytes, parsed.dataStart + entry!.begin, elementCount(shape)));
}

/** As {@link float32At}, for int32 values. */
function int32At(bytes: Uint8Array, offset: number, count: number): Int32Array {
  const absolute = bytes.byteOffset + offset;
  if (LITTLE_ENDIAN && absolute % 4 === 0) return new Int32Array(bytes.buffer, absolute, count);
  const out = new Int32Array(count);
  const view = new DataView(bytes.buffer, absolute, 4 * count);
  for (let i = 0; i < count; i++) out[i] = view.getInt32(4 * i, true);
  return out;
}

/**
 * Tensor `name` of a parsed safetensors file (a model file or a checkpoint), checked to be there, F32 and of
 * `shape` (parseSafetensors has checked that its bytes lie in the file and match its own shape): a view or
 * a copy as {@link float32At} gives it. Every problem goes through `fail`, naming the tensor.
 */
export function tensorAt(bytes: Uint8Array, parsed: ParsedSafetensors, name: string, shape: readonly number[], fail: (problem: string) => never): Float32Array {
  const entry = parsed.tensors.get(name);
  if (entry === undefined) fail(`missing tensor "${name}" (shape ${shapeText(shape)} expected by the config)`);
  if (entry.dtype !== 'F32') fail(`tensor "${name}": dtype ${entry.dtype}, expected F32`);
  if (entry.shape.length !== shape.length || entry.shape.some((d, i) => d !== shape[i])) {
    fail(`tensor "${name}": shape ${shapeText(entry.shape)} does not match the config, expected ${shapeText(shape)}`);
  }
  return float32At(bytes, parsed.dataStart + entry.begin, elementCount(shape));
}

/**
 * `count` little-endian float32 values at offset `offset` of `bytes` (the caller has checked the bounds):
 * a view when the absolute address is 4-aligned and the host is little-endian, else a copy.
 */
export function float32At(bytes: Uint8Array, offset: number, count: number): Float32Array {
  const absolute = bytes.byteOffset + offset;
  if (LITTLE_ENDIAN && absolute % 4 === 0) return new Float32Array(bytes.buffer, absolute, count);
  const out = new Float32Array(count);
  if (LITTLE_ENDIAN) {
    new Uint8Array(out.buffer).set(bytes.subarray(offset, offset + 4 * count));
  } else {
    const view = new DataView(bytes.buffer, absolute, 4 * count);
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
  }
  return out;
}

/** Options of reading a model file. */
export interface LoadOptions {
  /** Check the tensor data against the file's checksum ({@link CHECKSUM_KEY}) [true]. */
  verifyChecksum?: boolean;
  /** Keep a table stored sparse as its stored rows and their keys (a serving model) rather than expand it [false]. */
  keepSparse?: boolean;
}

/** Reads and validates a model file. Rejects with `E_IO` when the file cannot be read, `E_MODEL_FILE` when it is bad. */
export async function loadModelFile(path: string, options: LoadOptions = {}): Promise<ModelFileContents> {
  return decodeModelFile(await fileBytes(path), path, options);
}

/**
 * The file's bytes: a private memory map where the platform has one (docs/model.md, Model file: embedding tables are not
 * copied, and processes serving one model share its pages; a model file replaced by rename, as dupn
 * writes them, leaves existing maps intact), else a plain read.
 */
async function fileBytes(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(native().mapFile(path));
  } catch {
    // No map (a bad path, a missing or not regular file, no mmap here): the plain read says why, or gives the bytes.
  }
  return readRegularFile(path, 'model file');
}
