/**
 * Training shards (docs/scale-out.md): packed training batches as raw little-endian arrays with a JSON index,
 * for trainers outside dupn (python/dupn_torch) that read them without dupn. A batch is exactly what the native
 * trainer takes (`NativeTrainBatch`: the users' columns and each head's labelled candidates, in-batch negatives
 * and the retrieval heads' history features included), so hashing and example construction happen once, here.
 *
 * Layout of `dir/`:
 * - `index.json`: format, version, the resolved config, the heads' plans, the shards and their counts (written
 *   last: a run that dies midway leaves no index, never one that names incomplete files);
 * - `shard-NNNNN.bin`: the arrays of its batches, one after another, each starting at a multiple of 8 bytes;
 * - `shard-NNNNN.json`: per batch its example count and, per array, `[dtype, byte offset, element count]`.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import { DupnError } from '../errors';
import { ResolvedConfig } from '../network/config';
import { NativeHeadLabels, NativeTrainBatch } from '../native/addon';
import { writeFileAtomic } from './atomic-file';

export const SHARDS_FORMAT = 'dupn-shards';
export const SHARDS_VERSION = 1;

/** `[dtype, byte offset, element count]` of one array in a shard file. */
export type ArrayEntry = ['int32' | 'float32', number, number];

/** One batch of a shard file. */
export interface ShardBatch {
  examples: number;
  /** The six `UserColumns` arrays. */
  users: Record<string, ArrayEntry>;
  /** Per head, in config order: its labels' arrays (absent ones left out). */
  heads: Record<string, ArrayEntry>[];
}

/** `index.json`. */
export interface ShardsIndex {
  format: typeof SHARDS_FORMAT;
  version: typeof SHARDS_VERSION;
  config: ResolvedConfig;
  /** Per head, in config order: its weight λ (0: untrained) and whether rank heads add the pairwise loss. */
  heads: { name: string; kind: string; lambda: number; pairwise: boolean }[];
  batchSize: number;
  examples: number;
  batches: number;
  /** The starting model (its priors and successor tables are the training part's statistics). */
  init: string;
  shards: { bin: string; index: string; batches: number; examples: number }[];
}

const HEAD_ARRAYS: (keyof NativeHeadLabels)[] = ['items', 'dense', 'owner', 'label', 'weight', 'offset', 'classes', 'classWeight'];

class ShardFile {
  readonly batches: ShardBatch[] = [];
  examples = 0;
  private fd: number;
  private at = 0;

  constructor(readonly bin: string) {
    this.fd = openSync(`${bin}.tmp`, 'w');
  }

  private put(a: Int32Array | Float32Array): ArrayEntry {
    const pad = (8 - (this.at % 8)) % 8;
    if (pad > 0) writeSync(this.fd, new Uint8Array(pad));
    this.at += pad;
    const entry: ArrayEntry = [a instanceof Int32Array ? 'int32' : 'float32', this.at, a.length];
    // Little-endian on every platform dupn builds for (x86-64, arm64); the index says so.
    writeSync(this.fd, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    this.at += a.byteLength;
    return entry;
  }

  add(batch: NativeTrainBatch, examples: number): void {
    const users: Record<string, ArrayEntry> = {};
    for (const [k, v] of Object.entries(batch.users)) users[k] = this.put(v as Int32Array);
    const heads = batch.heads.map((h) => {
      const out: Record<string, ArrayEntry> = {};
      for (const k of HEAD_ARRAYS) {
        const v = h[k];
        if (v instanceof Int32Array || v instanceof Float32Array) out[k] = this.put(v);
      }
      return out;
    });
    this.batches.push({ examples, users, heads });
    this.examples += examples;
  }

  /** Closes and removes the temporary file (a run that failed leaves nothing behind). */
  abort(): void {
    closeSync(this.fd);
    rmSync(`${this.bin}.tmp`, { force: true });
  }

  close(): void {
    fsyncSync(this.fd);
    closeSync(this.fd);
    renameSync(`${this.bin}.tmp`, this.bin);
  }
}

/** Writes batches round-robin into `count` shard files under `dir`; {@link finish} writes the index. */
export class ShardWriter {
  private readonly files: ShardFile[] = [];
  private next = 0;

  constructor(readonly dir: string, count: number) {
    if (!Number.isSafeInteger(count) || count < 1 || count > 100_000) throw new DupnError('E_INPUT', `--shards: must be an integer in [1, 100000], got ${count}`, { path: '--shards' });
    mkdirSync(dir, { recursive: true });
    // An index from an earlier run must not describe the files this run is replacing.
    rmSync(path.join(dir, 'index.json'), { force: true });
    for (let i = 0; i < count; i++) this.files.push(new ShardFile(path.join(dir, `shard-${String(i).padStart(5, '0')}.bin`)));
  }

  add(batch: NativeTrainBatch, examples: number): void {
    this.files[this.next].add(batch, examples);
    this.next = (this.next + 1) % this.files.length;
  }

  /** Drops every shard written so far (after a failure). */
  abort(): void {
    for (const f of this.files) f.abort();
  }

  async finish(index: Omit<ShardsIndex, 'format' | 'version' | 'shards' | 'examples' | 'batches'>): Promise<ShardsIndex> {
    const shards: ShardsIndex['shards'] = [];
    for (const f of this.files) {
      f.close();
      const name = path.basename(f.bin);
      const json = name.replace(/\.bin$/, '.json');
      await writeFileAtomic(path.join(this.dir, json), [Buffer.from(JSON.stringify({ byteOrder: 'little', batches: f.batches }))]);
      shards.push({ bin: name, index: json, batches: f.batches.length, examples: f.examples });
    }
    const out: ShardsIndex = {
      format: SHARDS_FORMAT,
      version: SHARDS_VERSION,
      ...index,
      examples: shards.reduce((s, x) => s + x.examples, 0),
      batches: shards.reduce((s, x) => s + x.batches, 0),
      shards,
    };
    await writeFileAtomic(path.join(this.dir, 'index.json'), [Buffer.from(JSON.stringify(out, null, 1))]);
    return out;
  }
}

/** The batches of shard `shard` of the folder `dir`, as the native trainer takes them (the writer's inverse; for checks). */
export function readShardBatches(dir: string, shard: number): NativeTrainBatch[] {
  const index = JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8')) as ShardsIndex;
  const s = index.shards[shard];
  if (!s) throw new DupnError('E_INPUT', `shard: ${shard} is not one of the ${index.shards.length} shards of ${dir}`, { path: 'shard' });
  const bytes = readFileSync(path.join(dir, s.bin));
  const meta = JSON.parse(readFileSync(path.join(dir, s.index), 'utf8')) as { batches: ShardBatch[] };
  const read = ([dtype, offset, count]: ArrayEntry): Int32Array | Float32Array => {
    if (offset < 0 || offset + 4 * count > bytes.length) throw new DupnError('E_INPUT', `${s.bin}: array [${offset}, +${4 * count}) is past the end (${bytes.length} bytes)`);
    const copy = bytes.buffer.slice(bytes.byteOffset + offset, bytes.byteOffset + offset + 4 * count);
    return dtype === 'int32' ? new Int32Array(copy) : new Float32Array(copy);
  };
  return meta.batches.map((b) => ({
    users: Object.fromEntries(Object.entries(b.users).map(([k, v]) => [k, read(v)])) as unknown as NativeTrainBatch['users'],
    heads: b.heads.map((h, i) => ({
      lambda: index.heads[i].lambda,
      pairwise: index.heads[i].pairwise,
      ...Object.fromEntries(Object.entries(h).map(([k, v]) => [k, read(v)])),
    })),
  }));
}
