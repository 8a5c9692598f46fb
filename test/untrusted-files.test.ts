// Issue 11, items 3, 4, 6 and 8: model, checkpoint and ONNX paths are untrusted. A FIFO, a device or a directory
// is refused before anything is read (a FIFO used to freeze the event loop or never settle, /dev/zero read
// without limit), a path with a NUL byte or one that is no string is refused before anything is written, and
// the temporaries of a writer killed mid-write are removed by the next write of the same file.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { resolveConfig } from '../lib/network/config';
import { Model } from '../lib/model/model';
import { Trainer } from '../lib/train/trainer';
import { randomTensors } from '../lib/reference/random-model';
import { rejectsCode } from './support/errors';

const config = resolveConfig({
  maxSeqLen: 8,
  itemFields: [
    { name: 'item', buckets: 101, dim: 4 },
    { name: 'category', buckets: 11, dim: 3 },
    { name: 'shop', buckets: 7, dim: 2 },
    { name: 'brand', buckets: 5, dim: 2 },
  ],
  hidden: 6,
  attentionHidden: 4,
});

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dupn-untrusted-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const canFifo = process.platform !== 'win32' && spawnSync('mkfifo', ['--help']).status === 0;

function fifo(name: string): string {
  const p = path.join(dir, name);
  const r = spawnSync('mkfifo', [p]);
  if (r.status !== 0) throw new Error(`mkfifo failed: ${r.stderr}`);
  return p;
}

t.test('a FIFO as a model, ONNX or checkpoint file is refused as not a regular file, without blocking', { skip: !canFifo && 'mkfifo is not available here' }, async (t) => {
  // Nothing ever opens these FIFOs for writing: a call that opened one blocking (which froze the event loop
  // before the fix) or waited for its data would never settle, and tap's timeout would fail the run.
  const f = fifo('model.safetensors');
  await rejectsCode(t, () => Model.load(f), 'E_IO', 'not a regular file (a FIFO)', 'Model.load');
  await rejectsCode(t, () => Model.fromOnnx(f), 'E_IO', 'a FIFO', 'Model.fromOnnx');
  await rejectsCode(t, () => Trainer.resume(f), 'E_IO', 'a FIFO', 'Trainer.resume');
  await rejectsCode(t, () => Trainer.fromModelFile(f), 'E_IO', 'a FIFO', 'Trainer.fromModelFile');

  // A user file whose head entry names a FIFO.
  const model = Model.create(config, { seed: 1 });
  const user = path.join(dir, 'm.onnx');
  const files = await model.exportOnnx(user);
  const head = files.find((p) => p.endsWith('.ctr.onnx'))!;
  fs.rmSync(head);
  fifo(path.basename(head));
  await rejectsCode(t, () => Model.fromOnnx(user), 'E_IO', 'a FIFO', 'fromOnnx with a FIFO head file');
  model.dispose();
});

t.test('devices and directories are refused before reading: /dev/zero does not read forever', async (t) => {
  if (fs.existsSync('/dev/zero')) {
    await rejectsCode(t, () => Model.load('/dev/zero'), 'E_IO', 'not a regular file (a character device)');
    await rejectsCode(t, () => Model.fromOnnx('/dev/zero'), 'E_IO', 'a character device');
    await rejectsCode(t, () => Trainer.resume('/dev/zero'), 'E_IO', 'a character device');
  }
  await rejectsCode(t, () => Model.load(dir), 'E_IO', 'a directory');
  await rejectsCode(t, () => Trainer.resume(dir), 'E_IO', 'a directory');
});

t.test('paths with a NUL byte, and paths that are no string, are refused before anything is written', async (t) => {
  const model = Model.create(config, { seed: 2 });
  const good = path.join(dir, 'good.safetensors');
  await model.save(good);
  // fs refuses such a path; the native map would have read `good.safetensors`.
  await rejectsCode(t, () => Model.load(`${good}\0.bak`), 'E_INPUT', 'NUL byte');
  await rejectsCode(t, () => Model.fromOnnx(`${good}\0`), 'E_INPUT', 'NUL byte');
  await rejectsCode(t, () => model.save(`${good}\0x`), 'E_INPUT', 'NUL byte');
  const before = fs.readdirSync(dir).sort();
  for (const bad of [123, null, {}, '']) {
    await rejectsCode(t, () => model.save(bad as unknown as string), 'E_INPUT', 'path', `save(${JSON.stringify(bad)})`);
    await rejectsCode(t, () => model.exportOnnx(bad as unknown as string), 'E_INPUT', 'path', `exportOnnx(${JSON.stringify(bad)})`);
    await rejectsCode(t, () => Model.load(bad as unknown as string), 'E_INPUT', 'path', `load(${JSON.stringify(bad)})`);
  }
  t.same(fs.readdirSync(dir).sort(), before, 'no file (no 123.tmp-…) was written');
  t.same(fs.readdirSync(process.cwd()).filter((n) => n.startsWith('123')), [], 'nor in the working directory');
  model.dispose();
});

t.test("a write removes the temporaries that killed writers left of the same file, and keeps live writers'", async (t) => {
  const model = Model.create(config, { seed: 3 });
  const target = path.join(dir, 'kept.safetensors');
  // A pid that is certainly gone: a child that has exited.
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const deadPid = Number(dead.stdout);
  const stale = `${target}.tmp-${deadPid}-0123456789ab`;
  const live = `${target}.tmp-${process.ppid}-ba9876543210`; // our parent is alive
  const foreign = `${target}.tmp-${deadPid}-not-ours`; // not our naming pattern
  const other = path.join(dir, `other.safetensors.tmp-${deadPid}-0123456789ab`); // another file's
  for (const p of [stale, live, foreign, other]) fs.writeFileSync(p, 'x');
  await model.save(target);
  t.notOk(fs.existsSync(stale), 'the dead writer’s temporary is gone');
  t.ok(fs.existsSync(live), 'a live writer’s temporary stays');
  t.ok(fs.existsSync(foreign), 'a name not of our pattern stays');
  t.ok(fs.existsSync(other), 'temporaries of other files stay');
  t.ok((await Model.load(target)).userDim > 0, 'and the file itself loads');
  model.dispose();
});

t.test('finite but extreme weights never give a caller a NaN or Inf: the call fails with E_NUMERIC instead', async (t) => {
  const users = [{ behaviors: [{ type: 'pv', time: 1, item: 'a', category: 'c' }, { type: 'pv', time: 2, item: 'b', category: 'd' }], now: 3 }];
  const cand = [{ item: 'a', category: 'c', shop: 's', brand: 'b' }];
  const seen = { ok: 0, numeric: 0 };
  for (const name of randomTensors(config, 1, 0.5).keys()) {
    const tensors = randomTensors(config, 1, 0.5);
    const a = tensors.get(name)!;
    for (let i = 0; i < a.length; i++) a[i] = i % 2 ? -3e38 : 3e38;
    const model = Model.fromTensors(config, tensors, { threads: 1 });
    const calls: [string, () => Promise<Float32Array> | Float32Array][] = [
      ['encode', () => model.encode(users)],
      ['encodeSync', () => model.encodeSync(users)],
      ['score', () => model.score('ctr', new Float32Array(model.userDim).fill(0.5), cand)],
      ['scoreSync', () => model.scoreSync('l2r', new Float32Array(model.userDim).fill(-0.5), cand)],
      ['predict', () => model.predict('ppp', users)],
    ];
    for (const [label, call] of calls) {
      try {
        const out = await call();
        if (!out.every(Number.isFinite)) t.fail(`${name} · ${label}: a non-finite output reached the caller`);
        seen.ok++;
      } catch (e) {
        t.equal((e as { code?: string }).code, 'E_NUMERIC', `${name} · ${label}: ${(e as Error).message}`);
        seen.numeric++;
      }
    }
    model.dispose();
  }
  t.ok(seen.numeric >= 10, `E_NUMERIC in ${seen.numeric} calls (finite in ${seen.ok})`);
});
