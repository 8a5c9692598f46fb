/**
 * The secondary node-gyp build (native/binding.gyp) must build the same addon as the primary cmake-js build
 * (CMakeLists.txt) and compute bit-identical results on every ISA path this CPU supports.
 *
 * native/ (with its binding.gyp) is copied into a fresh temp directory, so node-gyp's build/ never touches the
 * repository's cmake-js build/. Each addon is then loaded in its own child process through the real loader
 * (DUPN_NATIVE → lib/native/addon.ts), and the child reports which .node file it really loaded.
 * Nothing is downloaded: node-gyp is pointed at the local Node headers. A missing node-gyp, missing headers
 * or a failed compile FAIL this test; they never skip it.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { localNodeDir } from '../lib/cli/build-native';
import { CMAKE_ADDON, ROOT, tsNodeRegister } from './support/child';

const NODE_GYP = path.join(ROOT, 'node_modules', '.bin', process.platform === 'win32' ? 'node-gyp.cmd' : 'node-gyp');


// A ~2-minute compile on a slow machine, plus the probes: well above the package-wide 600 s.
t.setTimeout(20 * 60_000);

/** The environment of a child: this one without tap's hooks or any DUPN_* override, plus `extra`. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k === 'NODE_OPTIONS' || k.startsWith('TAP') || k.startsWith('_TAPJS') || k.startsWith('DUPN_')) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function run(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - start });
    });
  });
}

/**
 * Runs in a child (cwd = repo, ts-node): loads the addon through lib/native/addon.ts and prints one JSON line with
 * what it loaded and bit patterns (hex of the float32 bytes) of fingerprints, encodings and scores per ISA.
 */
const PROBE = String.raw`
const { native, candidatePaths } = require('./lib/native/addon');
const { Model } = require('./lib/model/model');
const { fingerprint64 } = require('./lib/model/hashing');
const { randomUserColumns, randomCandidateColumns } = require('./lib/reference/random-model');
const hex = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex');
const addon = native();
const loaded = Object.keys(require.cache).filter((k) => k.endsWith('.node'));
const config = {
  maxSeqLen: 12,
  itemFields: [
    { name: 'item', buckets: 101, dim: 13 },
    { name: 'category', buckets: 17, dim: 5 },
    { name: 'shop', buckets: 9, dim: 0 },
    { name: 'brand', buckets: 23, dim: 6 },
  ],
  properties: { types: ['pv', 'fav', 'cart', 'buy'], typeDim: 3, gapBuckets: 6, gapDim: 4, scenes: ['a', 'b'], sceneDim: 2 },
  query: { buckets: 19, dim: 7 },
  profileFields: [
    { name: 'age', buckets: 6, dim: 3 },
    { name: 'city', buckets: 17, dim: 5 },
  ],
  hidden: 21,
  bidirectional: true,
  attentionHidden: 11,
  tasks: [
    { name: 'ctr', kind: 'binary', target: ['item', 'category', 'brand'], layers: [19, 6] },
    { name: 'l2r', kind: 'rank', target: ['brand', 'item'], layers: [9], denseFeatures: 3 },
    { name: 'ppp', kind: 'multiclass', classes: 4, layers: [6] },
  ],
};
const strings = ['', 'a', 'dupn', 'user:12345', 'ünïcödé ✓', 'x'.repeat(1000)];
const out = {
  candidates: candidatePaths(),
  loaded,
  supportedIsas: addon.supportedIsas,
  fingerprints: strings.map((s) => fingerprint64(s).toString()),
  isas: {},
};
const lengths = [0, 1, 5, 12, 7, 12, 3, 11];
for (const isa of addon.supportedIsas.split(',')) {
  const model = Model.create(config, { seed: 20240607, isa, threads: 2 });
  const cols = randomUserColumns(model.config, 99, lengths);
  const attention = new Float32Array(lengths.reduce((s, l) => s + l, 0));
  const users = model.encodeColumnsSync(cols, { attention });
  const scores = {};
  for (const task of model.config.tasks) {
    if (task.kind === 'multiclass') continue;
    const cands = randomCandidateColumns(model.config, task, 7, 37);
    scores[task.name] = [1, 3].map((b) => hex(model.scoreSync(task.name, users.slice(b * model.userDim, (b + 1) * model.userDim), cands)));
  }
  const finite = users.every(Number.isFinite) && attention.every(Number.isFinite);
  const nonzero = users.some((v) => v !== 0);
  out.isas[isa] = { modelIsa: model.isa, userDim: model.userDim, users: hex(users), attention: hex(attention), scores, finite, nonzero };
  model.dispose();
}
process.stdout.write('\nPROBE ' + JSON.stringify(out) + '\n');
`;

interface ProbeIsa {
  modelIsa: string;
  userDim: number;
  users: string;
  attention: string;
  scores: Record<string, string[]>;
  finite: boolean;
  nonzero: boolean;
}
interface Probe {
  candidates: string[];
  loaded: string[];
  supportedIsas: string;
  fingerprints: string[];
  isas: Record<string, ProbeIsa>;
}

async function probe(addonPath: string): Promise<Probe> {
  const r = await run(process.execPath, ['-r', tsNodeRegister(), '-e', PROBE], {
    cwd: ROOT,
    env: childEnv({ DUPN_NATIVE: addonPath, TS_NODE_TRANSPILE_ONLY: '1' }),
    timeoutMs: 5 * 60_000,
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith('PROBE '));
  if (r.code !== 0 || !line) {
    throw new Error(`probe of ${addonPath} failed (code ${r.code}, signal ${r.signal}):\n${r.stdout}\n${r.stderr}`);
  }
  return JSON.parse(line.slice('PROBE '.length)) as Probe;
}

t.test('node-gyp builds an addon bit-identical to the cmake-js build', async (t) => {
  t.ok(fs.existsSync(CMAKE_ADDON), `the cmake-js build exists (${CMAKE_ADDON}); run \`npm run build:native\` first`);
  t.ok(fs.existsSync(NODE_GYP), `node-gyp is installed (${NODE_GYP})`);
  const nodedir = localNodeDir();
  t.ok(nodedir, "Node's headers are installed locally (include/node/node_api.h), so node-gyp needs no download");
  if (!fs.existsSync(CMAKE_ADDON) || !fs.existsSync(NODE_GYP) || !nodedir) return; // already failed above

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dupn-node-gyp-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.cpSync(path.join(ROOT, 'native'), path.join(dir, 'native'), { recursive: true });
  // The layout of an installed package: node-addon-api resolvable from the package directory.
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'junction');

  const build = await run(NODE_GYP, ['rebuild', '-j', '2', `--nodedir=${nodedir}`], {
    cwd: path.join(dir, 'native'),
    env: childEnv({ npm_config_nodedir: nodedir }),
    timeoutMs: 15 * 60_000,
  });
  t.comment(`node-gyp rebuild took ${(build.ms / 1000).toFixed(1)} s`);
  t.equal(build.code, 0, 'node-gyp rebuild succeeds', {
    output: build.code === 0 ? undefined : `${build.stdout}\n${build.stderr}`.slice(-8000),
  });
  t.notMatch(build.stderr, /\bhttps?:\/\/\S+\.tar\.gz/, 'node-gyp downloaded nothing');
  const gypAddon = path.join(dir, 'native', 'build', 'Release', 'dupn.node');
  t.ok(fs.existsSync(gypAddon), 'build/Release/dupn.node exists in the temp directory');
  if (build.code !== 0 || !fs.existsSync(gypAddon)) return;
  t.not(fs.realpathSync(gypAddon), fs.realpathSync(CMAKE_ADDON), 'a different file from the cmake-js build');

  const [gyp, cmake] = await Promise.all([probe(gypAddon), probe(CMAKE_ADDON)]);

  t.equal(gyp.candidates[0], gypAddon, 'DUPN_NATIVE is the first candidate (node-gyp)');
  t.same(gyp.loaded, [gypAddon], 'the node-gyp child loaded the node-gyp binary and nothing else');
  t.same(cmake.loaded, [CMAKE_ADDON], 'the cmake-js child loaded the cmake-js binary and nothing else');

  t.equal(gyp.supportedIsas, cmake.supportedIsas, 'same supported ISA list');
  const isas = gyp.supportedIsas.split(',');
  t.equal(isas[0], 'baseline', 'baseline is always supported');
  if (process.arch === 'x64') t.comment(`ISA paths compared: ${isas.join(', ')}`);

  t.same(gyp.fingerprints, cmake.fingerprints, 'fingerprint64 is identical');
  t.equal(new Set(gyp.fingerprints).size, gyp.fingerprints.length, 'fingerprints are distinct (not a stub)');

  for (const isa of isas) {
    const g = gyp.isas[isa];
    const c = cmake.isas[isa];
    t.ok(g && c, `${isa}: both builds ran it`);
    if (!g || !c) continue;
    t.equal(g.modelIsa, isa, `${isa}: node-gyp model runs the forced ISA`);
    t.equal(c.modelIsa, isa, `${isa}: cmake-js model runs the forced ISA`);
    t.ok(g.finite && g.nonzero, `${isa}: node-gyp encodings are finite and not all zero`);
    t.equal(g.users, c.users, `${isa}: encodeColumnsSync is bit-identical`);
    t.equal(g.attention, c.attention, `${isa}: attention weights are bit-identical`);
    t.same(Object.keys(g.scores).sort(), ['ctr', 'l2r'], `${isa}: both score heads ran`);
    for (const task of Object.keys(c.scores)) {
      t.same(g.scores[task], c.scores[task], `${isa}: scoreSync("${task}") is bit-identical`);
    }
  }
});
