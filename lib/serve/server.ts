/**
 * `dupn serve` (issue 13, item 3): HTTP on fastify in front of a {@link Batcher}. `POST /v1/encode`, `/v1/rank`,
 * `/v1/predict` with JSON schemas for every body and response (bodies validated by fastify; each response
 * schema compiled into its writer in ./answers, which prints the model's float32 numbers natively), `GET
 * /healthz`, `/readyz` and `/metrics` (Prometheus). Errors answer `{ "error": { "code", "message" } }`: 400 for
 * an invalid request (the message names the field), 413 for a body over the limit, 429 `E_OVERLOADED` when the
 * queue is full, 504 `E_TIMEOUT` past the queue deadline, 503 while shutting down. Every answer of the model
 * carries its version (the content hash of the model file). {@link dupnRoutes} is the fastify plugin behind it,
 * for a service that mounts the routes in its own app.
 */
import Fastify, { FastifyError, FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { DupnError, DupnErrorCode, describe, inputError, isErrorCode } from '../errors';
import { ModelOptions } from '../model/model';
import { CandidateInput, UserInput } from '../model/features';
import { Batcher, BatchKind, Scores } from './batcher';
import { EncodeAnswer, PredictAnswer, RankAnswer, TopEntry, answerCompiler, encodeJson, predictJson, rankJson } from './answers';
import { ItemCatalogue } from './catalogue';
import { Registry } from 'prom-client';
import { ServeMetrics } from './metrics';
import { ModelHost, ReloadResult } from './model-host';
import { UserCacheOptions } from './user-cache';

/** Limits on one request (defaults in {@link DEFAULT_LIMITS}). */
export interface ServeLimits {
  /** Most candidates of one rank request. */
  maxCandidates?: number;
  /** Most behaviours of one user (only the model's `maxSeqLen` most recent are used). */
  maxBehaviors?: number;
  /** Most users of one encode/predict request (at most the batcher's `maxBatch`). */
  maxUsers?: number;
  /** Most bytes of a request body (larger: 413). */
  bodyLimit?: number;
}

/** The limits a server has when none are given. */
export const DEFAULT_LIMITS: Required<ServeLimits> = { maxCandidates: 2000, maxBehaviors: 1000, maxUsers: 64, bodyLimit: 8 << 20 };

/** The limits with `given` laid over the defaults, key by key (undefined keeps the default); each checked. */
export function resolveLimits(given: ServeLimits = {}): Required<ServeLimits> {
  const out: Required<ServeLimits> = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(DEFAULT_LIMITS) as (keyof ServeLimits)[]) {
    const v = given[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) inputError(`limits.${key}`, `must be an integer >= 1, got ${describe(v)}`);
    out[key] = v;
  }
  return out;
}

/** HTTP status of each error code a route may answer with. */
const STATUS: Partial<Record<DupnErrorCode, number>> = {
  E_INPUT: 400, E_TASK: 400, E_OVERLOADED: 429, E_TIMEOUT: 504, E_CLOSED: 503, E_ABORTED: 503, E_DISPOSED: 503,
};

/**
 * The ajv options the route schemas are written for: an unknown key or a value of the wrong type is refused
 * (fastify's defaults would drop the key and coerce the value). A service mounting {@link dupnRoutes} passes
 * them as `Fastify({ ajv: { customOptions: AJV_OPTIONS } })` to get the same 400s.
 */
export const AJV_OPTIONS = { removeAdditional: false, coerceTypes: false, useDefaults: false } as const;

/** Options of {@link dupnRoutes}. */
export interface DupnRoutesOptions {
  /** The batcher every request goes through. */
  batcher: Batcher;
  /** The version of the model a result came from (default: `"unversioned"`). */
  versionOf?: (model: import('../model/model').Model) => string;
  /** Item attributes by id, so that rank candidates may be given as ids. Without it, ids are scored as `{ item: id }`. */
  catalogue?: ItemCatalogue;
  /** Request limits. */
  limits?: ServeLimits;
  /** Metrics to update (default: none). */
  metrics?: ServeMetrics;
}

/** Body of `POST /v1/encode`. */
export interface EncodeBody {
  users: UserInput[];
  /** Request time in Unix seconds for users without their own `now`. */
  now?: number;
  /** Per user, a key for the user-vector cache (null: not cached). */
  keys?: (string | null)[];
}

/** Body of `POST /v1/predict`. */
export interface PredictBody extends EncodeBody {
  task: string;
}

/** Body of `POST /v1/rank`. */
export interface RankBody {
  user: UserInput;
  /** Item ids (looked up in the catalogue) or candidate objects. */
  candidates: (string | CandidateInput)[];
  /** Heads to score (default: every one that is not multiclass). */
  tasks?: string[];
  /** Return the `k` best candidates by the first task's score, best first. */
  k?: number;
  now?: number;
  /** The user's key in the user-vector cache. */
  key?: string;
}

const categorical = { anyOf: [{ type: 'string' }, { type: 'number' }, { type: 'null' }] };
const stringOrNull = { anyOf: [{ type: 'string' }, { type: 'null' }] };
const modelSchema = { type: 'object', properties: { version: { type: 'string' } }, required: ['version'] };
const errorSchema = {
  type: 'object',
  properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } }, required: ['code', 'message'] } },
  required: ['error'],
};
const errorResponses = { '4xx': errorSchema, '5xx': errorSchema };

function userSchema(maxBehaviors: number): object {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['behaviors'],
    properties: {
      behaviors: {
        type: 'array',
        maxItems: maxBehaviors,
        items: {
          type: 'object',
          required: ['type', 'time'],
          properties: { type: { type: 'string' }, time: { type: 'number' }, scene: stringOrNull },
          additionalProperties: categorical,
        },
      },
      query: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] },
      profile: { type: 'object', additionalProperties: categorical },
      now: { type: 'number' },
    },
  };
}

const candidateSchema = {
  anyOf: [
    { type: 'string' },
    {
      type: 'object',
      properties: { dense: { type: 'array', items: { type: 'number' } } },
      additionalProperties: categorical,
    },
  ],
};

/** The JSON schemas of the three model routes, for the given limits. */
export function routeSchemas(limits: Required<ServeLimits>) {
  const user = userSchema(limits.maxBehaviors);
  const users = { type: 'array', minItems: 1, maxItems: limits.maxUsers, items: user };
  const keys = { type: 'array', maxItems: limits.maxUsers, items: stringOrNull };
  const matrix = { type: 'array', items: { type: 'array', items: { type: 'number' } } };
  return {
    encode: {
      body: { type: 'object', additionalProperties: false, required: ['users'], properties: { users, now: { type: 'number' }, keys } },
      response: { 200: { type: 'object', properties: { vectors: matrix, model: modelSchema }, required: ['vectors', 'model'] }, ...errorResponses },
    },
    predict: {
      body: { type: 'object', additionalProperties: false, required: ['task', 'users'], properties: { task: { type: 'string' }, users, now: { type: 'number' }, keys } },
      response: { 200: { type: 'object', properties: { probabilities: matrix, model: modelSchema }, required: ['probabilities', 'model'] }, ...errorResponses },
    },
    rank: {
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['user', 'candidates'],
        properties: {
          user,
          candidates: { type: 'array', maxItems: limits.maxCandidates, items: candidateSchema },
          tasks: { type: 'array', minItems: 1, items: { type: 'string' } },
          k: { type: 'integer', minimum: 0 },
          now: { type: 'number' },
          key: { type: 'string' },
        },
      },
      response: {
        200: {
          type: 'object',
          required: ['scores', 'model'],
          properties: {
            scores: { type: 'object', additionalProperties: { type: 'array', items: { type: 'number' } } },
            top: {
              type: 'array',
              items: { type: 'object', required: ['index', 'score'], properties: { item: { type: 'string' }, index: { type: 'integer' }, score: { type: 'number' } } },
            },
            model: modelSchema,
          },
        },
        ...errorResponses,
      },
    },
  };
}

/** `/users/0/behaviors` (ajv's instancePath) → `users[0].behaviors`. */
function fieldPath(instancePath: string, missing?: unknown): string {
  const parts = instancePath.split('/').filter((p) => p.length > 0);
  if (typeof missing === 'string') parts.push(missing);
  let out = 'body';
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : `.${p}`;
  return out;
}

/** The answer to an error: its status and `{ error: { code, message } }`. */
export function errorReply(e: unknown): { status: number; body: { error: { code: string; message: string } } } {
  const fe = e as FastifyError & { validation?: { instancePath: string; message?: string; params?: Record<string, unknown> }[] };
  if (Array.isArray(fe.validation) && fe.validation.length > 0) {
    const v = fe.validation[0];
    const path = fieldPath(v.instancePath, v.params?.['missingProperty'] ?? v.params?.['additionalProperty']);
    const what = v.params?.['additionalProperty'] !== undefined ? 'is not an allowed key' : (v.message ?? 'is invalid');
    return { status: 400, body: { error: { code: 'E_INPUT', message: `${path}: ${what}` } } };
  }
  if (e instanceof DupnError) {
    return { status: STATUS[e.code] ?? 500, body: { error: { code: e.code, message: e.message } } };
  }
  const code = typeof fe.code === 'string' ? fe.code : '';
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') return { status: 413, body: { error: { code: 'E_INPUT', message: `body: larger than the limit (${fe.message})` } } };
  if (code.startsWith('FST_ERR_CTP_') || (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500)) {
    return { status: fe.statusCode ?? 400, body: { error: { code: 'E_INPUT', message: `body: ${fe.message}` } } };
  }
  return { status: 500, body: { error: { code: isErrorCode(code) ? code : 'E_INTERNAL', message: fe.message ?? String(e) } } };
}

function keysOf(keys: (string | null)[] | undefined, users: number): (string | undefined)[] | undefined {
  if (keys === undefined) return undefined;
  if (keys.length !== users) inputError('body.keys', `must have one key per user (${users}), got ${keys.length}`);
  return keys.map((k) => k ?? undefined);
}

/** Whether candidate a ranks before b: the higher score, then the earlier candidate. */
const before = (scores: Float32Array, a: number, b: number): boolean => scores[a] > scores[b] || (scores[a] === scores[b] && a < b);

/**
 * The `k` best candidates by `scores`, best first (ties: the earlier candidate). A heap of the k best so far
 * (its root the worst of them): n log k comparisons of numbers, where sorting every candidate with a
 * comparator closure cost several times more on the event loop.
 */
export function topK(scores: Float32Array, k: number, ids: (string | undefined)[]): TopEntry[] {
  const n = scores.length;
  const m = Math.min(k, n);
  const heap = new Int32Array(m);
  const sift = (size: number): void => {
    for (let i = 0; ; ) {
      const l = 2 * i + 1;
      if (l >= size) return;
      const r = l + 1;
      // The child that ranks last goes up: the root stays the worst of the heap.
      const c = r < size && before(scores, heap[l], heap[r]) ? r : l;
      if (!before(scores, heap[i], heap[c])) return;
      const t = heap[i];
      heap[i] = heap[c];
      heap[c] = t;
      i = c;
    }
  };
  for (let i = 0; i < n; i++) {
    if (i < m) {
      // Sift up.
      let j = i;
      heap[j] = i;
      while (j > 0) {
        const p = (j - 1) >> 1;
        if (!before(scores, heap[p], heap[j])) break;
        const t = heap[p];
        heap[p] = heap[j];
        heap[j] = t;
        j = p;
      }
    } else if (m > 0 && before(scores, i, heap[0])) {
      heap[0] = i;
      sift(m);
    }
  }
  const order = Array.from(heap).sort((a, b) => (before(scores, a, b) ? -1 : 1));
  return order.map((index) => (ids[index] === undefined ? { index, score: scores[index] } : { item: ids[index], index, score: scores[index] }));
}

/**
 * The fastify plugin of dupn's model routes: `POST /v1/encode`, `/v1/rank` and `/v1/predict` (see the module
 * comment), with their schemas and error answers (the plugin sets its own error handler, scoped to it). The
 * caller owns the batcher (and closes it).
 */
export const dupnRoutes: FastifyPluginAsync<DupnRoutesOptions> = async (app, options) => {
  const limits = resolveLimits(options.limits);
  const { batcher, catalogue, metrics } = options;
  if (limits.maxUsers > batcher.maxBatch) limits.maxUsers = batcher.maxBatch;
  const versionOf = options.versionOf ?? (() => 'unversioned');
  const schemas = routeSchemas(limits);
  const empty = catalogue ?? ItemCatalogue.fromItems([]);

  app.setErrorHandler((e, _request, reply) => {
    const { status, body } = errorReply(e);
    if (status === 429) void reply.header('retry-after', '1');
    void reply.code(status).send(body);
  });

  /**
   * Cancels the request when the client goes away before its answer. (Not an AbortController per request:
   * on Node 20 those kept each request's objects alive into the old generation; see `onCancel`.)
   */
  const gone =
    (reply: FastifyReply) =>
    (cancel: () => void): void => {
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) cancel();
      });
    };
  const queued = (kind: BatchKind, ms: number): void => metrics?.queue.observe({ kind }, ms / 1000);

  app.post<{ Body: EncodeBody }>('/v1/encode', { schema: schemas.encode, serializerCompiler: answerCompiler(encodeJson) }, async (request, reply) => {
    const b = request.body;
    const served = await batcher.submit({ kind: 'encode', users: b.users, now: b.now, keys: keysOf(b.keys, b.users.length), onCancel: gone(reply) });
    queued('encode', served.queueMs);
    const answer: EncodeAnswer = { vectors: { values: served.value, row: served.model.userDim }, model: { version: versionOf(served.model) } };
    return answer;
  });

  app.post<{ Body: PredictBody }>('/v1/predict', { schema: schemas.predict, serializerCompiler: answerCompiler(predictJson) }, async (request, reply) => {
    const b = request.body;
    const served = await batcher.submit({ kind: 'predict', task: b.task, users: b.users, now: b.now, keys: keysOf(b.keys, b.users.length), onCancel: gone(reply) });
    queued('predict', served.queueMs);
    const answer: PredictAnswer = { probabilities: { values: served.value, row: served.value.length / b.users.length }, model: { version: versionOf(served.model) } };
    return answer;
  });

  app.post<{ Body: RankBody }>('/v1/rank', { schema: schemas.rank, serializerCompiler: answerCompiler(rankJson) }, async (request, reply) => {
    const b = request.body;
    // Catalogue items are hashed once per model (ItemCatalogue.packer), not per request.
    const { pack, ids, unknown } = empty.packer(b.candidates, 'body.candidates');
    if (unknown > 0) metrics?.unknownItems.inc(unknown);
    const served = await batcher.submit({ kind: 'rank', user: b.user, candidates: pack, tasks: b.tasks, now: b.now, key: b.key, onCancel: gone(reply) });
    queued('rank', served.queueMs);
    const value: Scores = served.value;
    const answer: RankAnswer = { scores: value, model: { version: versionOf(served.model) } };
    if (b.k !== undefined) {
      const first = b.tasks?.[0] ?? Object.keys(value)[0];
      answer.top = first === undefined ? [] : topK(value[first], b.k, ids);
    }
    return answer;
  });
};

/** Options of {@link createServer}. */
export interface ServerOptions {
  /** The model file (`.safetensors`). */
  model: string;
  /** Options of every model load (threads, candidateCache, …). */
  modelOptions?: ModelOptions;
  /** The item catalogue. */
  catalogue?: ItemCatalogue;
  /** Most users per batch (default 64). */
  maxBatch?: number;
  /** Milliseconds a small batch may wait for more (default 0). */
  maxDelayMs?: number;
  /** Most users waiting (default 4096); beyond: 429. */
  maxQueue?: number;
  /** Queue deadline of a request in milliseconds (default 1000); past it: 504. */
  timeoutMs?: number;
  /** The user-vector cache (default: the batcher's default). */
  cache?: UserCacheOptions | false;
  /** Request limits. */
  limits?: ServeLimits;
  /** Reload when the model file is replaced (default true). */
  watch?: boolean;
  /** Log lines (default: none). */
  log?: (line: string) => void;
  /**
   * `GET /metrics` answers this text instead of this server's own registry: a `--workers` worker asks the
   * primary for the sum over every worker (lib/serve/workers.ts).
   */
  metricsText?: (registry: Registry) => () => Promise<string>;
}

/** A running (or ready to listen) `dupn serve`: see {@link createServer}. */
export interface DupnServer {
  /** The fastify app (routes registered). */
  app: FastifyInstance;
  /** The batcher. */
  batcher: Batcher;
  /** The model host (version, reload). */
  host: ModelHost;
  /** The metrics. */
  metrics: ServeMetrics;
  /** Starts listening; resolves to the address (`http://127.0.0.1:8080`). */
  listen(port: number, host?: string): Promise<string>;
  /** Loads the model file again (SIGHUP); a bad file keeps the old model. */
  reload(): Promise<ReloadResult>;
  /** Stops accepting, answers what is queued and in flight, closes the batcher and disposes the model (SIGTERM). */
  close(): Promise<void>;
  /** Whether a model is loaded and warm and the server is not shutting down (`/readyz`). */
  readonly ready: boolean;
}

/**
 * A `dupn serve` server: loads (checks and warms) the model, builds the batcher, the metrics and the fastify
 * app with every route. Rejects if the model cannot be loaded. Call `listen`, and `close` to drain.
 */
export async function createServer(options: ServerOptions): Promise<DupnServer> {
  const log = options.log ?? (() => undefined);
  const host = new ModelHost({ path: options.model, modelOptions: options.modelOptions, catalogue: options.catalogue, log });
  let batcher: Batcher | undefined;
  const metrics = new ServeMetrics(() => batcher);
  const model = await host.start();
  metrics.setVersion(host.version);
  batcher = new Batcher({
    model,
    maxBatch: options.maxBatch,
    maxDelayMs: options.maxDelayMs,
    maxQueue: options.maxQueue,
    timeoutMs: options.timeoutMs ?? 1000,
    cache: options.cache,
    onBatch: (info) => metrics.onBatch(info),
    onDrop: (info) => metrics.onDrop(info),
  });
  const b = batcher;
  host.attach(b);
  host.onReload((r) => {
    metrics.reloads.inc({ result: r.error === undefined ? 'success' : 'failure' });
    if (r.swapped) metrics.setVersion(r.version);
  });
  const limits = resolveLimits(options.limits);
  const app = Fastify({ bodyLimit: limits.bodyLimit, logger: false, forceCloseConnections: 'idle', ajv: { customOptions: AJV_OPTIONS } });
  let ready = true;
  let closing: Promise<void> | null = null;

  app.addHook('onRequest', async (request: FastifyRequest) => {
    (request as FastifyRequest & { startedAt?: number }).startedAt = performance.now();
  });
  app.addHook('onResponse', async (request: FastifyRequest, reply: FastifyReply) => {
    const route = request.routeOptions.url ?? 'unknown';
    metrics.requests.inc({ route, method: request.method, status: String(reply.statusCode) });
    const startedAt = (request as FastifyRequest & { startedAt?: number }).startedAt;
    if (startedAt !== undefined) metrics.total.observe({ route }, (performance.now() - startedAt) / 1000);
  });
  app.setErrorHandler((e, _request, reply) => {
    const { status, body } = errorReply(e);
    void reply.code(status).send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ error: { code: 'E_INPUT', message: `${request.method} ${request.url}: no such route` } });
  });

  await app.register(dupnRoutes, { batcher: b, versionOf: (m) => host.versionOf(m), catalogue: options.catalogue, limits, metrics });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    if (!ready) return reply.code(503).send({ status: 'shutting down', model: { version: host.version } });
    return { status: 'ready', model: { version: host.version } };
  });
  const metricsText = options.metricsText?.(metrics.registry) ?? (() => metrics.registry.metrics());
  app.get('/metrics', async (_request, reply) => {
    const text = await metricsText();
    return reply.header('content-type', metrics.registry.contentType).send(text);
  });
  if (options.watch ?? true) host.watch();

  return {
    app,
    batcher: b,
    host,
    metrics,
    get ready() {
      return ready;
    },
    async listen(port: number, hostname = '127.0.0.1') {
      return app.listen({ port, host: hostname });
    },
    reload: () => host.reload(true),
    close() {
      closing ??= (async () => {
        ready = false;
        // Stops accepting; requests in flight (queued in the batcher included) are answered before it resolves.
        await app.close();
        await b.close();
        await host.close();
      })();
      return closing;
    },
  };
}
