// The PyTorch twin (python/dupn_torch) against dupn on the same model files: U, attention, every head kind's
// scores and probabilities within 1e-5 relative (random weights large enough to saturate the gates; lengths 0,
// 1 and maxSeqLen in ragged batches), files round-tripping bit-identical, and a torch-trained model serving in
// dupn with torch's outputs. Needs a Python with torch: .ci/run installs Debian's python3-torch and sets
// DUPN_REQUIRE_TORCH=1, so there a missing torch fails instead of skipping.
import t, { Test } from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DupnConfig, ResolvedConfig, resolveConfig } from '../lib/network/config';
import { Model } from '../lib/model/model';
import { UserColumns } from '../lib/model/columns';
import { randomCandidateColumns, randomTensors, randomUserColumns, withPrior } from '../lib/reference/random-model';
import { allFinite, relError } from './support/compare';
import { lengthsFor, noPropertiesConfig, oddConfig, oddVariants } from './support/configs';
import { runPython, torchForTest } from './support/python';

const TOL = 1e-5;
const found = torchForTest(t);
if (found !== null) {
  const python = found.python;
  const dir = mkdtempSync(path.join(tmpdir(), 'dupn-twin-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.comment(`torch ${found.version} at ${python}`);

  const columnsJson = (c: UserColumns) => Object.fromEntries(Object.entries(c).map(([k, v]) => [k, Array.from(v as Int32Array)]));

  interface Case {
    tag: string;
    config: ResolvedConfig;
    model: Model;
    file: string;
    cols: UserColumns;
    lengths: number[];
    cands: Map<string, { items: Int32Array; dense: Float32Array }>;
  }

  function makeCase(tag: string, input: DupnConfig | ResolvedConfig, seed: number, scale: number): Case {
    const config = resolveConfig(input);
    const model = Model.fromTensors(config, randomTensors(config, seed, scale), { threads: 1 });
    const file = path.join(dir, `${tag.replace(/[^A-Za-z0-9]+/g, '_')}.safetensors`);
    const L = config.maxSeqLen;
    const lengths = [0, 1, L, ...lengthsFor('random', 21, L, seed)];
    const cols = randomUserColumns(config, seed, lengths);
    const cands = new Map<string, { items: Int32Array; dense: Float32Array }>();
    const weights = model.weights as Map<string, Float32Array>;
    for (const task of config.tasks) {
      if (task.kind !== 'multiclass') cands.set(task.name, withPrior(config, weights, task.name, randomCandidateColumns(config, task, seed + 7, 37)));
    }
    return { tag, config, model, file, cols, lengths, cands };
  }

  function job(c: Case, extra: Record<string, unknown> = {}) {
    const tasks: Record<string, unknown> = {};
    for (const task of c.config.tasks) {
      const cand = c.cands.get(task.name);
      tasks[task.name] = cand ? { items: Array.from(cand.items), dense: Array.from(cand.dense) } : {};
    }
    return { model: c.file, columns: columnsJson(c.cols), tasks, ...extra };
  }

  interface TorchOut {
    U: number[];
    attention: number[][];
    scores: Record<string, number[][]>;
    probabilities: Record<string, number[]>;
  }

  function runJobs(jobs: unknown[]): TorchOut[] {
    const inFile = path.join(dir, 'jobs.json');
    const outFile = path.join(dir, 'results.json');
    writeFileSync(inFile, JSON.stringify(jobs));
    runPython(python, [path.join(__dirname, 'python', 'twin_jobs.py'), inFile, outFile]);
    return JSON.parse(readFileSync(outFile, 'utf8')) as TorchOut[];
  }

  /** Compares dupn's outputs for case `c` with model `model` against torch's. */
  function compare(tt: Test, c: Case, model: Model, out: TorchOut, label: string): void {
    const N = c.lengths.reduce((a, b) => a + b, 0);
    const attention = new Float32Array(N);
    const U = model.encodeColumnsSync(c.cols, { attention });
    tt.ok(relError(out.U, U) <= TOL, `${label}: U rel err ${relError(out.U, U).toExponential(2)}`);
    // torch pads to [B, T]; dupn's weights are ragged: compare the valid steps, and padding must be exactly 0.
    const ragged: number[] = [];
    let padding = 0;
    c.lengths.forEach((L, b) => out.attention[b].forEach((a, i) => (i < L ? ragged.push(a) : (padding = Math.max(padding, Math.abs(a))))));
    tt.ok(relError(ragged, attention) <= TOL, `${label}: attention rel err ${relError(ragged, attention).toExponential(2)}`);
    tt.equal(padding, 0, `${label}: no attention on padding`);
    const dim = model.userDim;
    for (const task of c.config.tasks) {
      if (task.kind === 'multiclass') {
        const p = model.predictFromVectorsSync(task.name, U);
        tt.ok(relError(out.probabilities[task.name], p) <= TOL, `${label}: ${task.name} probabilities rel err ${relError(out.probabilities[task.name], p).toExponential(2)}`);
        continue;
      }
      const cand = c.cands.get(task.name)!;
      const ours: number[] = [];
      for (let b = 0; b < c.lengths.length; b++) ours.push(...model.scoreSync(task.name, U.subarray(b * dim, (b + 1) * dim), cand));
      const theirs = out.scores[task.name].flat();
      tt.ok(allFinite(theirs), `${label}: ${task.name} finite in torch`);
      tt.ok(relError(theirs, ours) <= TOL, `${label}: ${task.name} (${task.kind}) scores rel err ${relError(theirs, ours).toExponential(2)}`);
    }
  }

  const cases: Case[] = [];
  let seed = 4100;
  for (const { variant, tag } of oddVariants()) cases.push(makeCase(tag, oddConfig({ ...variant, maxSeqLen: 23 }), ++seed, 2));
  cases.push(makeCase('no properties', noPropertiesConfig(), ++seed, 2));
  {
    // Successor features on a retrieval head (maxSeqLen ≥ 10), and the long histories of the paper (L = 100).
    const c = oddConfig({ bidirectional: true, query: true, profile: true, scene: true, maxSeqLen: 100 });
    c.tasks = c.tasks!.map((x) => (x.name === 'ret' ? { ...x, successors: { items: 300, perItem: 5 } } : x));
    cases.push(makeCase('successors L=100', c, ++seed, 1));
  }

  t.test('the torch module computes what dupn computes (every head kind, saturated gates)', async (tt) => {
    for (const c of cases) await c.model.save(c.file);
    const outs = runJobs(cases.map((c) => job(c)));
    cases.forEach((c, i) => compare(tt, c, c.model, outs[i], c.tag));
    // Saturation is what makes a gate-order or bias-split mistake visible: check the weights did saturate.
    const wx = cases[0].model.weights.get('lstm.fw.wx')!;
    tt.ok(Math.max(...wx.map(Math.abs)) > 1.9, 'LSTM weights of ±2 (pre-activations far past the linear range)');
  });

  t.test('python3 -m dupn_torch encode, score and predict give dupn\'s outputs', async (tt) => {
    const c = cases[cases.length - 1];
    const colsFile = path.join(dir, 'cols.json');
    const outFile = path.join(dir, 'u.json');
    writeFileSync(colsFile, JSON.stringify(columnsJson(c.cols)));
    runPython(python, ['-m', 'dupn_torch', 'encode', '--model', c.file, '--columns', colsFile, '--out', outFile]);
    const U = (JSON.parse(readFileSync(outFile, 'utf8')) as { U: number[][] }).U;
    tt.equal(U.length, c.lengths.length, 'one row per user');
    const ours = c.model.encodeColumnsSync(c.cols);
    tt.ok(relError(U.flat(), ours) <= TOL, `U rel err ${relError(U.flat(), ours).toExponential(2)}`);

    // score (the retrieval head with successor features: dense carries h) and predict, the same way.
    const cand = c.cands.get('ret')!;
    const candFile = path.join(dir, 'cands.json');
    writeFileSync(candFile, JSON.stringify({ items: Array.from(cand.items), dense: Array.from(cand.dense) }));
    runPython(python, ['-m', 'dupn_torch', 'score', '--model', c.file, '--columns', colsFile, '--task', 'ret', '--candidates', candFile, '--out', outFile]);
    const scores = (JSON.parse(readFileSync(outFile, 'utf8')) as { scores: number[][] }).scores;
    const dim = c.model.userDim;
    const ourScores = c.lengths.flatMap((_, b) => Array.from(c.model.scoreSync('ret', ours.subarray(b * dim, (b + 1) * dim), cand)));
    tt.ok(relError(scores.flat(), ourScores) <= TOL, `score ret rel err ${relError(scores.flat(), ourScores).toExponential(2)}`);
    runPython(python, ['-m', 'dupn_torch', 'predict', '--model', c.file, '--columns', colsFile, '--task', 'ppp', '--out', outFile]);
    const probs = (JSON.parse(readFileSync(outFile, 'utf8')) as { probabilities: number[][] }).probabilities;
    const ourProbs = c.model.predictFromVectorsSync('ppp', ours);
    tt.ok(relError(probs.flat(), ourProbs) <= TOL, `predict ppp rel err ${relError(probs.flat(), ourProbs).toExponential(2)}`);
  });

  t.test('files round-trip dupn → torch → dupn bit-identical', async (tt) => {
    for (const c of [cases[3], cases[cases.length - 1]]) {
      const back = path.join(dir, 'roundtrip.safetensors');
      runPython(python, ['-m', 'dupn_torch', 'copy', '--model', c.file, '--out', back]);
      const m = await Model.load(back);
      tt.same(m.config, c.config, `${c.tag}: same config`);
      const a = c.model.weights;
      const b = m.weights;
      tt.same([...b.keys()], [...a.keys()], `${c.tag}: same tensors`);
      let differ = 0;
      for (const [name, x] of a) {
        const y = b.get(name)!;
        const xb = new Uint32Array(x.buffer, x.byteOffset, x.length);
        const yb = new Uint32Array(y.buffer, y.byteOffset, y.length);
        if (xb.length !== yb.length || xb.some((v, i) => v !== yb[i])) differ++;
      }
      tt.equal(differ, 0, `${c.tag}: every tensor bit-identical`);
      m.dispose();
    }
  });

  t.test('a model trained in torch serves in dupn with torch\'s outputs', async (tt) => {
    const c = cases[cases.length - 1];
    const saved = path.join(dir, 'torch-trained.safetensors');
    const [out] = runJobs([job(c, { train_steps: 3, save: saved })]);
    const m = await Model.load(saved);
    const before = c.model.weights;
    let moved = 0;
    for (const [name, x] of m.weights) if (x.some((v, i) => v !== before.get(name)![i])) moved++;
    tt.ok(moved > 10, `training moved ${moved} tensors`);
    compare(tt, c, m, out, 'torch-trained');
    m.dispose();
  });

  t.test("the twin's weight average (python3 -m dupn_torch train's default, as dupn train's) is the per-step average, lazily per row, and resumes bit for bit", async (tt) => {
    const r = runPython(python, [path.join(__dirname, 'python', 'average_check.py')]);
    const runs = JSON.parse(r.stdout) as { decay: number; relative_error: number; resumed_identical: boolean; current_is_pure: boolean; rows_moved: number }[];
    for (const x of runs) {
      tt.ok(x.relative_error < 1e-5, `d = ${x.decay}: largest relative difference from the eager float64 average ${x.relative_error.toExponential(2)}`);
      tt.ok(x.resumed_identical, `d = ${x.decay}: a state saved midway and resumed ends bit-identical`);
      tt.ok(x.current_is_pure, `d = ${x.decay}: taking the averages changes no state`);
      tt.ok(x.rows_moved > 20, `d = ${x.decay}: ${x.rows_moved} table rows moved`);
    }
  });

  t.test("the twin's row-wise Adagrad (python3 -m dupn_torch train's default, as dupn train's) follows dupn's step and resumes bit for bit", async (tt) => {
    const r = runPython(python, [path.join(__dirname, 'python', 'rowwise_check.py')]);
    const x = JSON.parse(r.stdout) as { relative_error: number; rows_moved: number; repeated: number; resumed_identical: boolean };
    tt.ok(x.relative_error < 1e-5, `largest relative difference from the float64 formula over 200 steps ${x.relative_error.toExponential(2)}`);
    tt.ok(x.rows_moved === 30 && x.repeated > 10, `${x.rows_moved} rows moved; ${x.repeated} lookups repeated a row within a step`);
    tt.ok(x.resumed_identical, 'a state saved midway and resumed ends bit-identical');
  });

  t.test('a damaged file is refused by the twin with the problem named', async (tt) => {
    const c = cases[0];
    const bytes = readFileSync(c.file);
    const bad = path.join(dir, 'truncated.safetensors');
    writeFileSync(bad, bytes.subarray(0, bytes.length - 5));
    const r = runPython(python, ['-m', 'dupn_torch', 'copy', '--model', bad, '--out', path.join(dir, 'x.safetensors')], { allowFail: true });
    tt.not(r.status, 0, 'non-zero exit');
    tt.match(r.stderr, /ModelFileError: .*data_offsets .* do not hold shape|header length/, r.stderr.split('\n').pop() ?? '');
  });

  t.teardown(() => cases.forEach((c) => c.model.dispose()));
}
