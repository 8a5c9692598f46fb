/**
 * `dupn serve`: the HTTP server of lib/serve/server.ts from the command line. SIGHUP reloads the model file
 * (as does replacing it); SIGTERM and SIGINT stop accepting, answer what is queued and in flight, and return.
 */
import { DupnError } from '../errors';
import { ItemCatalogue } from '../serve/catalogue';
import { createServer } from '../serve/server';
import { clusterMetricsText, isServeWorker, reportListening, runPrimary, threadsPerWorker } from '../serve/workers';
import { Output } from './train';

/** The flags of `dupn serve`. */
export interface ServeFlags {
  model: string;
  items?: string;
  columns?: string;
  delimiter?: string;
  header?: boolean;
  host: string;
  port: number;
  maxBatch?: number;
  maxDelayMs?: number;
  maxQueue?: number;
  timeoutMs?: number;
  maxCandidates?: number;
  maxBehaviors?: number;
  maxUsers?: number;
  bodyLimit?: number;
  threads?: number;
  candidateCache?: number;
  watch?: boolean;
  workers?: number;
  workerNodeOptions?: string;
}

/**
 * The `--worker-node-options` value as flags, each `--name` or `--name=value`; none when not given (a worker then
 * runs with the primary's flags). Measured with the 100,000-item catalogue at 64 connections (docs/serving.md,
 * "Workers' memory"): `--optimize-for-size` halves a worker's private memory (about 140 → 72 MiB) and costs a
 * third of the throughput, which is why no flag is the default.
 */
export function workerNodeFlags(text: string | undefined): string[] {
  const flags = (text ?? '').split(/\s+/).filter((f) => f !== '');
  for (const f of flags) {
    if (!/^--[a-z0-9][a-z0-9_-]*(=\S+)?$/i.test(f)) {
      throw new DupnError('E_INPUT', `--worker-node-options: "${f}" is not a Node option (--name or --name=value)`, { path: '--worker-node-options' });
    }
  }
  return flags;
}

function integer(flag: string, v: number | undefined, min: number): number | undefined {
  if (v !== undefined && (!Number.isInteger(v) || v < min)) throw new DupnError('E_INPUT', `${flag}: must be an integer >= ${min}, got ${v}`, { path: flag });
  return v;
}

/** Runs the server until SIGTERM/SIGINT; resolves once it has drained. */
export async function serveCommand(flags: ServeFlags, io: Output): Promise<void> {
  const worker = isServeWorker();
  const workers = integer('--workers', flags.workers, 1) ?? 1;
  if (workers > 1 && !worker) {
    // Checked here so that a bad flag fails once, not in every worker.
    integer('--threads', flags.threads, 1);
    const port = integer('--port', flags.port, 0) as number;
    if (port > 65535) throw new DupnError('E_INPUT', `--port: must be in [0, 65535], got ${port}`, { path: '--port' });
    return runPrimary({
      workers,
      threads: flags.threads ?? threadsPerWorker(workers),
      exec: require.resolve('./main'),
      args: process.argv.slice(2),
      execArgv: [...process.execArgv, ...workerNodeFlags(flags.workerNodeOptions)],
      out: io.out,
      log: (line) => io.err(`dupn serve: ${line}`),
    });
  }
  if (!worker) return serveOne(flags, io, false);
  try {
    return await serveOne(flags, io, true);
  } finally {
    // A worker's IPC channel to the primary would keep it alive after draining, or after failing to start.
    if (process.connected) process.disconnect();
  }
}

/** One server process: the only one, or a worker of {@link runPrimary}. */
async function serveOne(flags: ServeFlags, io: Output, worker: boolean): Promise<void> {
  const log = worker ? (line: string): void => io.err(`dupn serve[${process.pid}]: ${line}`) : (line: string): void => io.err(`dupn serve: ${line}`);
  const threads = worker ? Number(process.env['DUPN_SERVE_THREADS']) : integer('--threads', flags.threads, 1);
  let catalogue: ItemCatalogue | undefined;
  if (flags.items !== undefined) {
    const delimiter = flags.delimiter === 'tab' || flags.delimiter === '\\t' ? '\t' : flags.delimiter;
    catalogue = await ItemCatalogue.load(flags.items, { columns: flags.columns, delimiter, header: flags.header });
    log(`catalogue ${flags.items}: ${catalogue.size} items (${catalogue.fields.join(', ')})`);
  } else if (flags.columns !== undefined) {
    throw new DupnError('E_INPUT', '--columns: maps the columns of --items, which is not given', { path: '--columns' });
  }
  const port = integer('--port', flags.port, 0) as number;
  if (port > 65535) throw new DupnError('E_INPUT', `--port: must be in [0, 65535], got ${port}`, { path: '--port' });
  const server = await createServer({
    model: flags.model,
    modelOptions: { threads, ...(flags.candidateCache !== undefined ? { candidateCache: integer('--candidate-cache', flags.candidateCache, 0) } : {}) },
    catalogue,
    maxBatch: integer('--max-batch', flags.maxBatch, 1),
    maxDelayMs: flags.maxDelayMs,
    maxQueue: integer('--max-queue', flags.maxQueue, 1),
    timeoutMs: flags.timeoutMs,
    limits: {
      maxCandidates: integer('--max-candidates', flags.maxCandidates, 1),
      maxBehaviors: integer('--max-behaviors', flags.maxBehaviors, 1),
      maxUsers: integer('--max-users', flags.maxUsers, 1),
      bodyLimit: integer('--body-limit', flags.bodyLimit, 1),
    },
    watch: flags.watch,
    log,
    ...(worker ? { metricsText: clusterMetricsText } : {}),
  });
  if (catalogue !== undefined) {
    const missing = catalogue.missingFields(server.host.model.config);
    if (missing.length > 0) log(`warning: the catalogue gives no ${missing.join(', ')}: those item fields hash as missing for catalogue items`);
  }
  const address = await server.listen(port, flags.host);
  if (worker) reportListening(address, server.host.version);
  else io.out(`dupn serve: listening on ${address} (model ${server.host.version})`);
  await new Promise<void>((resolve) => {
    const onHup = (): void => void server.reload();
    let stopping = false;
    // A worker may get SIGINT twice (from the terminal and from the primary): the second must not kill it.
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log(`${signal}: draining`);
      process.off('SIGHUP', onHup);
      server.close().then(
        () => {
          log('drained, exiting');
          resolve();
        },
        (e: unknown) => {
          log(`error while draining: ${(e as Error).message}`);
          resolve();
        },
      );
    };
    process.on('SIGHUP', onHup);
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}
