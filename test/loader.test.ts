/**
 * The addon loader (lib/native/addon.ts): candidate order, falling through candidates that are missing or do not
 * load, and the one E_NATIVE_LOAD error listing everything it tried. Environment-dependent cases run in
 * child processes (the loader caches and reads $DUPN_NATIVE); the all-candidates-fail case calls
 * loadAddon() with its own path list, since hiding build/Release would break tests running in parallel.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DupnError } from '../lib/errors';
import { candidatePaths, fromNativeError, loadAddon, missingBinaryAdvice, native, platformTag, prebuildPath, sourceBuildPath } from '../lib/native/addon';
import { CMAKE_ADDON, ROOT, tsNodeRegister } from './support/child';

const PREBUILT = prebuildPath();
const SOURCE_BUILT = sourceBuildPath();


const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dupn-loader-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
const MISSING = path.join(tmp, 'nowhere', 'dupn.node');
const NOT_AN_ADDON = path.join(tmp, 'x.node');
fs.writeFileSync(NOT_AN_ADDON, 'this is a text file, not a shared library\n');

interface ChildReport {
  candidates: string[];
  loaded: string[];
  supportedIsas: string;
  fingerprint: string;
}

/** Loads the addon through native() in a fresh node process with `env` added; returns what it loaded. */
function loadInChild(env: Record<string, string>): ChildReport {
  const code = String.raw`
    const { native, candidatePaths } = require('./lib/native/addon');
    const addon = native();
    const report = {
      candidates: candidatePaths(),
      loaded: Object.keys(require.cache).filter((k) => k.endsWith('.node')),
      supportedIsas: addon.supportedIsas,
      fingerprint: require('./lib/model/hashing').fingerprint64('dupn').toString(),
    };
    process.stdout.write('\nREPORT ' + JSON.stringify(report) + '\n');
  `;
  const childEnv: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k === 'NODE_OPTIONS' || k.startsWith('TAP') || k.startsWith('_TAPJS') || k.startsWith('DUPN_')) continue;
    childEnv[k] = v;
  }
  const r = spawnSync(process.execPath, ['-r', tsNodeRegister(), '-e', code], {
    cwd: ROOT,
    env: { ...childEnv, TS_NODE_TRANSPILE_ONLY: '1', ...env },
    encoding: 'utf8',
    timeout: 120_000,
  });
  const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('REPORT '));
  if (r.status !== 0 || !line) throw new Error(`child failed (status ${r.status}, ${r.error ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(line.slice('REPORT '.length)) as ChildReport;
}

/** Where native() should land when $DUPN_NATIVE is unusable: the first existing later candidate. */
const FALLBACK = [PREBUILT, SOURCE_BUILT, CMAKE_ADDON].find((p) => fs.existsSync(p)) ?? CMAKE_ADDON;

t.test('the cmake-js build exists', async (t) => {
  t.ok(fs.existsSync(CMAKE_ADDON), `${CMAKE_ADDON} exists (run \`npm run build:native\`)`);
});

t.test('candidatePaths: $DUPN_NATIVE first (resolved), then the prebuild, then a source build, then build/Release', async (t) => {
  const saved = process.env.DUPN_NATIVE;
  t.teardown(() => {
    if (saved === undefined) delete process.env.DUPN_NATIVE;
    else process.env.DUPN_NATIVE = saved;
  });
  process.env.DUPN_NATIVE = 'relative/dir/dupn.node';
  t.same(candidatePaths(), [path.resolve('relative/dir/dupn.node'), PREBUILT, SOURCE_BUILT, CMAKE_ADDON]);
  delete process.env.DUPN_NATIVE;
  t.same(candidatePaths(), [PREBUILT, SOURCE_BUILT, CMAKE_ADDON]);
  const version = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  if (process.platform === 'linux') {
    t.equal(PREBUILT, path.join(ROOT, 'prebuilds', `linux-${process.arch}`, 'dupn.glibc.node'), 'the prebuild names its C library');
  }
  t.ok(SOURCE_BUILT.endsWith(path.join(version, platformTag(), 'dupn.node')), `a source build is kept per version and platform (${SOURCE_BUILT})`);
  t.notOk(SOURCE_BUILT.includes('node_modules'), 'outside node_modules, so npm ci keeps it');
});

t.test('DUPN_CACHE_DIR moves the source build', async (t) => {
  const saved = process.env.DUPN_CACHE_DIR;
  t.teardown(() => {
    if (saved === undefined) delete process.env.DUPN_CACHE_DIR;
    else process.env.DUPN_CACHE_DIR = saved;
  });
  process.env.DUPN_CACHE_DIR = tmp;
  t.equal(path.dirname(path.dirname(path.dirname(sourceBuildPath()))), tmp);
});

t.test('E_NATIVE_LOAD advice: musl has no prebuild, and the source build command is given', async (t) => {
  const musl = missingBinaryAdvice('musl', 'linux-x64-musl');
  t.match(musl, /no prebuilt binary for musl/);
  t.match(musl, /npx dupn build-native/);
  const other = missingBinaryAdvice('glibc', 'linux-riscv64-glibc');
  t.match(other, /this is linux-riscv64-glibc/);
  t.match(other, /npx dupn build-native/);
  t.match(other, /npm ci keeps it/);
});

t.test("the repository's prebuilds, when present, were built from the current sources", { skip: !fs.existsSync(path.join(ROOT, 'prebuilds')) && 'no prebuilds/ in this checkout (npm run prebuild makes them)' }, async (t) => {
  const r = spawnSync('bash', [path.join(ROOT, 'scripts', 'prebuild.sh'), '--check'], { cwd: ROOT, encoding: 'utf8' });
  t.equal(r.status, 0, `scripts/prebuild.sh --check: ${r.stderr.trim()} (run npm run prebuild)`);
});

t.test('DUPN_NATIVE naming a missing file falls through and still loads', async (t) => {
  const r = loadInChild({ DUPN_NATIVE: MISSING });
  t.equal(r.candidates[0], MISSING, 'DUPN_NATIVE was the first candidate');
  t.same(r.loaded, [FALLBACK], `loaded ${path.relative(ROOT, FALLBACK)}`);
  t.match(r.supportedIsas, /^baseline(,|$)/);
  t.match(r.fingerprint, /^\d+$/);
});

t.test('DUPN_NATIVE naming a file that is not an addon falls through and still loads', async (t) => {
  const r = loadInChild({ DUPN_NATIVE: NOT_AN_ADDON });
  t.equal(r.candidates[0], NOT_AN_ADDON);
  t.same(r.loaded, [FALLBACK]);
});

t.test('DUPN_NATIVE naming a good addon loads exactly that one', async (t) => {
  const r = loadInChild({ DUPN_NATIVE: CMAKE_ADDON });
  t.same(r.loaded, [CMAKE_ADDON]);
});

t.test('loadAddon: every candidate failing throws one E_NATIVE_LOAD listing them all', async (t) => {
  const dirNode = path.join(tmp, 'a-directory.node');
  fs.mkdirSync(dirNode, { recursive: true });
  const paths = [MISSING, NOT_AN_ADDON, dirNode, path.join(tmp, 'also-missing.node')];
  let err: unknown;
  try {
    loadAddon(paths);
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof DupnError, 'a DupnError');
  const e = err as DupnError;
  t.equal(e.code, 'E_NATIVE_LOAD');
  t.equal(e.name, 'DupnError');
  for (const p of paths) t.ok(e.message.includes(p), `names ${path.basename(p)}`);
  t.ok(e.message.includes(`${MISSING} (not found)`), 'a missing file is reported as not found');
  t.ok(e.message.includes(`${NOT_AN_ADDON} (`), 'the text file is listed with a reason');
  t.notOk(e.message.includes(`${NOT_AN_ADDON} (not found)`), '…the load error, not "not found"');
  t.ok(e.message.includes('npx dupn build-native'), 'says how to build from source');
  t.ok(e.message.includes('DUPN_NATIVE'), 'mentions DUPN_NATIVE');
  // the order of the tried list follows the order of the paths
  const at = paths.map((p) => e.message.indexOf(p));
  t.same([...at].sort((a, b) => a - b), at, 'paths are listed in the order tried');
  // an empty list fails the same way
  t.throws(() => loadAddon([]), { code: 'E_NATIVE_LOAD' });
});

t.test('loadAddon: falls through a failed candidate to one that loads', async (t) => {
  const addon = loadAddon([MISSING, NOT_AN_ADDON, CMAKE_ADDON]);
  t.type(addon.fingerprint64, 'function');
  t.equal(typeof addon.fingerprint64('dupn'), 'bigint');
  t.equal(loadAddon([CMAKE_ADDON]), addon, 'the same module instance (require cache)');
});

t.test('native() is cached and fromNativeError keeps its contract', async (t) => {
  t.equal(native(), native());
  const coded = Object.assign(new Error('bad input'), { code: 'E_INPUT' });
  const a = fromNativeError(coded, 'encode');
  t.equal(a.code, 'E_INPUT');
  t.equal(a.message, 'encode: bad input');
  t.equal(fromNativeError(new Error('boom'), 'score').code, 'E_INTERNAL');
  const d = new DupnError('E_TASK', 'x');
  t.equal(fromNativeError(d, 'ctx'), d);
});
