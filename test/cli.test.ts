// The dupn command line end to end: synth → train → eval; kill -9 during training and --resume loses no
// completed step (the resumed model equals an uninterrupted run, bit for bit, in deterministic mode);
// malformed input files are reported with line numbers and never crash the trainer.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT } from './support/child';

const CLI = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dupn-cli-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

const settings = path.join(dir, 'settings.json');
fs.writeFileSync(
  settings,
  JSON.stringify({
    model: {
      maxSeqLen: 30,
      itemFields: [
        { name: 'item', buckets: 8192, dim: 8 },
        { name: 'category', buckets: 512, dim: 4 },
        { name: 'shop', buckets: 1024, dim: 4 },
        { name: 'brand', buckets: 512, dim: 4 },
      ],
      query: { buckets: 512, dim: 4 },
      hidden: 16,
      attentionHidden: 8,
    },
    train: { batchSize: 32, learningRate: 0.003 },
  }),
);

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const data = path.join(dir, 'syn');
const trainFile = path.join(data, 'train.jsonl');
const validFile = path.join(data, 'valid.jsonl');

t.test('synth, train, eval', async (t) => {
  const s = run(['synth', '--out', data, '--users', '600', '--valid-users', '150', '--seed', '3', '--config', settings]);
  t.equal(s.status, 0, s.stderr);
  t.match(s.stdout, /600 examples.*150 examples/s);
  const model = path.join(dir, 'm.safetensors');
  const tr = run(['train', '--data', trainFile, '--valid', validFile, '--config', settings, '--out', model, '--epochs', '2', '--no-progress']);
  t.equal(tr.status, 0, tr.stderr);
  t.match(tr.stdout, /epoch 2\/2: 19 steps, 600 examples/);
  t.match(tr.stdout, /ctr\s+binary\s+model\s+150/);
  t.ok(fs.existsSync(model));
  const ev = run(['eval', '--model', model, '--data', validFile, '--popularity', trainFile, '--json']);
  t.equal(ev.status, 0, ev.stderr);
  const report = JSON.parse(ev.stdout) as { model: { tasks: Record<string, { auc: number }> }; 'label-popularity': object };
  for (const task of ['ctr', 'l2r', 'ppp', 'spp']) t.ok(report.model.tasks[task].auc > 0 && report.model.tasks[task].auc < 1, `${task} AUC in range`);
  t.ok(report['label-popularity'], 'the popularity of labels counted from --popularity');
});

t.test('kill -9 during training, then --resume: nothing lost', async (t) => {
  const common = ['--data', trainFile, '--config', settings, '--epochs', '5', '--deterministic', '--no-progress'];
  const whole = path.join(dir, 'whole.safetensors');
  t.equal(run(['train', ...common, '--out', whole]).status, 0);

  const killed = path.join(dir, 'killed.safetensors');
  const ckpt = `${killed}.ckpt`;
  // Kill at a moment that depends on the machine: once the first checkpoint exists, after a random wait. A
  // fast machine may finish first; then try again with a shorter wait.
  let code: number | null = 0;
  for (let attempt = 0; attempt < 6 && code === 0; attempt++) {
    fs.rmSync(ckpt, { force: true });
    const child = spawn(process.execPath, [CLI, 'train', ...common, '--out', killed, '--checkpoint-every', '1'], { stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (fs.existsSync(ckpt) || child.exitCode !== null) {
          clearInterval(poll);
          setTimeout(resolve, (Math.random() * 400) / (attempt + 1));
        }
      }, 2);
    });
    child.kill('SIGKILL');
    code = await exited;
  }
  t.not(code, 0, 'the run was killed before finishing');
  const resumed = run(['train', ...common, '--out', killed, '--resume']);
  t.equal(resumed.status, 0, resumed.stderr);
  t.match(resumed.stderr, /resumed from .*: step \d+/);
  const a = fs.readFileSync(whole);
  const b = fs.readFileSync(killed);
  t.ok(a.equals(b), 'the resumed model file equals the uninterrupted one byte for byte');
});

t.test('malformed and hostile input files never crash the trainer', async (t) => {
  const log = path.join(dir, 'log.csv');
  const rows: string[] = [];
  for (let u = 0; u < 40; u++) {
    for (let k = 0; k < 12; k++) rows.push(`${u},${(u * 7 + k) % 50},${k % 5},${k % 4 === 0 ? 'cart' : 'pv'},${1511544070 + u * 10 + k * 3600}`);
  }
  rows.splice(5, 0, '1,2,3');
  rows.splice(17, 0, '2,17,4,pv,yesterday');
  rows.splice(30, 0, '\u0000\u0001garbage');
  fs.writeFileSync(log, rows.join('\n'));
  const out = path.join(dir, 'log.safetensors');
  const r = run(['train', '--data', log, '--config', settings, '--out', out, '--epochs', '1', '--no-progress', '--valid-from', String(1511544070 + 6 * 3600)]);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stderr, /log\.csv: 480 rows, 40 users, \d+ examples, 3 malformed lines skipped/, 'the reader report');
  const late = run(['train', '--data', log, '--config', settings, '--out', out, '--no-progress', '--valid-from', '1511544070']);
  t.equal(late.status, 1, 'a split that leaves no training example is refused');
  t.match(late.stderr, /^dupn: E_INPUT: .*no training examples: all \d+ examples are cut at or after the validation split/m);
  t.match(r.stderr, /3 malformed lines skipped/);
  t.match(r.stderr, /line 6: /);
  t.match(r.stderr, /line 18: .*time/);
  const strict = run(['train', '--data', log, '--config', settings, '--out', out, '--strict', '--no-progress']);
  t.equal(strict.status, 1);
  t.match(strict.stderr, /^dupn: E_INPUT: .*log\.csv:6: /m);

  const jsonl = path.join(dir, 'bad.jsonl');
  fs.writeFileSync(jsonl, ['{"not": "an example"}', '[1,2', 'null', ''].join('\n'));
  const j = run(['train', '--data', jsonl, '--config', settings, '--out', out, '--no-progress']);
  t.equal(j.status, 1, 'a file with no example is refused, not trained on');
  t.match(j.stderr, /3 malformed lines skipped/);
  t.match(j.stderr, /^dupn: E_INPUT: .*bad\.jsonl: no examples: all 3 data lines are malformed.*line 1: /m);

  const missing = run(['train', '--data', path.join(dir, 'nope.csv'), '--out', out]);
  t.equal(missing.status, 1);
  t.match(missing.stderr, /^dupn: E_IO: /m);
  const badFlag = run(['train', '--data', log, '--out', out, '--epochs', 'many']);
  t.equal(badFlag.status, 1);
  t.match(badFlag.stderr, /--epochs: expected a number/);
  const badLr = run(['train', '--data', log, '--config', settings, '--out', out, '--embedding-lr', '-1', '--no-progress']);
  t.equal(badLr.status, 1);
  t.match(badLr.stderr, /options\.embeddingLearningRate: must be a number in \[0, 10\], got -1/);
  // Refused before the data is read (no "tables sized from the data" line yet).
  const badDropout = run(['train', '--data', log, '--out', out, '--dropout', '1', '--no-progress']);
  t.equal(badDropout.status, 1);
  t.match(badDropout.stderr, /^dupn: E_INPUT: options\.dropout: must be a number in \[0, 0\.95\], got 1$/m);
  t.notMatch(badDropout.stderr, /tables sized/);
  const noResume = run(['train', '--data', log, '--out', path.join(dir, 'never.safetensors'), '--resume']);
  t.equal(noResume.status, 1);
  t.match(noResume.stderr, /E_IO: cannot read checkpoint/);
});
