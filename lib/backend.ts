/**
 * What the Model needs from an engine: the native addon's model and the onnxruntime backend both
 * implement this, so the public API, feature pipeline and validation are the same whichever runs.
 */
import { CandidateColumns, UserColumns } from './columns';

export type BackendName = 'native' | 'onnxruntime';

export interface Backend {
  /** The kernel path running: "baseline" | "avx2" | "avx512" for native, "onnxruntime" otherwise. */
  readonly isa: string;
  encode(cols: UserColumns, users: Float32Array, attention: Float32Array | null, threads: number, async: false): void;
  encode(cols: UserColumns, users: Float32Array, attention: Float32Array | null, threads: number, async: true): Promise<void>;
  /** Each of `heads` (binary/rank) scores the same candidates into the matching `outs` entry, in one call. */
  score(heads: number[], user: Float32Array, cands: CandidateColumns, outs: Float32Array[], threads: number, async: false): void;
  score(heads: number[], user: Float32Array, cands: CandidateColumns, outs: Float32Array[], threads: number, async: true): Promise<void>;
  predict(head: number, users: Float32Array, out: Float32Array, async: false): void;
  predict(head: number, users: Float32Array, out: Float32Array, async: true): Promise<void>;
  /** retrieval heads: the item tower's vector of every candidate (C × dim). Native engine only. */
  itemVectors?(head: number, cands: CandidateColumns, out: Float32Array, threads: number, async: true): Promise<void>;
  itemVectors?(head: number, cands: CandidateColumns, out: Float32Array, threads: number, async: false): void;
  /**
   * Exact top-k of n rows by dot product with `query`, best first; `found[0]` = how many. `blocked` holds the
   * rows in blocks of `block` rows, each block transposed (dim × its rows): see `blockTransposed`.
   */
  topK?(blocked: Float32Array, dim: number, block: number, query: Float32Array, k: number, skip: Uint8Array | null, index: Int32Array,
    score: Float32Array, found: Int32Array, threads: number, async: true): Promise<void>;
  topK?(blocked: Float32Array, dim: number, block: number, query: Float32Array, k: number, skip: Uint8Array | null, index: Int32Array,
    score: Float32Array, found: Int32Array, threads: number, async: false): void;
  /** Frees the engine's resources; calls in flight finish first. */
  release(): void;
}
