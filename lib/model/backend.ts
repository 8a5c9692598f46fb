/**
 * What the Model needs from an engine: the native addon's model and the onnxruntime backend both
 * implement this, so the public API, feature pipeline and validation are the same whichever runs.
 */
import { CandidateColumns, UserColumns } from './columns';
import { DupnError } from '../errors';

export type BackendName = 'native' | 'onnxruntime';

/**
 * What an engine call returns: nothing when it ran on the calling thread (`async` false), a promise that
 * settles when it is done otherwise. The flag is the addon's own calling convention (one native entry per
 * call, which queues a worker or not); the Model's one runner passes it through.
 */
export type Completion = void | Promise<void>;

export interface Backend {
  /** The kernel path running: "baseline" | "avx2" | "avx512" for native, "onnxruntime" otherwise. */
  readonly isa: string;
  encode(cols: UserColumns, users: Float32Array, attention: Float32Array | null, threads: number, async: boolean): Completion;
  /** Each of `heads` (binary/rank) scores the same candidates into the matching `outs` entry, in one call. */
  score(heads: number[], user: Float32Array, cands: CandidateColumns, outs: Float32Array[], threads: number, async: boolean): Completion;
  predict(head: number, users: Float32Array, out: Float32Array, async: boolean): Completion;
  /** retrieval heads: the item tower's vector of every candidate (C × dim). Native engine only. */
  itemVectors?(head: number, cands: CandidateColumns, out: Float32Array, threads: number, async: boolean): Completion;
  /**
   * Exact top-k of n rows by dot product with `query`, best first; `found[0]` = how many. `blocked` holds the
   * rows in blocks of `block` rows, each block transposed (dim × its rows): see `blockTransposed`.
   */
  topK?(blocked: Float32Array, dim: number, block: number, query: Float32Array, k: number, skip: Uint8Array | null, index: Int32Array,
    score: Float32Array, found: Int32Array, threads: number, async: boolean): Completion;
  /** Frees the engine's resources; calls in flight finish first. */
  release(): void;
}

/**
 * The engine with every output checked before a caller sees it: finite but extreme weights (a corrupt or
 * badly trained model) can overflow to Inf or NaN, and a NaN passed along poisons whatever a service does
 * with it. A call whose output is not finite fails with `DupnError('E_NUMERIC')` naming the call and the
 * first bad entry, so the service can fall back. The scan is one pass over outputs that are small beside
 * the compute.
 */
export function withFiniteOutputs(inner: Backend): Backend {
  const check = (call: string, what: string, out: Float32Array | null, rowWidth = 0, count = out?.length ?? 0): void => {
    if (out === null) return;
    for (let i = 0; i < count; i++) {
      if (Number.isFinite(out[i])) continue;
      const where = rowWidth > 0 ? `${what} ${Math.floor(i / rowWidth)} (entry ${i % rowWidth})` : `${what}[${i}]`;
      throw new DupnError('E_NUMERIC', `${call}: ${where} is ${out[i]}: the model's weights overflow on this input; the result is withheld`, { path: call });
    }
  };
  const after = (r: Completion, fn: () => void): Completion => (r instanceof Promise ? r.then(fn) : fn());
  const g: Backend = {
    get isa() {
      return inner.isa;
    },
    encode: (cols, users, attention, threads, async) =>
      after(inner.encode(cols, users, attention, threads, async), () => {
        check('encode', 'user', users, users.length / Math.max(1, cols.lengths.length));
        check('encode', 'attention weight', attention);
      }),
    score: (heads, user, cands, outs, threads, async) =>
      after(inner.score(heads, user, cands, outs, threads, async), () => outs.forEach((o) => check('score', 'candidate', o, 1))),
    predict: (head, users, out, async) => after(inner.predict(head, users, out, async), () => check('predict', 'output', out)),
    release: () => inner.release(),
  };
  if (inner.itemVectors) {
    const iv = inner.itemVectors.bind(inner);
    g.itemVectors = (head, cands, out, threads, async) => after(iv(head, cands, out, threads, async), () => check('itemVectors', 'vector entry', out));
  }
  if (inner.topK) {
    const tk = inner.topK.bind(inner);
    g.topK = (blocked, dim, block, query, k, skip, index, score, found, threads, async) =>
      after(tk(blocked, dim, block, query, k, skip, index, score, found, threads, async), () => check('retrieve', 'score', score, 0, found[0]));
  }
  return g;
}
