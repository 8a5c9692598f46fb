import t, { Test } from 'tap';
import { promises as fsp } from 'node:fs';
import * as nodePath from 'node:path';
import { ResolvedConfig, resolveConfig } from '../lib/network/config';
import { DupnError } from '../lib/errors';
import { tensorSpecs, elementCount } from '../lib/network/tensors';
import { writeFileAtomic, writeFilesAtomic } from '../lib/io/atomic-file';
import { mulberry32 as rng } from '../lib/random';
import { FORMAT, FORMAT_VERSION, decodeModelFile, loadModelFile, saveModelFile } from '../lib/io/model-file';
import { parseSafetensors } from '../lib/io/safetensors';
import { Model } from '../lib/model/model';

function smallConfig(): ResolvedConfig {
  return resolveConfig({
    itemFields: [
      { name: 'item', buckets: 97, dim: 5 },
      { name: 'category', buckets: 13, dim: 3 },
    ],
    query: { buckets: 11, dim: 4 },
    profileFields: [{ name: 'age', buckets: 7, dim: 2 }],
    hidden: 6,
    attentionHidden: 5,
    tasks: [
      { name: 'ctr', kind: 'binary', target: ['item'], layers: [4] },
      { name: 'ppp', kind: 'multiclass', classes: 3, layers: [] },
    ],
  });
}

function randomTensors(config: ResolvedConfig, seed: number): Map<string, Float32Array> {
  const rand = rng(seed);
  const out = new Map<string, Float32Array>();
  for (const spec of tensorSpecs(config)) {
    const a = new Float32Array(elementCount(spec.shape));
    for (let i = 0; i < a.length; i++) a[i] = (rand() * 2 - 1) * 3;
    out.set(spec.name, a);
  }
  return out;
}

function bitsEqual(a: Float32Array, b: Float32Array): boolean {
  return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

// The test's own reader/writer of the container, independent of lib/io/safetensors.ts.
type Header = Record<string, any>;

function splitFile(bytes: Uint8Array): { header: Header; data: Uint8Array } {
  const n = Number(Buffer.from(bytes.buffer, bytes.byteOffset, 8).readBigUInt64LE(0));
  const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8'));
  return { header, data: bytes.slice(8 + n) };
}

function joinRaw(headerText: string, data: Uint8Array): Uint8Array {
  const json = Buffer.from(headerText, 'utf8');
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function joinFile(header: Header, data: Uint8Array): Uint8Array {
  return joinRaw(JSON.stringify(header), data);
}

/** Runs `fn` and checks it throws DupnError(E_MODEL_FILE) whose message matches `pattern`. */
function rejects(t: Test, fn: () => unknown, pattern: RegExp, label: string): void {
  try {
    fn();
    t.fail(`${label}: expected an error`);
  } catch (err) {
    t.ok(err instanceof DupnError, `${label}: DupnError`);
    t.equal((err as DupnError).code, 'E_MODEL_FILE', `${label}: code`);
    t.match((err as Error).message, pattern, `${label}: message`);
  }
}

async function validFile(dir: string): Promise<{ config: ResolvedConfig; tensors: Map<string, Float32Array>; bytes: Uint8Array }> {
  const config = smallConfig();
  const tensors = randomTensors(config, 1234);
  const path = nodePath.join(dir, 'valid.safetensors');
  await saveModelFile(path, config, tensors);
  return { config, tensors, bytes: new Uint8Array(await fsp.readFile(path)) };
}

t.test('save then load round-trips bit for bit', async (t) => {
  const dir = t.testdir({});
  const config = smallConfig();
  const tensors = randomTensors(config, 42);
  const path = nodePath.join(dir, 'm.safetensors');
  await saveModelFile(path, config, tensors);

  const loaded = await loadModelFile(path);
  t.same(loaded.config, config, 'config');
  t.same([...loaded.tensors.keys()], tensorSpecs(config).map((s) => s.name), 'tensors in canonical order');
  for (const [name, data] of tensors) t.ok(bitsEqual(loaded.tensors.get(name)!, data), `${name} bit for bit`);

  // The header is padded so that data start at a multiple of 8: every tensor is then an in-place view.
  const bytes = new Uint8Array(await fsp.readFile(path));
  const n = Number(Buffer.from(bytes.buffer, bytes.byteOffset, 8).readBigUInt64LE(0));
  t.equal((8 + n) % 8, 0, 'data section 8-aligned');
  const meta = splitFile(bytes).header['__metadata__'];
  t.match(meta, { format: FORMAT, format_version: FORMAT_VERSION, config: JSON.stringify(config), tensors_sha256: /^[0-9a-f]{64}$/ }, 'metadata');
  t.same(Object.keys(meta).sort(), ['config', 'format', 'format_version', 'tensors_sha256'], 'and nothing else');
  const decoded = decodeModelFile(bytes, path);
  for (const data of decoded.tensors.values()) t.equal(data.buffer, bytes.buffer, 'zero-copy view');

  t.test('no query, unidirectional, all property dims 0 (wp is [3H, 0])', async (t) => {
    const c = resolveConfig({
      itemFields: [{ name: 'item', buckets: 9, dim: 3 }],
      properties: { typeDim: 0, gapDim: 0, sceneDim: 0 },
      query: null,
      profileFields: [],
      hidden: 3,
      bidirectional: false,
      attentionHidden: 2,
      tasks: [{ name: 'r', kind: 'rank', target: ['item'], layers: [2, 2], denseFeatures: 2 }],
    });
    const w = randomTensors(c, 7);
    const p = nodePath.join(dir, 'small.safetensors');
    await saveModelFile(p, c, w);
    const back = await loadModelFile(p);
    t.same(back.config, c);
    t.same(back.tensors.get('lstm.fw.wp')!.length, 0);
    t.same(tensorSpecs(c).find((s) => s.name === 'lstm.fw.wp')!.shape, [9, 0]);
    for (const [name, data] of w) t.ok(bitsEqual(back.tensors.get(name)!, data), name);
  });

  t.test('save refuses tensors that do not match the config', async (t) => {
    const missing = new Map(tensors);
    missing.delete('attn.v');
    await t.rejects(saveModelFile(path, config, missing), { code: 'E_MODEL_FILE', message: /attn\.v.*missing/ });
    const short = new Map(tensors).set('attn.b', new Float32Array(2));
    await t.rejects(saveModelFile(path, config, short), { code: 'E_MODEL_FILE', message: /attn\.b.*2 values.*needs 5/ });
    const nan = new Map(tensors).set('attn.b', new Float32Array([0, 0, NaN, 0, 0]));
    await t.rejects(saveModelFile(path, config, nan), { code: 'E_MODEL_FILE', message: /attn\.b.*non-finite.*index 2/ });
    t.same((await loadModelFile(path)).tensors.get('attn.v'), tensors.get('attn.v'), 'file untouched by failed saves');
  });
});

t.test('a file written by hand in the documented layout loads', async (t) => {
  // A PyTorch-style writer: a partial config (defaults fill in the rest) and tensors named per docs/format.md.
  // H = 2, Dx = 2, Dp = typeDim 1 + sceneDim 1 = 2, no query/profile: attn input 2 + 2, head input U 2 + t 2.
  const config = {
    maxSeqLen: 10,
    itemFields: [{ name: 'item', buckets: 5, dim: 2 }],
    properties: { types: ['a'], typeDim: 1, gapBuckets: 2, gapDim: 0, scenes: [], sceneDim: 1 },
    query: null,
    profileFields: [],
    hidden: 2,
    bidirectional: false,
    attentionHidden: 2,
    tasks: [{ name: 't', kind: 'binary', target: ['item'], layers: [] }],
  };
  const shapes: Array<[string, number[]]> = [
    ['emb.item.item', [5, 2]],
    ['emb.prop.type', [2, 1]],
    ['emb.prop.scene', [1, 1]],
    ['lstm.fw.wx', [8, 2]],
    ['lstm.fw.wp', [6, 2]],
    ['lstm.fw.wh', [8, 2]],
    ['lstm.fw.b', [8]],
    ['attn.w', [2, 4]],
    ['attn.b', [2]],
    ['attn.v', [2]],
    ['head.t.0.w', [1, 4]],
    ['head.t.0.b', [1]],
  ];
  // Exactly representable values, distinct per tensor and element.
  const values = new Map(shapes.map(([name, shape], k) => [name, Array.from({ length: elementCount(shape) }, (_, i) => k * 100 + i * 0.25 - 7)]));

  // Data in reverse order, header keys in yet another order: neither must matter.
  const layout = [...shapes].reverse();
  const total = layout.reduce((s, [, shape]) => s + 4 * elementCount(shape), 0);
  const data = new Uint8Array(total);
  const dv = new DataView(data.buffer);
  const entries: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, shape] of layout) {
    const begin = offset;
    for (const v of values.get(name)!) {
      dv.setFloat32(offset, v, true);
      offset += 4;
    }
    entries[name] = { dtype: 'F32', shape, data_offsets: [begin, offset] };
  }
  const header: Header = { __metadata__: { format: 'dupn', format_version: '1', config: JSON.stringify(config) } };
  for (const name of shapes.map(([n]) => n).sort().reverse()) header[name] = entries[name];

  // Unpadded headers of every length mod 4 exercise both the aligned (view) and unaligned (copy) paths.
  for (let pad = 0; pad < 4; pad++) {
    const bytes = joinRaw(JSON.stringify(header) + ' '.repeat(pad), data);
    const loaded = decodeModelFile(bytes, 'hand.safetensors');
    t.same(loaded.config, resolveConfig(config), `pad ${pad}: config`);
    t.same([...loaded.tensors.keys()], shapes.map(([n]) => n), `pad ${pad}: names`);
    for (const [name, expected] of values) t.same(Array.from(loaded.tensors.get(name)!), expected, `pad ${pad}: ${name}`);
  }
});

t.test('bad files are refused with E_MODEL_FILE naming the problem', async (t) => {
  const { bytes } = await validFile(t.testdir({}));
  const { header, data } = splitFile(bytes);
  const edit = (fn: (h: Header) => void, d: Uint8Array = data): Uint8Array => {
    const h = structuredClone(header);
    fn(h);
    return joinFile(h, d);
  };
  const decode = (b: Uint8Array) => () => decodeModelFile(b, 'bad.safetensors');
  const meta = (patch: Record<string, unknown>) => edit((h) => Object.assign(h['__metadata__'], patch));
  const withLength = (len: bigint) => {
    const b = bytes.slice();
    new DataView(b.buffer).setBigUint64(0, len, true);
    return b;
  };

  t.ok(decodeModelFile(joinFile(header, data), 'ok').tensors.size > 0, 'the unedited file loads');

  rejects(t, decode(new Uint8Array(0)), /bad\.safetensors: file is 0 bytes long, too short/, 'empty');
  rejects(t, decode(bytes.subarray(0, 5)), /too short/, 'truncated in the length');
  rejects(t, decode(bytes.subarray(0, 40)), /header length \d+ exceeds the 32 bytes/, 'truncated in the header');
  rejects(t, decode(bytes.subarray(0, bytes.length - 4)), /"head\.ppp\.0\.b": data_offsets .* past the end/, 'truncated in the data');
  rejects(t, decode(withLength(1n << 40n)), /header length 1099511627776 exceeds the 104857600-byte limit/, 'absurd header length');
  rejects(t, decode(withLength(0xffffffffffffffffn)), /header length 18446744073709551615 exceeds/, 'u64 max header length');
  rejects(t, decode(edit((h) => (h['attn.w'].data_offsets[1] += 1000))), /"attn\.w": data_offsets .* past the end/, 'offsets past the end');
  rejects(t, decode(edit((h) => (h['attn.w'].data_offsets = [8, 4]))), /"attn\.w": data_offsets \[8, 4\] has begin after end/, 'begin after end');
  rejects(t, decode(edit((h) => (h['attn.w'].data_offsets = [-4, 4]))), /"attn\.w": data_offsets begin must be a non-negative integer/, 'negative offset');
  rejects(t, decode(edit((h) => (h['attn.w'].data_offsets = [0]))), /"attn\.w": data_offsets must be an array/, 'one offset');
  rejects(t, decode(edit((h) => (h['attn.v'].data_offsets = h['attn.b'].data_offsets))), /"attn\.[bv]": data_offsets .* overlap tensor "attn\.[bv]"/, 'overlap');
  rejects(t, decode(edit((h) => (h['emb.item.item'].dtype = 'I32'))), /"emb\.item\.item": dtype I32, expected F32/, 'wrong dtype');
  rejects(t, decode(edit((h) => (h['emb.item.item'].dtype = 'Q4'))), /"emb\.item\.item": unknown dtype "Q4"/, 'unknown dtype');
  rejects(t, decode(edit((h) => (h['emb.item.item'].dtype = 'F16'))), /"emb\.item\.item": shape \[97, 5\] of F16 needs 970 bytes, but data_offsets .* hold 1940/, 'dtype size mismatch');
  rejects(t, decode(edit((h) => (h['emb.item.item'].shape = [5, 97]))), /"emb\.item\.item": shape \[5, 97\] does not match the config, expected \[97, 5\]/, 'wrong shape');
  rejects(t, decode(edit((h) => (h['emb.item.item'].shape = [97, 5, 1]))), /"emb\.item\.item": shape \[97, 5, 1\] does not match the config, expected \[97, 5\]/, 'wrong rank');
  rejects(t, decode(edit((h) => (h['emb.item.item'].shape = [97, 6]))), /"emb\.item\.item": shape \[97, 6\] of F32 needs 2328 bytes/, 'shape vs offsets');
  rejects(t, decode(edit((h) => (h['emb.item.item'].shape = [2 ** 40, 2 ** 40]))), /needs more than the \d+ bytes of data/, 'huge shape');
  rejects(t, decode(edit((h) => (h['emb.item.item'].shape = [97, 1.5]))), /"emb\.item\.item": shape\[1\] must be a non-negative integer, got 1\.5/, 'fractional dim');
  rejects(t, decode(edit((h) => delete h['attn.v'])), /missing tensor "attn\.v" \(shape \[5\]/, 'missing tensor');
  rejects(t, decode(edit((h) => (h['extra.w'] = { dtype: 'F32', shape: [0], data_offsets: [0, 0] }))), /unexpected tensor not in the config: "extra\.w"/, 'extra tensor');
  rejects(t, decode(edit((h) => (h['attn.v'] = 3))), /"attn\.v": entry must be an object/, 'entry not an object');

  rejects(t, decode(edit((h) => delete h['__metadata__'])), /not a dupn model file \(__metadata__\.format is undefined/, 'no metadata');
  rejects(t, decode(meta({ format: 'pytorch' })), /not a dupn model file \(__metadata__\.format is "pytorch"/, 'wrong format');
  rejects(t, decode(meta({ format_version: '3' })), /__metadata__\.format_version "3" is not supported \(this version of dupn reads 1, 2\)/, 'future version');
  rejects(t, decode(meta({ format: 1 })), /__metadata__\.format must be a string, got 1/, 'non-string metadata');
  rejects(t, decode(edit((h) => (h['__metadata__'] = ['dupn']))), /__metadata__ must be an object/, 'metadata not an object');
  rejects(t, decode(meta({ config: undefined })), /__metadata__\.config is missing/, 'no config');
  rejects(t, decode(meta({ config: '{"hidden": ' })), /__metadata__\.config is not valid JSON/, 'config not JSON');
  rejects(t, decode(meta({ config: '{"hidden": 0}' })), /__metadata__\.config is invalid: config\.hidden: must be an integer/, 'config invalid');
  rejects(t, decode(meta({ config: '{"colour": 1}' })), /__metadata__\.config is invalid: config\.colour: unknown key/, 'config unknown key');

  rejects(t, decode(joinRaw('{"a": ', data)), /header is not valid JSON/, 'non-JSON header');
  rejects(t, decode(joinRaw('[1, 2]', data)), /header must be a JSON object, got an array/, 'array header');
  rejects(t, decode(joinRaw('', data)), /header is not valid JSON/, 'empty header');
  const badUtf8 = joinRaw('{"a":"xx"}', data);
  badUtf8[14] = 0xff;
  rejects(t, decode(badUtf8), /header is not valid UTF-8/, 'invalid UTF-8');

  for (const [value, label] of [[NaN, 'NaN'], [Infinity, 'Infinity'], [-Infinity, '-Infinity']] as const) {
    const d = data.slice();
    const [begin] = header['attn.w'].data_offsets as number[];
    new DataView(d.buffer).setFloat32(begin + 4 * 3, value, true);
    rejects(t, decode(joinFile(header, d)), new RegExp(`"attn\\.w": non-finite value \\(${label}\\) at index 3`), `${label} weight`);
  }
});

t.test('fuzz: corrupt files succeed or throw E_MODEL_FILE, nothing else', async (t) => {
  const { bytes } = await validFile(t.testdir({}));
  const headerEnd = 8 + Number(Buffer.from(bytes.buffer, bytes.byteOffset, 8).readBigUInt64LE(0));
  const digits: number[] = [];
  for (let i = 8; i < headerEnd; i++) if (bytes[i] >= 0x30 && bytes[i] <= 0x39) digits.push(i);

  const rand = rng(20240601);
  const int = (n: number) => Math.floor(rand() * n);
  const outcomes = { ok: 0, refused: 0 };
  for (let iter = 0; iter < 3000; iter++) {
    let b = bytes.slice();
    const mode = rand();
    if (mode < 0.75) {
      for (let k = 1 + int(8); k > 0; k--) {
        const kind = rand();
        if (kind < 0.35) b[digits[int(digits.length)]] = 0x30 + int(10); // keeps JSON valid: hits the field checks
        else if (kind < 0.7) b[int(headerEnd)] ^= 1 + int(255); // length field and header text
        else b[int(b.length)] ^= 1 + int(255); // anywhere, mostly weights
      }
    }
    if (mode > 0.5) b = b.subarray(0, int(b.length));
    try {
      decodeModelFile(b, 'fuzz');
      outcomes.ok++;
    } catch (err) {
      if (!(err instanceof DupnError) || err.code !== 'E_MODEL_FILE') {
        t.fail(`iteration ${iter}: unexpected ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
        return;
      }
      outcomes.refused++;
    }
  }
  t.equal(outcomes.ok + outcomes.refused, 3000, `all 3000 handled (${outcomes.ok} loaded, ${outcomes.refused} refused)`);
  t.ok(outcomes.ok > 0 && outcomes.refused > 0, 'both outcomes occur');
});

t.test('writeFileAtomic', async (t) => {
  const dir = t.testdir({ 'target.bin': 'old content' });
  const target = nodePath.join(dir, 'target.bin');
  const listing = async () => (await fsp.readdir(dir)).sort();

  await writeFileAtomic(target, [Buffer.from('new '), new Uint8Array([0x63, 0x6f]), Buffer.from('ntent')]);
  t.equal(await fsp.readFile(target, 'utf8'), 'new content', 'replaces the file');
  t.same(await listing(), ['target.bin'], 'no temp file left');

  // A chunk that cannot be written fails after the temp file holds partial data.
  await t.rejects(writeFileAtomic(target, [Buffer.from('partial'), 'not bytes' as unknown as Uint8Array]), {
    code: 'E_IO',
    message: new RegExp(`cannot write ${target.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')}`),
  });
  t.equal(await fsp.readFile(target, 'utf8'), 'new content', 'old content kept after a failed write');
  t.same(await listing(), ['target.bin'], 'temp file removed after a failed write');

  // The rename fails (target is a non-empty directory) after all data are written and synced.
  const blocked = nodePath.join(dir, 'blocked');
  await fsp.mkdir(blocked);
  await fsp.writeFile(nodePath.join(blocked, 'keep'), 'x');
  await t.rejects(writeFileAtomic(blocked, [Buffer.from('data')]), { code: 'E_IO', message: /blocked/ });
  t.same(await listing(), ['blocked', 'target.bin'], 'temp file removed after a failed rename');
  t.same(await fsp.readdir(blocked), ['keep'], 'directory untouched');

  // The directory is gone: nothing can be created, and the error names the path.
  const gone = nodePath.join(dir, 'gone');
  await fsp.mkdir(gone);
  await fsp.rmdir(gone);
  await t.rejects(writeFileAtomic(nodePath.join(gone, 'm.safetensors'), [Buffer.from('x')]), { code: 'E_IO', message: /gone.m\.safetensors/ });
  t.same(await listing(), ['blocked', 'target.bin']);

  await t.rejects(loadModelFile(nodePath.join(gone, 'm.safetensors')), { code: 'E_IO', message: /cannot read model file .*gone.m\.safetensors.*ENOENT/ });
  await t.rejects(loadModelFile(dir), { code: 'E_IO', message: /cannot read model file/ });
});

t.test('a checksum of the tensor data: a finite change anywhere in the data is caught on load, unless the caller skips the check', async (t) => {
  const dir = t.testdir({});
  const { bytes } = await validFile(dir);
  const parsed = parseSafetensors(bytes);
  // One byte in the middle of the data, one in the last tensor: both keep every value finite.
  for (const at of [parsed.dataStart + Math.floor((bytes.length - parsed.dataStart) / 2), bytes.length - 2]) {
    const b = bytes.slice();
    b[at] ^= 0x01;
    const path = nodePath.join(dir, `flipped-${at}.safetensors`);
    await fsp.writeFile(path, b);
    await t.rejects(Model.load(path), { code: 'E_MODEL_FILE', message: /do not match the file's checksum/ }, `byte ${at} flipped`);
    const m = await Model.load(path, { verifyChecksum: false });
    t.ok(m.userDim > 0, 'verifyChecksum: false loads it');
    m.dispose();
  }
});

t.test('writeFilesAtomic: a failure while writing any file of a set leaves the whole previous set, and no temporaries', async (t) => {
  const dir = t.testdir({ 'm.onnx': 'old user', 'm.ctr.onnx': 'old ctr', 'm.ppp.onnx': 'old ppp' });
  const files = ['m.onnx', 'm.ctr.onnx', 'm.ppp.onnx'].map((n) => nodePath.join(dir, n));
  const good = (s: string) => [new TextEncoder().encode(s)];
  // The last file fails (a chunk that is no bytes stands for a full disk): nothing of the new set is published.
  await t.rejects(
    writeFilesAtomic([{ path: files[0], chunks: good('new user') }, { path: files[1], chunks: good('new ctr') }, { path: files[2], chunks: [42 as unknown as Uint8Array] }]),
    { code: 'E_IO', message: /m\.ppp\.onnx/ },
  );
  t.same(await Promise.all(files.map((f) => fsp.readFile(f, 'utf8'))), ['old user', 'old ctr', 'old ppp'], 'the old set is whole');
  t.same((await fsp.readdir(dir)).filter((n) => n.includes('.tmp-')), [], 'no temporaries left');
  await writeFilesAtomic(files.map((f, i) => ({ path: f, chunks: good(`new ${i}`) })));
  t.same(await Promise.all(files.map((f) => fsp.readFile(f, 'utf8'))), ['new 0', 'new 1', 'new 2'], 'a set that writes is published whole');
});
