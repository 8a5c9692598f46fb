/**
 * `dupn serve --workers n`: n processes (Node's cluster) that share the port, each with its own model, batcher
 * and native threads. The primary only supervises: it forwards SIGHUP (reload) and SIGTERM/SIGINT (drain) to
 * the workers, replaces a worker that dies after it was serving, and answers the workers' `/metrics` with the
 * sum over all of them (prom-client's AggregatorRegistry), so that a scrape through the shared port sees the
 * whole server rather than whichever worker took the connection.
 */
import cluster, { Worker } from 'node:cluster';
import * as os from 'node:os';
import { AggregatorRegistry, Registry } from 'prom-client';
import { DupnError } from '../errors';

const LISTENING = 'dupn:listening';
const METRICS_REQ = 'dupn:metrics-req';
const METRICS_RES = 'dupn:metrics-res';

/** What a worker tells the primary once it serves. */
interface ListeningMessage {
  type: typeof LISTENING;
  address: string;
  version: string;
}

/**
 * Native threads per worker: the cores shared out so that n workers do not oversubscribe the machine
 * (at least one each).
 */
export function threadsPerWorker(workers: number, cores = os.availableParallelism()): number {
  return Math.max(1, Math.floor(cores / workers));
}

/** Whether this process is a serving worker started by {@link runPrimary}. */
export function isServeWorker(): boolean {
  return cluster.isWorker && process.env['DUPN_SERVE_WORKER'] === '1';
}

/** In a worker: tells the primary that this worker listens (the primary prints one line for all). */
export function reportListening(address: string, version: string): void {
  const m: ListeningMessage = { type: LISTENING, address, version };
  process.send?.(m);
}

let metricsRequests = 0;
const pendingMetrics = new Map<number, { resolve: (text: string) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

/**
 * In a worker: the metrics of every worker summed, asked of the primary. `registry` is this worker's own,
 * which the primary's AggregatorRegistry collects.
 */
export function clusterMetricsText(registry: Registry): () => Promise<string> {
  AggregatorRegistry.setRegistries([registry]);
  // Constructing one is what makes a worker answer the primary's collection requests.
  new AggregatorRegistry();
  process.on('message', (m: { type?: string; id?: number; text?: string; error?: string }) => {
    if (m?.type !== METRICS_RES || m.id === undefined) return;
    const p = pendingMetrics.get(m.id);
    if (p === undefined) return;
    pendingMetrics.delete(m.id);
    clearTimeout(p.timer);
    if (m.error !== undefined) p.reject(new DupnError('E_INTERNAL', `metrics of the workers: ${m.error}`));
    else p.resolve(m.text ?? '');
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = ++metricsRequests;
      const timer = setTimeout(() => {
        pendingMetrics.delete(id);
        reject(new DupnError('E_TIMEOUT', 'metrics of the workers: the primary did not answer within 5 s'));
      }, 5000);
      pendingMetrics.set(id, { resolve, reject, timer });
      process.send?.({ type: METRICS_REQ, id });
    });
}

/** Options of {@link runPrimary}. */
export interface PrimaryOptions {
  workers: number;
  /** Native threads of each worker (passed to it as DUPN_SERVE_THREADS). */
  threads: number;
  /** The command line the workers run (the CLI entry and its arguments). */
  exec: string;
  args: string[];
  /** Node flags of the workers (default: the primary's own). */
  execArgv?: string[];
  /** The line printed once every worker listens. */
  out: (line: string) => void;
  log: (line: string) => void;
}

/**
 * Forks the workers and supervises them until SIGTERM/SIGINT has drained them all. Rejects if a worker exits
 * before it serves (a bad model file, a port in use): the others are stopped.
 */
export function runPrimary(o: PrimaryOptions): Promise<void> {
  cluster.setupPrimary({ exec: o.exec, args: o.args, execArgv: o.execArgv ?? process.execArgv, silent: false });
  const aggregator = new AggregatorRegistry();
  const serving = new Set<Worker>();
  let listeningOnce = false;
  let stopping = false;
  let failed: Error | null = null;
  const restarts: number[] = [];

  return new Promise<void>((resolve, reject) => {
    const finish = (): void => {
      if (Object.keys(cluster.workers ?? {}).length > 0) return;
      process.off('SIGHUP', onHup);
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      if (failed !== null) reject(failed);
      else resolve();
    };
    const stopAll = (signal: NodeJS.Signals): void => {
      stopping = true;
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(signal);
    };
    const fork = (): void => {
      const w = cluster.fork({ DUPN_SERVE_WORKER: '1', DUPN_SERVE_THREADS: String(o.threads) });
      w.on('message', (m: { type?: string; id?: number } & Partial<ListeningMessage>) => {
        if (m?.type === LISTENING) {
          serving.add(w);
          if (!listeningOnce && serving.size === o.workers) {
            listeningOnce = true;
            o.out(`dupn serve: listening on ${m.address} (model ${m.version}; ${o.workers} workers × ${o.threads} native threads)`);
          }
        } else if (m?.type === METRICS_REQ && m.id !== undefined) {
          const id = m.id;
          aggregator.clusterMetrics().then(
            (text) => w.isConnected() && w.send({ type: METRICS_RES, id, text }),
            (e: Error) => w.isConnected() && w.send({ type: METRICS_RES, id, error: e.message }),
          );
        }
      });
      w.on('exit', (code, signal) => {
        const wasServing = serving.delete(w);
        if (stopping) return finish();
        if (!wasServing) {
          // It never served: the same start would fail again (the model, the port). Stop the rest.
          failed ??= new DupnError('E_INTERNAL', `a serving worker exited before it listened (${signal ?? `code ${code}`}); its error is above`);
          stopAll('SIGTERM');
          return finish();
        }
        const now = Date.now();
        restarts.push(now);
        while (restarts.length > 0 && restarts[0] < now - 60_000) restarts.shift();
        if (restarts.length > 5) {
          failed ??= new DupnError('E_INTERNAL', 'serving workers died more than 5 times in a minute: stopping');
          o.log('workers died more than 5 times in a minute: stopping the rest');
          stopAll('SIGTERM');
          return finish();
        }
        o.log(`worker ${w.process.pid} died (${signal ?? `code ${code}`}): starting another`);
        fork();
      });
    };
    const onHup = (): void => {
      for (const w of serving) w.process.kill('SIGHUP');
    };
    const onTerm = (): void => {
      o.log('SIGTERM: draining the workers');
      stopAll('SIGTERM');
    };
    // Ctrl-C reaches the workers too (one process group); they drain on their own.
    const onInt = (): void => {
      o.log('SIGINT: draining the workers');
      stopAll('SIGINT');
    };
    process.on('SIGHUP', onHup);
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onInt);
    for (let i = 0; i < o.workers; i++) fork();
  });
}
