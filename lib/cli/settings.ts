/**
 * The CLI's settings file: one JSON object with up to three sections, each optional —
 *
 *   { "model": { …model config, docs/model.md (Configuration and defaults)… },
 *     "train": { …trainer options (lib/train/options.ts) …, "epochs": 3 },
 *     "data":  { …reader and example options (lib/data/reader.ts), e.g. "format", "columns", "negatives"… } }
 *
 * Command-line flags override the file key by key.
 */
import { promises as fsp } from 'node:fs';
import { DupnConfig } from '../network/config';
import { DupnError, describe } from '../errors';
import { ReadExamplesOptions } from '../data';
import { TrainOptions } from '../train/options';

export interface Settings {
  model?: DupnConfig;
  train?: TrainOptions & { epochs?: number };
  data?: Omit<ReadExamplesOptions, 'config'>;
}

const SECTIONS = new Set(['model', 'train', 'data']);

export async function readSettings(path: string | undefined): Promise<Settings> {
  if (path === undefined) return {};
  let text: string;
  try {
    text = await fsp.readFile(path, 'utf8');
  } catch (e) {
    throw new DupnError('E_IO', `cannot read settings file ${path}: ${(e as Error).message}`, { cause: e });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new DupnError('E_CONFIG', `${path}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new DupnError('E_CONFIG', `${path}: must be a JSON object, got ${describe(value)}`);
  for (const [k, v] of Object.entries(value)) {
    if (!SECTIONS.has(k)) throw new DupnError('E_CONFIG', `${path}: unknown section "${k}" (sections: model, train, data)`, { path: k });
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new DupnError('E_CONFIG', `${path}: "${k}" must be an object`, { path: k });
  }
  return value as Settings;
}

/** `a,b,c` → ['a', 'b', 'c'] (commander's value parser for lists). */
export function list(v: string): string[] {
  return v.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

/** A number flag, refused with E_INPUT naming the flag when it is not one. */
export function numberFlag(flag: string): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new DupnError('E_INPUT', `${flag}: expected a number, got ${JSON.stringify(v)}`, { path: flag });
    return n;
  };
}

/** The reader flags `train` and `eval` share (lib/cli/main.ts `dataOptions`). */
export interface ReaderFlags {
  format?: 'taobao' | 'csv' | 'jsonl' | 'sequences';
  columns?: string;
  strict?: boolean;
  delimiter?: string;
  header?: boolean;
  types?: string;
  year?: number;
  timeUnit?: 's' | 'ms';
  grouping?: 'auto' | 'stream' | 'memory' | 'disk';
  minHistory?: number;
  examplesPerUser?: number;
  negatives?: number;
  uniformNegatives?: number;
}

/** `0=pv,1=cart,2=buy,3=fav` → `{ "0": "pv", … }` (refused with E_INPUT naming the pair). */
export function parseTypes(spec: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of list(spec)) {
    const eq = pair.indexOf('=');
    if (eq <= 0 || eq === pair.length - 1) throw new DupnError('E_INPUT', `--types: "${pair}" is not code=type (e.g. 0=pv,1=cart,2=buy,3=fav)`, { path: '--types' });
    out[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return out;
}

/** The settings file's data section with the reader flags laid over it, key by key. */
export function readerOptions(flags: ReaderFlags, settings: Settings): Omit<ReadExamplesOptions, 'config'> {
  const o: Omit<ReadExamplesOptions, 'config'> = { ...settings.data };
  if (flags.format !== undefined) o.format = flags.format;
  if (flags.columns !== undefined) o.columns = flags.columns;
  if (flags.strict) o.strict = true;
  if (flags.delimiter !== undefined) o.delimiter = flags.delimiter === '\\t' || flags.delimiter === 'tab' ? '\t' : flags.delimiter;
  if (flags.header !== undefined) o.header = flags.header;
  if (flags.types !== undefined) o.types = parseTypes(flags.types);
  if (flags.year !== undefined) o.year = flags.year;
  if (flags.timeUnit !== undefined) o.timeUnit = flags.timeUnit;
  if (flags.grouping !== undefined) o.grouping = flags.grouping;
  if (flags.minHistory !== undefined) o.minHistory = flags.minHistory;
  if (flags.examplesPerUser !== undefined) o.maxExamplesPerUser = flags.examplesPerUser;
  if (flags.negatives !== undefined) o.negatives = flags.negatives;
  if (flags.uniformNegatives !== undefined) o.uniformNegatives = flags.uniformNegatives;
  return o;
}
