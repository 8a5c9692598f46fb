/**
 * The dynamic batcher (issue 13, item 1): many callers, each with one user or a few, share native calls.
 * Whenever the engine is free it takes everything queued, up to `maxBatch` users (greedy, Triton's default;
 * `maxDelayMs` may wait for more), encodes the users of all those requests in one native call, runs each
 * multiclass head once over the users that asked for it and scores each rank request's candidates, and hands
 * every caller its own rows. A bounded queue refuses work beyond `maxQueue` users (`E_OVERLOADED`), a request
 * whose deadline passes in the queue is dropped before any compute (`E_TIMEOUT`), an `AbortSignal` cancels one
 * (`E_ABORTED`), and a {@link UserCache} skips encoding users the caller has named with a key.
 *
 * The shape of a request is checked when it is submitted. Its users (and a rank's candidates) are packed
 * (validated and hashed into columns) one request at a time, so bad input rejects that request alone and never
 * reaches a native call; a batch then joins the packed rows into one set of columns. Packing happens while the
 * engine computes the batch before (in the caller's turn, or right after that batch started), so the next
 * batch starts as soon as the engine is free; and a batch's callers get their results after the next batch
 * has started.
 */
import { performance } from 'node:perf_hooks';
import { Model } from '../model/model';
import { CandidateColumns, UserColumns, gatherUserColumns } from '../model/columns';
import { CandidateInput, UserInput } from '../model/features';
import { findMulticlassTask } from '../network/config';
import { DupnError, describe, inputError } from '../errors';
import { UserCache, UserCacheOptions } from './user-cache';

/** The three kinds of request a {@link Batcher} takes. */
export type BatchKind = 'encode' | 'predict' | 'rank';

/** Options every request may carry. */
export interface RequestOptions {
  /** Request time in Unix seconds for users without a `now` of their own (as `model.encode`'s option). */
  now?: number;
  /**
   * Milliseconds the request may wait in the queue (default: the batcher's `timeoutMs`, else no limit); past
   * it, it is dropped before any compute and rejects with `E_TIMEOUT`. A request taken into a batch runs to the end.
   */
  timeoutMs?: number;
  /** Cancels the request: rejects with `E_ABORTED`; if it is still queued it is never computed. */
  signal?: AbortSignal;
  /**
   * Called once, when the request is queued, with a function that cancels it as `signal` does (its argument
   * becomes the error's `cause`; once the request has settled it does nothing; if `onCancel` throws, the request
   * is cancelled with that error). For a caller that may cancel
   * every request, such as a server when a client goes away: an `AbortController` per request kept what its
   * request held alive past two scavenges on Node 20, so V8 promoted it all to the old generation (0.7 MB per
   * scavenge in `dupn serve`; docs/serving.md), where this allocates one closure.
   */
  onCancel?: (cancel: (reason?: unknown) => void) => void;
}

/** Options of {@link Batcher.encode} and {@link Batcher.predict}. */
export interface UsersRequestOptions extends RequestOptions {
  /**
   * Per user, a key for the batcher's {@link UserCache} (undefined: not cached): a live vector stored under the
   * key is used instead of encoding that user, and a vector computed here is stored under it. Same length as `users`.
   */
  keys?: readonly (string | undefined)[];
}

/** Options of {@link Batcher.rank}. */
export interface RankRequestOptions extends RequestOptions {
  /** The binary/rank/retrieval heads to score (default: every head that is not multiclass), as `model.scoreAll`. */
  tasks?: string[];
  /** The user's key in the batcher's {@link UserCache} (see {@link UsersRequestOptions.keys}). */
  key?: string;
}

/** User vectors U of `users` (B × userDim), as `model.encode(users, { now })`. */
export interface EncodeRequest extends UsersRequestOptions {
  kind: 'encode';
  users: UserInput[];
}

/** Class probabilities of a multiclass head (B × classes), as `model.predict(task, users, { now })`. */
export interface PredictRequest extends UsersRequestOptions {
  kind: 'predict';
  task: string;
  users: UserInput[];
}

/**
 * One user's candidates scored by several heads, as `model.scoreAll(U, candidates, { tasks, user })` with
 * `U = model.encode([user], { now })`: retrieval heads with history features get the user's history term.
 */
export interface RankRequest extends RankRequestOptions {
  kind: 'rank';
  user: UserInput;
  /**
   * Candidate objects, columns packed by `model.packCandidates` (packed for the model that serves), or a
   * packer called with the model the request is prepared for (an item catalogue's pre-hashed rows: see
   * `ItemCatalogue.packer`), which must return what `model.packCandidates(…, { tasks, user })` would.
   */
  candidates: CandidateInput[] | CandidateColumns | CandidatePacker;
}

/** Packs a rank request's candidates for `model` (see {@link RankRequest.candidates}). */
export type CandidatePacker = (model: Model, tasks: string[] | undefined, user: UserInput) => CandidateColumns;

/** Any request of a {@link Batcher}. */
export type BatchRequest = EncodeRequest | PredictRequest | RankRequest;

/** Scores by task name, as `model.scoreAll` returns them. */
export type Scores = Record<string, Float32Array>;

/** What a request resolves to: scores for `rank`, a Float32Array for `encode` and `predict`. */
export type BatchValue<R extends BatchRequest> = R extends RankRequest ? Scores : Float32Array;

/** A request's result and how it was served ({@link Batcher.submit}). */
export interface Served<T> {
  /** The result, the caller's own arrays. */
  value: T;
  /** The model that computed it (the one at the time its batch started). */
  model: Model;
  /** Milliseconds from submission to the start of its batch. */
  queueMs: number;
  /** Milliseconds from the start of its batch until its result was handed over (after the batch's last native call). */
  computeMs: number;
  /** Users in its batch. */
  batchUsers: number;
  /** Its users taken from the cache instead of encoded. */
  cacheHits: number;
}

/** Reported once per batch, when every request of it has settled ({@link BatcherOptions.onBatch}). */
export interface BatchInfo {
  /** The model the batch ran on. */
  model: Model;
  /** Requests taken into the batch. */
  requests: number;
  /** Their users: the batch size. */
  users: number;
  /** Users sent to the native encode (the batch's users less cache hits and requests that failed before it). */
  encoded: number;
  /** Users taken from the cache. */
  cacheHits: number;
  /** Requests of each kind. */
  kinds: Record<BatchKind, number>;
  /** Per request, milliseconds from submission to the start of the batch. */
  queueMs: number[];
  /** Milliseconds from the start of the batch until its last request settled. */
  computeMs: number;
  /** Requests of the batch rejected by an engine error (aborted ones are reported by `onDrop`; invalid ones never join a batch). */
  failed: number;
}

/** Why a request was refused or dropped without a result. */
export type DropCode = 'E_OVERLOADED' | 'E_TIMEOUT' | 'E_ABORTED' | 'E_CLOSED';

/** Reported for each request refused or dropped ({@link BatcherOptions.onDrop}). */
export interface DropInfo {
  /** The code it was rejected with. */
  code: DropCode;
  kind: BatchKind;
  users: number;
  /** `'submit'`: refused on arrival; `'queued'`: dropped from the queue, never computed; `'running'`: aborted while its batch ran (the result was discarded). */
  stage: 'submit' | 'queued' | 'running';
  /** Milliseconds since it was submitted (0 when refused on arrival). */
  queueMs: number;
}

/** Options of a {@link Batcher}. */
export interface BatcherOptions {
  /**
   * The model, or a getter asked when a batch forms and when requests are packed: so a model can be swapped
   * underneath (hot reload). {@link Batcher.setModel} replaces either.
   */
  model: Model | (() => Model);
  /** Most users per batch (per native encode call; default 64). A request of more users is refused with `E_INPUT`. */
  maxBatch?: number;
  /**
   * Milliseconds a batch smaller than `maxBatch` may wait, from the arrival of its oldest request, for more
   * requests (default 0: the engine never waits when there is work).
   */
  maxDelayMs?: number;
  /** Most users waiting in the queue (default 4096); a request that would exceed it is refused with `E_OVERLOADED`. */
  maxQueue?: number;
  /** Default per-request queue deadline in milliseconds (default: none). */
  timeoutMs?: number;
  /** The user-vector cache: a {@link UserCache} (shareable), its options, or `false` for none (default: `new UserCache()`). */
  cache?: UserCache | UserCacheOptions | false;
  /** Called after each batch with its sizes and times (metrics). Exceptions are turned into process warnings. */
  onBatch?: (info: BatchInfo) => void;
  /** Called for each request refused or dropped without a result. Exceptions are turned into process warnings. */
  onDrop?: (info: DropInfo) => void;
}

/** Counters of a {@link Batcher} since it was made, and its present state. */
export interface BatcherStats {
  /** Requests waiting now. */
  queued: number;
  /** Their users. */
  queuedUsers: number;
  /** Batches running now (0 or 1). */
  running: number;
  /** Batches run. */
  batches: number;
  /** Requests resolved with a result. */
  completed: number;
  /** Requests rejected by validation or by the engine (drops not included). */
  failed: number;
  /** Requests dropped or refused, by code. */
  dropped: Record<DropCode, number>;
}

const DEFAULTS = { maxBatch: 64, maxDelayMs: 0, maxQueue: 4096 };
const OPTION_KEYS: Record<keyof BatcherOptions, true> = {
  model: true, maxBatch: true, maxDelayMs: true, maxQueue: true, timeoutMs: true, cache: true, onBatch: true, onDrop: true,
};

/** A request prepared for one model: its users found in the cache or packed, a rank's candidates packed. */
interface Prepared {
  model: Model;
  /** Per user, the cached vector, or undefined: to encode. */
  hits: (Float32Array | undefined)[];
  /** The users without a hit (indices into the request's users), in order. */
  miss: number[];
  /** Columns holding the `miss` users: those of its whole group of requests, or its own; null when nothing is to encode. */
  cols: UserColumns | null;
  /** The rows of `cols` holding them, in `miss` order. */
  rows: number[];
  /** rank: the candidates, packed for its tasks and user. */
  candidates?: CandidateColumns;
}

type Settle = (v: Served<Float32Array | Scores>) => void;

interface Pending {
  request: BatchRequest;
  users: UserInput[];
  n: number;
  /** Packed for a model: when it is taken into a batch, or ahead of that while the engine computes. */
  prepared: Prepared | null;
  enqueuedAt: number;
  deadline: number;
  state: 'queued' | 'running' | 'settled';
  resolve: Settle;
  reject: (e: unknown) => void;
  timer?: NodeJS.Timeout;
  onAbort?: () => void;
}

/** `fn` run in the next check phase (setImmediate), once however often the result is called before. */
function coalesced(fn: () => void): () => void {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    setImmediate(() => {
      pending = false;
      fn();
    });
  };
}

/** A request taken into a batch: packed by then. */
function packed(p: Pending): Prepared {
  if (p.prepared === null) throw new DupnError('E_INTERNAL', 'batcher: a request of a batch was not packed');
  return p.prepared;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `user` with the request's `now` when it has none of its own: packed with others, it keeps the time its request gave. */
function withNow(user: UserInput, now: number | undefined): UserInput {
  return now === undefined || !isObject(user) || user.now !== undefined ? user : { ...user, now };
}

function integerIn(v: unknown, lo: number, hi: number, path: string, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) inputError(path, `must be an integer in [${lo}, ${hi}], got ${describe(v)}`);
  return v;
}

function timeout(v: unknown, path: string): number {
  if (v === undefined) return Infinity;
  if (typeof v !== 'number' || !(v > 0)) inputError(path, `must be a number of milliseconds > 0, got ${describe(v)}`);
  return v;
}

function warnFrom(hook: string, e: unknown): void {
  process.emitWarning(`dupn Batcher: the ${hook} hook threw: ${e instanceof Error ? e.message : String(e)}`);
}

/**
 * A dynamic batcher in front of a {@link Model}: submit one user or a few and get your own result, while the
 * native engine runs whole batches. See the module comment and README, "Serving many callers".
 */
export class Batcher {
  /** Most users per batch. */
  readonly maxBatch: number;
  /** Milliseconds a small batch may wait for more requests. */
  readonly maxDelayMs: number;
  /** Most users waiting. */
  readonly maxQueue: number;
  /** Default queue deadline of a request, in milliseconds (Infinity: none). */
  readonly timeoutMs: number;
  /** The user-vector cache, or null. */
  readonly cache: UserCache | null;
  private source: () => Model;
  private readonly onBatch?: (info: BatchInfo) => void;
  private readonly onDrop?: (info: DropInfo) => void;
  /** FIFO from `head`; a slot before `head` is empty (undefined). */
  private queue: (Pending | undefined)[] = [];
  private head = 0;
  private queuedCount = 0;
  private queuedUsers = 0;
  private readonly inFlight = new Set<{ model: Model; done: Promise<void> }>();
  /**
   * Forms a batch in the check phase, not in a microtask: requests arriving in the same turn of the event
   * loop (several HTTP requests read in one poll) reach the queue first.
   */
  private readonly schedule = coalesced(() => this.pump());
  /** Prepares the next batch once the I/O of this turn is done: requests arriving in it pack together. */
  private readonly schedulePrepare = coalesced(() => this.prepareAhead());
  private delayTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  private readonly counts = { batches: 0, completed: 0, failed: 0 };
  // Share of wall time the event loop was busy while recent batches encoded (smoothed; 0 until one has run):
  // it decides whether a batch leaves the loop a core (compute).
  private loopBusy = 0;
  private readonly dropped: Record<DropCode, number> = { E_OVERLOADED: 0, E_TIMEOUT: 0, E_ABORTED: 0, E_CLOSED: 0 };

  constructor(options: BatcherOptions) {
    if (!isObject(options)) inputError('options', `must be an object, got ${describe(options)}`);
    for (const key of Object.keys(options)) {
      if (!(key in OPTION_KEYS)) inputError(`options.${key}`, `unknown key (allowed: ${Object.keys(OPTION_KEYS).join(', ')})`);
    }
    this.source = Batcher.sourceOf(options.model, 'options.model');
    this.maxBatch = integerIn(options.maxBatch, 1, 1 << 16, 'options.maxBatch', DEFAULTS.maxBatch);
    this.maxQueue = integerIn(options.maxQueue, this.maxBatch, 1 << 24, 'options.maxQueue', Math.max(DEFAULTS.maxQueue, this.maxBatch));
    const delay = options.maxDelayMs ?? DEFAULTS.maxDelayMs;
    if (typeof delay !== 'number' || !Number.isFinite(delay) || delay < 0) inputError('options.maxDelayMs', `must be a finite number ≥ 0, got ${describe(delay)}`);
    this.maxDelayMs = delay;
    this.timeoutMs = timeout(options.timeoutMs, 'options.timeoutMs');
    const cache = options.cache ?? {};
    this.cache = cache === false ? null : cache instanceof UserCache ? cache : new UserCache(cache);
    for (const hook of ['onBatch', 'onDrop'] as const) {
      if (options[hook] !== undefined && typeof options[hook] !== 'function') inputError(`options.${hook}`, `must be a function, got ${describe(options[hook])}`);
    }
    this.onBatch = options.onBatch;
    this.onDrop = options.onDrop;
  }

  private static sourceOf(model: unknown, path: string): () => Model {
    if (model instanceof Model) return () => model;
    if (typeof model === 'function') return model as () => Model;
    return inputError(path, `must be a Model or a function returning one, got ${describe(model)}`);
  }

  /** The model the next batch will run on. */
  get model(): Model {
    return this.source();
  }

  /**
   * Swaps the model (hot reload): batches that start from now on run on `model`, batches in flight finish on
   * the model they started with, and queued requests packed for another model are packed again for `model`.
   * Resolves once no batch runs on another model any more: then the old one can be disposed.
   */
  setModel(model: Model): Promise<void> {
    this.source = Batcher.sourceOf(model, 'model');
    const old = [...this.inFlight].filter((b) => b.model !== model).map((b) => b.done);
    return Promise.all(old).then(() => undefined);
  }

  /** User vectors U (B × userDim), as `model.encode(users, { now })`. */
  async encode(users: UserInput[], options: UsersRequestOptions = {}): Promise<Float32Array> {
    return (await this.submit({ ...options, kind: 'encode', users })).value;
  }

  /** Class probabilities (B × classes) of multiclass head `task`, as `model.predict(task, users, { now })`. */
  async predict(task: string, users: UserInput[], options: UsersRequestOptions = {}): Promise<Float32Array> {
    return (await this.submit({ ...options, kind: 'predict', task, users })).value;
  }

  /**
   * One user's candidates scored by several heads, by task name: as
   * `model.scoreAll(model.encode([user], { now }), candidates, { tasks, user })`.
   */
  async rank(user: UserInput, candidates: CandidateInput[] | CandidateColumns, options: RankRequestOptions = {}): Promise<Scores> {
    return (await this.submit({ ...options, kind: 'rank', user, candidates })).value;
  }

  /**
   * Any request, resolving to its result and how it was served (the model, queue and compute time). Rejects
   * with `E_INPUT`/`E_TASK` (invalid request), `E_OVERLOADED`, `E_TIMEOUT`, `E_ABORTED`, `E_CLOSED`, or the
   * engine's error (`E_DISPOSED`, `E_NUMERIC`, …), which every request of that native call gets.
   */
  submit<R extends BatchRequest>(request: R): Promise<Served<BatchValue<R>>> {
    return new Promise<Served<BatchValue<R>>>((resolve, reject) => {
      try {
        this.admit(request, resolve as Settle, reject);
      } catch (e) {
        this.counts.failed++;
        reject(e);
      }
    });
  }

  /**
   * Stops taking requests (new ones reject with `E_CLOSED`) and resolves once everything queued and in flight
   * has settled; a pending `maxDelayMs` wait is cut short.
   */
  close(): Promise<void> {
    this.closed = true;
    this.schedule();
    return this.whenIdle();
  }

  /** Counters and the present queue. */
  get stats(): BatcherStats {
    return { queued: this.queuedCount, queuedUsers: this.queuedUsers, running: this.inFlight.size, ...this.counts, dropped: { ...this.dropped } };
  }

  private admit(request: BatchRequest, resolve: Settle, reject: (e: unknown) => void): void {
    if (!isObject(request)) inputError('request', `must be an object, got ${describe(request)}`);
    const kind = request.kind;
    if (kind !== 'encode' && kind !== 'predict' && kind !== 'rank') inputError('request.kind', `must be "encode", "predict" or "rank", got ${describe(kind)}`);
    const users = this.checkRequest(request);
    const n = users.length;
    const refuse = (code: DropCode, message: string, cause?: unknown): void => {
      this.dropped[code]++;
      this.report('onDrop', this.onDrop, { code, kind, users: n, stage: 'submit', queueMs: 0 });
      reject(new DupnError(code, message, { cause }));
    };
    if (this.closed) return refuse('E_CLOSED', 'the batcher was closed: it takes no more requests');
    if (request.signal?.aborted) return refuse('E_ABORTED', 'the request was aborted before it was queued', request.signal.reason);
    if (this.queuedUsers + n > this.maxQueue) {
      return refuse('E_OVERLOADED', `the queue is full (${this.queuedUsers} of ${this.maxQueue} users waiting): retry later`);
    }
    if (n === 0) {
      const model = this.modelNow();
      this.lookup(model, request, users); // a predict's task is checked all the same
      this.counts.completed++;
      resolve({ value: new Float32Array(0), model, queueMs: 0, computeMs: 0, batchUsers: 0, cacheHits: 0 });
      return;
    }
    const enqueuedAt = performance.now();
    const wait = request.timeoutMs === undefined ? this.timeoutMs : request.timeoutMs;
    const p: Pending = { request, users, n, prepared: null, enqueuedAt, deadline: enqueuedAt + wait, state: 'queued', resolve, reject };
    if (Number.isFinite(wait)) {
      p.timer = setTimeout(() => this.expire(p), wait);
      p.timer.unref();
    }
    const signal = request.signal;
    if (signal !== undefined) {
      p.onAbort = () => this.abort(p, signal.reason);
      signal.addEventListener('abort', p.onAbort, { once: true });
    }
    this.queue.push(p);
    this.queuedCount++;
    this.queuedUsers += n;
    this.schedule();
    if (this.inFlight.size > 0) this.schedulePrepare();
    if (request.onCancel !== undefined) {
      try {
        request.onCancel((reason?: unknown) => this.abort(p, reason));
      } catch (e) {
        this.abort(p, e); // the caller's hook failed: its request is cancelled, with that error as the cause
      }
    }
  }

  /** The shape of a request (cheap checks, before the queue bound); returns its users. */
  private checkRequest(r: BatchRequest): UserInput[] {
    if (r.now !== undefined && (typeof r.now !== 'number' || !Number.isFinite(r.now))) inputError('options.now', `must be a finite number (Unix seconds), got ${describe(r.now)}`);
    timeout(r.timeoutMs, 'options.timeoutMs');
    if (r.signal !== undefined && !(r.signal instanceof AbortSignal)) inputError('options.signal', `must be an AbortSignal, got ${describe(r.signal)}`);
    if (r.onCancel !== undefined && typeof r.onCancel !== 'function') inputError('options.onCancel', `must be a function, got ${describe(r.onCancel)}`);
    if (r.kind === 'rank') {
      if (r.key !== undefined && typeof r.key !== 'string') inputError('options.key', `must be a string, got ${describe(r.key)}`);
      const c: unknown = r.candidates;
      if (!Array.isArray(c) && typeof c !== 'function' && !(isObject(c) && c['items'] instanceof Int32Array)) inputError('candidates', `must be an array of candidates, CandidateColumns or a packer, got ${describe(c)}`);
      return [r.user];
    }
    if (r.kind === 'predict' && typeof r.task !== 'string') inputError('task', `must be a string, got ${describe(r.task)}`);
    if (!Array.isArray(r.users)) inputError('users', `must be an array, got ${describe(r.users)}`);
    if (r.users.length > this.maxBatch) inputError('users', `at most maxBatch = ${this.maxBatch} users per request, got ${r.users.length} (call the model directly for bulk work)`);
    const keys: unknown = r.keys;
    if (keys !== undefined) {
      if (!Array.isArray(keys) || keys.length !== r.users.length) inputError('options.keys', `must be an array of ${r.users.length} keys (one per user), got ${describe(keys)}`);
      keys.forEach((k, i) => k === undefined || typeof k === 'string' || inputError(`options.keys[${i}]`, `must be a string or undefined, got ${describe(k)}`));
    }
    return r.users;
  }

  private keyOf(r: BatchRequest, i: number): string | undefined {
    return r.kind === 'rank' ? r.key : r.keys?.[i];
  }

  /**
   * A request for `model` but for its users' columns: its users looked up in the cache, a predict's task
   * checked, a rank's candidates packed. Throws the request's own E_INPUT / E_TASK.
   */
  private lookup(model: Model, r: BatchRequest, users: UserInput[]): Prepared {
    if (r.kind === 'predict') findMulticlassTask(model.config, r.task);
    const hits = users.map((_, i) => {
      const key = this.keyOf(r, i);
      return key === undefined || this.cache === null ? undefined : this.cache.get(key, model);
    });
    const miss: number[] = [];
    hits.forEach((h, i) => h === undefined && miss.push(i));
    const prepared: Prepared = { model, hits, miss, cols: null, rows: [] };
    if (r.kind === 'rank') {
      const c = r.candidates;
      prepared.candidates = Array.isArray(c) ? model.packCandidates(c, { tasks: r.tasks, user: r.user }) : typeof c === 'function' ? c(model, r.tasks, r.user) : c;
    }
    return prepared;
  }

  /**
   * Prepares the queued requests of `group` for `model`, packing the users to encode of all of them in one
   * call. If that fails, one of them is bad: each is then packed on its own, so that only the bad one is
   * rejected, with an error naming its own field. Requests that fail are rejected and leave the queue.
   */
  private prepareGroup(model: Model, group: Pending[]): void {
    const ready: Pending[] = [];
    for (const p of group) {
      try {
        p.prepared = this.lookup(model, p.request, p.users);
        if (p.prepared.miss.length > 0) ready.push(p);
      } catch (e) {
        this.refuseQueued(p, e);
      }
    }
    if (ready.length === 0) return;
    const users = ready.flatMap((p) => packed(p).miss.map((i) => withNow(p.users[i], p.request.now)));
    let cols: UserColumns;
    try {
      cols = model.pack(users);
    } catch {
      for (const p of ready) {
        const prep = packed(p);
        try {
          // All of its users, hits too, so that an error names the caller's own index.
          prep.cols = model.pack(p.users, { now: p.request.now });
          prep.rows = prep.miss;
        } catch (e) {
          this.refuseQueued(p, e);
        }
      }
      return;
    }
    let row = 0;
    for (const p of ready) {
      const prep = packed(p);
      prep.cols = cols;
      prep.rows = prep.miss.map(() => row++);
    }
  }

  /**
   * The oldest request still queued. Settled ones at the head are passed over for good and their slots
   * emptied at once: kept until the array was compacted, a thousand requests' users, candidates and packed
   * columns outlived two scavenges, so V8 copied about 1.5 MB per scavenge into the old generation (scavenge
   * pauses of 5–10 ms, and old-space garbage for the mark-compacts; docs/serving.md).
   */
  private oldest(): Pending | undefined {
    while (this.head < this.queue.length && this.queue[this.head]?.state !== 'queued') this.queue[this.head++] = undefined;
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return this.queue[this.head];
  }

  private pump(): void {
    if (this.inFlight.size > 0) return;
    const first = this.oldest();
    if (first === undefined) {
      this.wakeIdle();
      return;
    }
    if (!this.closed && this.maxDelayMs > 0 && this.queuedUsers < this.maxBatch) {
      const wait = first.enqueuedAt + this.maxDelayMs - performance.now();
      if (wait > 0) {
        if (this.delayTimer === null) {
          this.delayTimer = setTimeout(() => {
            this.delayTimer = null;
            this.pump();
          }, wait);
        }
        return;
      }
    }
    if (this.delayTimer !== null) {
      clearTimeout(this.delayTimer);
      this.delayTimer = null;
    }
    let model: Model;
    try {
      model = this.modelNow();
    } catch (e) {
      for (const p of this.take(null)) this.fail(p, e);
      this.pump();
      return;
    }
    const batch = this.take(model);
    if (batch.length === 0) {
      this.pump();
      return;
    }
    const started = performance.now();
    const entry = { model, done: Promise.resolve() };
    this.inFlight.add(entry);
    entry.done = this.compute(batch, model, started).then(
      (deliver) => {
        // The engine is free: the next batch starts before this one's callers run their continuations.
        this.inFlight.delete(entry);
        this.pump();
        deliver();
      },
      (e: unknown) => {
        // Not expected (compute catches the engine's errors itself); if it happens, no caller may hang on it.
        this.inFlight.delete(entry);
        this.pump();
        for (const p of batch) this.fail(p, e);
      },
    );
    // Prepare the batch after this one while the engine computes.
    this.schedulePrepare();
  }

  /** The model from the option or getter, checked. */
  private modelNow(): Model {
    const model: unknown = this.source();
    if (!(model instanceof Model)) throw new DupnError('E_INPUT', `model: the batcher's model getter returned ${describe(model)}, not a Model`, { path: 'model' });
    return model;
  }

  /**
   * The queued requests of the next batch: FIFO, up to `maxBatch` users. Requests past their deadline are
   * dropped on the way (never computed); none leaves the queue here.
   */
  private next(): Pending[] {
    const now = performance.now();
    const batch: Pending[] = [];
    let users = 0;
    for (let i = this.head; i < this.queue.length; i++) {
      const p = this.queue[i];
      if (p === undefined || p.state !== 'queued') continue;
      if (now >= p.deadline) {
        this.expire(p);
        continue;
      }
      if (users + p.n > this.maxBatch) break;
      batch.push(p);
      users += p.n;
    }
    return batch;
  }

  /**
   * Takes the next batch out of the queue, every request of it prepared for `model` (null: the getter failed,
   * nothing is prepared); one that fails to prepare is rejected alone and left out.
   */
  private take(model: Model | null): Pending[] {
    const batch = this.next();
    if (model !== null) this.prepareGroup(model, batch.filter((p) => p.prepared?.model !== model));
    const taken = batch.filter((p) => p.state === 'queued');
    for (const p of taken) {
      this.dequeue(p);
      p.state = 'running';
      if (p.timer !== undefined) clearTimeout(p.timer);
    }
    return taken;
  }

  /**
   * Prepares the requests of the next batch not prepared for the present model yet, while a batch computes,
   * so the next one can start as soon as the engine is free.
   */
  private prepareAhead(): void {
    if (this.inFlight.size === 0) return;
    let model: Model;
    try {
      model = this.modelNow();
    } catch {
      return; // the next batch reports it
    }
    const todo = this.next().filter((p) => p.prepared?.model !== model);
    if (todo.length > 0) this.prepareGroup(model, todo);
  }

  /** Rejects a request that failed to prepare (alone) and takes it out of the queue. */
  private refuseQueued(p: Pending, e: unknown): void {
    if (p.state === 'queued') this.dequeue(p);
    this.fail(p, e);
  }

  /** Rejects `p` with an error of its own or of its batch (not a drop); false if it was settled already. */
  private fail(p: Pending, e: unknown): boolean {
    if (!this.settle(p)) return false;
    this.counts.failed++;
    p.reject(e);
    return true;
  }

  private dequeue(p: Pending): void {
    this.queuedCount--;
    this.queuedUsers -= p.n;
  }

  private expire(p: Pending): void {
    if (p.state !== 'queued') return;
    this.dequeue(p);
    this.drop(p, 'E_TIMEOUT', 'queued', `the request's deadline passed after ${(performance.now() - p.enqueuedAt).toFixed(1)} ms in the queue: it was not computed`);
  }

  private abort(p: Pending, reason: unknown): void {
    if (p.state === 'settled') return;
    const stage = p.state;
    if (stage === 'queued') this.dequeue(p);
    const message = stage === 'queued' ? 'the request was aborted while queued: it was not computed' : 'the request was aborted while its batch ran: its result was dropped';
    this.drop(p, 'E_ABORTED', stage, message, reason);
  }

  private drop(p: Pending, code: DropCode, stage: 'queued' | 'running', message: string, cause?: unknown): void {
    if (!this.settle(p)) return;
    this.dropped[code]++;
    this.report('onDrop', this.onDrop, { code, kind: p.request.kind, users: p.n, stage, queueMs: performance.now() - p.enqueuedAt });
    p.reject(new DupnError(code, message, { cause }));
  }

  /** Marks `p` settled (once) and lets go of its timer and abort listener; false if it was settled already. */
  private settle(p: Pending): boolean {
    if (p.state === 'settled') return false;
    p.state = 'settled';
    if (p.timer !== undefined) clearTimeout(p.timer);
    if (p.onAbort !== undefined) p.request.signal?.removeEventListener('abort', p.onAbort);
    return true;
  }

  private live(p: Pending): boolean {
    return p.state === 'running';
  }

  private whenIdle(): Promise<void> {
    if (this.queuedCount === 0 && this.inFlight.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private wakeIdle(): void {
    if (this.queuedCount > 0 || this.inFlight.size > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private report<T>(name: string, hook: ((info: T) => void) | undefined, info: T): void {
    if (hook === undefined) return;
    try {
      hook(info);
    } catch (e) {
      warnFrom(name, e);
    }
  }

  /**
   * Runs one batch's native calls on `model`: one encode of every user without a cache hit, one call per
   * multiclass head asked for, one scoring call per rank request. Resolves, once the engine is done with the
   * batch, to the function that hands every caller its result (and reports the batch); never rejects for
   * an engine error, which goes to the callers of the call that failed.
   */
  private async compute(batch: Pending[], model: Model, started: number): Promise<() => void> {
    this.counts.batches++;
    const users = batch.reduce((s, p) => s + p.n, 0);
    const outcomes: { p: Pending; value?: Float32Array | Scores; error?: unknown }[] = [];
    const succeed = (p: Pending, value: Float32Array | Scores): void => void outcomes.push({ p, value });
    const fail = (p: Pending, error: unknown): void => void outcomes.push({ p, error });
    // Native threads: in a server under load the event loop is busy with other requests (parsing, answering)
    // while a batch computes, and on two cores 2 threads for the batch lost a fifth of the throughput at 64
    // connections to waiting on descheduled threads (docs/serving.md, "native threads under load"); so a batch
    // of several leaves the loop a core when the loop was busy for at least half of the recent batches' encode.
    // An idle loop (callers in the same process awaiting their results) gives every thread: leaving a core
    // there cost the in-process batcher 39% (bench:batcher). A lone request always gets every thread.
    const budget = batch.length > 1 && this.loopBusy >= 0.5 ? Math.max(1, model.threads - 1) : model.threads;
    // The rank requests are scored by one call each, all in flight at once: they run side by side on the compute
    // pool's per-core dispatchers, so the budget is shared out among them.
    const ranks = batch.reduce((s, p) => s + (p.request.kind === 'rank' ? 1 : 0), 0);
    const threads = Math.max(1, Math.floor(budget / Math.max(1, ranks)));
    const vectors = await this.encodeBatch(model, batch, fail, budget);
    const heads: Promise<void>[] = [];
    const predicts = new Map<string, Pending[]>();
    for (const p of batch) {
      const v = vectors.get(p);
      if (v === undefined || !this.live(p)) continue;
      const r = p.request;
      if (r.kind === 'encode') succeed(p, v);
      else if (r.kind === 'predict') predicts.set(r.task, [...(predicts.get(r.task) ?? []), p]);
      else {
        const candidates = packed(p).candidates as CandidateColumns;
        heads.push(model.scoreAll(v, candidates, { tasks: r.tasks, threads }).then((s) => succeed(p, s), (e: unknown) => fail(p, e)));
      }
    }
    for (const [task, group] of predicts) heads.push(this.predictGroup(model, task, group, vectors, succeed, fail));
    await Promise.all(heads);
    return () => {
      let failed = 0;
      for (const { p, value, error } of outcomes) {
        if (value === undefined) {
          if (this.fail(p, error)) failed++;
          continue;
        }
        if (!this.settle(p)) continue;
        this.counts.completed++;
        const cacheHits = packed(p).hits.reduce((s, h) => s + (h === undefined ? 0 : 1), 0);
        p.resolve({ value, model, queueMs: started - p.enqueuedAt, computeMs: performance.now() - started, batchUsers: users, cacheHits });
      }
      const misses = batch.reduce((s, p) => s + packed(p).miss.length, 0);
      const kinds: Record<BatchKind, number> = { encode: 0, predict: 0, rank: 0 };
      for (const p of batch) kinds[p.request.kind]++;
      this.report('onBatch', this.onBatch, {
        model, requests: batch.length, users, encoded: misses, cacheHits: users - misses, kinds,
        queueMs: batch.map((p) => started - p.enqueuedAt), computeMs: performance.now() - started, failed,
      });
    };
  }

  /**
   * One native encode of every user of `taken` without a cache hit; each request's U (n × userDim) assembled
   * from its hits and its encoded rows, which go to the cache under their keys. An engine error rejects every
   * request that had a user in the call.
   */
  private async encodeBatch(model: Model, taken: Pending[], fail: (p: Pending, e: unknown) => void, threads: number): Promise<Map<Pending, Float32Array>> {
    // Requests packed together stay one part: a batch that is one packed group is encoded without a copy.
    const parts: { cols: UserColumns; rows: number[] }[] = [];
    const encoding = taken.filter((p) => packed(p).miss.length > 0);
    for (const p of encoding) {
      const { cols, rows } = packed(p);
      const last = parts[parts.length - 1];
      if (last !== undefined && last.cols === cols) last.rows.push(...rows);
      else parts.push({ cols: cols as UserColumns, rows: [...rows] });
    }
    let U: Float32Array | null = new Float32Array(0);
    if (parts.length > 0) {
      try {
        const call = model.encodeColumns(gatherUserColumns(model.config, parts), { threads });
        // What else the event loop did while the engine encoded (this batch's own work is done by now).
        const loopBefore = performance.eventLoopUtilization();
        U = await call;
        const busy = performance.eventLoopUtilization(loopBefore).utilization;
        if (Number.isFinite(busy)) this.loopBusy = (this.loopBusy + busy) / 2;  // NaN over an empty window
      } catch (e) {
        for (const p of encoding) fail(p, e);
        U = null;
      }
    }
    const dim = model.userDim;
    const out = new Map<Pending, Float32Array>();
    let row = 0;
    for (const p of taken) {
      const { hits, miss } = packed(p);
      if (miss.length > 0 && U === null) continue;
      const v = new Float32Array(p.n * dim);
      hits.forEach((h, i) => h !== undefined && v.set(h, i * dim));
      for (const i of miss) {
        const u = (U as Float32Array).subarray(row * dim, ++row * dim);
        v.set(u, i * dim);
        const key = this.keyOf(p.request, i);
        if (key !== undefined && this.cache !== null) this.cache.set(key, u, model);
      }
      out.set(p, v);
    }
    return out;
  }

  /** One native call of multiclass head `task` over the users of every request in `group`, split per request. */
  private async predictGroup(model: Model, task: string, group: Pending[], vectors: Map<Pending, Float32Array>,
    succeed: (p: Pending, v: Float32Array) => void, fail: (p: Pending, e: unknown) => void): Promise<void> {
    const total = group.reduce((s, p) => s + p.n, 0);
    const users = new Float32Array(total * model.userDim);
    let at = 0;
    for (const p of group) {
      users.set(vectors.get(p) as Float32Array, at);
      at += p.n * model.userDim;
    }
    let probabilities: Float32Array;
    try {
      probabilities = await model.predictFromVectors(task, users);
    } catch (e) {
      for (const p of group) fail(p, e);
      return;
    }
    const classes = probabilities.length / total;
    let row = 0;
    for (const p of group) {
      succeed(p, probabilities.slice(row * classes, (row + p.n) * classes));
      row += p.n;
    }
  }
}
