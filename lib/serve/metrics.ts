/**
 * The Prometheus metrics of `dupn serve` (prom-client), on a registry of their own so that several servers
 * (or a service's own metrics) can live in one process. Names start with `dupn_`; times are in seconds.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { BatchInfo, Batcher, DropInfo } from './batcher';

const TIME_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

/** The metric objects a server updates; {@link ServeMetrics.registry} renders them. */
export class ServeMetrics {
  /** The registry holding every metric below (`GET /metrics` renders it). */
  readonly registry: Registry;
  /** `dupn_http_requests_total{route,method,status}`. */
  readonly requests: Counter<'route' | 'method' | 'status'>;
  /** `dupn_request_duration_seconds{route}`: from the request's arrival to its response. */
  readonly total: Histogram<'route'>;
  /** `dupn_queue_seconds{kind}`: per request, from submission to the start of its batch. */
  readonly queue: Histogram<'kind'>;
  /** `dupn_compute_seconds`: per batch, from its start until its last request settled. */
  readonly compute: Histogram<string>;
  /** `dupn_batch_users`: users per batch. */
  readonly batchUsers: Histogram<string>;
  /** `dupn_user_cache_hits_total`: users whose vector came from the user-vector cache. */
  readonly cacheHits: Counter<string>;
  /** `dupn_user_cache_misses_total`: users encoded (no live vector in the cache). */
  readonly cacheMisses: Counter<string>;
  /** `dupn_dropped_requests_total{code}`: requests refused or dropped by the batcher. */
  readonly dropped: Counter<'code'>;
  /** `dupn_model_info{version}`: 1 for the model that serves. */
  readonly modelInfo: Gauge<'version'>;
  /** `dupn_model_reloads_total{result}`: reloads, `result` = `success` | `failure`. */
  readonly reloads: Counter<'result'>;
  /** `dupn_catalogue_unknown_items_total`: candidate ids not in the catalogue. */
  readonly unknownItems: Counter<string>;

  /**
   * Metrics of `batcher` (its queue depth is read at each scrape through `queued`, a getter so that the batcher can
   * be made after the metrics: its onBatch/onDrop hooks call {@link onBatch} and {@link onDrop}).
   */
  constructor(queued: () => Batcher | undefined, registry = new Registry()) {
    this.registry = registry;
    const registers = [registry];
    this.requests = new Counter({ name: 'dupn_http_requests_total', help: 'HTTP requests by route, method and status', labelNames: ['route', 'method', 'status'], registers });
    this.total = new Histogram({ name: 'dupn_request_duration_seconds', help: 'Time from a request\'s arrival to its response', labelNames: ['route'], buckets: TIME_BUCKETS, registers });
    this.queue = new Histogram({ name: 'dupn_queue_seconds', help: 'Time a request waited in the batcher queue', labelNames: ['kind'], buckets: TIME_BUCKETS, registers });
    this.compute = new Histogram({ name: 'dupn_compute_seconds', help: 'Time from the start of a batch until its last request settled', buckets: TIME_BUCKETS, registers });
    this.batchUsers = new Histogram({ name: 'dupn_batch_users', help: 'Users per batch', buckets: SIZE_BUCKETS, registers });
    this.cacheHits = new Counter({ name: 'dupn_user_cache_hits_total', help: 'Users whose vector came from the user-vector cache', registers });
    this.cacheMisses = new Counter({ name: 'dupn_user_cache_misses_total', help: 'Users encoded (not found in the user-vector cache)', registers });
    this.dropped = new Counter({ name: 'dupn_dropped_requests_total', help: 'Requests refused or dropped by the batcher, by code', labelNames: ['code'], registers });
    // aggregator max: with --workers the primary sums the workers' metrics, and every worker reports its version as 1.
    this.modelInfo = new Gauge({ name: 'dupn_model_info', help: 'The model that serves (1), by version (content hash of the file)', labelNames: ['version'], aggregator: 'max', registers });
    this.reloads = new Counter({ name: 'dupn_model_reloads_total', help: 'Model reloads by result (failure: the previous model kept serving)', labelNames: ['result'], registers });
    this.unknownItems = new Counter({ name: 'dupn_catalogue_unknown_items_total', help: 'Candidate ids not in the item catalogue (scored with the empty-attribute row)', registers });
    new Gauge({
      name: 'dupn_queue_depth', help: 'Users waiting in the batcher queue', registers,
      collect() {
        this.set(queued()?.stats.queuedUsers ?? 0);
      },
    });
    for (const r of ['success', 'failure']) this.reloads.inc({ result: r }, 0);
  }

  /** The batcher's onBatch hook. */
  onBatch(info: BatchInfo): void {
    this.batchUsers.observe(info.users);
    this.compute.observe(info.computeMs / 1000);
    if (info.cacheHits > 0) this.cacheHits.inc(info.cacheHits);
    if (info.encoded > 0) this.cacheMisses.inc(info.encoded);
  }

  /** The batcher's onDrop hook. */
  onDrop(info: DropInfo): void {
    this.dropped.inc({ code: info.code });
  }

  /** Marks `version` as the model that serves. */
  setVersion(version: string): void {
    this.modelInfo.reset();
    this.modelInfo.set({ version }, 1);
  }
}
