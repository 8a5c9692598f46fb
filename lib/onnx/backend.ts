/**
 * The onnxruntime backend: the model exported to ONNX (export.ts), fed as feeds.ts lays its inputs out, and run by
 * onnxruntime-node behind the same Model API — the reference users trust and the benchmark peer. Sessions are
 * created once, asynchronously; onnxruntime-node has no synchronous run, so the `*Sync` twins are refused.
 */
import type * as Ort from 'onnxruntime-node';
import { Backend, Completion } from '../model/backend';
import { CandidateColumns, UserColumns, validateCandidateColumns, validateUserColumns } from '../model/columns';
import { ResolvedConfig, taskOutputs } from '../network/config';
import { DupnError } from '../errors';
import { Tensors } from '../network/tensors';
import { buildOnnxGraphs } from './export';
import { Feed, candidateFeeds, padUsers, predictFeeds, raggedAttention } from './feeds';

/** How a user adds the optional peer; the variable stops its install script downloading CUDA libraries. */
export const INSTALL_ONNXRUNTIME = 'ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node@^1.30.0';

let ortModule: typeof Ort | undefined;

/**
 * onnxruntime-node, an optional peer dependency (hundreds of MiB that most users never load): required on
 * first use. Absent, it is E_UNSUPPORTED with the command that installs it.
 */
export function onnxruntime(): typeof Ort {
  if (ortModule) return ortModule;
  try {
    ortModule = require('onnxruntime-node') as typeof Ort;
    return ortModule;
  } catch (e) {
    const missing = (e as { code?: string }).code === 'MODULE_NOT_FOUND' && /onnxruntime-node/.test((e as Error).message);
    throw new DupnError(
      'E_UNSUPPORTED',
      missing
        ? `backend "onnxruntime" needs onnxruntime-node, an optional peer dependency of dupn that is not installed: run \`${INSTALL_ONNXRUNTIME}\``
        : `onnxruntime-node is installed but does not load: ${(e as Error).message.split('\n')[0]}`,
      { cause: e },
    );
  }
}

interface Sessions {
  user: Ort.InferenceSession;
  heads: Ort.InferenceSession[];
}

/** dupn's feeds (feeds.ts) as onnxruntime tensors. */
export function toOrt(feeds: Record<string, Feed>): Record<string, Ort.Tensor> {
  const ort = onnxruntime();
  const out: Record<string, Ort.Tensor> = {};
  for (const [name, f] of Object.entries(feeds)) out[name] = new ort.Tensor(f.type, f.data, f.dims);
  return out;
}

function unsupported(): never {
  throw new DupnError('E_UNSUPPORTED', 'synchronous calls need the native backend: onnxruntime-node only runs asynchronously');
}

export class OnnxBackend implements Backend {
  readonly isa = 'onnxruntime';
  private readonly sessions: Promise<Sessions>;
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly config: ResolvedConfig,
    tensors: Tensors,
    threads: number,
  ) {
    const ort = onnxruntime();
    const graphs = buildOnnxGraphs(config, tensors);
    const options: Ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
    };
    this.sessions = (async () => ({
      user: await ort.InferenceSession.create(graphs.user, options),
      heads: await Promise.all(config.tasks.map((t) => ort.InferenceSession.create(graphs.heads.get(t.name)!, options))),
    }))();
    // A failure surfaces on the first call, never as an unhandled rejection.
    this.sessions.catch(() => undefined);
  }

  private run(work: (s: Sessions) => Promise<void>): Promise<void> {
    const p = (async () => {
      let s: Sessions;
      try {
        s = await this.sessions;
      } catch (e) {
        throw new DupnError('E_INTERNAL', `onnxruntime could not load the exported graphs: ${(e as Error).message}`, { cause: e });
      }
      try {
        await work(s);
      } catch (e) {
        if (e instanceof DupnError) throw e;
        throw new DupnError('E_INTERNAL', `onnxruntime: ${(e as Error).message}`, { cause: e });
      }
    })();
    this.inFlight.add(p);
    p.finally(() => this.inFlight.delete(p)).catch(() => undefined);
    return p;
  }

  encode(cols: UserColumns, users: Float32Array, attention: Float32Array | null, _threads: number, async: boolean): Completion {
    if (!async) unsupported();
    validateUserColumns(this.config, cols);
    if (cols.lengths.length === 0) return Promise.resolve();
    return this.run(async (s) => {
      const r = await s.user.run(toOrt(padUsers(this.config, cols)));
      users.set(r['user'].data as Float32Array);
      if (attention) attention.set(raggedAttention(cols, r['attention'].data as Float32Array, r['attention'].dims[1]));
    });
  }

  score(heads: number[], user: Float32Array, cands: CandidateColumns, outs: Float32Array[], _threads: number, async: boolean): Completion {
    if (!async) unsupported();
    const tasks = heads.map((h) => this.config.tasks[h]);
    const counts = tasks.map((t) => validateCandidateColumns(this.config, t, cands));
    if (counts.every((c) => c === 0)) return Promise.resolve();
    return this.run(async (s) => {
      for (let i = 0; i < heads.length; i++) {
        const r = await s.heads[heads[i]].run(toOrt(candidateFeeds(this.config, tasks[i], user, cands)));
        outs[i].set(r['score'].data as Float32Array);
      }
    });
  }

  predict(head: number, users: Float32Array, out: Float32Array, async: boolean): Completion {
    if (!async) unsupported();
    if (out.length / taskOutputs(this.config.tasks[head]) === 0) return Promise.resolve();
    return this.run(async (s) => {
      const r = await s.heads[head].run(toOrt(predictFeeds(this.config, users)));
      out.set(r['probabilities'].data as Float32Array);
    });
  }

  release(): void {
    void Promise.allSettled([...this.inFlight])
      .then(() => this.sessions)
      .then(async (s) => {
        await s.user.release();
        await Promise.all(s.heads.map((h) => h.release()));
      })
      .catch(() => undefined);
  }
}
