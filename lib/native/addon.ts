/**
 * The native addon: its whole surface typed once here (every other file talks to this interface), and
 * the loader that finds the binary. Policy (which binary, which ISA) lives here; compute lives in C++.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Backend } from '../model/backend';
import { UserColumns } from '../model/columns';
import { DupnError, isErrorCode } from '../errors';

/** An embedding table handed to the addon; `data` is borrowed (kept alive by the addon), null when dim is 0. */
export interface NativeTable {
  rows: number;
  dim: number;
  data: Float32Array | null;
  /** Sparse (docs/format.md, Sparse tables): the ids whose rows `data` holds, strictly increasing; others are zero. */
  keys?: Int32Array;
}

export interface NativeModelSpec {
  maxSeqLen: number;
  hidden: number;
  directions: number;
  attentionHidden: number;
  /** Candidates whose first-layer projection W_t·t is cached per binary/rank head (0: none). */
  projectionCache: number;
  /** Run the large products in bfloat16 (fp32 accumulation); refused without AVX-512-BF16. */
  bf16: boolean;
  itemTables: NativeTable[];
  typeTable: NativeTable;
  gapTable: NativeTable;
  sceneTable: NativeTable;
  queryTable: NativeTable;
  profileTables: NativeTable[];
  lstm: { wx: Float32Array; wp: Float32Array; wh: Float32Array; b: Float32Array }[];
  attn: { w: Float32Array; b: Float32Array; v: Float32Array };
  heads: {
    /** 0 binary, 1 rank, 2 multiclass, 3 retrieval */
    kind: number;
    targetFields: number[];
    dense: number;
    /** retrieval: the user tower. */
    layers: { w: Float32Array; b: Float32Array; out: number }[];
    /** retrieval: the item tower. */
    itemLayers?: { w: Float32Array; b: Float32Array; out: number }[];
    /** retrieval with history features: their weights. */
    denseW?: Float32Array;
  }[];
}

/** The addon's model: exactly the engine interface the Model class drives (lib/model/backend.ts). */
export type NativeModel = Backend;

/** Labels of one head for a training batch (lib/train/batch.ts builds them). */
export interface NativeHeadLabels {
  /** The task weight λ_k; 0 leaves the head untrained. */
  lambda: number;
  /** rank: add the pairwise logistic loss within each user's candidates. */
  pairwise: boolean;
  /** binary/rank: [C × F] candidate item rows, sorted by owner. */
  items?: Int32Array;
  /** rank: [C × denseFeatures]. */
  dense?: Float32Array;
  /** [C] the user row of each candidate. */
  owner?: Int32Array;
  /** [C] binary: 0..1; rank: grade 0..4. */
  label?: Float32Array;
  /** [C] example × candidate weight. */
  weight?: Float32Array;
  /** retrieval: [C] subtracted from each candidate's logit (log Q of its sampling); absent: 0. */
  offset?: Float32Array;
  /** multiclass: [B] class per user, -1 for no label. */
  classes?: Int32Array;
  /** multiclass: [B] example weight. */
  classWeight?: Float32Array;
}

export interface NativeTrainBatch {
  users: UserColumns;
  heads: NativeHeadLabels[];
}

export interface NativeStepOptions {
  lr: number;
  embeddingLr: number;
  beta1: number;
  beta2: number;
  eps: number;
  clipNorm: number;
  embeddingAdagrad: boolean;
  trainShared: boolean;
  /** 1-based optimizer step (Adam bias correction). */
  step: number;
  /** Per param (the constructor's order): never update it. */
  frozen?: boolean[];
  /** Inverted-dropout rate of the behaviour input rows and of U, in [0, 0.95] (absent: none). */
  dropout?: number;
  /** Integer seed of this step's dropout mask, in [0, 2^53) (needed with `dropout`). */
  dropoutSeed?: number;
  /** Decoupled weight decay, in [0, 1] (absent: none). */
  weightDecay?: number;
  /** After the update, each param's `avg` moves by this share of (weights − avg), in [0, 1] (absent or 0: none). */
  averageRate?: number;
}

/** A trainable parameter: the spec's own weight array and its optimizer state (same length). */
export interface NativeParam {
  data: Float32Array;
  m: Float32Array;
  v: Float32Array;
  /** The param's moving average, as long as `data`, that steps with `averageRate` move. */
  avg?: Float32Array;
}

export interface NativeTrainer {
  /** report ← [loss, gradNorm, headLoss × heads, headWeight × heads]. Weights and state updated in place. */
  step(batch: NativeTrainBatch, options: NativeStepOptions, report: Float64Array, threads: number, async: true): Promise<void>;
  step(batch: NativeTrainBatch, options: NativeStepOptions, report: Float64Array, threads: number, async: false): void;
  /** The exact gradient of every param (dense arrays of the params' sizes), no update. */
  gradients(batch: NativeTrainBatch, grads: Float32Array[], report: Float64Array, threads: number, dropout?: { dropout: number; dropoutSeed: number }): void;
  release(): void;
  readonly isa: string;
}

export interface NativeAddon {
  fingerprint64(value: string): bigint;
  /** out[offset + i·stride] = fingerprint64(values[i]) mod buckets */
  bucketStrings(values: string[], buckets: number, out: Int32Array, offset: number, stride: number): void;
  /** JSON text of the values (rows of `row` when row > 0), each as float32's shortest round-trip decimal. */
  float32Json(values: Float32Array, row?: number): string;
  NativeModel: new (spec: NativeModelSpec, isa: string) => NativeModel;
  NativeTrainer: new (spec: NativeModelSpec, isa: string, params: NativeParam[]) => NativeTrainer;
  /** Comma-separated ISA paths this CPU can run, best last. */
  supportedIsas: string;
  /** Every code the addon puts on its errors (native/src/napi/error_codes.h). */
  errorCodes: string[];
  /** One instruction set's kernels, called directly (tests hold them against a float64 reference). */
  kernels: {
    /** C (+)= A·B; with bias (N values) each row starts from it instead (accumulate is then ignored). */
    sgemm(isa: string, M: number, N: number, K: number, A: Float32Array, lda: number, B: Float32Array, C: Float32Array, ldc: number, accumulate: boolean, bias?: Float32Array): void;
    lstmCell(isa: string, H: number, z: Float32Array, gx: Float32Array, c: Float32Array, h: Float32Array): void;
    tanhDot(isa: string, A: number, s: Float32Array, b: Float32Array, v: Float32Array): number;
    /** Training cell: pre (4H) → activated gates; c, tanh(c) and h from c_prev. */
    lstmCellTrain(isa: string, H: number, pre: Float32Array, cPrev: Float32Array, c: Float32Array, tc: Float32Array, h: Float32Array): void;
    /** y = tanh(x) over n values. */
    tanhMap(isa: string, n: number, x: Float32Array, y: Float32Array): void;
    reluDot(isa: string, M: number, K: number, x: Float32Array, ldx: number, w: Float32Array, bias: number, out: Float32Array): void;
    /** The bf16 path on fp32 inputs (rounded to bf16 inside); throws without AVX-512-BF16. */
    sgemmBf16(M: number, N: number, K: number, A: Float32Array, lda: number, B: Float32Array, C: Float32Array, ldc: number, accumulate: boolean, bias?: Float32Array): void;
    /**
     * The bf16 fused LSTM step on fp32 inputs in its interleaved layout (bf16GateBlock units per block; hp = H
     * rounded up to it, gp = 4·hp): hPrev, c, hNext are M × hp, wh is H × gp, gx is M × gp; hNextBf gets M × hp/2
     * bf16 pairs. Throws without AVX-512-BF16.
     */
    lstmStepBf16(M: number, H: number, hPrev: Float32Array, wh: Float32Array, gx: Float32Array, c: Float32Array, hNext: Float32Array, hNextBf: Uint32Array): void;
    /** Whether this CPU has the bf16 path. */
    hasBf16: boolean;
    /** Units per column block of the bf16 fused step's layout (0 without the bf16 path). */
    bf16GateBlock: number;
  };
  /** A private, copy-on-write memory map of a whole file (throws E_IO; E_UNSUPPORTED without mmap). */
  mapFile(path: string): ArrayBuffer;
  /** GFLOP/s of independent multiply-adds on `threads` threads for about `millis` ms ("" isa = best). */
  measureFmaPeak(isa: string, threads: number, millis: number): number;
}

/** The folder of dupn's own package.json (the repository, or node_modules/dupn once installed). */
export function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        if ((JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === 'dupn') return dir;
      } catch {
        // keep walking up
      }
    }
    const up = path.dirname(dir);
    if (up === dir) return path.resolve(__dirname, '..', '..');
    dir = up;
  }
}

/** dupn's version, from its package.json. */
export function packageVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

let libcOfProcess: 'glibc' | 'musl' | null | undefined;

/** The C library on Linux ("glibc" or "musl"; what detect-libc reads), null elsewhere. Asked once: a report is not cheap. */
export function libc(): 'glibc' | 'musl' | null {
  if (libcOfProcess === undefined) {
    if (process.platform !== 'linux') libcOfProcess = null;
    else {
      const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
      libcOfProcess = header?.glibcVersionRuntime ? 'glibc' : 'musl';
    }
  }
  return libcOfProcess;
}

/** `linux-x64-glibc`, `darwin-arm64`, …: what a binary must be built for to load here. */
export function platformTag(): string {
  const c = libc();
  return `${process.platform}-${process.arch}${c ? `-${c}` : ''}`;
}

/** The prebuilt binary for this platform inside the package (shipped in the npm tarball). */
export function prebuildPath(): string {
  const c = libc();
  return path.join(packageRoot(), 'prebuilds', `${process.platform}-${process.arch}`, c ? `dupn.${c}.node` : 'dupn.node');
}

/**
 * Where `dupn build-native` puts a binary built from source: a per-user cache outside node_modules, so
 * that `npm ci` (which wipes node_modules) keeps it. `$DUPN_CACHE_DIR`, else `$XDG_CACHE_HOME/dupn`, else
 * `~/.cache/dupn`; one folder per dupn version and platform.
 */
export function sourceBuildPath(): string {
  const base = process.env.DUPN_CACHE_DIR || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'dupn');
  return path.join(path.resolve(base), packageVersion(), platformTag(), 'dupn.node');
}

/**
 * Paths the loader tries, in order: `$DUPN_NATIVE`; the prebuild for this platform, arch and C library;
 * a binary built from source with `dupn build-native`; the repository's own build (`build/Release`).
 */
export function candidatePaths(): string[] {
  const out: string[] = [];
  if (process.env.DUPN_NATIVE) out.push(path.resolve(process.env.DUPN_NATIVE));
  out.push(prebuildPath(), sourceBuildPath(), path.join(packageRoot(), 'build', 'Release', 'dupn.node'));
  return out;
}

let cached: NativeAddon | undefined;
let loadedFrom: string | undefined;

/** The command that builds the addon from source in a consumer's install (see the README). */
export const BUILD_FROM_SOURCE = 'npx dupn build-native';

/**
 * Requires the first of `paths` that loads; throws one DupnError (E_NATIVE_LOAD) listing every path tried
 * (and why it failed) and how to get a binary for this platform. Does not cache: {@link native} does.
 */
export function loadAddon(paths: readonly string[]): NativeAddon {
  const tried: string[] = [];
  for (const p of paths) {
    if (!fs.existsSync(p)) {
      tried.push(`${p} (not found)`);
      continue;
    }
    try {
      const addon = require(p) as NativeAddon;
      loadedFrom = p;
      return addon;
    } catch (e) {
      tried.push(`${p} (${(e as Error).message.split('\n')[0]})`);
    }
  }
  throw new DupnError(
    'E_NATIVE_LOAD',
    `dupn: could not load the native addon. Tried:\n  ${tried.join('\n  ')}\n${missingBinaryAdvice(libc(), platformTag())}`,
  );
}

/** What E_NATIVE_LOAD tells a user to do on this platform (`c`: this C library, `tag`: {@link platformTag}). */
export function missingBinaryAdvice(c: 'glibc' | 'musl' | null, tag: string): string {
  const shipped =
    c === 'musl'
      ? 'dupn ships no prebuilt binary for musl Linux (Alpine): its prebuilds are for glibc (linux-x64, linux-arm64). '
      : `dupn ships prebuilt binaries for linux-x64 and linux-arm64 with glibc ≥ 2.27; this is ${tag}. `;
  return (
    shipped +
    `Build one from source with \`${BUILD_FROM_SOURCE}\` (needs python3, make and a C++17 compiler; the binary ` +
    `goes to ${path.dirname(sourceBuildPath())}, outside node_modules, so npm ci keeps it), ` +
    'or point DUPN_NATIVE at a dupn.node built for this platform.'
  );
}

/** The file the addon was loaded from, once {@link native} has loaded it. */
export function loadedAddonPath(): string | undefined {
  return loadedFrom;
}

/** Loads the addon once (from {@link candidatePaths}); throws the E_NATIVE_LOAD DupnError of {@link loadAddon}. */
export function native(): NativeAddon {
  if (!cached) cached = loadAddon(candidatePaths());
  return cached;
}

/** Native errors carry a `code`; turn them into DupnError (anything unexpected becomes E_INTERNAL). */
export function fromNativeError(e: unknown, context: string): DupnError {
  if (e instanceof DupnError) return e;
  const code = (e as { code?: unknown }).code;
  const message = e instanceof Error ? e.message : String(e);
  return new DupnError(
    isErrorCode(code) ? code : 'E_INTERNAL',
    `${context}: ${message}`,
    { cause: e },
  );
}
