/**
 * The model a server serves, from a file, and its hot reload: the new file is loaded fully (checksum
 * verified), checked and warmed by one call of every head, then swapped into the batcher; batches in flight
 * finish on the old model, which is disposed once they have. A bad file keeps the old model serving and is
 * reported. The version of a model is the content hash of its file.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { DupnError } from '../errors';
import { Model, ModelOptions } from '../model/model';
import { Batcher } from './batcher';
import { ItemCatalogue, catalogueDense } from './catalogue';

/** What {@link ModelHost.reload} reports. */
export interface ReloadResult {
  /** Whether a new model now serves (false: the file failed, or had not changed). */
  swapped: boolean;
  /** The version serving after the reload. */
  version: string;
  /** The previous version. */
  previous: string;
  /** The error that kept the previous model (absent when none). */
  error?: DupnError;
  /** Milliseconds the load, check and warm-up took. */
  ms: number;
}

/** The content hash of a file: the first 16 hex digits of its SHA-256 (what every response and `dupn_model_info` carry). */
export async function fileVersion(path: string): Promise<string> {
  const h = createHash('sha256');
  // One buffer read into again and again: a read stream's fresh 64 KiB chunk per read left about 27 MiB of
  // freed native memory that the process kept, per server and per reload (docs/serving.md, workers' memory).
  const buf = Buffer.allocUnsafeSlow(1 << 20);
  let file: fs.promises.FileHandle | undefined;
  try {
    file = await fs.promises.open(path, 'r');
    for (;;) {
      const { bytesRead } = await file.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
    }
  } catch (e) {
    throw new DupnError('E_IO', `cannot read ${path}: ${(e as Error).message}`, { path, cause: e });
  } finally {
    await file?.close().catch(() => undefined);
  }
  return h.digest('hex').slice(0, 16);
}

/** Identity of a file on disk, to tell a replaced file from an unchanged one. */
function identity(st: fs.Stats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
}

/**
 * Loads the model at `path`: the file hashed before and after the load (a file replaced in between is read
 * again), then checked and warmed by {@link warm}. Rejects with `E_IO`, `E_MODEL_FILE` or the warm-up's error.
 */
export async function loadVersioned(path: string, options: ModelOptions): Promise<{ model: Model; version: string; identity: string }> {
  for (let attempt = 0; ; attempt++) {
    const before = await fileVersion(path);
    const st = await fs.promises.stat(path).catch((e: unknown) => {
      throw new DupnError('E_IO', `cannot stat ${path}: ${(e as Error).message}`, { path, cause: e });
    });
    const model = await Model.load(path, options);
    const after = await fileVersion(path).catch((e: unknown) => {
      model.dispose();
      throw e;
    });
    if (before !== after && attempt < 3) {
      model.dispose();
      continue;
    }
    try {
      await warm(model);
    } catch (e) {
      model.dispose();
      throw e;
    }
    return { model, version: after, identity: identity(st) };
  }
}

/**
 * One call of every head on a user with one behaviour and one candidate: checks that the model computes
 * finite outputs and warms its code paths and buffers before it takes traffic.
 */
export async function warm(model: Model): Promise<void> {
  const user = { behaviors: [{ type: 'pv', time: 0 }], now: 60 };
  const U = await model.encode([user]);
  for (const t of model.config.tasks) {
    if (t.kind === 'multiclass') await model.predictFromVectors(t.name, U);
    else {
      const dense = t.kind === 'rank' ? catalogueDense(model.config, [t.name]) : 0;
      await model.scoreAll(U, [dense > 0 ? { dense: new Array<number>(dense).fill(0) } : {}], { tasks: [t.name], user });
    }
  }
}

/** Options of a {@link ModelHost}. */
export interface ModelHostOptions {
  /** The model file. */
  path: string;
  /** Options of every load (threads, `candidateCache` (default 0: none), …). */
  modelOptions?: ModelOptions;
  /** The item catalogue, if any (hashed once per model when it loads). */
  catalogue?: ItemCatalogue;
  /** Log lines (reloads, failures). */
  log?: (line: string) => void;
}

/**
 * Holds the model that serves and reloads it from its file: on {@link reload} (SIGHUP) and, with {@link watch},
 * when the file is replaced (write and rename, as `dupn train` writes it). Reloads run one at a time.
 */
export class ModelHost {
  /** The model file. */
  readonly path: string;
  private readonly options: ModelOptions;
  private readonly log: (line: string) => void;
  private current: { model: Model; version: string; identity: string } | null = null;
  private batcher: Batcher | null = null;
  private readonly versions = new WeakMap<Model, string>();
  private chain: Promise<unknown> = Promise.resolve();
  private pending: Promise<ReloadResult> | null = null;
  private watcher: fs.FSWatcher | null = null;
  private debounce: NodeJS.Timeout | null = null;
  private readonly listeners: ((r: ReloadResult) => void)[] = [];
  private readonly catalogue: ItemCatalogue | undefined;

  constructor(options: ModelHostOptions) {
    this.path = nodePath.resolve(options.path);
    // No candidate projection cache unless asked for: with a real catalogue's random candidates it is slower
    // than computing the projection (docs/serving.md, "The candidate projection cache").
    this.options = { ...options.modelOptions };
    this.log = options.log ?? (() => undefined);
    this.catalogue = options.catalogue;
  }

  /** Loads the first model (rejects if it cannot be loaded). */
  async start(): Promise<Model> {
    this.current = await loadVersioned(this.path, this.options);
    this.catalogue?.prepare(this.current.model.config);
    this.versions.set(this.current.model, this.current.version);
    return this.current.model;
  }

  /** The model that serves now. */
  get model(): Model {
    if (this.current === null) throw new DupnError('E_DISPOSED', 'the model host has no model (not started, or closed)');
    return this.current.model;
  }

  /** The version of the model that serves now. */
  get version(): string {
    return this.current?.version ?? '';
  }

  /** The version of `model` (one this host loaded), or the present one. */
  versionOf(model: Model): string {
    return this.versions.get(model) ?? this.version;
  }

  /** The batcher whose model a reload swaps. */
  attach(batcher: Batcher): void {
    this.batcher = batcher;
  }

  /** Called after every reload attempt (metrics). */
  onReload(fn: (r: ReloadResult) => void): void {
    this.listeners.push(fn);
  }

  /**
   * Loads the file again and, if it loads, checks and warms, swaps it in; the old model is disposed once no
   * batch runs on it. A call while a reload runs waits for it and then reloads once more (calls in between
   * share that one). `force` false: skipped when the file is the one loaded (same inode, size and mtime).
   */
  reload(force = true): Promise<ReloadResult> {
    if (this.pending !== null) return this.pending;
    const run = this.chain.then(() => {
      this.pending = null;
      return this.reloadNow(force);
    });
    this.pending = run;
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async reloadNow(force: boolean): Promise<ReloadResult> {
    const started = performance.now();
    const previous = this.version;
    const report = (r: Omit<ReloadResult, 'ms' | 'previous'>): ReloadResult => {
      const full = { ...r, previous, ms: performance.now() - started };
      for (const fn of this.listeners) fn(full);
      return full;
    };
    if (this.current === null) return report({ swapped: false, version: previous, error: new DupnError('E_DISPOSED', 'the model host is closed') });
    if (!force) {
      const st = await fs.promises.stat(this.path).catch(() => null);
      if (st !== null && identity(st) === this.current.identity) return { swapped: false, version: previous, previous, ms: 0 };
    }
    let next: { model: Model; version: string; identity: string };
    try {
      next = await loadVersioned(this.path, this.options);
    } catch (e) {
      const error = e instanceof DupnError ? e : new DupnError('E_INTERNAL', String(e), { cause: e });
      this.log(`reload failed, model ${previous} keeps serving: ${error.code}: ${error.message}`);
      return report({ swapped: false, version: previous, error });
    }
    // The catalogue's rows hashed for the new model before it takes traffic.
    this.catalogue?.prepare(next.model.config);
    if (this.current === null) {
      next.model.dispose();
      return report({ swapped: false, version: previous, error: new DupnError('E_DISPOSED', 'the model host closed during the reload') });
    }
    const old = this.current.model;
    this.versions.set(next.model, next.version);
    this.current = next;
    if (this.batcher !== null) void this.batcher.setModel(next.model).then(() => old.dispose());
    else old.dispose();
    this.log(`reloaded: model ${next.version} serves (was ${previous}), ${(performance.now() - started).toFixed(0)} ms`);
    return report({ swapped: true, version: next.version });
  }

  /**
   * Watches the file's directory and reloads when the file is replaced (renamed over or rewritten), after
   * `debounceMs` of quiet. Temporary files beside it are ignored.
   */
  watch(debounceMs = 100): void {
    if (this.watcher !== null) return;
    const name = nodePath.basename(this.path);
    this.watcher = fs.watch(nodePath.dirname(this.path), (_event, file) => {
      if (file !== null && file !== name) return;
      if (this.debounce !== null) clearTimeout(this.debounce);
      this.debounce = setTimeout(() => {
        this.debounce = null;
        void this.reload(false);
      }, debounceMs);
    });
    this.watcher.on('error', (e) => this.log(`watching ${this.path} failed: ${e.message}`));
    this.watcher.unref();
  }

  /** Stops watching, waits for a reload in progress, and disposes the model once the batcher is done with it. */
  async close(): Promise<void> {
    this.watcher?.close();
    this.watcher = null;
    if (this.debounce !== null) clearTimeout(this.debounce);
    await this.chain;
    this.current?.model.dispose();
    this.current = null;
  }
}
