// Hashed tables stored by their nonzero rows (docs/format.md, Sparse tables): the file, the native lookup on
// every instruction-set path, the other consumers that expand them, the trainer's rows drawn at first use, and
// files that lie about their rows.
import t from 'tap';
import { promises as fsp } from 'node:fs';
import * as nodePath from 'node:path';
import { ResolvedConfig, deriveDims, resolveConfig } from '../lib/network/config';
import { Tensors, elementCount, isHashedTable, itemTableName, tensorSpecs } from '../lib/network/tensors';
import { mulberry32 as rng } from '../lib/random';
import { CHECKSUM_KEY, FORMAT, SPARSE_FORMAT_VERSION, decodeModelFile, loadModelFile, saveModelFile, tensorsDigest } from '../lib/io/model-file';
import { ROWS_SUFFIX, scatterRows, sparseRowsOf } from '../lib/io/sparse-rows';
import { encodeSafetensors, parseSafetensors } from '../lib/io/safetensors';
import { Model } from '../lib/model/model';
import { Trainer } from '../lib/train/trainer';
import { UserColumns } from '../lib/model/columns';
import { TrainingExample } from '../lib/data/training-example';
import { native } from '../lib/native/addon';
import { isas } from './support/compare';

// Odd widths (5, 3, 4, 2), none a multiple of 16.
function config(): ResolvedConfig {
  return resolveConfig({
    itemFields: [
      { name: 'item', buckets: 997, dim: 5 },
      { name: 'category', buckets: 13, dim: 3 },
    ],
    query: { buckets: 101, dim: 4 },
    profileFields: [{ name: 'age', buckets: 67, dim: 2 }],
    hidden: 6,
    attentionHidden: 5,
    maxSeqLen: 30,
    tasks: [
      { name: 'ctr', kind: 'binary', target: ['item', 'category'], layers: [4] },
      { name: 'ppp', kind: 'multiclass', classes: 3, layers: [] },
    ],
  });
}

/** Random weights whose hashed tables have only `used` of every 100 rows nonzero (row 0 and the last among them). */
function mostlyZero(c: ResolvedConfig, seed: number, used: number): Tensors {
  const rand = rng(seed);
  const out: Tensors = new Map();
  for (const spec of tensorSpecs(c)) {
    const a = new Float32Array(elementCount(spec.shape));
    for (let i = 0; i < a.length; i++) a[i] = (rand() * 2 - 1) * 0.5;
    if (isHashedTable(spec.name)) {
      const [rows, dim] = spec.shape;
      for (let r = 1; r < rows - 1; r++) if (rand() * 100 >= used) a.fill(0, r * dim, (r + 1) * dim);
    }
    out.set(spec.name, a);
  }
  return out;
}

/** Users whose ids hit stored rows, zero rows, and both ends of every table. */
function columns(c: ResolvedConfig, seed: number, batch: number): UserColumns {
  const rand = rng(seed);
  const pick = (rows: number): number => {
    const u = rand();
    return u < 0.1 ? 0 : u < 0.2 ? rows - 1 : Math.floor(rand() * rows);
  };
  const lengths = Int32Array.from({ length: batch }, (_, b) => (b === 0 ? 0 : b === 1 ? 1 : b === 2 ? c.maxSeqLen : 1 + Math.floor(rand() * c.maxSeqLen)));
  const n = lengths.reduce((a, b) => a + b, 0);
  const F = c.itemFields.length;
  const items = new Int32Array(n * F);
  for (let i = 0; i < n; i++) c.itemFields.forEach((f, j) => (items[i * F + j] = pick(f.buckets)));
  const properties = new Int32Array(n * 3);
  const queryOffsets = new Int32Array(batch + 1);
  const tokens: number[] = [];
  for (let b = 0; b < batch; b++) {
    const k = b % 4;
    for (let i = 0; i < k; i++) tokens.push(pick(c.query!.buckets));
    queryOffsets[b + 1] = tokens.length;
  }
  const profile = Int32Array.from({ length: batch }, () => pick(c.profileFields[0].buckets));
  return { lengths, items, properties, queryOffsets, queryTokens: Int32Array.from(tokens), profile };
}

const tmp = async (): Promise<string> => fsp.mkdtemp(nodePath.join((await import('node:os')).tmpdir(), 'dupn-sparse-'));

/** `tensors` saved as a model file of `c` in a fresh folder: its path and bytes. */
async function saved(c: ResolvedConfig, tensors: Tensors): Promise<{ path: string; bytes: Buffer }> {
  const path = nodePath.join(await tmp(), 'm.safetensors');
  await saveModelFile(path, c, tensors);
  return { path, bytes: await fsp.readFile(path) };
}

/** One tensor of a file as the test rebuilds files: name, typed data (a copy), shape. */
type Entry = { name: string; data: Float32Array | Int32Array; shape: number[] };

/** The tensors of a safetensors file, in file order, as copies. */
function entries(bytes: Uint8Array): { parsed: ReturnType<typeof parseSafetensors>; list: Entry[] } {
  const parsed = parseSafetensors(bytes);
  const list = [...parsed.tensors].sort((x, y) => x[1].begin - y[1].begin).map(([name, e]) => {
    const copy = new Uint8Array(bytes.subarray(parsed.dataStart + e.begin, parsed.dataStart + e.end)).buffer;
    return { name, data: e.dtype === 'I32' ? new Int32Array(copy) : new Float32Array(copy), shape: e.shape };
  });
  return { parsed, list };
}

/** A model file of `list` with `metadata`, its checksum recomputed (so the structural checks speak). */
function rebuilt(metadata: Record<string, string>, list: Entry[]): Uint8Array {
  return Buffer.concat(encodeSafetensors({ ...metadata, [CHECKSUM_KEY]: tensorsDigest(list.map((x) => x.data)) }, list));
}

/** A one-head click model over hashed item fields (`category` too when asked). */
function clickConfig(withCategory: boolean): ResolvedConfig {
  return resolveConfig({
    itemFields: [{ name: 'item', buckets: 4099, dim: 6 }, ...(withCategory ? [{ name: 'category', buckets: 1031, dim: 3 }] : [])],
    hidden: 8,
    attentionHidden: 4,
    tasks: [{ name: 'ctr', kind: 'binary', target: ['item'], layers: [4] }],
  });
}

/** `n` users of three clicks each (items from `item(b, i)`, categories c0..c4 when asked) and a ctr label. */
function clicks(n: number, item: (b: number, i: number) => string, withCategory: boolean): TrainingExample[] {
  return Array.from({ length: n }, (_, b) => ({
    userId: `u${b}`,
    time: 200,
    user: { behaviors: Array.from({ length: 3 }, (_, i) => ({ item: item(b, i), ...(withCategory ? { category: `c${(b + i) % 5}` } : {}), type: 'pv', time: 100 + i })), now: 200 },
    labels: { ctr: [{ candidate: { item: `i${b % 7}` }, label: b % 2 }] },
  }));
}

/** The rows of a table (`dim` wide) that hold a nonzero value. */
function rowsOf(a: Float32Array, dim: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < a.length / dim; r++) if (a.subarray(r * dim, (r + 1) * dim).some((v) => v !== 0)) out.push(r);
  return out;
}

t.test('sparseRowsOf / scatterRows round-trip, and a mostly used table stays dense', async (t) => {
  const dim = 3;
  const data = new Float32Array(50 * dim);
  for (const r of [0, 7, 49]) data.fill(r + 1, r * dim, (r + 1) * dim);
  const s = sparseRowsOf(data, dim)!;
  t.same([...s.keys], [0, 7, 49]);
  t.same([...scatterRows(s.values, s.keys, 50, dim)], [...data]);
  const full = new Float32Array(10 * dim).fill(1);
  t.equal(sparseRowsOf(full, dim), undefined, 'all rows used: dense');
  const empty = sparseRowsOf(new Float32Array(10 * dim), dim)!;
  t.equal(empty.keys.length, 0, 'no row used: no rows stored');
});

t.test('a sparse file: smaller, version 2, and the same model', async (t) => {
  const c = config();
  const tensors = mostlyZero(c, 5, 3);
  const { path, bytes } = await saved(c, tensors);
  const parsed = parseSafetensors(bytes);
  t.equal(parsed.metadata['format_version'], SPARSE_FORMAT_VERSION);
  for (const name of ['emb.item.item', 'emb.query', 'emb.profile.age']) {
    const keys = parsed.tensors.get(name + ROWS_SUFFIX);
    t.ok(keys, `${name} stored by its rows`);
    t.equal(keys!.dtype, 'I32');
    t.equal(parsed.tensors.get(name)!.shape[0], keys!.shape[0]);
  }
  const dense = await loadModelFile(path);
  for (const spec of tensorSpecs(c)) t.same(dense.tensors.get(spec.name), tensors.get(spec.name), `${spec.name} expands to the saved values`);
  t.equal(dense.rowKeys.size, 0);
  const kept = decodeModelFile(bytes, path, { keepSparse: true });
  t.ok(kept.rowKeys.size >= 3, 'item, query and profile tables kept by their rows');
  t.equal(kept.tensors.get('emb.item.item')!.length, kept.rowKeys.get('emb.item.item')!.length * 5);

  // Every instruction-set path: the sparse lookup gives bit for bit what the dense table gives.
  const cols = columns(c, 9, 37);
  for (const isa of isas()) {
    const a = Model.fromTensors(c, tensors, { isa, threads: 2 });
    const b = await Model.load(path, { isa, threads: 2 });
    const ua = await a.encodeColumns(cols);
    const ub = await b.encodeColumns(cols);
    t.same(Buffer.from(ub.buffer, ub.byteOffset, ub.byteLength), Buffer.from(ua.buffer, ua.byteOffset, ua.byteLength), `${isa}: encode equal`);
    const cand = { items: Int32Array.from([0, 0, 996, 12, 1, 5, 500, 7]), dense: new Float32Array(0) };
    const u = ua.subarray(0, a.userDim);
    t.same(await b.score('ctr', u, cand), await a.score('ctr', u, cand), `${isa}: candidate scores equal (stored and zero rows)`);
    a.dispose();
    b.dispose();
  }

  const loaded = await Model.load(path, { threads: 1 });
  const again = nodePath.join(nodePath.dirname(path), 'again.safetensors');
  await loaded.save(again);
  t.ok(Buffer.compare(await fsp.readFile(again), bytes) === 0, 'a loaded sparse model saves the same bytes');
  t.same(loaded.weights.get('emb.item.item'), tensors.get('emb.item.item'), 'weights are every row');
  const ort = await Model.load(path, { threads: 1, backend: 'onnxruntime' });
  const ue = await ort.encodeColumns(cols);
  const un = await loaded.encodeColumns(cols);
  let worst = 0;
  for (let i = 0; i < un.length; i++) worst = Math.max(worst, Math.abs(ue[i] - un[i]));
  t.ok(worst < 1e-5, `onnxruntime (expanded tables) agrees: ${worst}`);
  ort.dispose();
  loaded.dispose();
});

t.test('a trainer starts hashed rows at first use, seeded, and its file keeps only those', async (t) => {
  const c = clickConfig(false);
  const examples = clicks(16, (b, i) => `i${(b * 3 + i) % 20}`, false);
  const a = Trainer.create(c, { seed: 4, threads: 1 });
  t.ok(a.toModel().weights.get(itemTableName('item'))!.every((v) => v === 0), 'a new trainer has no row of a hashed table');
  const batch = a.packBatch(examples);
  const used = new Set<number>([...batch.users.items, ...batch.heads[0].items!]);
  await a.stepPacked(batch);
  const table = a.toModel().weights.get(itemTableName('item'))!;
  t.same(rowsOf(table, 6), [...used].sort((x, y) => x - y), 'exactly the rows the batch used');
  t.ok(table.every((v) => Math.abs(v) < 0.2), 'started small (±0.1, moved by one step)');

  const b = Trainer.create(c, { seed: 4, threads: 1 });
  await b.step(examples);
  t.same(b.toModel().weights.get(itemTableName('item')), table, 'the same seed gives the same rows');
  const other = Trainer.create(c, { seed: 5, threads: 1 });
  await other.step(examples);
  t.not(Buffer.compare(Buffer.from(other.toModel().weights.get(itemTableName('item'))!.buffer), Buffer.from(table.buffer)), 0, 'another seed other rows');

  const dir = await tmp();
  const path = nodePath.join(dir, 'trained.safetensors');
  await a.save(path);
  const keys = parseSafetensors(await fsp.readFile(path)).tensors.get(itemTableName('item') + ROWS_SUFFIX);
  t.equal(keys?.shape[0], used.size, 'the file stores the used rows only');
  // Training on from the file: rows it stores are kept, a new one starts at its first use.
  const { trainer: c2 } = await Trainer.fromModelFile(path, { seed: 4, threads: 1 });
  t.same(c2.toModel().weights.get(itemTableName('item')), table);
  const more = examples.map((e, i) => ({ ...e, labels: { ctr: [{ candidate: { item: `new${i}` }, label: 1 }] } }));
  const packed = c2.packBatch(more);
  await c2.stepPacked(packed);
  const after = c2.toModel().weights.get(itemTableName('item'))!;
  for (const r of packed.heads[0].items!) t.ok(after.subarray(r * 6, r * 6 + 6).some((v) => v !== 0), `row ${r} started`);
  for (const x of [a, b, other, c2]) x.dispose();
});

t.test('untrusted sparse files are refused with the tensor named', async (t) => {
  const c = config();
  const { bytes } = await saved(c, mostlyZero(c, 6, 3));
  // Rebuild the file with its tensor list edited.
  const rebuildList = (edit: (list: Entry[]) => void): Uint8Array => {
    const { parsed, list } = entries(bytes);
    edit(list);
    return rebuilt({ format: FORMAT, format_version: SPARSE_FORMAT_VERSION, config: parsed.metadata['config'] }, list);
  };
  const rebuild = (name: string, replace: (data: Float32Array | Int32Array) => Omit<Entry, 'name'> | null): Uint8Array =>
    rebuildList((list) => {
      const i = list.findIndex((e) => e.name === name);
      const r = replace(list[i].data);
      if (r) list[i] = { name, ...r };
      else list.splice(i, 1);
    });
  const keysName = 'emb.item.item' + ROWS_SUFFIX;
  const refuse = (b: Uint8Array, pattern: RegExp, what: string): void => {
    t.throws(() => decodeModelFile(b, 'f', { keepSparse: true }), { code: 'E_MODEL_FILE', message: pattern }, what);
    t.throws(() => decodeModelFile(b, 'f'), { code: 'E_MODEL_FILE', message: pattern }, `${what} (expanded)`);
  };
  refuse(rebuild(keysName, (k) => ({ data: Int32Array.from(k).reverse(), shape: [k.length] })), /emb\.item\.item#rows.*not a row id above the one before/, 'keys out of order');
  refuse(rebuild(keysName, (k) => ({ data: Int32Array.from(k, (v, i) => (i === k.length - 1 ? 997 : v)), shape: [k.length] })), /emb\.item\.item#rows.*below 997/, 'a key past the table');
  refuse(rebuild(keysName, (k) => ({ data: Int32Array.from(k, (v, i) => (i === 0 ? -1 : v)), shape: [k.length] })), /emb\.item\.item#rows/, 'a negative key');
  refuse(rebuild(keysName, (k) => ({ data: Float32Array.from(k), shape: [k.length] })), /emb\.item\.item#rows.*dtype F32, expected I32/, 'float keys');
  refuse(rebuild(keysName, (k) => ({ data: k.subarray(1), shape: [k.length - 1] })), /emb\.item\.item.*shape/, 'one key fewer than rows');
  refuse(rebuild(keysName, () => null), /emb\.item\.item.*shape/, 'rows without their keys');
  const bigKeys = rebuild(keysName, () => ({ data: Int32Array.from({ length: 998 }, (_, i) => i), shape: [998] }));
  refuse(bigKeys, /emb\.item\.item#rows.*at most 997/, 'more keys than rows');
  // Keys for a table that is not hashed.
  const withProp = rebuildList((list) => list.push({ name: 'emb.prop.type' + ROWS_SUFFIX, data: Int32Array.from([0]), shape: [1] }));
  t.throws(() => decodeModelFile(withProp, 'f'), { code: 'E_MODEL_FILE', message: /emb\.prop\.type#rows/ }, 'keys of a table that cannot have them');
});

t.test('the native model checks the keys it is given; the trainer refuses a sparse table', async (t) => {
  const c = config();
  const { tensors: kept, rowKeys } = decodeModelFile((await saved(c, mostlyZero(c, 7, 3))).bytes, 'm', { keepSparse: true });
  const { nativeSpec } = await import('../lib/native/spec');
  const bad = new Map(rowKeys);
  const k = Int32Array.from(bad.get('emb.item.item')!);
  [k[0], k[1]] = [k[1], k[0]];
  bad.set('emb.item.item', k);
  t.throws(() => new (native().NativeModel)(nativeSpec(c, kept, 0, false, bad), ''), /strictly increasing/, 'unordered keys');
  const short = new Map(rowKeys).set('emb.item.item', k.subarray(1));
  t.throws(() => new (native().NativeModel)(nativeSpec(c, kept, 0, false, short), ''), /one row per key/, 'a key count that does not match the rows');
  const params = tensorSpecs(c).map((s) => ({ data: kept.get(s.name)!, m: new Float32Array(kept.get(s.name)!.length), v: new Float32Array(kept.get(s.name)!.length) }));
  t.throws(() => new (native().NativeTrainer)(nativeSpec(c, kept, 0, false, rowKeys), '', params), /sparse table cannot be trained/, 'trainer');
});

t.test('fuzz: a corrupt sparse file loads or is refused with E_MODEL_FILE, and what loads runs', async (t) => {
  const c = config();
  const bytes = new Uint8Array((await saved(c, mostlyZero(c, 8, 5))).bytes);
  const parsed = parseSafetensors(bytes);
  // The row keys' bytes, where a flipped bit makes keys out of order or range.
  const keySpans = [...parsed.tensors].filter(([n]) => n.endsWith(ROWS_SUFFIX)).map(([, e]) => [parsed.dataStart + e.begin, parsed.dataStart + e.end]);
  const headerEnd = parsed.dataStart;
  const rand = rng(20261204);
  const int = (n: number): number => Math.floor(rand() * n);
  const cols = columns(c, 3, 9);
  const outcomes = { ok: 0, refused: 0 };
  let ran = 0;
  for (let iter = 0; iter < 1500; iter++) {
    const b = bytes.slice();
    for (let k = 1 + int(4); k > 0; k--) {
      const kind = rand();
      if (kind < 0.6) {
        const [s, e] = keySpans[int(keySpans.length)];
        if (e > s) b[s + int(e - s)] ^= 1 << int(8);
      } else if (kind < 0.8) b[int(headerEnd)] ^= 1 + int(255);
      else b[int(b.length)] ^= 1 + int(255);
    }
    let loaded;
    try {
      loaded = decodeModelFile(b, 'fuzz', { keepSparse: true, verifyChecksum: false });
    } catch (err) {
      if ((err as { code?: string }).code !== 'E_MODEL_FILE') {
        t.fail(`iteration ${iter}: unexpected ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
        return;
      }
      outcomes.refused++;
      continue;
    }
    outcomes.ok++;
    const { nativeSpec } = await import('../lib/native/spec');
    const m = new (native().NativeModel)(nativeSpec(loaded.config, loaded.tensors, 0, false, loaded.rowKeys), '');
    const out = new Float32Array(9 * deriveDims(loaded.config).userDim);
    await m.encode(cols, out, null, 1, false);
    ran++;
  }
  t.ok(ran === outcomes.ok, `every file that loaded encoded users (${ran})`);
  t.equal(outcomes.ok + outcomes.refused, 1500, `all handled (${outcomes.ok} loaded and ran, ${outcomes.refused} refused)`);
  t.ok(outcomes.ok > 0 && outcomes.refused > 0, 'both outcomes occur');
});

t.test('row starts: only the fields a head targets, frozen tables of a given model stay, a refused step leaves nothing', async (t) => {
  const c = clickConfig(true);
  const examples = clicks(12, (b, i) => `i${b * 3 + i}`, true);
  const tr = Trainer.create(c, { seed: 1, threads: 1 });
  const batch = tr.packBatch(examples);
  await tr.stepPacked(batch);
  const usedCategories = [...new Set([...batch.users.items].filter((_, k) => k % 2 === 1))].sort((x, y) => x - y);
  t.same(rowsOf(tr.toModel().weights.get(itemTableName('category'))!, 3), usedCategories, 'category rows: those of the behaviours only (the head does not target it)');

  // Frozen: a trainer's own tables still start (fixed random features); a given model's keep their zero rows.
  const own = Trainer.create(c, { seed: 1, threads: 1, freeze: 'shared' });
  await own.step(examples);
  t.ok(rowsOf(own.toModel().weights.get(itemTableName('item'))!, 6).length > 0, 'freeze shared on a new trainer: rows started');
  const given = Trainer.fromModel(tr.toModel(), { seed: 1, threads: 1, freeze: 'shared' });
  const before = given.toModel().weights.get(itemTableName('item'))!;
  const novel = examples.map((e, i) => ({ ...e, labels: { ctr: [{ candidate: { item: `never${i}` }, label: 1 }] } }));
  await given.step(novel);
  t.same(given.toModel().weights.get(itemTableName('item')), before, 'freeze shared on a given model: its table is unchanged, new ids stay zero');

  // A step the native side refuses puts the rows it started back.
  const fresh = Trainer.create(c, { seed: 1, threads: 1 });
  const bad = fresh.packBatch(examples);
  bad.heads[0].label = new Float32Array(1);
  await t.rejects(fresh.stepPacked(bad), { code: 'E_INPUT' });
  t.same(rowsOf(fresh.toModel().weights.get(itemTableName('item'))!, 6), [], 'no row left started');
  for (const x of [tr, own, given, fresh]) x.dispose();
});

t.test('a file with row keys must say format version 2', async (t) => {
  const c = config();
  const { parsed, list } = entries((await saved(c, mostlyZero(c, 9, 3))).bytes);
  const v1 = rebuilt({ ...parsed.metadata, format_version: '1' }, list);
  t.throws(() => decodeModelFile(v1, 'v1', { verifyChecksum: false }), { code: 'E_MODEL_FILE', message: /#rows.*needs __metadata__\.format_version "2"/ });
});
