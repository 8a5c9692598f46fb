/**
 * JSON Lines of labelled requests: one {@link TrainingExample} per line. The reader streams and checks the
 * shape of every line (a malformed line is counted and reported with its number, never used; fatal with
 * `strict`); the writer streams to a temporary file and renames it over the target, so a reader never sees
 * a half-written file.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { ResolvedConfig, TaskConfig } from '../network/config';
import { DupnError, describe } from '../errors';
import { TrainingExample } from './training-example';
import { MalformedLog, readLineBatches } from './lines';

/** Options of the JSON Lines reader. */
export interface JsonlReadOptions {
  /** The first malformed line throws `DupnError('E_INPUT', 'file:line: problem')`. */
  strict?: boolean;
  /** When given, label names must be its tasks and labels must fit their kinds. */
  config?: ResolvedConfig;
}

/** Counters of one read of a JSON Lines file. */
export interface JsonlStats {
  /** Lines read, blank ones included. */
  lines: number;
  /** Examples yielded. */
  rows: number;
  /** Runs of consecutive examples of one userId. */
  users: number;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const categorical = (v: unknown): boolean => v === undefined || v === null || typeof v === 'string' || finite(v);
const BEHAVIOR_KEYS_NOT_FIELDS = new Set(['type', 'time', 'scene']);

function checkLabels(name: string, value: unknown, task: TaskConfig | undefined): string | undefined {
  const path = `labels.${name}`;
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0) return `${path}: a class must be an integer >= 0, got ${describe(value)}`;
    if (task !== undefined && task.kind !== 'multiclass') return `${path}: task "${name}" is ${task.kind}, so its label must be a list of candidates`;
    if (task !== undefined && task.kind === 'multiclass' && value >= task.classes) return `${path}: class ${value} is not below classes = ${task.classes}`;
    return undefined;
  }
  if (!Array.isArray(value)) return `${path}: must be a class index or an array of {candidate, label}, got ${describe(value)}`;
  if (task !== undefined && task.kind === 'multiclass') return `${path}: task "${name}" is multiclass, so its label must be a class index`;
  for (let i = 0; i < value.length; ++i) {
    const lc: unknown = value[i];
    const p = `${path}[${i}]`;
    if (!isObject(lc)) return `${p}: must be an object {candidate, label, weight?}, got ${describe(lc)}`;
    for (const key of Object.keys(lc)) if (key !== 'candidate' && key !== 'label' && key !== 'weight') return `${p}.${key}: unknown key`;
    const cand = lc['candidate'];
    if (!isObject(cand)) return `${p}.candidate: must be an object, got ${describe(cand)}`;
    for (const [k, v] of Object.entries(cand)) {
      if (k === 'dense') {
        if (!Array.isArray(v) || !v.every(finite)) return `${p}.candidate.dense: must be an array of finite numbers`;
        if (task !== undefined && task.kind === 'rank' && v.length !== task.denseFeatures) return `${p}.candidate.dense: must have ${task.denseFeatures} entries, got ${v.length}`;
      } else if (!categorical(v)) return `${p}.candidate.${k}: must be a string or a finite number, got ${describe(v)}`;
    }
    const label = lc['label'];
    if (!finite(label)) return `${p}.label: must be a finite number, got ${describe(label)}`;
    if (task !== undefined && (task.kind === 'binary' || task.kind === 'retrieval') && label !== 0 && label !== 1) return `${p}.label: a binary label must be 0 or 1, got ${label}`;
    if (task !== undefined && task.kind === 'rank' && (!Number.isInteger(label) || label < 0 || label > 4)) return `${p}.label: a rank grade must be an integer in [0, 4], got ${label}`;
    const w = lc['weight'];
    if (w !== undefined && (!finite(w) || w < 0)) return `${p}.weight: must be a finite number >= 0, got ${describe(w)}`;
  }
  return undefined;
}

/**
 * The problem with a parsed line, naming the field (`user.behaviors[3].time: …`), or undefined when it is a
 * well-formed {@link TrainingExample}. With `config`, labels are checked against its tasks.
 */
export function checkExample(value: unknown, config?: ResolvedConfig): string | undefined {
  if (!isObject(value)) return `must be a JSON object (a training example), got ${describe(value)}`;
  for (const key of Object.keys(value)) {
    if (!['user', 'userId', 'time', 'labels', 'weight'].includes(key)) return `${key}: unknown key (allowed: user, userId, time, labels, weight)`;
  }
  if (typeof value['userId'] !== 'string') return `userId: must be a string, got ${describe(value['userId'])}`;
  if (!finite(value['time'])) return `time: must be a finite number (Unix seconds), got ${describe(value['time'])}`;
  const w = value['weight'];
  if (w !== undefined && (!finite(w) || w < 0)) return `weight: must be a finite number >= 0, got ${describe(w)}`;
  const user = value['user'];
  if (!isObject(user)) return `user: must be an object, got ${describe(user)}`;
  const list = user['behaviors'];
  if (!Array.isArray(list)) return `user.behaviors: must be an array, got ${describe(list)}`;
  for (let i = 0; i < list.length; ++i) {
    const b: unknown = list[i];
    const p = `user.behaviors[${i}]`;
    if (!isObject(b)) return `${p}: must be an object, got ${describe(b)}`;
    if (typeof b['type'] !== 'string') return `${p}.type: must be a string, got ${describe(b['type'])}`;
    if (!finite(b['time'])) return `${p}.time: must be a finite number (Unix seconds), got ${describe(b['time'])}`;
    if (b['scene'] !== undefined && b['scene'] !== null && typeof b['scene'] !== 'string') return `${p}.scene: must be a string, got ${describe(b['scene'])}`;
    for (const [k, v] of Object.entries(b)) {
      if (!BEHAVIOR_KEYS_NOT_FIELDS.has(k) && !categorical(v)) return `${p}.${k}: must be a string or a finite number, got ${describe(v)}`;
    }
  }
  if (user['now'] !== undefined && !finite(user['now'])) return `user.now: must be a finite number, got ${describe(user['now'])}`;
  const q = user['query'];
  if (q !== undefined && q !== null && typeof q !== 'string' && !(Array.isArray(q) && q.every((s) => typeof s === 'string'))) {
    return `user.query: must be a string or an array of strings, got ${describe(q)}`;
  }
  const prof = user['profile'];
  if (prof !== undefined && prof !== null) {
    if (!isObject(prof)) return `user.profile: must be an object, got ${describe(prof)}`;
    for (const [k, v] of Object.entries(prof)) if (!categorical(v)) return `user.profile.${k}: must be a string or a finite number, got ${describe(v)}`;
  }
  const labels = value['labels'];
  if (!isObject(labels)) return `labels: must be an object, got ${describe(labels)}`;
  for (const [name, lab] of Object.entries(labels)) {
    const task = config?.tasks.find((t) => t.name === name);
    if (config !== undefined && task === undefined) return `labels.${name}: not a task of the model (tasks: ${config.tasks.map((t) => t.name).join(', ')})`;
    const problem = checkLabels(name, lab, task);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/** Streams the examples of a JSON Lines file in batches (one per read chunk); each call reads the file anew. */
export async function* readJsonlBatches(path: string, options: JsonlReadOptions, stats: JsonlStats, malformed: MalformedLog): AsyncGenerator<TrainingExample[]> {
  let lastUser: string | undefined;
  for await (const batch of readLineBatches(path)) {
    const out: TrainingExample[] = [];
    for (let k = 0; k < batch.lines.length; ++k) {
      const line = batch.first + k;
      const text = batch.lines[k];
      stats.lines++;
      if (text === null) {
        malformed.add(line, 'line too long');
        continue;
      }
      if (text.trim().length === 0) continue;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (e) {
        malformed.add(line, `invalid JSON: ${e instanceof Error ? e.message : String(e)}`);
        continue;
      }
      const problem = checkExample(value, options.config);
      if (problem !== undefined) {
        malformed.add(line, problem);
        continue;
      }
      const ex = value as TrainingExample;
      if (ex.userId !== lastUser) {
        stats.users++;
        lastUser = ex.userId;
      }
      stats.rows++;
      out.push(ex);
    }
    if (out.length > 0) yield out;
  }
}

/** Examples one by one (a convenience over {@link readJsonlBatches}). */
export async function* readJsonl(path: string, options: JsonlReadOptions = {}, stats?: JsonlStats, malformed?: MalformedLog): AsyncGenerator<TrainingExample> {
  const s = stats ?? { lines: 0, rows: 0, users: 0 };
  const m = malformed ?? new MalformedLog(path, options.strict === true);
  for await (const batch of readJsonlBatches(path, options, s, m)) yield* batch;
}

/** Typed arrays (e.g. `dense`) are written as plain JSON arrays. */
function replacer(_key: string, value: unknown): unknown {
  return ArrayBuffer.isView(value) && !(value instanceof DataView) ? Array.from(value as unknown as ArrayLike<number>) : value;
}

/** Bytes gathered before a write. */
const WRITE_CHUNK = 1 << 20;

/**
 * Writes `examples`, one JSON object per line, to `path`, replacing any previous file atomically (temporary
 * file in the same directory, fsync, rename). Resolves to the number of examples written. A failing write
 * rejects with `DupnError('E_IO')`; an error of the source is rethrown as it is. Either way the previous file
 * is untouched and the temporary one removed.
 */
export async function writeJsonl(path: string, examples: AsyncIterable<TrainingExample> | Iterable<TrainingExample>): Promise<number> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  let handle: FileHandle | undefined;
  let created = false;
  const io = async <T>(what: Promise<T>): Promise<T> => {
    try {
      return await what;
    } catch (err) {
      throw new DupnError('E_IO', `cannot write ${path}: ${err instanceof Error ? err.message : String(err)}`, { path, cause: err });
    }
  };
  try {
    handle = await io(fsp.open(tmp, 'wx'));
    created = true;
    let count = 0;
    let pending: string[] = [];
    let pendingChars = 0;
    let position = 0;
    const flush = async (): Promise<void> => {
      if (pending.length === 0) return;
      const bytes = Buffer.from(pending.join(''), 'utf8');
      pending = [];
      pendingChars = 0;
      for (let done = 0; done < bytes.length; ) {
        const { bytesWritten } = await io((handle as FileHandle).write(bytes, done, bytes.length - done, position));
        done += bytesWritten;
        position += bytesWritten;
      }
    };
    for await (const ex of examples) {
      const line = JSON.stringify(ex, replacer) + '\n';
      pending.push(line);
      pendingChars += line.length;
      count++;
      if (pendingChars >= WRITE_CHUNK) await flush();
    }
    await flush();
    await io(handle.sync());
    await io(handle.close());
    handle = undefined;
    await io(fsp.rename(tmp, path));
    created = false;
    return count;
  } finally {
    if (handle !== undefined) await handle.close().catch(() => undefined);
    if (created) await fsp.unlink(tmp).catch(() => undefined);
  }
}
