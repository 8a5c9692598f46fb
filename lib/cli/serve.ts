/**
 * `dupn serve`: the HTTP server of lib/serve/server.ts from the command line. SIGHUP reloads the model file
 * (as does replacing it); SIGTERM and SIGINT stop accepting, answer what is queued and in flight, and return.
 */
import { DupnError } from '../errors';
import { ItemCatalogue } from '../serve/catalogue';
import { createServer } from '../serve/server';
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
}

function integer(flag: string, v: number | undefined, min: number): number | undefined {
  if (v !== undefined && (!Number.isInteger(v) || v < min)) throw new DupnError('E_INPUT', `${flag}: must be an integer >= ${min}, got ${v}`, { path: flag });
  return v;
}

/** Runs the server until SIGTERM/SIGINT; resolves once it has drained. */
export async function serveCommand(flags: ServeFlags, io: Output): Promise<void> {
  const log = (line: string): void => io.err(`dupn serve: ${line}`);
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
    modelOptions: { threads: integer('--threads', flags.threads, 1), ...(flags.candidateCache !== undefined ? { candidateCache: integer('--candidate-cache', flags.candidateCache, 0) } : {}) },
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
  });
  if (catalogue !== undefined) {
    const missing = catalogue.missingFields(server.host.model.config);
    if (missing.length > 0) log(`warning: the catalogue gives no ${missing.join(', ')}: those item fields hash as missing for catalogue items`);
  }
  const address = await server.listen(port, flags.host);
  io.out(`dupn serve: listening on ${address} (model ${server.host.version})`);
  await new Promise<void>((resolve) => {
    const onHup = (): void => void server.reload();
    const stop = (signal: string): void => {
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
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
