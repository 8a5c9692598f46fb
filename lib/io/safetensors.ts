/**
 * A small, defensive codec for the safetensors container (https://github.com/huggingface/safetensors):
 *
 *     [u64 little-endian N] [N bytes of UTF-8 JSON header] [raw little-endian tensor bytes]
 *
 * The header maps tensor names to `{ dtype, shape, data_offsets: [begin, end] }` (offsets relative to the
 * start of the data section) plus an optional `__metadata__` object of string → string.
 *
 * The parser treats its input as hostile: it checks every field before using it, never indexes outside the
 * buffer, and reports every problem as `DupnError('E_MODEL_FILE')` naming the tensor or field — it does not
 * let a RangeError, SyntaxError or TypeError escape. It does not interpret tensor contents; that is the job of
 * the caller, which knows what it expects (see model-file.ts).
 */
import { DupnError, describe } from '../errors';

/** Where one tensor lives, as declared by the header (already validated against the file). */
export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  /** Byte offsets relative to the start of the data section (`dataStart`); `begin <= end`. */
  begin: number;
  end: number;
}

export interface ParsedSafetensors {
  metadata: Record<string, string>;
  /** In header order. */
  tensors: Map<string, SafetensorsEntry>;
  /** Absolute offset of the data section in the file: 8 + header length. */
  dataStart: number;
}

export interface EncodeTensor {
  name: string;
  /** F32, or I32 (the row keys of a sparse table). */
  data: Float32Array | Int32Array;
  shape: number[];
}

/** Bytes per element of the dtypes the format defines. Anything else is refused rather than guessed. */
const DTYPE_SIZES: Readonly<Record<string, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  F8_E4M3: 1,
  F8_E5M2: 1,
  I64: 8,
  U64: 8,
  I32: 4,
  U32: 4,
  I16: 2,
  U16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** Upper bound on the JSON header: far above any real model, low enough that a forged length cannot make us allocate gigabytes. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const METADATA_KEY = '__metadata__';

/** Typed-array views use the platform byte order; the format is little-endian. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Parses and validates the header of a safetensors file. `what` prefixes every error message (e.g. the file
 * path) so the user can tell which file is bad.
 */
export function parseSafetensors(bytes: Uint8Array, what = 'safetensors file'): ParsedSafetensors {
  // Typed as a never-returning function so TypeScript narrows after each check.
  const fail: (problem: string) => never = (problem) => {
    throw new DupnError('E_MODEL_FILE', `${what}: ${problem}`);
  };
  if (!(bytes instanceof Uint8Array)) fail(`expected the file's bytes as a Uint8Array, got ${describe(bytes)}`);
  if (bytes.byteLength < 8) fail(`file is ${bytes.byteLength} bytes long, too short to hold the 8-byte header length`);

  // Read the length as a BigInt so a forged 2^64-1 cannot round into something plausible.
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen64 = view.getBigUint64(0, true);
  if (headerLen64 > BigInt(MAX_HEADER_BYTES)) {
    fail(`header length ${headerLen64} exceeds the ${MAX_HEADER_BYTES}-byte limit (corrupt or not a safetensors file)`);
  }
  const headerLen = Number(headerLen64);
  if (headerLen > bytes.byteLength - 8) {
    fail(`header length ${headerLen} exceeds the ${bytes.byteLength - 8} bytes after the length field (file truncated?)`);
  }
  const dataStart = 8 + headerLen;
  const dataLength = bytes.byteLength - dataStart;

  let text = '';
  try {
    // TextDecoder refuses views of a SharedArrayBuffer; the header is small, so copy it in that case.
    const raw = bytes.subarray(8, dataStart);
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.buffer instanceof ArrayBuffer ? raw : raw.slice());
  } catch {
    fail('header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    fail(`header is not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (!isPlainObject(header)) fail(`header must be a JSON object, got ${describe(header)}`);

  // Object.fromEntries defines own properties, so a "__proto__" key stays data and cannot touch a prototype.
  let metadata: Record<string, string> = {};
  const rawMeta = header[METADATA_KEY];
  if (rawMeta !== undefined) {
    if (!isPlainObject(rawMeta)) fail(`${METADATA_KEY} must be an object, got ${describe(rawMeta)}`);
    for (const [key, value] of Object.entries(rawMeta)) {
      const shown = key.length > 40 ? `${key.slice(0, 40)}…` : key;
      if (typeof value !== 'string') fail(`${METADATA_KEY}.${shown} must be a string, got ${describe(value)}`);
    }
    metadata = Object.fromEntries(Object.entries(rawMeta as Record<string, string>));
  }

  const tensors = new Map<string, SafetensorsEntry>();
  for (const [name, raw] of Object.entries(header)) {
    if (name === METADATA_KEY) continue;
    const where = `tensor ${describe(name)}`;
    if (!isPlainObject(raw)) fail(`${where}: entry must be an object, got ${describe(raw)}`);

    const dtype = raw['dtype'];
    if (typeof dtype !== 'string') fail(`${where}: dtype must be a string, got ${describe(dtype)}`);
    const size = Object.prototype.hasOwnProperty.call(DTYPE_SIZES, dtype) ? DTYPE_SIZES[dtype] : undefined;
    if (size === undefined) fail(`${where}: unknown dtype ${describe(dtype)} (known: ${Object.keys(DTYPE_SIZES).join(', ')})`);

    const shapeRaw = raw['shape'];
    if (!Array.isArray(shapeRaw)) fail(`${where}: shape must be an array, got ${describe(shapeRaw)}`);
    const shape: number[] = [];
    for (const [i, d] of (shapeRaw as unknown[]).entries()) {
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
        fail(`${where}: shape[${i}] must be a non-negative integer, got ${describe(d)}`);
      }
      shape.push(d as number);
    }

    const offsets = raw['data_offsets'];
    if (!Array.isArray(offsets) || offsets.length !== 2) {
      fail(`${where}: data_offsets must be an array [begin, end], got ${describe(offsets)}`);
    }
    const [begin, end] = offsets as unknown[];
    for (const [label, v] of [['begin', begin], ['end', end]] as const) {
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
        fail(`${where}: data_offsets ${label} must be a non-negative integer, got ${describe(v)}`);
      }
    }
    const b = begin as number;
    const e = end as number;
    if (b > e) fail(`${where}: data_offsets [${b}, ${e}] has begin after end`);
    if (e > dataLength) fail(`${where}: data_offsets [${b}, ${e}] run past the end of the data (${dataLength} bytes; file truncated?)`);

    // Stop multiplying once past the data length: the size is then a mismatch whatever follows, and a forged
    // shape cannot push the product to Infinity (and Infinity × 0 to NaN).
    let bytesNeeded = size;
    for (const d of shape) {
      bytesNeeded *= d;
      if (bytesNeeded > dataLength) break;
    }
    if (shape.includes(0)) bytesNeeded = 0;
    if (bytesNeeded !== e - b) {
      const expected = bytesNeeded > dataLength ? `more than the ${dataLength} bytes of data` : `${bytesNeeded} bytes`;
      fail(`${where}: shape [${shape.join(', ')}] of ${dtype} needs ${expected}, but data_offsets [${b}, ${e}] hold ${e - b}`);
    }
    tensors.set(name, { dtype, shape, begin: b, end: e });
  }

  // Overlapping tensors would alias each other's memory once viewed in place. Empty tensors occupy nothing.
  const spans = [...tensors].filter(([, t]) => t.end > t.begin).sort(([, x], [, y]) => x.begin - y.begin);
  for (let i = 1; i < spans.length; i++) {
    const [prevName, prev] = spans[i - 1];
    const [name, cur] = spans[i];
    if (cur.begin < prev.end) {
      fail(
        `tensor ${describe(name)}: data_offsets [${cur.begin}, ${cur.end}] overlap tensor ${describe(prevName)} [${prev.begin}, ${prev.end}]`,
      );
    }
  }

  return { metadata, tensors, dataStart };
}

/** Little-endian bytes of `data`: a view (no copy) on little-endian hosts, a byte-swapped copy otherwise. */
function littleEndianBytes(data: Float32Array | Int32Array): Buffer {
  if (LITTLE_ENDIAN) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const out = Buffer.allocUnsafe(data.byteLength);
  if (data instanceof Int32Array) for (let i = 0; i < data.length; i++) out.writeInt32LE(data[i], 4 * i);
  else for (let i = 0; i < data.length; i++) out.writeFloatLE(data[i], 4 * i);
  return out;
}

/**
 * Encodes float32 (and int32) tensors as a safetensors file, returned as chunks (header, then one view per tensor) so a
 * large model is never copied into one buffer; write them in order. The header is padded with spaces so the
 * data section starts at a multiple of 8, which keeps every float32 tensor 4-aligned for in-place views.
 */
export function encodeSafetensors(metadata: Record<string, string>, tensors: EncodeTensor[]): Buffer[] {
  const fail: (problem: string) => never = (problem) => {
    throw new DupnError('E_MODEL_FILE', `cannot encode safetensors: ${problem}`);
  };
  const entries: Array<[string, unknown]> = [[METADATA_KEY, metadata]];
  const seen = new Set<string>();
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const t of tensors) {
    if (t.name === METADATA_KEY || seen.has(t.name)) fail(`tensor name ${describe(t.name)} is reserved or repeated`);
    seen.add(t.name);
    if (!(t.data instanceof Float32Array || t.data instanceof Int32Array)) fail(`tensor ${describe(t.name)}: data must be a Float32Array or an Int32Array, got ${describe(t.data)}`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(`tensor ${describe(t.name)}: bad shape [${t.shape.join(', ')}]`);
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) {
      fail(`tensor ${describe(t.name)}: shape [${t.shape.join(', ')}] needs ${count} values, data has ${t.data.length}`);
    }
    entries.push([t.name, { dtype: t.data instanceof Int32Array ? 'I32' : 'F32', shape: [...t.shape], data_offsets: [offset, offset + t.data.byteLength] }]);
    chunks.push(littleEndianBytes(t.data));
    offset += t.data.byteLength;
  }

  const json = Buffer.from(JSON.stringify(Object.fromEntries(entries)), 'utf8');
  const headerLen = Math.ceil(json.length / 8) * 8; // 8 + headerLen is then a multiple of 8 too
  const head = Buffer.alloc(8 + headerLen, 0x20);
  head.writeBigUInt64LE(BigInt(headerLen), 0);
  json.copy(head, 8);
  return [head, ...chunks];
}
