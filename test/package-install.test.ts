/**
 * The package as a user gets it: `npm pack`, then `npm install <tarball>` into a fresh app with no .npmrc,
 * no flags, no npm_* settings inherited, and a PATH that holds node, npm and npx only (no cc, c++, g++,
 * cmake, make or python), so nothing can be compiled and no install script could succeed. In that app the
 * package loads its prebuilt binary, creates, saves and loads a model, encodes, scores, imports as ESM,
 * and its command runs. Then the source-build route for a platform without a prebuild: `dupn
 * build-native` with a compiler on the PATH, a reinstall (`npm ci`), and the loader finding that build.
 *
 * The tarball is packed with --ignore-scripts from this checkout, whose prebuilds/ must be fresh (CI runs
 * `npm run prebuild` first; the loader test checks freshness): running prepack here would recompile the
 * TypeScript under the feet of the test files running beside this one.
 */
import t from 'tap';
import { spawnSync, SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT } from './support/child';

t.setTimeout(30 * 60_000);

const PREBUILDS = ['prebuilds/linux-x64/dupn.glibc.node', 'prebuilds/linux-arm64/dupn.glibc.node', 'prebuilds/manifest.json'];
const fresh = spawnSync('bash', [path.join(ROOT, 'scripts', 'prebuild.sh'), '--check'], { cwd: ROOT, encoding: 'utf8' });
// Outside CI, a checkout without fresh prebuilds skips this test saying why; in CI it fails.
const skip =
  process.platform !== 'linux' || process.arch !== 'x64'
    ? 'the pack/install check runs on linux-x64 hosts'
    : fresh.status !== 0 && process.env.CI !== 'true'
      ? `prebuilds/ is missing or stale (${fresh.stderr.trim()}): npm run prebuild makes it`
      : false;

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dupn-install-'));
t.teardown(() => fs.rmSync(work, { recursive: true, force: true }));

/** PATH with node, npm, npx and sh alone (npm runs commands with sh): no compiler, no make, no python. */
function toolsOnlyPath(): string {
  const bin = path.join(work, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  const npmCli = path.join(path.dirname(path.dirname(process.execPath)), 'lib', 'node_modules', 'npm', 'bin');
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  fs.symlinkSync('/bin/sh', path.join(bin, 'sh'));
  for (const tool of ['npm', 'npx']) {
    fs.writeFileSync(path.join(bin, tool), `#!/bin/sh\nexec "${process.execPath}" "${path.join(npmCli, `${tool}-cli.js`)}" "$@"\n`, { mode: 0o755 });
  }
  return bin;
}

/** The environment of a new user: a fresh HOME (no ~/.npmrc), none of npm's or tap's or dupn's variables. */
function userEnv(pathValue: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(npm_|NPM_|NODE_|TAP|_TAPJS|DUPN_|TS_NODE|ONNXRUNTIME)/i.test(k) || k === 'INIT_CWD') continue;
    env[k] = v;
  }
  const home = path.join(work, 'home');
  fs.mkdirSync(home, { recursive: true });
  return { ...env, HOME: home, PATH: pathValue, DUPN_CACHE_DIR: path.join(work, 'cache'), ...extra };
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs = 10 * 60_000): SpawnSyncReturns<string> & { ms: number } {
  const start = Date.now();
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
  return Object.assign(r, { ms: Date.now() - start });
}

function du(dir: string): number {
  let bytes = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) bytes += du(p);
    else if (e.isFile()) bytes += fs.statSync(p).size;
  }
  return bytes;
}

/** Every installed package that declares an install-time script (npm would run it, or ask to). */
function installScripts(nodeModules: string): string[] {
  const found: string[] = [];
  const visit = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (!e.isDirectory() || e.name === '.bin') continue;
      const p = path.join(dir, e.name);
      if (e.name.startsWith('@')) {
        visit(p);
        continue;
      }
      const pkg = path.join(p, 'package.json');
      if (fs.existsSync(pkg)) {
        const j = JSON.parse(fs.readFileSync(pkg, 'utf8')) as { scripts?: Record<string, string>; gypfile?: boolean };
        // prepare only for dupn, which comes from a tarball here (npm runs prepare for git and folder installs,
        // never for a registry dependency: fastify's and prom-client's dependencies publish one for their own
        // development).
        const hooks = e.name === 'dupn' ? ['preinstall', 'install', 'postinstall', 'prepare'] : ['preinstall', 'install', 'postinstall'];
        for (const s of hooks) if (j.scripts?.[s]) found.push(`${e.name}: ${s}`);
        if (j.gypfile !== false && fs.existsSync(path.join(p, 'binding.gyp')) && !j.scripts?.install) found.push(`${e.name}: binding.gyp`);
      }
      if (fs.existsSync(path.join(p, 'node_modules'))) visit(path.join(p, 'node_modules'));
    }
  };
  visit(nodeModules);
  return found;
}

// What the user's app does with dupn, run in the app with its own node_modules (CommonJS).
const USE = String.raw`
const fs = require('node:fs');
const { Model, DupnError, resolveConfig, readExamples } = require('dupn');
(async () => {
  const config = resolveConfig({
    maxSeqLen: 20,
    itemFields: [{ name: 'item', buckets: 997, dim: 12 }, { name: 'category', buckets: 53, dim: 5 }, { name: 'shop', buckets: 31, dim: 4 }, { name: 'brand', buckets: 17, dim: 3 }],
    hidden: 19, attentionHidden: 11,
  });
  const m = Model.create(config, { seed: 3 });
  const user = { behaviors: [{ item: 'i1', category: 3, shop: 's1', brand: 'b1', type: 'pv', time: 1511544070 }, { item: 'i2', category: 3, shop: 's2', type: 'buy', time: 1511547070 }] };
  const U = await m.encode([user]);
  const s = await m.score('ctr', U.subarray(0, m.userDim), [{ item: 'i3', category: 3, shop: 's1', brand: 'b1' }, { item: 'i4' }]);
  await m.save('m.safetensors');
  const back = await Model.load('m.safetensors');
  const U2 = await back.encode([user]);
  let onnx = '';
  try { Model.create(config, { seed: 3, backend: 'onnxruntime' }); } catch (e) { onnx = e instanceof DupnError ? e.code + ' ' + e.message : String(e); }
  const files = await m.exportOnnx('m.onnx');
  fs.writeFileSync('log.csv', '1,2,3,pv,1511544070\n2,2,3,pv,1511544071\n1,4,3,pv,1511544072\n');
  let disk = '';
  try { for await (const _ of readExamples('log.csv', { grouping: 'disk' }).examples) void _; } catch (e) { disk = e instanceof DupnError ? e.code + ' ' + e.message : String(e); }
  const loaded = Object.keys(require.cache).filter((k) => k.endsWith('.node'));
  process.stdout.write('REPORT ' + JSON.stringify({
    isa: m.isa, userDim: m.userDim, u: Array.from(U.subarray(0, 4)), finite: U.every(Number.isFinite) && s.every(Number.isFinite),
    scores: s.length, same: U.every((x, i) => Object.is(x, U2[i])), file: fs.statSync('m.safetensors').size, onnx, disk, files: files.length, loaded,
  }) + '\n');
  m.dispose(); back.dispose();
})().catch((e) => { console.error(e); process.exit(1); });
`;
const ESM = `import { Model, fingerprint64 } from 'dupn'; process.stdout.write('ESM ' + typeof Model.create + ' ' + fingerprint64('dupn') + '\\n');`;

function report(r: SpawnSyncReturns<string>): Record<string, unknown> {
  const line = r.stdout.split('\n').find((l) => l.startsWith('REPORT '));
  return line ? (JSON.parse(line.slice(7)) as Record<string, unknown>) : {};
}

t.test('npm install of the packed tarball works with no compiler, no flags and no install script', { skip }, async (t) => {
  t.equal(fresh.status, 0, `prebuilds/ is fresh (${fresh.stderr.trim()}); CI runs npm run prebuild first`);
  if (fresh.status !== 0) return;
  const packEnv = { ...process.env };
  const pack = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], ROOT, packEnv);
  t.equal(pack.status, 0, `npm pack: ${pack.stderr.slice(-2000)}`);
  const info = (JSON.parse(pack.stdout) as { filename: string; size: number; unpackedSize: number; files: { path: string }[] }[])[0];
  const listed = info.files.map((f) => f.path);
  for (const p of PREBUILDS) t.ok(listed.includes(p), `the tarball lists ${p}`);
  t.ok(listed.includes('dist/lib/index.js') && listed.includes('native/binding.gyp'), 'and the compiled library and the source-build recipe');
  t.notOk(listed.includes('binding.gyp'), 'no binding.gyp at the root (npm would run node-gyp as an install script)');
  t.notOk(listed.some((p) => p.startsWith('build/') || p.startsWith('node_modules/') || p.endsWith('.ts') && !p.endsWith('.d.ts')), 'no build/, node_modules/ or TypeScript sources');
  t.same(listed.filter((p) => /^dist\/lib\/reference\//.test(p)), [], 'no test oracles (the float64 references, the random-model helpers)');
  t.comment(`tarball ${info.filename}: ${(info.size / 1024).toFixed(0)} kB packed, ${(info.unpackedSize / 1024).toFixed(0)} kB unpacked, ${listed.length} files`);
  const tarball = path.join(work, info.filename);

  const app = path.join(work, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
  const bare = userEnv(toolsOnlyPath());
  for (const tool of ['cc', 'c++', 'g++', 'gcc', 'cmake', 'make', 'python', 'python3']) {
    t.not(run('/bin/sh', ['-c', `command -v ${tool}`], app, bare).status, 0, `${tool} is not on the app's PATH`);
  }
  const install = run('npm', ['install', tarball], app, bare);
  t.equal(install.status, 0, `npm install exits 0 (${(install.ms / 1000).toFixed(1)} s): ${install.stderr.slice(-3000)}`);
  t.comment(`npm install: exit ${install.status} in ${(install.ms / 1000).toFixed(1)} s`);
  const nm = path.join(app, 'node_modules');
  const size = du(nm);
  // 7.8 MB before the server's fastify and prom-client, 19.1 MB with them.
  t.ok(size < 25 * 2 ** 20, `installed node_modules is ${(size / 2 ** 20).toFixed(1)} MB (< 25 MB)`);
  t.notOk(fs.existsSync(path.join(nm, 'onnxruntime-node')), 'onnxruntime-node is not installed (optional peer)');
  t.notOk(fs.existsSync(path.join(nm, '@duckdb')), '@duckdb/node-api is not installed (optional peer)');
  t.same(installScripts(nm), [], 'no installed package has an install script');
  t.notMatch(install.stderr, /install scripts/i, 'npm reports no install script to approve or skip');

  const use = run('node', ['-e', USE], app, bare);
  t.equal(use.status, 0, `the app ran: ${use.stderr.slice(-3000)}`);
  const r = report(use);
  t.same(r.loaded, [path.join(nm, 'dupn', 'prebuilds', 'linux-x64', 'dupn.glibc.node')], 'it loaded the prebuilt binary');
  t.ok(r.finite, 'finite vectors and scores');
  t.equal(r.scores, 2);
  t.ok(r.same, 'the saved and loaded model encodes bit-identically');
  t.match(String(r.onnx), /^E_UNSUPPORTED .*ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node/, 'backend onnxruntime names the install command');
  t.ok(Number(r.files) >= 2, 'ONNX export works without onnxruntime-node');
  t.match(String(r.disk), /^E_UNSUPPORTED .*npm install @duckdb\/node-api/, 'grouping on disk without DuckDB names the install command');
  t.comment(`isa ${String(r.isa)}, U[0..4) ${JSON.stringify(r.u)}`);

  const esm = run('node', ['--input-type=module', '-e', ESM], app, bare);
  t.match(esm.stdout, /^ESM function \d+/, `ESM named imports: ${esm.stderr.slice(-500)}`);
  const version = run('npx', ['dupn', '--version'], app, bare);
  t.equal(version.stdout.trim(), (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version, 'npx dupn --version');
  const synth = run('npx', ['dupn', 'synth', '--out', 'data', '--users', '40', '--valid-users', '10'], app, bare);
  t.equal(synth.status, 0, `npx dupn synth: ${synth.stderr.slice(-1000)}`);
  t.ok(fs.existsSync(path.join(app, 'data', 'train.jsonl')) && fs.statSync(path.join(app, 'data', 'train.jsonl')).size > 0, 'wrote data/train.jsonl');

  // A platform without a prebuild: build from source once, reinstall, and the loader finds that build.
  const withCompiler = userEnv(`${path.join(work, 'bin')}${path.delimiter}${process.env.PATH ?? ''}`);
  const build = run('npx', ['dupn', 'build-native'], app, withCompiler, 20 * 60_000);
  t.equal(build.status, 0, `npx dupn build-native (${(build.ms / 1000).toFixed(0)} s): ${build.stderr.slice(-3000)}`);
  const ci = run('npm', ['ci'], app, bare);
  t.equal(ci.status, 0, `npm ci in the app: ${ci.stderr.slice(-2000)}`);
  fs.rmSync(path.join(nm, 'dupn', 'prebuilds'), { recursive: true });
  const noPrebuild = run('node', ['-e', USE], app, bare);
  t.equal(noPrebuild.status, 0, `the app ran on the source build: ${noPrebuild.stderr.slice(-2000)}`);
  const built = report(noPrebuild);
  const loadedPath = (built.loaded as string[] | undefined)?.[0] ?? '';
  t.ok(loadedPath.startsWith(path.join(work, 'cache')), `after npm ci it loaded the source build from the cache (${loadedPath})`);
  t.same(built.u, r.u, 'which computes the same as the prebuild');
  fs.rmSync(path.join(work, 'cache'), { recursive: true });
  const none = run('node', ['-e', USE], app, bare);
  t.not(none.status, 0, 'with neither, loading fails');
  t.match(none.stderr, /E_NATIVE_LOAD/, 'with E_NATIVE_LOAD');
  t.match(none.stderr, /npx dupn build-native/, 'naming the fix');
});
